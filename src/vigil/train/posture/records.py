"""Keypoint records: the JSON lines ``vigil run posture --jsonl`` writes, read back."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

import numpy as np

from vigil.errors import ConfigError, SourceError
from vigil.results import COCO_17, Poses


@dataclass(frozen=True, slots=True)
class KeypointRecord:
    """One line of a records file.

    Attributes:
        file: The records file.
        line: The 1-based line in it.
        frame: The frame index, if the line has one.
        image: The image path of a photo, if any.
        timestamp: Unix seconds, if the line has a time.
        poses: The main person's keypoints in COCO-17, or None when the line has none.
    """

    file: Path
    line: int
    frame: int | None
    image: str | None
    timestamp: float | None
    poses: Poses | None

    @property
    def where(self) -> str:
        """``file.jsonl:12``, for messages and reports."""
        return f"{self.file.name}:{self.line}"


@dataclass(frozen=True, slots=True)
class RecordsFile:
    """A records file read for training: where it is and its sha256 (for lineage)."""

    path: Path
    sha256: str
    lines: int


@dataclass(frozen=True, slots=True)
class Records:
    """The records of one or more files, in file and line order."""

    records: list[KeypointRecord]
    files: list[RecordsFile]


def read_records(paths: Sequence[str | Path]) -> Records:
    """Read the JSON lines of ``vigil run posture --jsonl`` files.

    Raises:
        ConfigError: no file was given.
        SourceError: a file is missing or unreadable, or a line is not a posture record.
    """
    if not paths:
        raise ConfigError("no records given: pass --records FILE.jsonl (from vigil run --jsonl)")
    records: list[KeypointRecord] = []
    files: list[RecordsFile] = []
    for given in paths:
        path = Path(given).expanduser()
        data = read_bytes(path, "records file")
        lines = data.decode("utf-8", errors="replace").splitlines()
        for number, text in enumerate(lines, start=1):
            if text.strip():
                records.append(_parse_record(path, number, text))
        files.append(RecordsFile(path, hashlib.sha256(data).hexdigest(), len(lines)))
    if not records:
        names = ", ".join(str(f.path) for f in files)
        raise SourceError(f"no records in {names}: write them with 'vigil run posture --jsonl'")
    return Records(records, files)


def read_bytes(path: Path, what: str) -> bytes:
    """Read a file the user named; a missing or unreadable one is a one-line SourceError."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SourceError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise SourceError(f"{what} {path} is a folder, not a file") from None
    except OSError as exc:
        raise SourceError(f"cannot read {what} {path}: {exc.strerror}") from None


def _parse_record(path: Path, number: int, text: str) -> KeypointRecord:
    where = f"{path} line {number}"
    try:
        line = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError(f"{where}: not JSON ({exc.msg}): is it from vigil run --jsonl?") from None
    if not isinstance(line, dict):
        raise SourceError(f"{where}: not a JSON object: is it from vigil run --jsonl?")
    frame = line.get("frame")
    image = line.get("image")
    return KeypointRecord(
        file=path,
        line=number,
        frame=frame if isinstance(frame, int) else None,
        image=image if isinstance(image, str) else None,
        timestamp=_record_time(line, where),
        poses=_record_poses(line, where),
    )


def _record_time(line: Mapping[str, Any], where: str) -> float | None:
    stamp = line.get("timestamp")
    if isinstance(stamp, int | float) and not isinstance(stamp, bool):
        return float(stamp)
    text = line.get("time")
    if isinstance(text, str):
        moment = iso_datetime(text)
        if moment is None:
            raise SourceError(f"{where}: 'time' {text!r} is not an ISO date-time")
        return moment.timestamp()
    return None


def _record_poses(line: Mapping[str, Any], where: str) -> Poses | None:
    """Return the keypoints of a line as one COCO-17 person; None when it holds none.

    The keypoints decide, not the line's ``person``: that one is smoothed over a second.
    """
    points = line.get("keypoints", [])
    if not isinstance(points, list):
        raise SourceError(f"{where}: 'keypoints' must be a list of {{name, x, y, confidence}}")
    keypoints = np.zeros((1, len(COCO_17), 2), np.float32)
    confidence = np.zeros((1, len(COCO_17)), np.float32)
    found = 0
    for point in points:
        name, xy, conf = _keypoint(point, where)
        if name in COCO_17:
            i = COCO_17.index(name)
            keypoints[0, i], confidence[0, i] = xy, conf
            found += 1
    return Poses.from_arrays(keypoints, confidence, COCO_17) if found else None


def _keypoint(point: Any, where: str) -> tuple[str, tuple[float, float], float]:
    try:
        name = point["name"]
        values = (float(point["x"]), float(point["y"]), float(point["confidence"]))
    except (TypeError, KeyError, ValueError):
        raise SourceError(
            f"{where}: a keypoint must be {{name, x, y, confidence}}, got {str(point)[:80]}"
        ) from None
    if not isinstance(name, str) or not all(np.isfinite(values)):
        raise SourceError(f"{where}: a keypoint must have a name and finite numbers")
    return name, (values[0], values[1]), values[2]


def iso_datetime(text: str, zone: tzinfo | None = None) -> datetime | None:
    """Parse an ISO date-time; one without an offset is in ``zone`` (local time by default)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        from vigil.report.timeparse import local_zone

        moment = moment.replace(tzinfo=zone or local_zone())
    return moment


def local_zone_now() -> tzinfo:
    """Return the local time zone (``vigil.report`` is imported only when it is needed)."""
    from vigil.report.timeparse import local_zone

    return local_zone()
