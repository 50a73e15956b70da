"""Running the real ``vigil`` command and reading back what it wrote.

In-process runs call :func:`vigil.cli.main.main` and capture what it prints; runs that get a
signal, a kill or a broker outage start ``python -m vigil.cli.main`` with its output in files.
Results are read back with the standard library (``sqlite3``, ``json``, ``csv``) and PyAV, not
through Vigil's own readers, so a reader bug cannot hide a writer bug.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli import CliResult

CLIP = Path("people_video") / "intel_one-by-one-person-detection.mp4"
"""A real clip of people walking in and out of view (768x432, 10 fps, 1394 frames)."""

PHOTOS = Path("posture_side")
"""Real photos of a person on a chair, seen from the side, with ``labels.csv``."""

PROCESS_START_SECONDS = 60.0  # importing, loading the pose model and opening the source


def vigil_command(*args: object) -> list[str]:
    """The command line that starts ``vigil ARGS...`` with this interpreter."""
    return [sys.executable, "-m", "vigil.cli.main", *(str(arg) for arg in args)]


class VigilProcess:
    """``vigil`` running as a process, its output going to files in ``folder``."""

    def __init__(self, args: list[object], folder: Path, env: dict[str, str] | None = None) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.stdout_path = folder / "vigil.stdout"
        self.stderr_path = folder / "vigil.stderr"
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                vigil_command(*args),
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                cwd=folder,
                env=env if env is not None else dict(os.environ),
            )

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def send(self, number: int) -> float:
        """Send signal ``number``; return the monotonic time it was sent."""
        self.process.send_signal(number)
        return time.monotonic()

    def wait_after(self, number: int, timeout: float) -> CliResult:
        """Send signal ``number`` and wait for the exit."""
        self.send(number)
        return self.wait(timeout)

    def wait(self, timeout: float) -> CliResult:
        """Wait for the exit (killing the process if it takes longer); return what it did."""
        try:
            status = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
            pytest.fail(f"vigil did not exit within {timeout} s:\n{self.stderr()}")
        return CliResult(status, self.stdout(), self.stderr())

    def stop(self) -> None:
        """Kill the process if it still runs (test cleanup)."""
        if self.running:
            self.process.kill()
            self.process.wait(timeout=10)

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")


Spawner = Callable[..., VigilProcess]
"""Starts ``vigil ARGS...`` as a process (the ``spawn`` fixture)."""


def run_process(args: list[object], folder: Path, env: dict[str, str], timeout: float) -> CliResult:
    """Run ``vigil ARGS...`` as a process to the end."""
    return VigilProcess(args, folder, env).wait(timeout)


def write_yaml(path: Path, data: dict[str, Any]) -> Path:
    """Write a config file."""
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def sqlite_url(path: Path) -> str:
    return f"sqlite:///{path}"


def _query(database: Path, sql: str, parameters: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    connection.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in connection.execute(sql, parameters)]
    finally:
        connection.close()


def db_records(database: Path, device_id: str | None = None) -> list[dict[str, Any]]:
    """Posture records of the database, in time order."""
    where, parameters = ("WHERE device_id = ?", (device_id,)) if device_id else ("", ())
    return _query(database, f"SELECT * FROM posture_records {where} ORDER BY ts, id", parameters)


def db_events(database: Path, kind: str) -> list[dict[str, Any]]:
    """Events of one kind, in time order, with their data decoded."""
    rows = _query(database, "SELECT * FROM events WHERE kind = ? ORDER BY ts, id", (kind,))
    return [row | {"data": json.loads(row["data"])} for row in rows]


def record_columns(database: Path) -> list[str]:
    """The columns of a posture record as the table defines them (without the row id)."""
    table = _query(database, "PRAGMA table_info(posture_records)")
    return [column["name"] for column in table if column["name"] != "id"]


def integrity(database: Path) -> str:
    return str(_query(database, "PRAGMA integrity_check")[0]["integrity_check"])


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every line of a JSON-lines file; a last line without its newline is left out."""
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    complete = text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in complete.splitlines()]


def second_of(line: dict[str, Any]) -> float:
    """The whole second of frame time that a JSON line's frame belongs to.

    Read from ``time``, which is cut to milliseconds, rather than ``timestamp``, which is
    rounded: a frame at 0.9996 s into a second is rounded up into the next one.
    """
    return float(math.floor(datetime.fromisoformat(line["time"]).timestamp()))


def frames_per_second(lines: list[dict[str, Any]]) -> Counter[float]:
    """How many JSON lines (frames) fall in each whole second of frame time."""
    return Counter(second_of(line) for line in lines)


def wait_for_seconds(path: Path, seconds: int, process: VigilProcess) -> list[dict[str, Any]]:
    """Wait until the JSON lines of a running process span ``seconds`` whole seconds."""
    deadline = time.monotonic() + PROCESS_START_SECONDS
    while time.monotonic() < deadline:
        lines = read_jsonl(path)
        if len(frames_per_second(lines)) > seconds:
            return lines
        if not process.running:
            pytest.fail(f"vigil ended early:\n{process.stderr()}")
        time.sleep(0.1)
    pytest.fail(f"vigil wrote no {seconds} s of frames in time:\n{process.stderr()}")


@dataclass(frozen=True)
class VideoInfo:
    """A video file as PyAV decodes it."""

    codec: str
    frames: int
    width: int
    height: int
    duration: float
    fps: float


def video_info(path: Path) -> VideoInfo:
    """Open ``path`` with PyAV and decode every frame."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        duration = float(container.duration or 0) / 1_000_000
        rate = float(stream.average_rate or 0)
        return VideoInfo(
            stream.codec_context.name, frames, stream.width, stream.height, duration, rate
        )
