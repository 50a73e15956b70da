"""Bad input to ``vigil``: one ``vigil: error:`` line, a non-zero status, never a traceback.

Status 2 means the command line or the config is wrong; status 1 means the work failed
(a file that is not what it claims, a camera that is not there, a stream that went away).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.cli import VigilRunner
from tests.e2e.support import (
    CLIP,
    db_records,
    frames_per_second,
    read_jsonl,
    sqlite_url,
    video_info,
    write_yaml,
)
from tests.services import MjpegServer, mjpeg_stream

FAST_RECONNECTS = {
    "reconnect_attempts": 2,
    "reconnect_initial_seconds": 0.2,
    "reconnect_max_seconds": 0.4,
    "open_timeout_seconds": 2,
    "read_timeout_seconds": 2,
}


@dataclass(frozen=True)
class Inputs:
    """Files a user might pass by mistake, and one good photo, all in ``folder``."""

    folder: Path
    photo: Path


@pytest.fixture
def inputs(tmp_path: Path) -> Inputs:
    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), np.full((64, 48, 3), 128, np.uint8))
    (tmp_path / "notes.mp4").write_text("not a video\n")
    (tmp_path / "notes.jpg").write_text("not a photo\n")
    (tmp_path / "empty").mkdir()
    fast = {"reconnect_initial_seconds": 0.1, "reconnect_max_seconds": 0.1}
    write_yaml(tmp_path / "camera.yaml", {"source": {"reconnect_attempts": 1, **fast}})
    (tmp_path / "syntax.yaml").write_text(
        "device_id: desk\nreminders:\n  sitting_minutes: 10\n hunching_minutes: 5\n"
    )
    (tmp_path / "misspelt.yaml").write_text("device_id: desk\nreminders: {sitting_minuts: 10}\n")
    (tmp_path / "range.yaml").write_text("device_id: desk\nreminders:\n  sitting_minutes: -5\n")
    return Inputs(tmp_path, photo)


Case = Callable[[Inputs], list[object]]

CASES: list[tuple[str, Case, int, str]] = [
    (
        "missing file",
        lambda i: ["run", "posture", "--source", i.folder / "missing.mp4"],
        1,
        r"^no such file or folder: .*missing\.mp4$",
    ),
    (
        "text file named .mp4",
        lambda i: ["run", "posture", "--source", i.folder / "notes.mp4"],
        1,
        r"^cannot read video .*notes\.mp4: not a video",
    ),
    (
        "text file named .jpg",
        lambda i: ["run", "posture", "--source", i.folder / "notes.jpg"],
        1,
        r"^not an image or cannot be decoded: .*notes\.jpg$",
    ),
    (
        "empty folder",
        lambda i: ["run", "posture", "--source", i.folder / "empty"],
        1,
        r"^no images in folder .*empty",
    ),
    (
        "camera that does not exist",
        lambda i: ["run", "posture", "--source", "7", "--config", i.folder / "camera.yaml"],
        1,
        r"^cannot open camera 7 after 2 attempts",
    ),
    (
        "YAML syntax error",
        lambda i: ["run", "posture", "--source", i.photo, "--config", i.folder / "syntax.yaml"],
        2,
        r"syntax\.yaml line 4: not valid YAML",
    ),
    (
        "misspelt key",
        lambda i: ["run", "posture", "--source", i.photo, "--config", i.folder / "misspelt.yaml"],
        2,
        r"misspelt\.yaml line 2: unknown field 'reminders\.sitting_minuts'; "
        r"did you mean 'sitting_minutes'\?$",
    ),
    (
        "value out of range",
        lambda i: ["run", "posture", "--source", i.photo, "--config", i.folder / "range.yaml"],
        2,
        r"range\.yaml line 3: 'reminders\.sitting_minutes': .*greater than 0",
    ),
    (
        "config check of a misspelt key",
        lambda i: ["config", "check", "posture", i.folder / "misspelt.yaml"],
        2,
        r"did you mean 'sitting_minutes'\?$",
    ),
    (
        "unknown app",
        lambda i: ["run", "postur", "--source", i.photo],
        2,
        r"'postur' is not 'posture'.*vigil run --help",
    ),
    (
        "--show without a display",
        lambda i: ["run", "posture", "--source", i.photo, "--show"],
        2,
        r"^--show needs a display",
    ),
    (
        "--save with a name that is not a video",
        lambda i: ["run", "posture", "--source", i.photo, "--save", i.folder / "out.xyz"],
        2,
        r"'--save'.*out\.xyz is not a video name",
    ),
    (
        "bad MQTT URL",
        lambda i: ["run", "posture", "--source", i.photo, "--mqtt", "http://broker.local"],
        2,
        r"sinks\.mqtt\.url.*must start with mqtt:// or mqtts://",
    ),
    (
        "bad database URL",
        lambda i: ["run", "posture", "--source", i.photo, "--database", "nodb://somewhere"],
        2,
        r"^not a database URL: 'nodb://somewhere'",
    ),
    (
        "report with a bad --since",
        lambda i: ["report", "posture", "--since", "yesterdayish", "--out", i.folder / "r.html"],
        2,
        r"^--since 'yesterdayish' is not a time",
    ),
]


@pytest.fixture
def no_display(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine without a screen, like a server or a container."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [pytest.param(args, status, message, id=name) for name, args, status, message in CASES],
)
@pytest.mark.usefixtures("no_display")
def test_bad_input_gives_one_clear_line(
    vigil: VigilRunner, inputs: Inputs, args: Case, status: int, message: str
) -> None:
    result = vigil(*args(inputs))
    error = result.single_error()
    assert result.status == status, result.stderr
    assert re.search(message, error), error
    assert result.stdout == ""


def test_a_bad_save_name_is_refused_before_anything_is_written(
    vigil: VigilRunner, inputs: Inputs, vigil_home: Path
) -> None:
    database = inputs.folder / "vigil.db"
    result = vigil(
        "run", "posture", "--source", inputs.photo, "--save", inputs.folder / "out.xyz",
        "--database", sqlite_url(database),
    )  # fmt: skip
    assert result.status == 2
    assert not database.exists()
    assert not (inputs.folder / "out.xyz").exists()


def test_a_truncated_video_is_processed_as_far_as_it_decodes(
    vigil: VigilRunner, shared_data: Path, tmp_path: Path
) -> None:
    clip = shared_data / CLIP
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(clip.read_bytes()[:300_000])
    jsonl, database = tmp_path / "frames.jsonl", tmp_path / "vigil.db"
    result = vigil(
        "run", "posture", "--source", cut, "--jsonl", jsonl, "--database", sqlite_url(database)
    )
    assert result.status == 0, result.stderr
    assert result.error_lines == [] and "Traceback" not in result.stderr
    lines = read_jsonl(jsonl)
    whole = video_info(clip).frames
    assert 0 < len(lines) < whole
    warning = f"vigil: warning: video {cut} ended early: read {len(lines)} of the {whole} frames"
    assert warning in result.stderr
    assert f"processed {len(lines)} frames" in result.stdout
    assert [r["ts"] for r in db_records(database)] == sorted(frames_per_second(lines))


def test_a_video_cut_before_its_first_frame_fails_clearly(
    vigil: VigilRunner, shared_data: Path, tmp_path: Path
) -> None:
    cut = tmp_path / "cut.mp4"
    cut.write_bytes((shared_data / CLIP).read_bytes()[:3_000])
    result = vigil("run", "posture", "--source", cut)
    assert result.status == 1
    assert result.single_error().startswith(f"cannot read video {cut}")


def test_a_stream_that_goes_away_is_retried_then_fails_keeping_its_records(
    vigil: VigilRunner, tmp_path: Path
) -> None:
    config = write_yaml(tmp_path / "vigil.yaml", {"source": FAST_RECONNECTS})
    jsonl, database = tmp_path / "frames.jsonl", tmp_path / "vigil.db"
    with mjpeg_stream(fps=25) as camera:
        unplug = threading.Thread(target=unplug_after_frames, args=(camera, jsonl), daemon=True)
        unplug.start()
        result = vigil(
            "run", "posture", "--source", camera.url(), "--config", config,
            "--jsonl", jsonl, "--database", sqlite_url(database),
        )  # fmt: skip
        unplug.join(timeout=5)
    assert result.status == 1
    error = result.single_error()
    assert re.match(
        rf"stream {re.escape(camera.url())} stopped delivering frames and did not come back "
        r"after 2 reconnect attempts",
        error,
    ), error
    retry = r"stopped delivering frames; retry \d of 2 in ([\d.]+) s"
    delays = [float(delay) for delay in re.findall(retry, result.stderr)]
    assert delays == [0.2, 0.4], result.stderr
    per_second = frames_per_second(read_jsonl(jsonl))
    assert len(per_second) >= 2
    records = db_records(database)
    assert {r["ts"]: r["fps"] for r in records} == dict(per_second)


def unplug_after_frames(camera: MjpegServer, jsonl: Path, seconds: int = 2) -> None:
    """Stop the camera once the run has processed frames of ``seconds`` whole seconds."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(frames_per_second(read_jsonl(jsonl))) <= seconds:
        time.sleep(0.1)
    camera.stop()
