"""An on-screen window showing annotated frames, where a display exists."""

from __future__ import annotations

import os
from collections.abc import Callable

import cv2
import numpy as np

from vigil.errors import ConfigError
from vigil.frame import Frame
from vigil.stages.base import FrameResults

Annotate = Callable[[Frame, FrameResults], np.ndarray]


class DisplayOutput:
    """Shows each annotated frame in a window; pressing q or Esc calls ``on_quit``.

    Raises:
        ConfigError: at construction when there is no display or OpenCV was built without a GUI.
    """

    def __init__(
        self, annotate: Annotate, title: str = "Vigil", on_quit: Callable[[], None] | None = None
    ) -> None:
        if os.name != "nt" and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            raise ConfigError(
                "--show needs a display, and none is available here (DISPLAY is not set)"
            )
        if "GUI:" in cv2.getBuildInformation() and "NONE" in _gui_line():
            raise ConfigError("--show needs OpenCV with a GUI: pip install opencv-python")
        self.annotate = annotate
        self.title = title
        self.on_quit = on_quit

    def write(self, frame: Frame, results: FrameResults) -> None:
        """Show one frame and poll the keyboard."""
        image = cv2.cvtColor(self.annotate(frame, results), cv2.COLOR_RGB2BGR)
        cv2.imshow(self.title, image)
        if cv2.waitKey(1) & 0xFF in (ord("q"), 27) and self.on_quit is not None:
            self.on_quit()

    def close(self) -> None:
        """Close the window."""
        cv2.destroyWindow(self.title)


def _gui_line() -> str:
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GUI:"):
            return line.upper()
    return "NONE"
