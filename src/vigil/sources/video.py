"""Video files as frames, every frame processed, timestamped in video time.

A frame's timestamp is ``start_time + its position in the video``, so a one-hour recording is
judged by rules exactly like one live hour. Nothing is dropped for speed: a slow pipeline takes
longer, it does not skip. ``max_fps`` subsamples in video time instead.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Generator, Iterator
from pathlib import Path

import cv2

from vigil.errors import SourceError
from vigil.frame import Frame
from vigil.sources.base import BaseSource, bgr_to_rgb, quiet_opencv, video_backend
from vigil.sources.config import SourceConfig

logger = logging.getLogger(__name__)

_FALLBACK_FPS = 25.0  # what FFmpeg assumes for a stream that announces no rate
_EARLY_END_TOLERANCE = 0.01  # container frame counts can be estimates: ignore a 1 % shortfall
_GAP_EPSILON = 1e-6


class VideoFileSource(BaseSource):
    """Frames of a video file, decoded with OpenCV (FFmpeg), converted to RGB.

    ``open()`` opens the file and decodes its first frame, so an unreadable file fails there.
    ``Frame.index`` is the frame's number in the video (it keeps counting when looping), so
    frames left out by ``max_fps`` show as gaps. A file that ends before the frame count its
    container announces yields what decodes and logs one WARNING.
    """

    def __init__(self, path: str | Path, config: SourceConfig | None = None) -> None:
        super().__init__(str(path), config)
        self._path = Path(path)
        self._capture: cv2.VideoCapture | None = None
        self._first_grabbed = False
        self._fps: float | None = None
        self._announced: int | None = None
        self._next_index = 0
        self._last_kept: float | None = None

    @property
    def fps(self) -> float | None:
        """The frame rate the container announces (known after :meth:`open`), else None."""
        return self._fps

    @property
    def frame_count(self) -> int | None:
        """The number of frames the container announces (known after :meth:`open`), else None."""
        return self._announced

    def _open(self) -> None:
        if not self._path.is_file():
            raise SourceError(f"no such file: {self._path}")
        capture = self._open_capture()
        self._fps = _positive_or_none(capture.get(cv2.CAP_PROP_FPS))
        count = _positive_or_none(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        self._announced = round(count) if count is not None else None

    def _open_capture(self) -> cv2.VideoCapture:
        with quiet_opencv():
            capture = cv2.VideoCapture(str(self._path), video_backend())
            readable = capture.isOpened() and capture.grab()
        if not readable:
            capture.release()
            raise SourceError(
                f"cannot read video {self._path}: not a video, empty, or a format this OpenCV "
                "build cannot decode"
            )
        self._capture = capture
        self._first_grabbed = True
        return capture

    def _close(self) -> None:
        self._release()

    def _release(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None

    def _require_capture(self) -> cv2.VideoCapture:
        if self._capture is None:
            raise SourceError(f"video {self._path} is not open")
        return self._capture

    def _frames(self) -> Iterator[Frame]:
        base = self.start_timestamp()
        first_pass = True
        while not self.closed:
            read, duration = yield from self._play(base)
            if first_pass:
                self._warn_if_short(read)
            if read == 0 or not self.config.loop or self.closed:
                return
            first_pass = False
            base += duration
            self._release()
            self._open_capture()

    def _play(self, base: float) -> Generator[Frame, None, tuple[int, float]]:
        """Yield the frames of one pass; return how many were read and the pass's duration."""
        read = 0
        position = 0.0
        while not self.closed and self._grab():
            position = self._position(read)
            read += 1
            frame = self._frame_at(base + position)
            if frame is not None:
                yield frame
        return read, position + 1.0 / (self._fps or _FALLBACK_FPS)

    def _grab(self) -> bool:
        if self._first_grabbed:
            self._first_grabbed = False
            return True
        with quiet_opencv():
            return bool(self._require_capture().grab())

    def _position(self, read_in_pass: int) -> float:
        """Seconds into the video of the frame just grabbed."""
        msec = float(self._require_capture().get(cv2.CAP_PROP_POS_MSEC))
        if msec > 0 or read_in_pass == 0:
            return msec / 1000.0
        return read_in_pass / (self._fps or _FALLBACK_FPS)

    def _frame_at(self, timestamp: float) -> Frame | None:
        index = self._next_index
        self._next_index += 1
        self.stats.frames_read += 1
        if self._throttled(timestamp):
            self.stats.frames_throttled += 1
            return None
        with quiet_opencv():
            ok, bgr = self._require_capture().retrieve()
        if not ok or bgr is None:
            self.stats.frames_skipped += 1
            return None
        self._last_kept = timestamp
        self.stats.frames_delivered += 1
        return Frame(bgr_to_rgb(bgr), timestamp, index, self.source_id)

    def _throttled(self, timestamp: float) -> bool:
        max_fps = self.config.max_fps
        if max_fps is None or self._last_kept is None:
            return False
        return timestamp - self._last_kept < 1.0 / max_fps - _GAP_EPSILON

    def _warn_if_short(self, read: int) -> None:
        announced = self._announced
        if self.closed or announced is None:
            return
        if announced - read > max(1, announced * _EARLY_END_TOLERANCE):
            logger.warning(
                "video %s ended early: read %d of the %d frames its container announces "
                "(the file may be truncated)",
                self._path,
                read,
                announced,
            )


def _positive_or_none(value: float) -> float | None:
    """Return an OpenCV property that is a real positive number, else None."""
    if math.isfinite(value) and 0 < value < 1e12:
        return float(value)
    return None


__all__ = ["VideoFileSource"]
