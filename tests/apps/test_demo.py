"""``vigil demo``: the whole posture pipeline on bundled photos, offline."""

from __future__ import annotations

import json
from pathlib import Path

import av
import pytest

from vigil.cli.main import main
from vigil.storage.records import RecordStore

pytest.importorskip("skimage", reason="the demo's photos come with vigil[demo]")
pytest.importorskip("mediapipe", reason="the demo's pose model comes with vigil[demo]")


def test_the_demo_writes_video_records_reminders_and_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    for name in ("posture-demo.mp4", "posture-demo.jsonl", "posture-report.html"):
        assert str(tmp_path / name) in printed

    with av.open(str(tmp_path / "posture-demo.mp4")) as video:
        stream = video.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.width, stream.height) == (640, 480)
        assert sum(1 for _ in video.decode(video=0)) == 300

    lines = [
        json.loads(line) for line in (tmp_path / "posture-demo.jsonl").read_text().splitlines()
    ]
    assert len(lines) == 300
    states = {(line["person"], line["state"], line["hunched"]) for line in lines}
    assert (False, "unknown", False) in states  # the empty table
    assert (True, "sitting", False) in states  # the astronaut, legs out of view
    assert (True, "standing", True) in states  # the photographer bent over his camera

    home = Path(printed.split("records database: sqlite:///", 1)[1].split(" ", 1)[0]).parent
    store = RecordStore(f"sqlite:///{home / 'vigil.db'}")
    records = store.posture_records(device_id="demo")
    reminders = {e["data"]["reason"] for e in store.events(device_id="demo", kind="reminder")}
    store.close()
    assert 29 <= len(records) <= 31
    assert reminders == {"sitting", "hunching"}
    assert len(list((tmp_path / "records").glob("*.csv"))) >= 6
    report = (tmp_path / "posture-report.html").read_text()
    assert "demo" in report and "data:image/png;base64," in report
