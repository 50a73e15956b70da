from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path

import numpy as np
import pytest

from vigil.errors import SourceError
from vigil.sources import SourceConfig, VideoFileSource, open_source

VideoWriter = Callable[..., Path]
START = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
RED_BGR = (0, 0, 255)
BLUE_BGR = (255, 0, 0)


def test_reads_every_frame_in_order(
    numbered_video: VideoWriter, read_number: Callable[[np.ndarray], int]
) -> None:
    source = open_source(str(numbered_video(count=12, fps=5.0)))
    with source:
        frames = list(source)
        assert source.fps == 5.0
    assert [f.index for f in frames] == list(range(12))
    assert [read_number(f.image) for f in frames] == list(range(12))
    assert all(f.image.shape == (120, 160, 3) and f.path is None for f in frames)
    assert (source.stats.frames_read, source.stats.frames_delivered) == (12, 12)


def test_frames_are_rgb(numbered_video: VideoWriter) -> None:
    path = numbered_video(count=4, colours={1: RED_BGR, 2: BLUE_BGR})
    frames = list(open_source(str(path)))
    red, blue = frames[1].image, frames[2].image
    assert np.abs(red.reshape(-1, 3).mean(0) - (255, 0, 0)).max() < 8
    assert np.abs(blue.reshape(-1, 3).mean(0) - (0, 0, 255)).max() < 8


def test_timestamps_are_start_time_plus_video_time(numbered_video: VideoWriter) -> None:
    config = SourceConfig(start_time=START)
    frames = list(open_source(str(numbered_video(count=10, fps=5.0)), config))
    offsets = [f.timestamp - START.timestamp() for f in frames]
    assert offsets == pytest.approx([i * 0.2 for i in range(10)], abs=1e-3)
    assert {f.source_id for f in frames} == {str(numbered_video(count=1))}


def test_timestamps_start_at_open_without_start_time(numbered_video: VideoWriter) -> None:
    source = open_source(str(numbered_video(count=3, fps=10.0)))
    before = time.time()
    frames = list(source)
    after = time.time()
    assert before <= frames[0].timestamp <= after
    assert frames[2].timestamp - frames[0].timestamp == pytest.approx(0.2, abs=1e-3)


@pytest.mark.parametrize(
    ("max_fps", "indices"),
    [
        (None, list(range(20))),
        (10.0, list(range(20))),
        (5.0, list(range(0, 20, 2))),
        (3.0, list(range(0, 20, 4))),  # 1/3 s apart at least: every 0.4 s at 10 fps
        (2.5, list(range(0, 20, 4))),
        (0.5, [0]),  # the clip lasts 2 s
    ],
)
def test_max_fps_keeps_frames_apart_in_video_time(
    numbered_video: VideoWriter, max_fps: float | None, indices: list[int]
) -> None:
    config = SourceConfig(max_fps=max_fps, start_time=START)
    source = open_source(str(numbered_video(count=20, fps=10.0)), config)
    frames = list(source)
    assert [f.index for f in frames] == indices
    assert source.stats.frames_read == 20
    assert source.stats.frames_throttled == 20 - len(indices)


def test_loop_replays_with_rising_timestamps(
    numbered_video: VideoWriter, read_number: Callable[[np.ndarray], int]
) -> None:
    config = SourceConfig(loop=True, start_time=START)
    with open_source(str(numbered_video(count=5, fps=5.0)), config) as source:
        frames = list(islice(source, 12))
    assert [f.index for f in frames] == list(range(12))
    assert [read_number(f.image) for f in frames] == [0, 1, 2, 3, 4] * 2 + [0, 1]
    steps = np.diff([f.timestamp for f in frames])
    assert steps == pytest.approx([0.2] * 11, abs=1e-3)


def test_truncated_video_yields_what_decodes_and_warns(
    tmp_path: Path,
    numbered_video: VideoWriter,
    read_number: Callable[[np.ndarray], int],
    caplog: pytest.LogCaptureFixture,
) -> None:
    whole = numbered_video(count=30, fps=10.0, noise_rows=30).read_bytes()
    cut = tmp_path / "cut.avi"
    cut.write_bytes(whole[: len(whole) // 2])
    with caplog.at_level(logging.WARNING, logger="vigil.sources"):
        frames = list(open_source(str(cut)))
    assert 5 < len(frames) < 30
    assert [f.index for f in frames] == list(range(len(frames)))
    assert [read_number(f.image) for f in frames[:-1]] == list(range(len(frames) - 1))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"video {cut} ended early: read {len(frames)} of the 30 frames its container announces "
        "(the file may be truncated)"
    ]


def test_complete_video_does_not_warn(
    numbered_video: VideoWriter, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG, logger="vigil.sources"):
        assert len(list(open_source(str(numbered_video(count=8))))) == 8
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notes.mp4", b"this is a text file, not a video\n"),
        ("empty.avi", b""),
        ("random.mkv", bytes(range(256)) * 64),
    ],
)
def test_unreadable_video_is_one_line_source_error(
    tmp_path: Path, name: str, content: bytes
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    source = open_source(str(path))
    with pytest.raises(SourceError) as raised:
        source.open()
    message = str(raised.value)
    assert str(path) in message
    assert "\n" not in message
    assert message.startswith("cannot read video")


def test_video_source_on_missing_file(tmp_path: Path) -> None:
    source = VideoFileSource(tmp_path / "gone.mp4")
    with pytest.raises(SourceError, match="no such file"):
        list(source)


def test_closing_mid_iteration_stops(numbered_video: VideoWriter) -> None:
    source = open_source(str(numbered_video(count=10)))
    taken = []
    for frame in source:
        taken.append(frame.index)
        if frame.index == 2:
            source.close()
    assert taken == [0, 1, 2]
    with pytest.raises(SourceError, match="is closed"):
        source.open()


def test_real_clip_frame_count_and_subsampling(shared_data: Path) -> None:
    path = shared_data / "people_video" / "intel_one-by-one-person-detection.mp4"
    config = SourceConfig(max_fps=2.5, start_time=START)
    with open_source(str(path), config) as source:
        frames = list(source)
        assert source.fps == 10.0
    assert source.stats.frames_read == 1394
    assert len(frames) == 349
    assert frames[0].image.shape == (432, 768, 3)
    assert np.diff([f.timestamp for f in frames]) == pytest.approx([0.4] * 348, abs=1e-3)
    assert frames[-1].timestamp - START.timestamp() == pytest.approx(139.2, abs=1e-3)


def test_real_clip_cut_short(
    shared_data: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    original = shared_data / "people_video" / "intel_one-by-one-person-detection.mp4"
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(original.read_bytes()[:1_000_000])
    with caplog.at_level(logging.WARNING, logger="vigil.sources"):
        frames = list(open_source(str(cut)))
    assert 100 < len(frames) < 1394
    assert any(f"read {len(frames)} of the 1394 frames" in r.getMessage() for r in caplog.records)


def test_iterating_again_continues_where_it_stopped(
    numbered_video: VideoWriter, caplog: pytest.LogCaptureFixture
) -> None:
    source = open_source(str(numbered_video(count=6)))
    with caplog.at_level(logging.WARNING, logger="vigil.sources"), source:
        first = [f.index for f in islice(source, 2)]
        rest = [f.index for f in source]
        again = list(source)
    assert (first, rest, again) == ([0, 1], [2, 3, 4, 5], [])
    assert caplog.records == []
