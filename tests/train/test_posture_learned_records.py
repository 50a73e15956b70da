"""Training input of the learned posture classifier: records, labels, time ranges and the split.

The records are written by the posture app's own ``describe_posture`` (what ``vigil run posture
--jsonl`` writes) from skeletons with known angles; the helpers here are shared with the other
learned-classifier tests.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from tests.factories import pose_from_points, side_view
from vigil.apps.posture import describe_posture
from vigil.errors import ConfigError, SourceError
from vigil.frame import Frame
from vigil.results import COCO_17, Poses
from vigil.rules.posture import PostureRulesConfig
from vigil.rules.reminders import RemindersConfig
from vigil.rules.tracker import PostureTracker
from vigil.stages.base import FrameResults
from vigil.train.posture import (
    KeypointRecord,
    LabelNames,
    PostureTrainingConfig,
    label_records,
    parse_ranges,
    read_csv_labels,
    read_label_map,
    read_ranges,
    read_records,
    split_in_time_blocks,
)

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC).timestamp()
BERLIN = ZoneInfo("Europe/Berlin")  # 10:00 local is 09:00 UTC in November
IMAGE = np.zeros((8, 8, 3), np.uint8)

ANGLE_RANGES = {  # class -> (torso, neck, thigh, knee) ranges in degrees
    "upright": ((-35, 8), (-10, 25), (0, 40), (70, 125)),
    "hunched": ((20, 50), (10, 45), (0, 30), (70, 125)),
    "standing": ((-8, 8), (0, 22), (72, 90), (160, 180)),
    "standing_hunched": ((20, 45), (10, 45), (70, 90), (150, 180)),
    # A mild slouch that the thresholds (torso 15, neck 35) call upright.
    "slouch": ((9, 14), (27, 34), (0, 30), (70, 125)),
}
SEGMENT_LABELS = ["upright", "hunched", "standing", "standing_hunched"] * 6


def skeleton(
    rng: np.random.Generator, label: str, facing: int, side: str, hip: tuple[float, float]
) -> dict[str, tuple[float, float]]:
    """One posture of ``label`` with random angles in its ranges and a little pixel noise."""
    torso, neck, thigh, knee = (rng.uniform(*r) for r in ANGLE_RANGES[label])
    points = side_view(torso=torso, neck=neck, thigh=thigh, knee=knee, facing=facing, side=side)
    scale = rng.uniform(0.5, 1.5)
    return {
        name: (
            hip[0] + (x - 400.0) * scale + rng.normal(0, 1.5),
            hip[1] + (y - 500.0) * scale + rng.normal(0, 1.5),
        )
        for name, (x, y) in points.items()
    }


def synthetic_records(
    path: Path,
    labels: Sequence[str] = SEGMENT_LABELS,
    *,
    start: float = T0,
    seconds: float = 10.0,
    fps: float = 2.0,
    seed: int = 0,
    nobody_every: int = 0,
) -> list[tuple[float, float, str]]:
    """Write one segment of frames per label as ``vigil run posture --jsonl`` lines.

    Returns:
        The (start, end, label) of each segment, in Unix seconds.
    """
    rng = np.random.default_rng(seed)
    tracker = PostureTracker("desk", PostureRulesConfig(), RemindersConfig())
    lines, spans, index = [], [], 0
    for number, label in enumerate(labels):
        begin = start + number * seconds
        spans.append((begin, begin + seconds, label))
        facing, side = int(rng.choice([-1, 1])), str(rng.choice(["left", "right"]))
        hip = (float(rng.uniform(300, 900)), float(rng.uniform(400, 600)))
        for k in range(round(seconds * fps)):
            nobody = nobody_every and index % nobody_every == nobody_every - 1
            poses = (
                Poses.empty(COCO_17)
                if nobody
                else pose_from_points(skeleton(rng, label, facing, side, hip))
            )
            frame = Frame(IMAGE, begin + k / fps, index, "synthetic")
            results = FrameResults(poses=poses)
            tracker.update(frame, results)
            lines.append(json.dumps(describe_posture(frame, results)))
            index += 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return spans


def range_lines(spans: Sequence[tuple[float, float, str]], zone: tzinfo) -> list[str]:
    """The spans as ``HH:MM:SS-HH:MM:SS label`` lines in the local time of ``zone``."""

    def clock(t: float) -> str:
        return datetime.fromtimestamp(t, zone).strftime("%H:%M:%S")

    return [f"{clock(a)}-{clock(b)} {label}" for a, b, label in spans]


def record_at(timestamp: float | None, **fields: object) -> KeypointRecord:
    base: dict[str, object] = {
        "file": Path("r.jsonl"),
        "line": 1,
        "frame": None,
        "image": None,
        "timestamp": timestamp,
        "poses": None,
    }
    return KeypointRecord(**(base | fields))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Records


def test_records_are_read_as_the_app_writes_them(tmp_path: Path) -> None:
    path = tmp_path / "day.jsonl"
    synthetic_records(path, ["upright", "hunched"], nobody_every=5)
    found = read_records([path])
    assert len(found.records) == 40
    assert found.files[0].sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [r.line for r in found.records] == list(range(1, 41))
    assert [r.frame for r in found.records] == list(range(40))
    assert found.records[1].timestamp == pytest.approx(T0 + 0.5)
    people = [r for r in found.records if r.poses is not None]
    assert len(people) == 32  # every fifth frame has nobody
    poses = people[0].poses
    assert poses is not None and poses.schema == COCO_17 and len(poses) == 1
    assert poses.confidence[0, COCO_17.index("nose")] == pytest.approx(0.95)


def test_mediapipe_keypoint_names_are_taken_by_name(tmp_path: Path) -> None:
    line = {
        "frame": 3,
        "time": "2026-11-20T09:00:01.500+00:00",
        "person": True,
        "keypoints": [
            {"name": "left_heel", "x": 1, "y": 2, "confidence": 0.9},
            {"name": "left_hip", "x": 10.5, "y": 20.0, "confidence": 0.8},
        ],
    }
    path = tmp_path / "mp.jsonl"
    path.write_text(json.dumps(line) + "\n\n")
    record = read_records([path]).records[0]
    assert record.timestamp == pytest.approx(T0 + 1.5)
    assert record.poses is not None
    assert tuple(record.poses.point("left_hip")[0]) == (10.5, 20.0)
    assert record.poses.confidence[0].sum() == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json\n", "line 1: not JSON"),
        ("[1, 2]\n", "line 1: not a JSON object"),
        ('{"person": true, "keypoints": 5}\n', "'keypoints' must be a list"),
        ('{"person": true, "keypoints": [{"name": "nose"}]}\n', "a keypoint must be"),
        ('{"time": "yesterday"}\n', "is not an ISO date-time"),
        ("\n\n", "no records in"),
    ],
)
def test_bad_records_files(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(SourceError, match=message):
        read_records([path])


def test_missing_records(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="records file not found"):
        read_records([tmp_path / "none.jsonl"])
    with pytest.raises(ConfigError, match="no records given"):
        read_records([])


# ---------------------------------------------------------------------------------------------
# Label names


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("upright", "sitting"),
        ("Sitting", "sitting"),
        ("reclined", "sitting"),
        ("hunched", "sitting_hunched"),
        ("sitting-hunched", "sitting_hunched"),
        ("standing", "standing"),
        ("Standing hunched", "standing_hunched"),
    ],
)
def test_label_names(name: str, expected: str) -> None:
    assert LabelNames().canonical(name, "here") == expected


def test_an_unknown_label_suggests_the_closest() -> None:
    with pytest.raises(ConfigError, match="unknown posture label 'hunchd'; did you mean 'hunched'"):
        LabelNames().canonical("hunchd", "labels.csv line 3")


def test_a_label_map_adds_names_and_leaves_some_out(tmp_path: Path) -> None:
    path = tmp_path / "map.yaml"
    path.write_text("hunched_forward: hunched\nupright legs folded: upright\naway: null\n")
    names = read_label_map(path)
    assert names.canonical("hunched_forward", "x") == "sitting_hunched"
    assert names.canonical("upright_legs_folded", "x") == "sitting"
    assert names.canonical("away", "x") is None
    path.write_text("slouch: slumped\n")
    with pytest.raises(ConfigError, match="'slouch' maps to 'slumped', which is not a posture"):
        read_label_map(path)
    path.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="write one 'name: class' per line"):
        read_label_map(path)


# ---------------------------------------------------------------------------------------------
# Time ranges

MORNING = datetime(2026, 11, 20, 10, 5, tzinfo=BERLIN).timestamp()


@pytest.mark.parametrize(
    ("line", "inside", "outside"),
    [
        ("10:00-10:20 hunched", "10:05", "10:20"),
        ("9:55 - 10:10 hunched", "10:05", "9:54"),
        ("10:00:00\u201310:05:30 hunched", "10:05", "10:06"),
        ("23:00-10:06 hunched", "10:05", "10:06"),  # over midnight
        ("2026-11-20T10:00-2026-11-20T10:20 hunched", "10:05", "10:25"),
        ("2026-11-20T10:00/2026-11-20T10:20 hunched", "10:05", "09:59"),
        ("2026-11-20 10:00-2026-11-20 10:20 hunched", "10:05", "10:21"),
        ("2026-11-20T09:00+00:00/2026-11-20T09:10+00:00 hunched", "10:05", "10:10"),
    ],
)
def test_time_ranges_in_local_time_and_iso(line: str, inside: str, outside: str) -> None:
    labels = parse_ranges([line], zone=BERLIN)

    def at(clock: str) -> KeypointRecord:
        hours, minutes = map(int, clock.split(":"))
        moment = datetime(2026, 11, 20, hours, minutes, tzinfo=BERLIN)
        return record_at(moment.timestamp())

    assert labels.label_of(at(inside)) == "sitting_hunched"
    assert labels.label_of(at(outside)) is None
    assert labels.label_of(record_at(None)) is None


def test_the_first_range_that_holds_a_record_wins() -> None:
    labels = parse_ranges(
        ["# my morning", "10:00-10:20 hunched", "", "10:20-10:45 upright  # better"],
        zone=BERLIN,
    )
    assert labels.label_of(record_at(MORNING)) == "sitting_hunched"
    twenty = datetime(2026, 11, 20, 10, 20, tzinfo=BERLIN).timestamp()
    assert labels.label_of(record_at(twenty)) == "sitting"
    assert labels.lineage()["ranges"] == ["10:00-10:20 hunched", "10:20-10:45 upright"]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("10:00-10:20", "is not a time range: write START-END LABEL"),
        ("10:00 hunched", "is not a time range"),
        ("10:00-25:00 hunched", "is not a time range"),
        ("10:00-2026-11-20T10:20 hunched", "is not a time range"),
        ("ten-eleven hunched", "is not a time range"),
        ("10:20-10:20 hunched", "ends before it starts"),
        ("2026-11-20T10:20/2026-11-20T10:00 hunched", "ends before it starts"),
        ("10:00-10:20 hunchback", "unknown posture label 'hunchback'"),
    ],
)
def test_malformed_ranges(line: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_ranges([line], zone=BERLIN)


def test_a_ranges_file_names_the_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "ranges.txt"
    path.write_text("10:00-10:20 hunched\n10:20-10:45 upright\n10:45 standing\n")
    with pytest.raises(ConfigError, match=r"ranges.txt line 3: '10:45 standing' is not a time"):
        read_ranges(path)
    path.write_text("# nothing yet\n")
    with pytest.raises(ConfigError, match="no time ranges given"):
        read_ranges(path)


# ---------------------------------------------------------------------------------------------
# CSV labels


def test_csv_labels_by_image_frame_and_time(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(
        "image,frame,timestamp,time,label\n"
        "/photos/a.jpg,,,,hunched\n"
        "b.jpg,,,,upright\n"
        ",7,,,standing\n"
        f",,{T0 + 2.5},,standing hunched\n"
        ",,,2026-11-20T10:00:04+01:00,reclined\n"
        "c.jpg,,,,\n"
    )
    labels = read_csv_labels(path)
    assert labels.label_of(record_at(None, image="/photos/a.jpg")) == "sitting_hunched"
    assert labels.label_of(record_at(None, image="/elsewhere/a.jpg")) is None
    assert labels.label_of(record_at(None, image="/any/where/b.jpg")) == "sitting"
    assert labels.label_of(record_at(None, frame=7)) == "standing"
    assert labels.label_of(record_at(T0 + 2.5)) == "standing_hunched"
    assert labels.label_of(record_at(T0 + 2.501)) is None
    assert labels.label_of(record_at(T0 + 4.0)) == "sitting"
    assert labels.label_of(record_at(None, image="c.jpg")) is None  # no label: not labelled
    assert labels.lineage()["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("image,posture_name\na.jpg,hunched\n", "needs a 'label' column and an 'image'"),
        ("label\nhunched\n", "needs a 'label' column"),
        ("image,label\na.jpg,hunched\na.jpg,upright\n", "line 3: a.jpg is labelled twice"),
        ("frame,label\nseven,hunched\n", "line 2: frame 'seven' is not a whole number"),
        ("time,label\nnoon,hunched\n", "line 2: time 'noon' is not an ISO date-time"),
        ("image,label\na.jpg,slumped\n", "line 2: unknown posture label 'slumped'"),
        ("image,frame,label\n,,hunched\n", "line 2: the row has a label but no image, frame"),
        ("", "found: no rows"),
    ],
)
def test_bad_csv_labels(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "labels.csv"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        read_csv_labels(path)


def test_the_posture_column_of_the_shared_photos_works_with_a_label_map(
    shared_data: Path, tmp_path: Path
) -> None:
    mapping = tmp_path / "map.yaml"
    mapping.write_text("hunched_forward: hunched\nupright_legs_folded: upright\n")
    labels = read_csv_labels(shared_data / "posture_side" / "labels.csv", read_label_map(mapping))
    photo = str(shared_data / "posture_side" / "spr_hunchback.jpg")
    assert labels.label_of(record_at(None, image=photo)) == "sitting_hunched"
    assert labels.label_of(record_at(None, image="x/spr_kneeling.jpg")) == "sitting"


# ---------------------------------------------------------------------------------------------
# Labelled examples and the split


def test_records_without_a_person_or_label_or_body_are_left_out_and_counted(
    tmp_path: Path,
) -> None:
    path = tmp_path / "day.jsonl"
    spans = synthetic_records(path, ["upright", "hunched", "standing"], nobody_every=4)
    lines = path.read_text().splitlines()
    legless = json.loads(lines[1])
    legless["keypoints"] = [k for k in legless["keypoints"] if "hip" not in k["name"]]
    lines[1] = json.dumps(legless)
    path.write_text("\n".join(lines) + "\n")
    ranges = parse_ranges(range_lines(spans[:2], BERLIN), zone=BERLIN)
    examples = label_records(read_records([path]).records, ranges, PostureRulesConfig())
    assert dict(examples.left_out) == {
        "no person": 15,
        "no label": 15,  # the standing segment has no range
        "no shoulder or hip visible": 1,
    }
    assert len(examples.records) == 29
    assert examples.features.shape == (29, 26)
    assert set(examples.labels) == {"sitting", "sitting_hunched"}
    assert examples.rules.count("sitting") + examples.rules.count("sitting_hunched") == 29


def examples_of(tmp_path: Path, labels: Sequence[str] = SEGMENT_LABELS) -> tuple:
    path = tmp_path / "day.jsonl"
    spans = synthetic_records(path, labels)
    ranges = parse_ranges(range_lines(spans, BERLIN), zone=BERLIN)
    return label_records(read_records([path]).records, ranges, PostureRulesConfig()), spans


def test_the_split_holds_out_whole_time_blocks_with_a_gap(tmp_path: Path) -> None:
    examples, _ = examples_of(tmp_path)
    config = PostureTrainingConfig(block_seconds=10, gap_seconds=2, test_fraction=0.25)
    split = split_in_time_blocks(examples.records, examples.labels, config)
    times = np.array([r.timestamp for r in examples.records]) - T0
    test_blocks = set((times[split.test] // 10).astype(int))
    train_blocks = set((times[split.train] // 10).astype(int))
    assert split.blocks == 24 and len(test_blocks) == 8  # 2 of the 6 blocks of each label
    assert not test_blocks & train_blocks
    gaps = np.abs(times[split.train][:, None] - times[split.test][None, :])
    assert gaps.min() > 2
    assert split.dropped > 0
    assert len(split.train) + len(split.test) + split.dropped == len(examples.records)
    test_labels = {examples.labels[i] for i in split.test}
    assert test_labels == {"sitting", "sitting_hunched", "standing", "standing_hunched"}


def test_the_split_is_reproducible_and_the_seed_changes_it(tmp_path: Path) -> None:
    examples, _ = examples_of(tmp_path)

    def test_set(seed: int) -> list[int]:
        config = PostureTrainingConfig(block_seconds=10, seed=seed)
        return list(split_in_time_blocks(examples.records, examples.labels, config).test)

    assert test_set(0) == test_set(0)
    assert test_set(0) != test_set(1)


def test_too_few_blocks_for_a_test_set(tmp_path: Path) -> None:
    examples, _ = examples_of(tmp_path, ["upright", "hunched"])
    with pytest.raises(ConfigError, match=r"span 1 time block\(s\) of 60 s; give more records"):
        split_in_time_blocks(examples.records, examples.labels, PostureTrainingConfig())
