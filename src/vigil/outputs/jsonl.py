"""One JSON object per processed frame, to a file or standard output."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from vigil.errors import StorageError
from vigil.frame import Frame
from vigil.stages.base import FrameResults

Describe = Callable[[Frame, FrameResults], dict[str, Any]]


class JsonLinesOutput:
    """Writes ``describe(frame, results)`` as one JSON line per frame.

    Args:
        target: A file path, or ``-`` for standard output. Each line is flushed as written, so a
            reader (or a killed process) sees whole lines only.
        describe: Turns a frame and its results into a JSON-ready dict.
    """

    def __init__(self, target: str | Path, describe: Describe) -> None:
        self.target = str(target)
        self.describe = describe
        self._handle: TextIO | None = None

    def _open(self) -> TextIO:
        if self.target == "-":
            return sys.stdout
        path = Path(self.target)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return path.open("w", encoding="utf-8")
        except OSError as exc:
            raise StorageError(f"cannot write JSON lines to {path}: {exc.strerror}") from None

    def write(self, frame: Frame, results: FrameResults) -> None:
        """Write one frame's line."""
        if self._handle is None:
            self._handle = self._open()
        self._handle.write(json.dumps(self.describe(frame, results), separators=(",", ":")) + "\n")
        self._handle.flush()

    def close(self) -> None:
        """Close the file (standard output stays open)."""
        if self._handle is not None and self._handle is not sys.stdout:
            self._handle.close()
        self._handle = None
