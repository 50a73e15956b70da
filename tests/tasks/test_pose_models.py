"""Keypoint model files: every output layout decoded into frame pixels, on tiny and real models."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.onnx_models import constant_output_model
from vigil.errors import ModelError
from vigil.results import COCO_17
from vigil.runtimes import load_tensor_model
from vigil.stages.pose import KeypointModelConfig, build_pose_model
from vigil.tasks import PoseModel
from vigil.tasks.pose import detect_pose_format

FRAME = np.zeros(
    (480, 640, 3), np.uint8
)  # 640x480 into 192x192: scale 0.3, 24 px bars top and bottom


def movenet_output(y: float, x: float, score: float) -> np.ndarray:
    out = np.zeros((1, 1, 17, 3), np.float32)
    out[0, 0, :] = (y, x, score)
    out[0, 0, COCO_17.index("nose")] = (0.5, 0.25, score)
    return out


def test_movenet_keypoints_map_back_through_the_letterbox(tmp_path: Path) -> None:
    path = constant_output_model(
        tmp_path / "movenet.onnx", (1, 192, 192, 3), {"kp": movenet_output(0.2, 0.8, 0.9)}, np.uint8
    )
    model = build_pose_model(KeypointModelConfig(model=str(path)))
    assert isinstance(model, PoseModel) and model.spec.decoder == "movenet"
    poses = model.predict(FRAME)
    assert len(poses) == 1 and poses.schema == COCO_17
    nose = poses.point("nose")[0]
    assert nose == pytest.approx([0.25 * 192 / 0.3, (0.5 * 192 - 24) / 0.3], abs=0.01)  # (160, 240)
    assert poses.point("left_hip")[0] == pytest.approx(
        [0.8 * 192 / 0.3, (0.2 * 192 - 24) / 0.3], abs=0.01
    )
    assert poses.confidence[0] == pytest.approx(np.full(17, 0.9))


def test_movenet_below_the_person_score_is_nobody(tmp_path: Path) -> None:
    path = constant_output_model(
        tmp_path / "m.onnx", (1, 192, 192, 3), {"kp": movenet_output(0.2, 0.8, 0.1)}
    )
    assert len(build_pose_model(KeypointModelConfig(model=str(path))).predict(FRAME)) == 0


def test_movenet_multipose_keeps_the_confident_people(tmp_path: Path) -> None:
    people = np.zeros((1, 6, 56), np.float32)
    people[0, 0, :51] = np.tile([0.5, 0.5, 0.8], 17)
    people[0, 0, 55] = 0.8
    people[0, 1, :51] = np.tile([0.25, 0.75, 0.6], 17)
    people[0, 1, 55] = 0.6
    path = constant_output_model(tmp_path / "multi.onnx", (1, 256, 256, 3), {"people": people})
    poses = build_pose_model(KeypointModelConfig(model=str(path))).predict(
        np.zeros((256, 256, 3), np.uint8)
    )
    assert len(poses) == 2
    assert poses.scores == pytest.approx([0.8, 0.6])
    assert poses.point("nose")[1] == pytest.approx([192.0, 64.0])


def test_yolo_pose_decodes_with_non_maximum_suppression(tmp_path: Path) -> None:
    rows = np.zeros((4, 56), np.float32)
    rows[0, :5] = (320, 320, 100, 200, 0.9)  # a person
    rows[1, :5] = (322, 318, 100, 200, 0.7)  # the same person again: suppressed
    rows[2, :5] = (100, 100, 50, 100, 0.6)  # another person
    rows[3, :5] = (500, 500, 50, 100, 0.1)  # below the score threshold
    for i, (cx, cy) in enumerate(rows[:, :2]):
        rows[i, 5:] = np.tile([cx, cy, 0.95], 17)
    path = constant_output_model(
        tmp_path / "yolo.onnx", (1, 3, 640, 640), {"output0": rows.T[None]}
    )
    poses = build_pose_model(KeypointModelConfig(model=str(path))).predict(FRAME)
    assert sorted(poses.scores.tolist(), reverse=True) == pytest.approx([0.9, 0.6])
    # 640x480 into 640x640: scale 1, 80 px bars top and bottom
    assert poses.point("nose")[np.argmax(poses.scores)] == pytest.approx([320.0, 240.0])


def test_rtmpose_simcc_argmax_with_split_ratio(tmp_path: Path) -> None:
    simcc_x = np.zeros((1, 17, 384), np.float32)  # input 192 wide, split ratio 2
    simcc_y = np.zeros((1, 17, 512), np.float32)  # input 256 high
    simcc_x[0, :, 96] = 0.9  # x = 48 input px
    simcc_y[0, :, 300] = 0.8  # y = 150 input px
    path = constant_output_model(
        tmp_path / "rtm.onnx", (1, 3, 256, 192), {"simcc_x": simcc_x, "simcc_y": simcc_y}
    )
    model = build_pose_model(KeypointModelConfig(model=str(path)))
    assert isinstance(model, PoseModel) and model.spec.decoder == "rtmpose"
    poses = model.predict(np.zeros((512, 384, 3), np.uint8))  # exactly 2x the input: no bars
    assert poses.point("nose")[0] == pytest.approx([96.0, 300.0])
    assert poses.confidence[0, 0] == pytest.approx(0.8)


def test_unknown_layout_is_a_clear_error(tmp_path: Path) -> None:
    path = constant_output_model(
        tmp_path / "odd.onnx", (1, 3, 64, 64), {"out": np.zeros((1, 10), np.float32)}
    )
    with pytest.raises(
        ModelError, match=r"cannot tell the keypoint layout.*set the pose model's format"
    ):
        detect_pose_format(load_tensor_model(path))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.onnx", None, "model file not found"),
        ("garbage.onnx", b"not a model", "cannot load ONNX model"),
        ("garbage.tflite", b"not a model", "cannot load TFLite model"),
        ("model.pt", b"weights", "expected a .onnx or .tflite file"),
    ],
)
def test_bad_model_files(tmp_path: Path, name: str, content: bytes | None, message: str) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelError, match=message):
        load_tensor_model(path)
