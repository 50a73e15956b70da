"""What every frame source is: an iterable of frames with an explicit open and close.

A source is built from settings without touching a file, camera or network. The I/O happens
in :meth:`BaseSource.open`, which iteration and ``with source:`` call when needed; failures
there raise :class:`~vigil.errors.SourceError` with one line a user can act on.
"""

from __future__ import annotations

import os
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import TracebackType
from typing import Protocol, Self, runtime_checkable

import cv2
import numpy as np

from vigil.errors import SourceError
from vigil.frame import Frame
from vigil.sources.config import SourceConfig

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
"""File extensions (lower case) that image sources read; other files in a folder are ignored."""


@dataclass(slots=True)
class SourceStats:
    """Counters of one source, updated while it runs.

    Attributes:
        frames_read: Frames decoded from the camera, stream, video or image files.
        frames_delivered: Frames handed to the consumer.
        frames_dropped: Live frames replaced by a newer one before the consumer took them.
        frames_throttled: Video frames left out to respect ``max_fps``.
        frames_skipped: Files or frames that could not be decoded and were passed over.
        reconnects: Successful reopenings of a camera or stream after it failed.

    """

    frames_read: int = 0
    frames_delivered: int = 0
    frames_dropped: int = 0
    frames_throttled: int = 0
    frames_skipped: int = 0
    reconnects: int = 0


@runtime_checkable
class Source(Protocol):
    """An iterable of :class:`~vigil.frame.Frame` objects with an explicit lifetime.

    Attributes:
        source_id: Names the source in frames, records and messages (passwords redacted).
        live: True for cameras and streams: frames are dropped rather than queued.
        stills: True for image sources, whose frames are unrelated photos.
        stats: Counters of frames read, delivered, dropped and skipped, and reconnects.

    """

    source_id: str
    live: bool
    stills: bool
    stats: SourceStats

    @property
    def fps(self) -> float | None:
        """The frame rate where it is known (a video container's), else None."""

    def open(self) -> None:
        """Open the camera, stream or file; raise SourceError when that is impossible."""

    def close(self) -> None:
        """Release the camera, stream or file. Safe to call more than once."""

    def __iter__(self) -> Iterator[Frame]:
        """Open if needed and yield frames until the source ends or is closed."""

    def __enter__(self) -> Self:
        """Open the source."""

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Close the source."""


class BaseSource(ABC):
    """Shared lifetime of every source: open once, read once through, close once.

    Subclasses implement :meth:`_open`, :meth:`_frames` and :meth:`_close`.
    """

    live: bool = False
    stills: bool = False

    def __init__(self, source_id: str, config: SourceConfig | None = None) -> None:
        self.source_id = source_id
        self.config = config if config is not None else SourceConfig()
        self.stats = SourceStats()
        self._opened = False
        self._closed = False
        self._iterator: Iterator[Frame] | None = None

    @property
    def fps(self) -> float | None:
        """The frame rate where it is known, else None."""
        return None

    @property
    def closed(self) -> bool:
        """Whether :meth:`close` was called."""
        return self._closed

    def open(self) -> None:
        """Do the I/O that makes frames available. Does nothing when already open.

        Raises:
            SourceError: the source cannot be opened, or was closed already.

        """
        if self._closed:
            raise SourceError(f"source {self.source_id} is closed; create a new one to read again")
        if not self._opened:
            self._open()
            self._opened = True

    def close(self) -> None:
        """Release what :meth:`open` acquired. Safe to call more than once."""
        if not self._closed:
            self._closed = True
            self._close()

    def __iter__(self) -> Iterator[Frame]:
        """Open if needed; every call returns the same iterator, like a file's lines."""
        self.open()
        if self._iterator is None:
            self._iterator = self._frames()
        return self._iterator

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.source_id!r})"

    def start_timestamp(self) -> float:
        """Return the configured start time in Unix seconds, or now when none is set."""
        start = self.config.start_time
        return start.timestamp() if start is not None else time.time()

    @abstractmethod
    def _open(self) -> None:
        """Acquire the file, camera or stream."""

    @abstractmethod
    def _frames(self) -> Iterator[Frame]:
        """Yield frames; stop when the source ends or :attr:`closed` becomes true."""

    @abstractmethod
    def _close(self) -> None:
        """Release what :meth:`_open` acquired, if anything; also called when never opened."""


class ArraySource(BaseSource):
    """Frames from images already in memory: a fake beside the real sources, for tests and demos.

    Timestamps follow ``start_time + i * image_interval_seconds`` like image sources.
    """

    def __init__(
        self,
        images: Iterable[np.ndarray],
        source_id: str = "arrays",
        config: SourceConfig | None = None,
    ) -> None:
        super().__init__(source_id, config)
        self._images = list(images)

    def _open(self) -> None:
        pass

    def _frames(self) -> Iterator[Frame]:
        start = self.start_timestamp()
        interval = self.config.image_interval_seconds
        for index, image in enumerate(self._images):
            if self.closed:
                return
            self.stats.frames_read += 1
            self.stats.frames_delivered += 1
            yield Frame(image, start + index * interval, index, self.source_id)

    def _close(self) -> None:
        pass


def bgr_to_rgb(image: np.ndarray) -> np.ndarray:
    """Convert an OpenCV BGR (or greyscale, or BGRA) image to RGB uint8."""
    if image.ndim == 2:
        return cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.shape[2] == 4:
        return cv2.cvtColor(image, cv2.COLOR_BGRA2RGB)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def video_backend() -> int:
    """Return the OpenCV capture backend for files and URLs: FFmpeg where the build has it."""
    has_ffmpeg = cv2.videoio_registry.hasBackend(cv2.CAP_FFMPEG)
    return int(cv2.CAP_FFMPEG) if has_ffmpeg else int(cv2.CAP_ANY)


class _OpenCvQuiet:
    """Counts the threads inside :func:`quiet_opencv` so the log level is restored once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved_level = 0

    def enter(self) -> None:
        with self._lock:
            if self._users == 0:
                self._saved_level = int(cv2.utils.logging.getLogLevel())
                cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
            self._users += 1

    def exit(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                cv2.utils.logging.setLogLevel(self._saved_level)


_QUIET = _OpenCvQuiet()


@contextmanager
def quiet_opencv() -> Iterator[None]:
    """Silence OpenCV's and FFmpeg's console messages while inside; Vigil reports problems itself.

    Setting the ``OPENCV_LOG_LEVEL`` or ``OPENCV_FFMPEG_LOGLEVEL`` environment variables keeps
    those messages, for debugging a camera or codec.
    """
    if "OPENCV_FFMPEG_DEBUG" not in os.environ:
        # Read by OpenCV when it first uses FFmpeg; -8 is FFmpeg's AV_LOG_QUIET.
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    if "OPENCV_LOG_LEVEL" in os.environ:
        yield
        return
    _QUIET.enter()
    try:
        yield
    finally:
        _QUIET.exit()


__all__ = [
    "IMAGE_EXTENSIONS",
    "ArraySource",
    "BaseSource",
    "Source",
    "SourceStats",
    "bgr_to_rgb",
    "quiet_opencv",
    "video_backend",
]
