"""Cameras and network streams: always the newest frame, never a backlog.

A reader thread grabs frames as fast as the camera or stream sends them and keeps only the
newest one (a one-slot buffer). Iteration hands out that frame and then waits for a newer one,
so a slow pipeline skips frames (counted in ``stats.frames_dropped``) instead of falling
behind. Timestamps are the wall clock when a frame was grabbed.

When reading fails the reader reconnects with exponential backoff, logging a WARNING per
attempt; when every attempt fails, iteration raises :class:`~vigil.errors.SourceError`.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import numpy as np

from vigil.errors import SourceError
from vigil.frame import Frame
from vigil.redact import redact_url
from vigil.sources.base import BaseSource, bgr_to_rgb, quiet_opencv, video_backend
from vigil.sources.config import SourceConfig

logger = logging.getLogger(__name__)

_POLL_SECONDS = 0.5  # longest single wait on the slot; waits loop until a frame or the end
_JOIN_SECONDS = 3.0  # how long close() waits for the reader thread


@dataclass(frozen=True, slots=True)
class _Grab:
    bgr: np.ndarray
    timestamp: float
    index: int


class _LatestFrame:
    """One slot between the reader thread and the consumer; a newer grab replaces an older one."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._grab: _Grab | None = None
        self._error: SourceError | None = None
        self._ended = False

    def put(self, grab: _Grab) -> bool:
        """Store ``grab``; return True when it replaced one the consumer never took."""
        with self._condition:
            replaced = self._grab is not None
            self._grab = grab
            self._condition.notify_all()
            return replaced

    def fail(self, error: SourceError) -> None:
        """End the stream with ``error``, raised once the consumer has taken the last frame."""
        with self._condition:
            self._error = error
            self._ended = True
            self._condition.notify_all()

    def end(self) -> None:
        """End the stream without an error; the consumer stops after the last frame."""
        with self._condition:
            self._ended = True
            self._condition.notify_all()

    def take(self) -> _Grab | None:
        """Wait for a grab newer than the last one taken; None when the stream ended.

        Raises:
            SourceError: the reader gave up, and no frame is left to hand out.

        """
        with self._condition:
            while self._grab is None and not self._ended:
                self._condition.wait(timeout=_POLL_SECONDS)
            grab, self._grab = self._grab, None
            if grab is None and self._error is not None:
                raise self._error
            return grab


class LiveSource(BaseSource):
    """A camera (by index) or a stream URL (RTSP, HTTP MJPEG, UDP, TCP) read by OpenCV.

    ``open()`` connects, with the same retries as a reconnect, then starts the reader thread.
    ``close()`` stops the thread (waiting at most a few seconds) and releases the device.
    ``Frame.index`` counts every grabbed frame, so dropped frames show as gaps.
    """

    live = True

    def __init__(self, target: int | str, config: SourceConfig | None = None) -> None:
        """Describe the source; nothing is opened until :meth:`open` or iteration.

        Args:
            target: A camera index (0 is the first camera) or a stream URL.
            config: Rate cap, camera size, reconnect and timeout settings.

        """
        source_id = str(target) if isinstance(target, int) else redact_url(target)
        super().__init__(source_id, config)
        self._target = target
        self._slot = _LatestFrame()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._next_index = 0
        self._last_delivery: float | None = None

    @property
    def description(self) -> str:
        """The source in words for messages: ``camera 0`` or ``stream rtsp://user:***@host``."""
        kind = "camera" if isinstance(self._target, int) else "stream"
        return f"{kind} {self.source_id}"

    def _open(self) -> None:
        started = time.monotonic()
        capture = self._try_open() or self._retry_open("could not be opened")
        if capture is None:
            attempts = self.config.reconnect_attempts + 1
            raise SourceError(
                f"cannot open {self.description} after {attempts} attempts over "
                f"{time.monotonic() - started:.1f} s: {self._hint()}"
            )
        self._thread = threading.Thread(
            target=self._run, args=(capture,), name=f"vigil-source-{self.source_id}", daemon=True
        )
        self._thread.start()

    def _close(self) -> None:
        self._stop.set()
        self._slot.end()
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return
        thread.join(timeout=_JOIN_SECONDS)
        if thread.is_alive():
            logger.warning(
                "%s: the reader did not stop within %.0f s; it ends when its current read returns",
                self.description,
                _JOIN_SECONDS,
            )

    def _frames(self) -> Iterator[Frame]:
        while not self.closed:
            self._wait_for_rate()
            grab = self._slot.take()
            if grab is None or self.closed:
                return
            self._last_delivery = time.monotonic()
            self.stats.frames_delivered += 1
            yield Frame(bgr_to_rgb(grab.bgr), grab.timestamp, grab.index, self.source_id)

    def _wait_for_rate(self) -> None:
        max_fps = self.config.max_fps
        if max_fps is None or self._last_delivery is None:
            return
        remaining = self._last_delivery + 1.0 / max_fps - time.monotonic()
        if remaining > 0:
            self._stop.wait(remaining)

    # The reader thread.

    def _run(self, capture: cv2.VideoCapture) -> None:
        try:
            self._read_until_stopped(capture)
        except Exception as exc:  # the consumer gets it as a SourceError, not a dead thread
            logger.debug("%s: the reader failed", self.description, exc_info=True)
            reason = str(exc).replace(str(self._target), self.source_id)
            self._slot.fail(SourceError(f"{self.description}: reading failed: {reason}"))
        finally:
            self._slot.end()

    def _read_until_stopped(self, capture: cv2.VideoCapture) -> None:
        current: cv2.VideoCapture | None = capture
        try:
            while current is not None and not self._stop.is_set():
                if not self._read_one(current):
                    current.release()
                    current = self._reconnect()
        finally:
            if current is not None:
                current.release()

    def _read_one(self, capture: cv2.VideoCapture) -> bool:
        with quiet_opencv():
            ok, bgr = capture.read()
        if not ok or bgr is None:
            return False
        self.stats.frames_read += 1
        if self._slot.put(_Grab(bgr, time.time(), self._next_index)):
            self.stats.frames_dropped += 1
        self._next_index += 1
        return True

    def _reconnect(self) -> cv2.VideoCapture | None:
        started = time.monotonic()
        capture = self._retry_open("stopped delivering frames")
        if capture is not None:
            self.stats.reconnects += 1
            logger.info("%s is back after %.1f s", self.description, time.monotonic() - started)
        elif not self._stop.is_set():
            self._slot.fail(
                SourceError(
                    f"{self.description} stopped delivering frames and did not come back after "
                    f"{self.config.reconnect_attempts} reconnect attempts over "
                    f"{time.monotonic() - started:.1f} s: {self._hint()}"
                )
            )
        return capture

    # Opening, from either thread.

    def _retry_open(self, problem: str) -> cv2.VideoCapture | None:
        attempts = self.config.reconnect_attempts
        for attempt in range(1, attempts + 1):
            delay = self.config.reconnect_delay(attempt)
            logger.warning(
                "%s %s; retry %d of %d in %.3g s",
                self.description,
                problem,
                attempt,
                attempts,
                delay,
            )
            if self._stop.wait(delay):
                return None
            capture = self._try_open()
            if capture is not None:
                return capture
        return None

    def _try_open(self) -> cv2.VideoCapture | None:
        with quiet_opencv():
            try:
                capture = self._new_capture()
            except cv2.error as exc:
                logger.debug("%s: OpenCV refused to open it: %s", self.description, exc)
                return None
            if capture.isOpened():
                return capture
            capture.release()
            return None

    def _new_capture(self) -> cv2.VideoCapture:
        if isinstance(self._target, int):
            return self._new_camera_capture(self._target)
        timeouts = [
            cv2.CAP_PROP_OPEN_TIMEOUT_MSEC,
            round(self.config.open_timeout_seconds * 1000),
            cv2.CAP_PROP_READ_TIMEOUT_MSEC,
            round(self.config.read_timeout_seconds * 1000),
        ]
        return cv2.VideoCapture(self._target, video_backend(), timeouts)

    def _new_camera_capture(self, index: int) -> cv2.VideoCapture:
        capture = cv2.VideoCapture(index, cv2.CAP_ANY)
        if capture.isOpened() and self.config.width is not None:
            capture.set(cv2.CAP_PROP_FRAME_WIDTH, self.config.width)
        if capture.isOpened() and self.config.height is not None:
            capture.set(cv2.CAP_PROP_FRAME_HEIGHT, self.config.height)
        return capture

    def _hint(self) -> str:
        if isinstance(self._target, int):
            return "check that the camera is connected and not in use by another program"
        return "check the URL, the credentials and that the camera is reachable"


__all__ = ["LiveSource"]
