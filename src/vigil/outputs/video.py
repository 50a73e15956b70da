"""Annotated video files: H.264 MP4 (plays in browsers) through PyAV; MJPG AVI through OpenCV."""

from __future__ import annotations

import fractions
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vigil.errors import StorageError
from vigil.frame import Frame
from vigil.stages.base import FrameResults

Annotate = Callable[[Frame, FrameResults], np.ndarray]

_MILLISECONDS = fractions.Fraction(1, 1000)

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi")
"""File name endings :class:`VideoOutput` writes: H.264 through PyAV, or MJPG AVI (``.avi``)."""


class VideoOutput:
    """Writes annotated frames to a video file, timed by the frames' timestamps.

    Frames of a different size than the first (photos of a folder) are letterboxed to it.

    Args:
        path: ``.mp4``, ``.mkv`` or ``.mov`` (H.264 via PyAV) or ``.avi`` (MJPG via OpenCV).
        annotate: Draws the results onto a copy of the frame.
        fps: Nominal frame rate for players; timing follows the frames' timestamps.
    """

    def __init__(self, path: str | Path, annotate: Annotate, fps: float = 10.0) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in VIDEO_SUFFIXES:
            raise StorageError(
                f"cannot write video {self.path}: use a .mp4, .mkv, .mov or .avi name"
            )
        self.annotate = annotate
        self.fps = fps
        self.frames = 0
        self._writer: _Writer | None = None
        self._size: tuple[int, int] | None = None
        self._first_timestamp = 0.0
        self._last_pts = -1

    def write(self, frame: Frame, results: FrameResults) -> None:
        """Annotate and encode one frame."""
        image = self.annotate(frame, results)
        if self._writer is None:
            self._size = _even_size(image)
            self._first_timestamp = frame.timestamp
            self._writer = self._open(*self._size)
        image = _fit(image, *self._size) if self._size else image
        pts = max(self._last_pts + 1, round((frame.timestamp - self._first_timestamp) * 1000))
        self._last_pts = pts
        self._writer.write(image, pts)
        self.frames += 1

    def close(self) -> None:
        """Finish the file."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    def _open(self, width: int, height: int) -> _Writer:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create {self.path.parent}: {exc.strerror}") from None
        if self.path.suffix.lower() == ".avi":
            return _OpenCvWriter(self.path, width, height, self.fps)
        return _PyAvWriter(self.path, width, height, self.fps)


class _Writer:
    def write(self, image: np.ndarray, pts_ms: int) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _PyAvWriter(_Writer):
    def __init__(self, path: Path, width: int, height: int, fps: float) -> None:
        import av

        try:
            self._container: Any = av.open(str(path), mode="w")
        except (OSError, av.FFmpegError) as exc:
            raise StorageError(f"cannot write video {path}: {exc}") from None
        stream = self._container.add_stream("libx264", rate=max(1, round(fps)))
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "23"}
        stream.codec_context.time_base = _MILLISECONDS
        self._stream = stream
        self._av = av

    def write(self, image: np.ndarray, pts_ms: int) -> None:
        frame = self._av.VideoFrame.from_ndarray(image, format="rgb24")
        frame.pts, frame.time_base = pts_ms, _MILLISECONDS
        for packet in self._stream.encode(frame):
            self._container.mux(packet)

    def close(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()


class _OpenCvWriter(_Writer):
    def __init__(self, path: Path, width: int, height: int, fps: float) -> None:
        fourcc = cv2.VideoWriter.fourcc(*"MJPG")
        self._writer = cv2.VideoWriter(str(path), fourcc, fps, (width, height))
        if not self._writer.isOpened():
            raise StorageError(f"cannot write video {path}")

    def write(self, image: np.ndarray, pts_ms: int) -> None:
        self._writer.write(cv2.cvtColor(image, cv2.COLOR_RGB2BGR))

    def close(self) -> None:
        self._writer.release()


def _even_size(image: np.ndarray) -> tuple[int, int]:
    """H.264 in yuv420p needs even dimensions."""
    h, w = image.shape[:2]
    return w - w % 2, h - h % 2


def _fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    if image.shape[1] == width and image.shape[0] == height:
        return image
    from vigil.tasks.preprocess import letterbox

    return letterbox(image, width, height)[0]
