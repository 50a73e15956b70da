"""The live stream output against loopback servers: a hub that answers, one that is slow, one
that hangs, and none at all.

Frames carry their number in vertical bands (``number_image``), which survives JPEG, so the
tests can tell which frames reached the server.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import cv2
import numpy as np
import pytest

from tests.services import (
    LOOPBACK,
    NUMBER_BITS,
    CaptureServer,
    free_port,
    http_capture_server,
    number_image,
    wait_until,
)
from vigil.errors import ConfigError
from vigil.frame import Frame
from vigil.outputs.stream import StreamOutput, encode_jpeg
from vigil.sinks.config import HubConfig
from vigil.stages.base import FrameResults

DEVICE = "desk-1"
TOKEN = "vgt_live-view-s3cret"
WAIT = 5.0


def frame_of(number: int, width: int = 160, height: int = 120) -> Frame:
    """A frame whose pixels spell ``number`` (RGB: the bands are grey, so channel order is moot)."""
    return Frame(number_image(number, width, height), float(number), number, "test")


def plain(frame: Frame, _results: FrameResults) -> np.ndarray:
    """Annotate like the apps do: draw onto a copy (here: nothing to draw)."""
    return frame.image.copy()


def number_in(jpeg: bytes) -> int:
    """Read the number back from a JPEG made of ``number_image`` bands."""
    image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_GRAYSCALE)
    band = image.shape[1] // NUMBER_BITS
    bits = [image[:, i * band : (i + 1) * band].mean() > 127 for i in range(NUMBER_BITS)]
    return sum(1 << i for i, bit in enumerate(bits) if bit)


def stream(url: str, **options: Any) -> StreamOutput:
    settings = {"fps": 1000.0, "timeout_seconds": 2.0, **options}
    return StreamOutput(url, TOKEN, DEVICE, plain, **settings)


def write(output: StreamOutput, number: int, **size: int) -> float:
    """Write one frame; return how long the pipeline thread spent in ``write``."""
    started = time.perf_counter()
    output.write(frame_of(number, **size), FrameResults())
    return time.perf_counter() - started


class LogLines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def at(self, level: int) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == level]


@pytest.fixture
def logs() -> Iterator[LogLines]:
    handler, logger = LogLines(), logging.getLogger("vigil.outputs.stream")
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def hub() -> Iterator[CaptureServer]:
    with http_capture_server() as running:
        yield running


@pytest.fixture(autouse=True)
def no_stream_threads_left() -> Iterator[None]:
    yield
    assert wait_until(lambda: not _stream_threads(), timeout=5), _stream_threads()


def _stream_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "vigil-stream"]


@dataclass
class SlowHub:
    """A hub that takes ``delay`` seconds to answer each frame; records arrivals at once."""

    delay: float
    bodies: list[bytes] = field(default_factory=list)
    changed: threading.Condition = field(default_factory=threading.Condition)
    port: int = 0

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def arrived(self, body: bytes) -> None:
        with self.changed:
            self.bodies.append(body)
            self.changed.notify_all()

    def wait_for(self, count: int, timeout: float = WAIT) -> list[bytes]:
        with self.changed:
            self.changed.wait_for(lambda: len(self.bodies) >= count, timeout)
            return list(self.bodies)


class _SlowHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        owner: SlowHub = self.server.owner  # type: ignore[attr-defined]
        owner.arrived(self.rfile.read(int(self.headers["Content-Length"])))
        time.sleep(owner.delay)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""


@contextlib.contextmanager
def slow_hub(delay: float) -> Iterator[SlowHub]:
    server = ThreadingHTTPServer((LOOPBACK, 0), _SlowHandler)
    server.daemon_threads = True
    owner = SlowHub(delay, port=int(server.server_address[1]))
    server.owner = owner  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield owner
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def hanging_hub() -> Iterator[str]:
    """A hub that accepts connections and reads, but never answers."""
    listener = socket.create_server((LOOPBACK, 0))
    listener.settimeout(0.05)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(5)
        for connection in held:
            connection.close()
        listener.close()


# --- what is sent -----------------------------------------------------------------------


def test_frames_are_posted_as_jpeg_with_the_token_to_the_device_stream(
    hub: CaptureServer,
) -> None:
    output = stream(f"{hub.url}/vigil/")
    write(output, 5)
    [request] = hub.wait_for_requests(1, timeout=WAIT)
    output.close()

    assert (request.method, request.path) == ("POST", "/vigil/api/streams/desk-1")
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "image/jpeg"
    assert request.body[:2] == b"\xff\xd8"
    assert number_in(request.body) == 5
    assert output.stats.sent == 1


@pytest.mark.parametrize(
    ("size", "max_side", "expected"),
    [
        ((1920, 1080), 320, (320, 180)),
        ((1080, 1920), 320, (180, 320)),
        ((640, 480), 960, (640, 480)),
        ((768, 432), 768, (768, 432)),
    ],
)
def test_frames_are_downscaled_to_max_side(
    hub: CaptureServer, size: tuple[int, int], max_side: int, expected: tuple[int, int]
) -> None:
    output = stream(hub.url, max_side=max_side)
    write(output, 3, width=size[0], height=size[1])
    [request] = hub.wait_for_requests(1, timeout=WAIT)
    output.close()
    image = cv2.imdecode(np.frombuffer(request.body, np.uint8), cv2.IMREAD_COLOR)
    assert (image.shape[1], image.shape[0]) == expected
    assert number_in(request.body) == 3


def test_jpeg_size_follows_quality_and_max_side() -> None:
    rng = np.random.default_rng(3)
    photo = cv2.GaussianBlur(rng.integers(0, 256, (1080, 1920, 3), np.uint8), (9, 9), 0)
    sizes = {
        (quality, side): len(encode_jpeg(photo, quality, side))
        for quality in (30, 90)
        for side in (320, 1920)
    }
    assert sizes[(30, 320)] < sizes[(90, 320)] < sizes[(90, 1920)]
    assert sizes[(30, 320)] < sizes[(30, 1920)]
    assert sizes[(90, 320)] < 60_000  # a live frame stays far below the hub's 2 MB limit


def test_at_most_fps_frames_a_second_are_handed_over(hub: CaptureServer) -> None:
    output = stream(hub.url, fps=5)
    written: list[float] = []
    started = time.monotonic()
    while time.monotonic() - started < 1.5:
        written.append(time.monotonic())
        write(output, len(written) - 1)
        time.sleep(0.01)
    elapsed = time.monotonic() - started
    handed = output.stats.handed
    assert wait_until(lambda: len(hub.requests) >= output.stats.sent, timeout=WAIT)
    output.close()

    assert 5 * elapsed - 2 <= handed <= 5 * elapsed + 1
    received = [number_in(r.body) for r in hub.requests]
    assert received == sorted(set(received))
    times = [written[number] for number in received]
    in_any_second = max(sum(1 for t in times if first <= t < first + 1.0) for first in times)
    assert in_any_second <= 6


def test_only_the_newest_frame_waits_while_a_post_is_in_flight() -> None:
    with slow_hub(delay=0.5) as hub:
        output = stream(hub.url)
        write(output, 0)
        assert len(hub.wait_for(1)) == 1  # frame 0 is in flight for 0.5 s
        for number in range(1, 10):
            write(output, number)
            time.sleep(0.002)
        bodies = hub.wait_for(2)
        time.sleep(0.7)  # long enough for a third post, if anything else had been queued
        output.close()
        bodies = hub.wait_for(2)

    assert [number_in(body) for body in bodies] == [0, 9]
    assert (output.stats.handed, output.stats.replaced, output.stats.sent) == (10, 8, 2)


# --- never in the pipeline's way --------------------------------------------------------


def frame_times(url: str | None, frames: int = 150) -> tuple[list[float], list[float]]:
    """Per-frame time of a pipeline at ~100 frames a second with a stream to ``url`` (or none),
    and the time each frame spent in the stream's ``write``."""
    output = stream(url, fps=30, timeout_seconds=3.0) if url else None
    per_frame, in_write = [], []
    for number in range(frames):
        started = time.perf_counter()
        time.sleep(0.005)  # the stages
        if output is not None:
            in_write.append(write(output, number, width=640, height=480))
        per_frame.append(time.perf_counter() - started)
    if output is not None:
        output.close()
    return per_frame, in_write


def test_a_hanging_hub_does_not_slow_the_pipeline(hub: CaptureServer) -> None:
    without, _ = frame_times(None)
    answering, _ = frame_times(hub.url)
    with hanging_hub() as url:
        closing = time.perf_counter()
        hanging, in_write = frame_times(url)
        closed_after = time.perf_counter() - closing - sum(hanging)

    median = {
        name: statistics.median(times) * 1000
        for name, times in (("without", without), ("answering", answering), ("hanging", hanging))
    }
    slowest = max(in_write) * 1000
    print(f"median ms per frame: {median}; slowest write with a hanging hub {slowest:.1f} ms")
    assert len(hub.requests) >= 5
    assert median["hanging"] < median["without"] + 1.5
    assert median["hanging"] < median["answering"] + 1.5
    assert slowest < 250  # no frame waits for the network (a post hangs for 3 s)
    assert closed_after < 1.5  # close waits a bounded moment for the post in flight


# --- a hub that goes away and comes back ------------------------------------------------


def test_an_unreachable_hub_is_logged_once_and_its_return_once(logs: LogLines) -> None:
    port = free_port()
    output = stream(f"http://{LOOPBACK}:{port}", fps=20)
    number = 0

    def run_for(seconds: float) -> None:
        nonlocal number
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            write(output, number)
            number += 1
            time.sleep(0.01)

    run_for(0.6)
    failed = output.stats.failed
    with http_capture_server(port) as hub:
        run_for(0.6)
        assert wait_until(lambda: output.stats.sent >= 3, timeout=WAIT)
        output.close()

    assert failed >= 3
    [warning] = logs.at(logging.WARNING)
    assert warning.startswith(f"live stream: cannot reach the hub at http://{LOOPBACK}:{port}")
    assert [line for line in logs.at(logging.INFO) if "takes frames again" in line] == [
        f"live stream: the hub at http://{LOOPBACK}:{port} takes frames again"
    ]
    assert len(hub.requests) == output.stats.sent
    assert TOKEN not in "\n".join(r.getMessage() for r in logs.records)


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_turns_the_stream_off_for_the_run(
    hub: CaptureServer, logs: LogLines, status: int
) -> None:
    hub.default_status = status
    output = stream(hub.url, fps=50)
    for number in range(10):
        write(output, number)
        time.sleep(0.03)
    output.close()

    assert len(hub.requests) == 1
    assert logs.at(logging.WARNING) == []
    [line] = logs.at(logging.INFO)
    assert f"refused the device token (HTTP {status})" in line
    assert TOKEN not in line


def test_an_error_answer_counts_as_a_failure(hub: CaptureServer, logs: LogLines) -> None:
    hub.respond_with(413)
    output = stream(hub.url)
    write(output, 1)
    assert wait_until(lambda: output.stats.failed == 1, timeout=WAIT)
    time.sleep(0.01)
    write(output, 2)
    assert wait_until(lambda: output.stats.sent == 1, timeout=WAIT)
    output.close()
    [warning] = logs.at(logging.WARNING)
    assert "(HTTP 413" in warning


# --- building ---------------------------------------------------------------------------


def test_building_does_nothing_until_the_first_frame(hub: CaptureServer) -> None:
    config = HubConfig(url=hub.url, token=TOKEN, stream_fps=2, stream_max_side=320)
    output = StreamOutput.from_config(config, DEVICE, plain)
    assert (output.interval, output.max_side, output.quality) == (0.5, 320, 75)
    assert not _stream_threads()
    output.close()  # closing what never started is fine
    assert hub.requests == []
    assert TOKEN not in repr(output)


@pytest.mark.parametrize(
    ("url", "fps", "message"),
    [
        ("ftp://hub.local", 5.0, "not an http:// or https:// URL"),
        ("http://hub.local:8600", 0.0, "fps > 0"),
    ],
)
def test_bad_settings_are_config_errors(url: str, fps: float, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        StreamOutput(url, TOKEN, DEVICE, plain, fps=fps)
