"""Detector -> pose for several people: crops, coordinates, and the posture app on real photos."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from vigil.apps.posture import PostureApp, PostureConfig
from vigil.frame import Frame
from vigil.rules.posture import PostureRulesConfig, read_posture
from vigil.stages.base import FrameResults, Pipeline
from vigil.stages.crops import DETECTIONS, DetectStage, PerObjectStage
from vigil.tasks.fake import FakeModel

SSD = "models/tfls_coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.tflite"
RULES = PostureRulesConfig()


def test_each_detected_person_gets_a_pose_in_frame_coordinates() -> None:
    image = np.full((400, 600, 3), 128, np.uint8)
    results = Pipeline(
        [DetectStage(FakeModel("detect"), classes=["person", "dog"], min_score=0.5),
         PerObjectStage(FakeModel("pose"), margin=0.0)]
    ).run(Frame(image, 0.0, 0, "test"))  # fmt: skip
    detections = results.extras[DETECTIONS]
    assert list(detections.labels) == ["person", "dog"]  # largest first; the cat scored too low
    poses = results.poses
    assert poses is not None and len(poses) == 2
    for person, (x1, y1, x2, y2) in enumerate(detections.xyxy):
        crop_w, crop_h = int(np.ceil(x2)) - int(x1), int(np.ceil(y2)) - int(y1)
        nose = poses.point("nose")[person]
        assert nose == pytest.approx([int(x1) + 0.5 * crop_w, int(y1) + 0.16 * crop_h], abs=1.0)
        assert poses.xyxy is not None and poses.xyxy[person] == pytest.approx([x1, y1, x2, y2])


def test_classes_filter_and_limit() -> None:
    stage = DetectStage(FakeModel("detect"), classes=None, min_score=0.0, max_objects=1)
    results = stage.run(Frame(np.zeros((100, 100, 3), np.uint8), 0.0, 0, "t"), FrameResults())
    assert list(results.extras[DETECTIONS].labels) == ["person"]


def test_no_detection_means_nobody() -> None:
    stage = PerObjectStage(FakeModel("pose"))
    results = stage.run(Frame(np.zeros((50, 50, 3), np.uint8), 0.0, 0, "t"), FrameResults())
    assert results.poses is not None and len(results.poses) == 0


def photo(shared_data: Path, name: str) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(shared_data / "posture_side" / name)), cv2.COLOR_BGR2RGB)


def people_in(image: np.ndarray, config: PostureConfig) -> FrameResults:
    pipeline = Pipeline(PostureApp().build(config, stills=True).stages)
    try:
        return pipeline.run(Frame(image, 0.0, 0, "test"))
    finally:
        pipeline.close()


@pytest.fixture
def with_detector(shared_data: Path) -> PostureConfig:
    pytest.importorskip("mediapipe", reason="the default pose model needs vigil[pose]")
    pytest.importorskip("ai_edge_litert", reason="the SSD detector needs vigil[tflite]")
    return PostureConfig.model_validate({"detector": {"model": str(shared_data / SSD)}})


def test_two_people_side_by_side_are_each_judged(
    shared_data: Path, with_detector: PostureConfig
) -> None:
    hunched = photo(shared_data, "spr_hunchback.jpg")  # on the left
    upright = photo(shared_data, "spr_straight_flip.jpg")  # on the right
    frame = np.hstack([hunched, upright])
    plain = people_in(frame, PostureConfig())
    assert plain.poses is not None and len(plain.poses) == 1  # the single-person model sees one

    results = people_in(frame, with_detector)
    poses = results.poses
    assert poses is not None and len(poses) == 2
    readings = {
        "left" if float(poses.point("left_hip")[i][0]) < hunched.shape[1] else "right":
        read_posture(poses, RULES, person=i)
        for i in range(2)
    }  # fmt: skip
    assert (readings["left"].state, readings["left"].hunched) == ("sitting", True)
    assert (readings["right"].state, readings["right"].hunched) == ("sitting", False)


def test_a_person_far_from_the_camera_is_found(
    shared_data: Path, with_detector: PostureConfig
) -> None:
    far = np.full((1080, 1920, 3), 200, np.uint8)
    far[700:1020, 1500:1680] = cv2.resize(photo(shared_data, "spr_straight_flip.jpg"), (180, 320))
    plain = people_in(far, PostureConfig())
    assert plain.poses is not None and len(plain.poses) == 0
    found = people_in(far, with_detector).poses
    assert found is not None and len(found) == 1
    reading = read_posture(found, RULES)
    assert (reading.state, reading.hunched) == ("sitting", False)


def test_the_pose_model_can_be_a_registered_version(shared_data: Path, tmp_path: Path) -> None:
    pytest.importorskip("ai_edge_litert", reason="MoveNet needs vigil[tflite]")
    import vigil.models

    movenet = shared_data / "models" / "tfls_movenet_singlepose_lightning_int8_4.tflite"
    vigil.models.register(movenet, "posture-pose", task="pose")
    vigil.models.promote("posture-pose:1", "production")
    image = photo(shared_data, "spr_hunchback.jpg")
    by_file = people_in(
        image, PostureConfig.model_validate({"pose": {"type": "keypoints", "model": str(movenet)}})
    )
    by_name = people_in(
        image,
        PostureConfig.model_validate(
            {"pose": {"type": "keypoints", "model": "posture-pose@production"}}
        ),
    )
    assert by_file.poses is not None and by_name.poses is not None
    np.testing.assert_array_equal(by_file.poses.keypoints, by_name.poses.keypoints)
    assert read_posture(by_name.poses, RULES).hunched is True


def test_each_detected_object_can_be_classified() -> None:
    image = np.zeros((300, 400, 3), np.uint8)
    image[:, :200] = (
        200,
        40,
        40,
    )  # the person's half is red: the fake classifier's scores move with it
    results = Pipeline(
        [DetectStage(FakeModel("detect"), classes=None, min_score=0.5),
         PerObjectStage(FakeModel("classify"), margin=0.0, name="kinds")]
    ).run(Frame(image, 0.0, 0, "test"))  # fmt: skip
    detections = results.extras[DETECTIONS]
    kinds = results.extras["kinds"]
    assert len(kinds) == len(detections) == 2 and results.poses is None
    direct = [
        FakeModel("classify").predict(image[int(y1) : int(np.ceil(y2)), int(x1) : int(np.ceil(x2))])
        for x1, y1, x2, y2 in detections.xyxy
    ]
    assert [k.to_dict() for k in kinds] == [d.to_dict() for d in direct]
    assert kinds[0].to_dict() != kinds[1].to_dict()  # each crop was classified on its own
