"""Live sources against a real MJPEG-over-HTTP server on loopback, read by OpenCV's FFmpeg."""

from __future__ import annotations

import logging
import threading
import time
import tracemalloc
from collections.abc import Callable
from itertools import islice
from typing import Any

import numpy as np
import pytest

from vigil.errors import SourceError
from vigil.sources import LiveSource, SourceConfig, open_source

pytestmark = pytest.mark.timeout(60)

ServerFactory = Callable[..., Any]
ReadNumber = Callable[[np.ndarray], int]

FAST_RETRIES = SourceConfig(
    reconnect_attempts=2,
    reconnect_initial_seconds=0.05,
    reconnect_max_seconds=0.1,
    open_timeout_seconds=2,
    read_timeout_seconds=2,
)


def test_reads_an_http_mjpeg_stream(mjpeg_server: ServerFactory, read_number: ReadNumber) -> None:
    server = mjpeg_server(fps=50)
    source = open_source(server.url(), FAST_RETRIES)
    before = time.time()
    with source:
        frames = list(islice(source, 5))
    after = time.time()
    numbers = [read_number(f.image) for f in frames]
    assert numbers == sorted(set(numbers))
    assert [f.index for f in frames] == sorted(set(f.index for f in frames))
    assert all(f.image.shape == (120, 160, 3) for f in frames)
    assert all(before <= f.timestamp <= after for f in frames)
    assert source.live and not source.stills
    assert source.stats.frames_delivered == 5


def test_slow_consumer_gets_the_newest_frame_without_a_backlog(
    mjpeg_server: ServerFactory, read_number: ReadNumber
) -> None:
    server = mjpeg_server(fps=100, size=(640, 480))
    source = open_source(server.url(), FAST_RETRIES)
    numbers = []
    tracemalloc.start()
    try:
        with source:
            frames = iter(source)
            numbers.append(read_number(next(frames).image))
            baseline = tracemalloc.get_traced_memory()[0]
            for frame in islice(frames, 8):
                numbers.append(read_number(frame.image))
                time.sleep(0.1)  # a slow pipeline: about 10 frames arrive meanwhile
            grown = tracemalloc.get_traced_memory()[0] - baseline
    finally:
        tracemalloc.stop()
    gaps = np.diff(numbers)
    assert (gaps > 0).all(), numbers
    assert (gaps > 1).sum() >= 4, numbers
    assert source.stats.frames_dropped >= 10
    assert source.stats.frames_read >= source.stats.frames_delivered + source.stats.frames_dropped
    frame_bytes = 640 * 480 * 3
    assert grown < 8 * frame_bytes  # a backlog of the dropped frames would be 10 times that


def test_max_fps_caps_the_rate(mjpeg_server: ServerFactory) -> None:
    server = mjpeg_server(fps=60)
    config = FAST_RETRIES.model_copy(update={"max_fps": 5.0})
    with open_source(server.url(), config) as source:
        frames = list(islice(source, 4))
    steps = np.diff([f.timestamp for f in frames])
    assert (steps >= 0.1).all(), steps  # unthrottled, they would be 1/60 s apart
    assert (steps < 0.6).all(), steps


def test_reconnects_when_the_stream_ends(
    mjpeg_server: ServerFactory, read_number: ReadNumber, caplog: pytest.LogCaptureFixture
) -> None:
    server = mjpeg_server(fps=50, frames_per_connection=5)
    with (
        caplog.at_level(logging.INFO, logger="vigil.sources"),
        open_source(server.url(), FAST_RETRIES) as source,
    ):
        numbers = [read_number(f.image) for f in islice(source, 12)]
    assert numbers == sorted(set(numbers))
    assert source.stats.reconnects >= 2
    assert server.connections >= 3
    assert any("stopped delivering frames; retry 1 of 2" in r.getMessage() for r in caplog.records)


def test_silent_stream_times_out_and_reconnects(
    mjpeg_server: ServerFactory, read_number: ReadNumber
) -> None:
    server = mjpeg_server(fps=50, frames_per_connection=3, stall=True)
    config = FAST_RETRIES.model_copy(update={"read_timeout_seconds": 0.5})
    started = time.monotonic()
    with open_source(server.url(), config) as source:
        numbers = [read_number(f.image) for f in islice(source, 5)]
    assert numbers == sorted(set(numbers))
    assert max(numbers) >= 3  # frames of a second connection
    assert source.stats.reconnects >= 1
    assert time.monotonic() - started < 5


def test_server_gone_raises_after_the_retries(
    mjpeg_server: ServerFactory, caplog: pytest.LogCaptureFixture
) -> None:
    server = mjpeg_server(fps=50)
    url = server.url("viewer:s3cret")
    source = open_source(url, FAST_RETRIES)
    received = 0
    with caplog.at_level(logging.WARNING, logger="vigil.sources"), source:
        frames = iter(source)
        for _ in islice(frames, 3):
            received += 1
        server.stop()
        stopped = time.monotonic()
        with pytest.raises(SourceError) as raised:
            for _ in islice(frames, 10_000):
                received += 1
        waited = time.monotonic() - stopped
    message = str(raised.value)
    shown = f"http://viewer:***@127.0.0.1:{server.port}/stream.mjpg"
    assert message.startswith(
        f"stream {shown} stopped delivering frames and did not come back after 2 reconnect "
        "attempts over "
    )
    assert waited < 5
    assert received >= 3
    retries = [r.getMessage() for r in caplog.records if "retry" in r.getMessage()]
    assert len(retries) == 2
    assert all("s3cret" not in text for text in [message, *retries])
    assert source.stats.reconnects == 0


def test_stream_that_cannot_be_opened(mjpeg_server: ServerFactory) -> None:
    server = mjpeg_server()
    url = server.url("admin:pw")
    server.stop()  # the port is closed now
    source = open_source(url, FAST_RETRIES)
    started = time.monotonic()
    with pytest.raises(SourceError, match=r"^cannot open stream http://admin:\*\*\*@127") as raised:
        source.open()
    assert "after 3 attempts" in str(raised.value)
    assert time.monotonic() - started < 5


def test_missing_camera_index(caplog: pytest.LogCaptureFixture) -> None:
    source = open_source("97", FAST_RETRIES)
    started = time.monotonic()
    with (
        caplog.at_level(logging.WARNING, logger="vigil.sources"),
        pytest.raises(SourceError) as raised,
    ):
        list(source)
    message = str(raised.value)
    assert message.startswith("cannot open camera 97 after 3 attempts over ")
    assert message.endswith("check that the camera is connected and not in use by another program")
    assert time.monotonic() - started < 5
    assert [r.getMessage() for r in caplog.records] == [
        "camera 97 could not be opened; retry 1 of 2 in 0.05 s",
        "camera 97 could not be opened; retry 2 of 2 in 0.1 s",
    ]


def test_close_stops_the_reader_and_ends_iteration(mjpeg_server: ServerFactory) -> None:
    server = mjpeg_server(fps=50)
    source = LiveSource(server.url(), FAST_RETRIES)
    source.open()
    readers_before = {t.name for t in threading.enumerate() if t.name.startswith("vigil-source")}
    assert readers_before == {f"vigil-source-{source.source_id}"}
    frames = iter(source)
    next(frames)
    started = time.monotonic()
    source.close()
    assert time.monotonic() - started < 3
    assert list(islice(frames, 100)) == []
    assert not [t for t in threading.enumerate() if t.name.startswith("vigil-source")]
    source.close()  # twice is fine
