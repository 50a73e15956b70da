"""Stopping ``vigil run posture`` on a live camera stream loses nothing that was processed.

SIGTERM and Ctrl-C (SIGINT) finish the current frame, record the second in progress, close the
video and the JSON lines, and exit 0. A kill -9 cannot flush, but leaves a sound database with
every second up to the one before the kill.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.support import (
    Spawner,
    db_records,
    frames_per_second,
    integrity,
    read_jsonl,
    sqlite_url,
    video_info,
    wait_for_seconds,
    write_yaml,
)
from tests.services import mjpeg_stream

pytestmark = pytest.mark.timeout(120)

STOP_SECONDS = 5.0
"""How soon a stopped run must have exited."""


@pytest.mark.parametrize("number", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_stop_signal_keeps_every_frame_and_second(
    spawn: Spawner, tmp_path: Path, number: signal.Signals
) -> None:
    database, jsonl, video = tmp_path / "vigil.db", tmp_path / "frames.jsonl", tmp_path / "a.mp4"
    with mjpeg_stream(fps=25) as camera:
        run = spawn(
            "run", "posture", "--source", camera.url(), "--database", sqlite_url(database),
            "--jsonl", jsonl, "--save", video,
        )  # fmt: skip
        wait_for_seconds(jsonl, 3, run)
        sent = run.send(number)
        result = run.wait(timeout=30)
        took = time.monotonic() - sent
    assert result.status == 0, result.stderr
    assert took < STOP_SECONDS
    assert "Traceback" not in result.stderr
    assert f"stopped by {number.name}" in result.stdout
    assert jsonl.read_text(encoding="utf-8").endswith("}\n"), "the last JSON line is cut"
    lines = read_jsonl(jsonl)
    per_second = frames_per_second(lines)
    records = db_records(database)
    assert {r["ts"]: r["fps"] for r in records} == dict(per_second)
    assert records[-1]["ts"] == max(per_second), "the last second was not recorded"
    saved = video_info(video)
    assert (saved.codec, saved.frames) == ("h264", len(lines))


def test_a_stop_signal_ends_a_run_whose_camera_froze(spawn: Spawner, tmp_path: Path) -> None:
    """A camera that stops sending without closing the connection must not hold up a stop."""
    database, jsonl = tmp_path / "vigil.db", tmp_path / "frames.jsonl"
    config = write_yaml(tmp_path / "vigil.yaml", {"source": {"read_timeout_seconds": 60}})
    with mjpeg_stream(fps=25, frames_per_connection=40, stall=True) as camera:
        run = spawn(
            "run", "posture", "--source", camera.url(), "--config", config,
            "--database", sqlite_url(database), "--jsonl", jsonl,
        )  # fmt: skip
        wait_for_seconds(jsonl, 1, run)
        frozen = wait_until_frozen(jsonl)
        sent = run.send(signal.SIGTERM)
        result = run.wait(timeout=90)
        took = time.monotonic() - sent
    assert result.status == 0, result.stderr
    assert took < STOP_SECONDS, result.stderr
    assert "stopped by SIGTERM" in result.stdout
    records = db_records(database)
    assert {r["ts"]: r["fps"] for r in records} == dict(frames_per_second(frozen))


def wait_until_frozen(
    jsonl: Path, quiet_seconds: float = 1.5, timeout: float = 30
) -> list[dict[str, Any]]:
    """Wait until no frame was written for ``quiet_seconds``; return the lines."""
    deadline = time.monotonic() + timeout
    count, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        lines = read_jsonl(jsonl)
        if len(lines) != count:
            count, since = len(lines), time.monotonic()
        elif time.monotonic() - since >= quiet_seconds:
            return lines
        time.sleep(0.1)
    pytest.fail("the stream never froze")


def test_a_killed_run_leaves_a_sound_database(spawn: Spawner, tmp_path: Path) -> None:
    database, jsonl = tmp_path / "vigil.db", tmp_path / "frames.jsonl"
    with mjpeg_stream(fps=25) as camera:
        run = spawn(
            "run", "posture", "--source", camera.url(), "--database", sqlite_url(database),
            "--jsonl", jsonl,
        )  # fmt: skip
        wait_for_seconds(jsonl, 4, run)
        result = run.wait_after(signal.SIGKILL, timeout=10)
    assert result.status == -signal.SIGKILL
    assert integrity(database) == "ok"
    per_second = frames_per_second(read_jsonl(jsonl))
    records = db_records(database)
    stamps = [r["ts"] for r in records]
    assert stamps == [min(per_second) + i for i in range(len(stamps))]
    last = max(per_second)  # the second of the last frame processed before the kill
    assert last - 2 <= stamps[-1] <= last - 1
    assert all(r["fps"] == per_second[r["ts"]] for r in records), "a stored second is partial"
