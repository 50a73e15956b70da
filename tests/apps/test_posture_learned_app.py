"""The posture app with a learned classifier instead of the angle rules.

``rules.learned_classifier`` names the classifier.

The classifier is trained on real pose output: the pose model run by ``vigil run posture --jsonl``
on mirrored, scaled, shifted and slightly rotated variants of the photos in
``../shared/data/posture_side`` (never the photos themselves), plus a copy with keypoint jitter.
It must then classify the original photos as ``labels.csv`` says.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

import vigil.models as registry
from tests.cli import VigilRunner
from tests.factories import pose_from_points, side_view
from tests.onnx_models import constant_output_model
from tests.train.test_posture_learned_cli import jittered_copy
from tests.train.test_posture_learned_records import (
    BERLIN,
    range_lines,
    synthetic_records,
)
from vigil.cli.main import main
from vigil.events import Event
from vigil.frame import Frame
from vigil.results import Poses
from vigil.rules.learned import open_posture_classifier
from vigil.rules.posture import PostureRulesConfig
from vigil.rules.reminders import RemindersConfig
from vigil.rules.tracker import PostureTracker
from vigil.stages.base import FrameResults
from vigil.train.posture import PostureTrainingConfig, parse_ranges, read_records, train_posture

EXPECTED = {  # label in labels.csv -> (state, hunched)
    "upright": ("sitting", False),
    "reclined": ("sitting", False),
    "upright_legs_folded": ("sitting", False),
    "hunched_forward": ("sitting", True),
}
LABEL_MAP = "hunched_forward: hunched\nupright_legs_folded: upright\n"
VARIANTS = [  # mirrored, scale, degrees of rotation, shift (share of width, height)
    (False, 1.0, -5.0, (0.0, 0.0)),
    (False, 0.6, 4.0, (0.15, 0.1)),
    (False, 0.8, 0.0, (-0.1, 0.05)),
    (True, 1.0, 4.0, (0.0, 0.0)),
    (True, 0.6, -5.0, (-0.12, 0.1)),
    (True, 0.8, 2.0, (0.1, -0.05)),
]


def shared_labels(shared_data: Path) -> dict[str, str]:
    folder = shared_data / "posture_side"
    with (folder / "labels.csv").open(newline="", encoding="utf-8") as handle:
        return {row["file"]: row["posture"] for row in csv.DictReader(handle)}


def variant(image: np.ndarray, mirrored: bool, scale: float, degrees: float, shift: Any) -> Any:
    height, width = image.shape[:2]
    source = cv2.flip(image, 1) if mirrored else image
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, scale)
    matrix[:, 2] += (shift[0] * width, shift[1] * height)
    return cv2.warpAffine(source, matrix, (width, height), borderValue=(128, 128, 128))


def write_variants(shared_data: Path, folder: Path) -> dict[str, str]:
    """Write every variant of every photo; return variant file name -> posture label."""
    folder.mkdir(parents=True)
    labels = {}
    for name, label in shared_labels(shared_data).items():
        image = cv2.imread(str(shared_data / "posture_side" / name))
        for number, (mirrored, scale, degrees, shift) in enumerate(VARIANTS):
            file = f"{Path(name).stem}-v{number}.jpg"
            cv2.imwrite(str(folder / file), variant(image, mirrored, scale, degrees, shift))
            labels[file] = label
    return labels


@dataclass(frozen=True)
class PhotoRecords:
    """Records of the photo variants as ``vigil run posture --jsonl`` wrote them, and labels."""

    records: Path
    jittered: Path
    labels: Path
    label_map: Path


@pytest.fixture(scope="module")
def photo_records(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> PhotoRecords:
    pytest.importorskip("mediapipe", reason="the default pose model needs vigil[pose]")
    folder = tmp_path_factory.mktemp("variants")
    labels = write_variants(shared_data, folder / "photos")
    records = folder / "variants.jsonl"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("VIGIL_HOME", str(folder / "home"))
        source, start = str(folder / "photos"), "2026-11-20T10:00:00"
        arguments = ["run", "posture", "--source", source, "--jsonl", str(records)]
        status = main([*arguments, "--start-time", start])
    assert status == 0
    table = folder / "labels.csv"
    table.write_text("image,label\n" + "".join(f"{k},{v}\n" for k, v in labels.items()))
    label_map = folder / "map.yaml"
    label_map.write_text(LABEL_MAP)
    jittered = jittered_copy(records, folder / "jittered.jsonl", pixels=4.0)
    return PhotoRecords(records, jittered, table, label_map)


def json_lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_a_classifier_trained_on_real_pose_output_classifies_the_photos(
    vigil: VigilRunner, photo_records: PhotoRecords, shared_data: Path, tmp_path: Path
) -> None:
    trained = vigil(
        "train", "posture",
        "--records", photo_records.records, photo_records.jittered,
        "--labels", photo_records.labels,
        "--label-map", photo_records.label_map,
        "--name", "posture-classifier",
        "--block-seconds", "6",
        "--stage", "production",
        "--out", tmp_path / "report.html",
    )  # fmt: skip
    assert trained.status == 0, trained.stderr
    assert "records: 72 in 2 file(s); 72 labelled and used" in trained.stdout
    accuracy = re.search(r"accuracy +([\d.]+) +([\d.]+)", trained.stdout)
    assert accuracy is not None and float(accuracy[1]) >= 0.9, trained.stdout
    html = (tmp_path / "report.html").read_text()
    assert "Learned classifier: confusion matrix" in html
    assert "Angle rules: confusion matrix" in html
    config = tmp_path / "learned.yaml"
    config.write_text("rules:\n  learned_classifier: posture-classifier@production\n")
    photos = shared_data / "posture_side"
    result = vigil("run", "posture", "--source", photos, "--config", config, "--jsonl", "-")
    assert result.status == 0, result.stderr
    lines = json_lines(result.stdout)
    known = shared_labels(shared_data)
    assert sorted(Path(line["image"]).name for line in lines) == sorted(known)
    for line in lines:
        name = Path(line["image"]).name
        assert (line["state"], line["hunched"]) == EXPECTED[known[name]], name
        assert line["angles"]["torso"] is not None, "the angles are still measured"
    assert "processed 6 frames" in result.stderr


def test_training_on_real_records_compares_with_the_rules(
    vigil: VigilRunner, photo_records: PhotoRecords, tmp_path: Path
) -> None:
    result = vigil(
        "train", "posture", "--records", photo_records.records, "--labels", photo_records.labels,
        "--label-map", photo_records.label_map, "--name", "photos", "--block-seconds", "6",
        "--algorithm", "boosting", "--out", tmp_path / "r.html",
    )  # fmt: skip
    assert result.status == 0, result.stderr
    recall = re.search(r"recall sitting_hunched +([\d.]+) +([\d.]+)", result.stdout)
    assert recall is not None
    assert float(recall[2]) == 1.0, "the rules call every hunched photo variant hunched"
    version = registry.get("photos")
    assert version.lineage["labels"]["kind"] == "csv"
    assert version.metrics["test_records"] > 0


# ---------------------------------------------------------------------------------------------
# The tracker with a classifier: the classifier decides, the rest stays

T0 = 1_795_165_200.0  # 2026-11-20 09:00 UTC
IMAGE = np.zeros((8, 8, 3), np.uint8)


def feed(tracker: PostureTracker, poses: Poses, seconds: float) -> list[Event]:
    events = []
    for index in range(round(seconds * 10)):
        frame = Frame(IMAGE, T0 + index / 10, index, "test")
        events += tracker.update(frame, FrameResults(poses=poses))
    return events + tracker.flush()


def test_the_classifier_decides_and_records_and_reminders_stay(tmp_path: Path) -> None:
    """A classifier taught that upright is hunched (and back) overrules the thresholds."""
    path = tmp_path / "day.jsonl"
    spans = synthetic_records(path, ["upright", "hunched"] * 4, seconds=6)
    swapped = [(a, b, {"upright": "hunched", "hunched": "upright"}[s]) for a, b, s in spans]
    ranges = parse_ranges(range_lines(swapped, BERLIN), zone=BERLIN)
    config = PostureTrainingConfig(block_seconds=6)
    train_posture(read_records([path]), ranges, "contrary", config=config, stage="production")
    upright = pose_from_points(side_view(torso=-10, neck=12, thigh=5, knee=90))
    reminders = RemindersConfig(hunching_minutes=0.05, sitting_minutes=600)
    by_rules = PostureTracker("desk", PostureRulesConfig(), reminders)
    learned = PostureTracker(
        "desk",
        PostureRulesConfig(learned_classifier="contrary@production"),
        reminders,
        classifier=open_posture_classifier("contrary@production"),
    )
    rules_events, learned_events = feed(by_rules, upright, 5), feed(learned, upright, 5)
    rules_records = [e.data for e in rules_events if e.kind == "record"]
    learned_records = [e.data for e in learned_events if e.kind == "record"]
    assert len(learned_records) == len(rules_records) == 5
    assert not any(r["hunched"] for r in rules_records)
    assert all(r["hunched"] and r["state"] == "sitting" for r in learned_records)
    for ours, theirs in zip(learned_records, rules_records, strict=True):
        assert ours["torso_angle"] == theirs["torso_angle"] == pytest.approx(-10, abs=0.2)
    assert [e.data["reason"] for e in learned_events if e.kind == "reminder"] == ["hunching"]
    assert not [e for e in rules_events if e.kind == "reminder"]


# ---------------------------------------------------------------------------------------------
# Classifier references that do not work


@pytest.fixture
def one_photo(tmp_path: Path) -> Path:
    folder = tmp_path / "photo"
    folder.mkdir()
    cv2.imwrite(str(folder / "desk.jpg"), np.full((48, 64, 3), 90, np.uint8))
    return folder


@pytest.mark.parametrize(
    "case",
    [
        ("cats", 2, "cats is not a posture classifier (it carries no posture metadata)"),
        ("cats-pose@production", 2, "is a pose model, not a posture classifier"),
        ("nobody@production", 1, "no model named 'nobody'"),
        ("'/no/such/model.onnx'", 1, "model not found: /no/such/model.onnx"),
        ("''", 2, "'rules.learned_classifier'"),
    ],
)
def test_a_reference_that_is_not_a_posture_classifier_is_one_line(
    vigil: VigilRunner, one_photo: Path, tmp_path: Path, case: tuple[str, int, str]
) -> None:
    classifier, status, message = case
    model = constant_output_model(
        tmp_path / "cats.onnx", (1, 8, 8, 3), {"scores": np.ones((1, 3), np.float32)}
    )
    registry.register(model, "cats", task="classify")
    registry.promote(registry.register(model, "cats-pose", task="pose").ref, "production")
    config = tmp_path / "bad.yaml"
    config.write_text(f"rules:\n  learned_classifier: {classifier}\n")
    result = vigil("run", "posture", "--source", one_photo, "--config", config)
    assert message in result.single_error()
    assert result.status == status
