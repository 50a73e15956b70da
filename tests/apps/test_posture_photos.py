"""The posture rules on real photos of a person at a chair, seen from the side.

``../shared/data/posture_side/labels.csv`` says what each photo shows. Upright, reclined and
feet-tucked are sitting and not hunched; hunched-forward is sitting and hunched.
"""

from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest

from vigil.rules.posture import PostureReading, PostureRulesConfig, read_posture
from vigil.stages.pose import KeypointModelConfig, MediaPipePoseConfig, PoseModel, build_pose_model

EXPECTED = {  # label -> (state, hunched)
    "upright": ("sitting", False),
    "reclined": ("sitting", False),
    "upright_legs_folded": ("sitting", False),
    "hunched_forward": ("sitting", True),
}


def photos(shared_data: Path) -> list[tuple[Path, str]]:
    folder = shared_data / "posture_side"
    with (folder / "labels.csv").open() as handle:
        return [(folder / row["file"], row["posture"]) for row in csv.DictReader(handle)]


def judge(model: PoseModel, path: Path) -> PostureReading:
    image = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    return read_posture(model.predict(image), PostureRulesConfig())


def report(
    capsys: pytest.CaptureFixture[str],
    model_name: str,
    rows: list[tuple[Path, str, PostureReading]],
) -> None:
    with capsys.disabled():
        print(f"\n{model_name}: per-photo angles (deg)")
        for path, label, r in rows:
            a = r.angles.as_dict()
            print(
                f"  {path.name:24} {label:20} -> {r.state:8} hunched={r.hunched!s:5} side={r.side} "
                f"torso={a['torso']} neck={a['neck']} thigh={a['thigh']} knee={a['knee']}"
            )


@pytest.fixture(scope="module")
def mediapipe_model() -> PoseModel:
    pytest.importorskip("mediapipe", reason="the default pose model needs vigil[pose]")
    return build_pose_model(MediaPipePoseConfig(), video=False)


def test_default_model_classifies_every_photo_as_labelled(
    shared_data: Path, mediapipe_model: PoseModel, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [(path, label, judge(mediapipe_model, path)) for path, label in photos(shared_data)]
    report(capsys, "MediaPipe BlazePose (default)", rows)
    assert len(rows) == 6
    wrong = [
        (p.name, r.state, r.hunched)
        for p, label, r in rows
        if (r.state, r.hunched) != EXPECTED[label]
    ]
    assert wrong == []


def test_the_side_facing_the_camera_is_chosen(
    shared_data: Path, mediapipe_model: PoseModel
) -> None:
    """Mirrored photos show the other side of the body; the angles agree within a few degrees."""
    pairs = [("spr_recline.jpg", "spr_recline_flip.jpg")]
    for original, mirrored in pairs:
        a = judge(mediapipe_model, shared_data / "posture_side" / original)
        b = judge(mediapipe_model, shared_data / "posture_side" / mirrored)
        assert a.side != b.side
        assert a.angles.torso == pytest.approx(b.angles.torso, abs=6)


def test_movenet_agrees_wherever_it_sees_the_joints(
    shared_data: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("ai_edge_litert", reason="TFLite models need vigil[tflite]")
    model_path = shared_data / "models" / "tfls_movenet_singlepose_lightning_int8_4.tflite"
    model = build_pose_model(KeypointModelConfig(model=str(model_path)), video=False)
    rows = [(path, label, judge(model, path)) for path, label in photos(shared_data)]
    report(capsys, "MoveNet Lightning int8 (COCO-17)", rows)
    for path, label, reading in rows:
        state, hunched = EXPECTED[label]
        assert reading.hunched == hunched, path.name
        assert reading.state in (state, "unknown"), path.name
    assert sum(r.state == "sitting" for _, _, r in rows) >= 5


def test_nobody_in_an_empty_scene(mediapipe_model: PoseModel) -> None:
    empty = np.full((480, 640, 3), 200, np.uint8)
    assert judge_array(mediapipe_model, empty).person is False


def judge_array(model: PoseModel, image: np.ndarray) -> PostureReading:
    return read_posture(model.predict(image), PostureRulesConfig())
