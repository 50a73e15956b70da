"""``vigil run posture`` over a whole real clip, then ``vigil report posture`` over its records.

The clip shows people walking in and out of view. One run over all of it writes the records
database, rolled CSV files, JSON lines and an annotated H.264 video; a second run over the first
seconds writes rolled Parquet files for another device into the same database.
"""

from __future__ import annotations

import base64
import csv
import itertools
import math
import os
import re
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.cli import CliResult, VigilRunner
from tests.e2e.support import (
    CLIP,
    VideoInfo,
    db_records,
    frames_per_second,
    read_jsonl,
    record_columns,
    run_process,
    second_of,
    sqlite_url,
    video_info,
    write_yaml,
)

pytestmark = pytest.mark.slow

START = "2026-11-20T09:00:00"
ROLL_SECONDS = 60
PARQUET_FRAMES = 250
PARQUET_ROLL_SECONDS = 10
RUN_TIMEOUT_SECONDS = 240
STATES = {"sitting", "standing", "unknown"}
ANGLES = {"torso", "neck", "thigh", "knee"}


@dataclass(frozen=True)
class ClipRun:
    """One finished ``vigil run posture`` over the clip and where it wrote."""

    result: CliResult
    database: Path
    rolled: Path
    jsonl: Path
    video: Path
    device_id: str


def start_timestamp() -> float:
    """The --start-time as Unix seconds (a naive time is local time)."""
    return datetime.fromisoformat(START).timestamp()


def clip_run(
    folder: Path, clip: Path, device_id: str, roll: dict[str, Any], *extra: str
) -> ClipRun:
    folder.mkdir(parents=True)
    database = folder.parent / "vigil.db"
    rolled = folder / "rolled"
    config = write_yaml(folder / "vigil.yaml", {"records": roll | {"roll_dir": str(rolled)}})
    jsonl, video = folder / "frames.jsonl", folder / "annotated.mp4"
    args: list[object] = ["run", "posture", "--source", clip, "--config", config]
    args += ["--database", sqlite_url(database), "--device-id", device_id, "--start-time", START]
    args += ["--jsonl", jsonl, "--save", video, *extra]
    env = dict(os.environ, VIGIL_HOME=str(folder / "home"))
    result = run_process(args, folder, env, RUN_TIMEOUT_SECONDS)
    return ClipRun(result, database, rolled, jsonl, video, device_id)


@pytest.fixture(scope="module")
def clip(shared_data: Path) -> Path:
    return shared_data / CLIP


@pytest.fixture(scope="module")
def runs_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clip-runs")


@pytest.fixture(scope="module")
def full_run(runs_folder: Path, clip: Path) -> ClipRun:
    """The whole clip, records rolled into a CSV file a minute."""
    roll = {"roll_seconds": ROLL_SECONDS, "roll_format": "csv"}
    return clip_run(runs_folder / "full", clip, "clip", roll)


@pytest.fixture(scope="module")
def parquet_run(runs_folder: Path, clip: Path, full_run: ClipRun) -> ClipRun:
    """The clip's first frames as another device, records rolled into Parquet every 10 s."""
    pytest.importorskip("pyarrow.parquet", reason="Parquet record files need vigil[parquet]")
    roll = {"roll_seconds": PARQUET_ROLL_SECONDS, "roll_format": "parquet"}
    return clip_run(
        runs_folder / "parquet", clip, "clip-pq", roll, "--max-frames", str(PARQUET_FRAMES)
    )


@pytest.fixture(scope="module")
def source(clip: Path) -> VideoInfo:
    return video_info(clip)


@pytest.fixture(scope="module")
def frames(full_run: ClipRun) -> list[dict[str, Any]]:
    return read_jsonl(full_run.jsonl)


@pytest.fixture(scope="module")
def records(full_run: ClipRun) -> list[dict[str, Any]]:
    return db_records(full_run.database, full_run.device_id)


def test_the_run_succeeds_and_says_where_everything_went(
    full_run: ClipRun, source: VideoInfo
) -> None:
    result = full_run.result
    assert result.status == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert f"processed {source.frames} frames" in result.stdout
    assert f"records database: {sqlite_url(full_run.database)}" in result.stdout
    assert f"annotated video: {full_run.video}" in result.stdout
    assert f"JSON lines: {full_run.jsonl}" in result.stdout
    assert f"in {full_run.rolled}" in result.stdout


def test_one_json_line_per_frame_in_video_time(
    frames: list[dict[str, Any]], source: VideoInfo
) -> None:
    assert len(frames) == source.frames
    assert [line["frame"] for line in frames] == list(range(source.frames))
    stamps = [line["timestamp"] for line in frames]
    assert stamps[0] == pytest.approx(start_timestamp())
    assert all(b > a for a, b in itertools.pairwise(stamps))
    assert stamps[-1] - stamps[0] == pytest.approx((source.frames - 1) / source.fps, abs=0.05)


def test_every_json_line_describes_the_posture(frames: list[dict[str, Any]]) -> None:
    for line in frames:
        assert isinstance(line["person"], bool)
        assert line["state"] in STATES
        assert isinstance(line["hunched"], bool)
        assert set(line["angles"]) == ANGLES
        assert all(v is None or isinstance(v, float) for v in line["angles"].values())
        for point in line["keypoints"]:
            assert set(point) == {"name", "x", "y", "confidence"}
            assert isinstance(point["name"], str)
            assert 0.0 <= point["confidence"] <= 1.0
    with_person = [line for line in frames if line["person"]]
    assert with_person, "nobody seen in a clip of people walking"
    assert len(with_person) < len(frames), "somebody seen in every frame, empty ones included"
    seen = [line for line in frames if line["keypoints"]]
    assert seen
    unseen = [line["raw"] for line in frames if not line["keypoints"]]
    assert all(raw == {"state": "unknown", "hunched": False} for raw in unseen)
    names = [p["name"] for p in seen[0]["keypoints"]]
    assert len(names) == len(set(names)) and {"left_hip", "right_shoulder"} <= set(names)


def test_one_record_per_second_of_video(
    records: list[dict[str, Any]], frames: list[dict[str, Any]], source: VideoInfo
) -> None:
    per_second = frames_per_second(frames)
    assert len(records) == len(per_second) == math.ceil(source.frames / source.fps)
    start = start_timestamp()
    assert [r["ts"] for r in records] == [start + second for second in range(len(records))]
    assert [r["fps"] for r in records] == [per_second[r["ts"]] for r in records]
    assert Counter(r["fps"] for r in records).most_common(1)[0][0] == source.fps


def test_records_follow_the_frames_of_their_second(
    records: list[dict[str, Any]], frames: list[dict[str, Any]]
) -> None:
    by_second: dict[float, list[bool]] = {}
    for line in frames:
        by_second.setdefault(second_of(line), []).append(line["person"])
    for record in records:
        seen = by_second[record["ts"]]
        assert bool(record["person_present"]) == (sum(seen) * 2 > len(seen)), record
        if not record["person_present"]:
            assert record["state"] == "unknown" and not record["hunched"]
    present = {bool(r["person_present"]) for r in records}
    assert present == {True, False}, "people walk in and out: both must be recorded"


def test_people_walking_are_standing(records: list[dict[str, Any]]) -> None:
    known = [r["state"] for r in records if r["person_present"] and r["state"] != "unknown"]
    assert known
    assert Counter(known)["standing"] * 2 > len(known), Counter(known)


def test_records_roll_into_one_csv_file_a_minute(
    full_run: ClipRun, records: list[dict[str, Any]], source: VideoInfo
) -> None:
    windows = sorted({math.floor(r["ts"] / ROLL_SECONDS) * ROLL_SECONDS for r in records})
    files = sorted(full_run.rolled.glob("*.csv"))
    assert len(files) == len(windows) == math.ceil(source.frames / source.fps / ROLL_SECONDS)
    assert sorted(full_run.rolled.iterdir()) == files, "temporary files left behind"
    assert f"rolled record files: {len(files)} in {full_run.rolled}" in full_run.result.stdout
    columns = record_columns(full_run.database)
    rows: list[dict[str, str]] = []
    for path, window in zip(files, windows, strict=True):
        stamp = datetime.fromtimestamp(window, UTC).strftime("%Y%m%dT%H%M%SZ")
        assert path.name == f"posture-clip-{stamp}.csv"
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            assert reader.fieldnames == columns
            window_rows = list(reader)
        assert all(window <= float(row["ts"]) < window + ROLL_SECONDS for row in window_rows)
        rows += window_rows
    assert len(rows) == len(records)
    assert [float(row["ts"]) for row in rows] == [r["ts"] for r in records]
    assert [row["state"] for row in rows] == [r["state"] for r in records]
    assert {row["device_id"] for row in rows} == {"clip"}


def test_the_annotated_video_plays_like_the_clip(full_run: ClipRun, source: VideoInfo) -> None:
    saved = video_info(full_run.video)
    assert saved.codec == "h264"
    assert saved.frames == source.frames
    assert (saved.width, saved.height) == (source.width, source.height)
    assert saved.duration == pytest.approx(source.frames / source.fps, abs=0.5)


def test_the_annotation_changes_the_picture(
    full_run: ClipRun, clip: Path, frames: list[dict[str, Any]]
) -> None:
    """The panel in the top-left corner and the skeleton on the person are drawn in."""
    nobody = next(line for line in frames[len(frames) // 2 :] if not line["person"])
    somebody = next(
        line
        for line in frames[len(frames) // 2 :]
        if line["person"] and sum(p["confidence"] > 0.9 for p in line["keypoints"]) >= 5
    )
    wanted = {nobody["frame"], somebody["frame"]}
    saved, original = decode_frames(full_run.video, wanted), decode_frames(clip, wanted)
    for index in wanted:
        difference = np.abs(saved[index] - original[index]).mean(axis=2)
        panel = difference[8:30, 8:100].mean()
        elsewhere = difference[difference.shape[0] // 2 :, : difference.shape[1] // 4].mean()
        assert panel > 20 and panel > 4 * elsewhere, (index, panel, elsewhere)
    difference = np.abs(saved[somebody["frame"]] - original[somebody["frame"]]).mean(axis=2)
    height, width = difference.shape
    joints = [
        p
        for p in somebody["keypoints"]
        if p["confidence"] > 0.9 and 0 <= p["x"] < width and 0 <= p["y"] < height
    ]
    assert joints
    on_joints = np.mean(
        [difference[round(p["y"]), round(p["x"])] for p in joints]  # white dots on the joints
    )
    assert on_joints > 4 * difference.mean(), (on_joints, difference.mean())


def decode_frames(path: Path, indexes: set[int]) -> dict[int, np.ndarray]:
    import av

    wanted: dict[int, np.ndarray] = {}
    with av.open(str(path)) as container:
        for index, frame in enumerate(container.decode(video=0)):
            if index in indexes:
                wanted[index] = frame.to_ndarray(format="rgb24").astype(np.int16)
            if len(wanted) == len(indexes):
                break
    return wanted


def test_records_roll_into_parquet_files(parquet_run: ClipRun, source: VideoInfo) -> None:
    import pyarrow.parquet as pq

    assert parquet_run.result.status == 0, parquet_run.result.stderr
    records = db_records(parquet_run.database, parquet_run.device_id)
    seconds = PARQUET_FRAMES / source.fps
    assert len(records) == math.ceil(seconds)
    files = sorted(parquet_run.rolled.glob("*.parquet"))
    windows = {math.floor(r["ts"] / PARQUET_ROLL_SECONDS) for r in records}
    assert len(files) == len(windows) == math.ceil(seconds / PARQUET_ROLL_SECONDS)
    tables = [pq.read_table(path) for path in files]
    assert all(table.column_names == record_columns(parquet_run.database) for table in tables)
    stamps = [ts for table in tables for ts in table.column("ts").to_pylist()]
    assert stamps == [r["ts"] for r in records]
    devices = {d for table in tables for d in table.column("device_id").to_pylist()}
    assert devices == {"clip-pq"}


def test_the_report_charts_one_device(
    vigil: VigilRunner, tmp_path: Path, full_run: ClipRun, parquet_run: ClipRun
) -> None:
    records = db_records(full_run.database, "clip")
    assert db_records(full_run.database, "clip-pq"), "the other device has records in the period"
    out = tmp_path / "report.html"
    result = vigil(
        "report", "posture", "--since", "2026-11-20T08:59:00", "--until", "2026-11-20T09:05:00",
        "--out", out, "--device-id", "clip", "--database", sqlite_url(full_run.database),
    )  # fmt: skip
    assert result.status == 0, result.stderr
    assert result.stdout.strip() == f"report: {out}"
    html = out.read_text(encoding="utf-8")
    assert "Posture report: clip<" in html
    assert "clip-pq" not in html
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html)
    assert len(images) >= 2
    for image in images:
        png = base64.b64decode(image)
        assert png.startswith(b"\x89PNG\r\n\x1a\n") and len(png) > 2000
    present = [r for r in records if r["person_present"]]
    standing = sum(r["state"] == "standing" for r in present)
    assert f"{round(100 * standing / len(present))}%" in html
