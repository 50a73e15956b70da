"""Fixtures for the source tests: videos written on the spot and an MJPEG server on loopback."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

NUMBER_BITS = 12

VideoWriter = Callable[..., Path]


def number_image(number: int, width: int = 160, height: int = 120) -> np.ndarray:
    """A BGR image whose vertical bands spell ``number`` in binary (white is 1): JPEG-proof."""
    image = np.zeros((height, width, 3), np.uint8)
    band = width // NUMBER_BITS
    for bit in range(NUMBER_BITS):
        if number >> bit & 1:
            image[:, bit * band : (bit + 1) * band] = 255
    return image


def _read_number(image: np.ndarray) -> int:
    """The number that :func:`number_image` drew, read from the middle of each band."""
    width = image.shape[1]
    band = width // NUMBER_BITS
    middle = image[image.shape[0] // 4 : -image.shape[0] // 4]
    number = 0
    for bit in range(NUMBER_BITS):
        column = middle[:, bit * band + band // 4 : (bit + 1) * band - band // 4]
        if column.mean() > 127:
            number |= 1 << bit
    return number


def _write_video(
    path: Path, frames: Sequence[np.ndarray], fps: float = 5.0, fourcc: str = "MJPG"
) -> Path:
    """Write BGR ``frames`` to ``path`` with OpenCV and return the path."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} to {path}"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture
def read_number() -> Callable[[np.ndarray], int]:
    """Read the number drawn into a frame (RGB or BGR) by the video and stream fixtures."""
    return _read_number


@pytest.fixture
def write_video() -> VideoWriter:
    """Write BGR frames to a video file: ``write_video(path, frames, fps=5.0, fourcc="MJPG")``."""
    return _write_video


@pytest.fixture
def numbered_video(tmp_path: Path) -> VideoWriter:
    """Write a video of ``count`` numbered frames, some in given colours, some rows of noise."""

    def make(
        count: int = 12,
        fps: float = 5.0,
        name: str = "clip.avi",
        colours: dict[int, tuple[int, int, int]] | None = None,
        noise_rows: int = 0,
    ) -> Path:
        rng = np.random.default_rng(count)
        frames = [number_image(i) for i in range(count)]
        for frame in frames:  # noise below the number makes frames big, e.g. to cut files
            frame[frame.shape[0] - noise_rows :] = rng.integers(0, 256, (noise_rows, 160, 3))
        for index, bgr in (colours or {}).items():
            frames[index][:] = bgr
        return _write_video(tmp_path / name, frames, fps)

    return make


class _StreamServer(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True
    owner: MjpegServer


class _StreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    timeout = 5.0  # a client that stops reading cannot hold the server forever
    server: _StreamServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        with contextlib.suppress(OSError):  # the client went away
            self._stream()

    def _stream(self) -> None:
        owner = self.server.owner
        owner.connections += 1
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=vigilframe")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        sent = 0
        while not owner.stopping.is_set():
            if owner.frames_per_connection is not None and sent >= owner.frames_per_connection:
                if owner.stall:
                    owner.stopping.wait(10.0)  # keep the connection open, send nothing
                return
            jpeg = owner.next_jpeg()
            head = (
                f"--vigilframe\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
            )
            self.wfile.write(head.encode() + jpeg + b"\r\n")
            sent += 1
            owner.stopping.wait(1.0 / owner.fps)


class MjpegServer:
    """Serves numbered JPEG frames as an HTTP MJPEG stream (multipart/x-mixed-replace).

    Numbers keep rising across connections, so a client that reconnects sees newer frames.
    After ``frames_per_connection`` frames a connection is closed, or with ``stall`` kept open
    silently, like a camera that froze.
    """

    def __init__(
        self,
        fps: float = 50.0,
        size: tuple[int, int] = (160, 120),
        frames_per_connection: int | None = None,
        stall: bool = False,
    ) -> None:
        self.fps = fps
        self.stall = stall
        self.size = size
        self.frames_per_connection = frames_per_connection
        self.stopping = threading.Event()
        self.connections = 0
        self._number = 0
        self._lock = threading.Lock()
        self._httpd = _StreamServer(("127.0.0.1", 0), _StreamHandler)
        self._httpd.owner = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._stopped = False

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def url(self, credentials: str = "") -> str:
        at = f"{credentials}@" if credentials else ""
        return f"http://{at}127.0.0.1:{self.port}/stream.mjpg"

    def start(self) -> MjpegServer:
        self._thread.start()
        return self

    def next_jpeg(self) -> bytes:
        with self._lock:
            number = self._number
            self._number += 1
        ok, jpeg = cv2.imencode(".jpg", number_image(number, *self.size))
        assert ok
        return bytes(jpeg.tobytes())

    def stop(self) -> None:
        """Stop accepting connections and end the open ones."""
        if self._stopped:
            return
        self._stopped = True
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture
def mjpeg_server() -> Iterator[Callable[..., MjpegServer]]:
    """Start MJPEG servers on free loopback ports; all are stopped after the test."""
    servers: list[MjpegServer] = []

    def start(**options: object) -> MjpegServer:
        server = MjpegServer(**options)  # type: ignore[arg-type]
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()
