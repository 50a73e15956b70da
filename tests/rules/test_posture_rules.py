"""Posture rules on keypoint arrays: COCO-17 (the original tracker's layout) and MediaPipe-33."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tests.factories import ANGLE_NAMES, pose_from_points, side_view
from vigil.results import COCO_17, MEDIAPIPE_33, Poses
from vigil.rules.posture import (
    PostureReading,
    PostureRulesConfig,
    PostureSmoother,
    choose_side,
    read_posture,
)

DEFAULTS = PostureRulesConfig()


def original_tutorial_is_hunched(
    points: dict[str, tuple[float, float]], side: str = "left"
) -> bool:
    """The original hunch rule: |angle(hip->shoulder) - angle(shoulder->ear)| >= 3 degrees."""

    def angle(a: tuple[float, float], b: tuple[float, float]) -> float:
        return math.degrees(math.atan2(b[1] - a[1], b[0] - a[0]))

    hip, shoulder, ear = (points[f"{side}_{j}"] for j in ("hip", "shoulder", "ear"))
    return abs(angle(hip, shoulder) - angle(shoulder, ear)) >= 3


POSTURES = [
    # name, angles (torso, neck, thigh, knee), expected state, expected hunched
    ("upright", (-10, 15, 5, 90), "sitting", False),
    ("upright, leaning a little forward", (8, 20, 5, 90), "sitting", False),
    ("reclined", (-32, 0, 3, 85), "sitting", False),
    ("feet tucked under the chair", (-15, 16, 35, 105), "sitting", False),
    ("perched on a high stool", (-5, 15, 45, 120), "sitting", False),
    ("hunched forward", (35, 31, 8, 95), "sitting", True),
    ("rounded back, slight", (20, 28, 5, 95), "sitting", True),
    ("forward head, straight back", (0, 45, 5, 90), "sitting", True),
    ("standing", (0, 12, 88, 178), "standing", False),
    ("standing, leaning over a desk", (25, 40, 80, 170), "standing", True),
    ("kneeling on the floor", (0, 12, 85, 70), "sitting", False),
]


@pytest.mark.parametrize("facing", [1, -1], ids=["faces-right", "faces-left"])
@pytest.mark.parametrize("side", ["left", "right"])
@pytest.mark.parametrize(
    ("name", "angles", "state", "hunched"), POSTURES, ids=[p[0] for p in POSTURES]
)
def test_postures_are_classified(
    *, name: str, angles: tuple[float, ...], state: str, hunched: bool, facing: int, side: str
) -> None:
    named = dict(zip(ANGLE_NAMES, angles, strict=True))
    poses = pose_from_points(side_view(**named, facing=facing, side=side))
    reading = read_posture(poses, DEFAULTS)
    assert (reading.state, reading.hunched) == (state, hunched), reading.angles
    assert reading.person and reading.side == side


@pytest.mark.parametrize("facing", [1, -1])
def test_measured_angles_match_the_skeleton(facing: int) -> None:
    poses = pose_from_points(side_view(torso=-23, neck=31, thigh=17, knee=101, facing=facing))
    angles = read_posture(poses, DEFAULTS).angles
    assert angles.torso == pytest.approx(-23, abs=0.1)
    assert angles.neck == pytest.approx(31, abs=0.1)
    assert angles.thigh == pytest.approx(17, abs=0.1)
    assert angles.knee == pytest.approx(101, abs=0.1)


@pytest.mark.parametrize(
    ("name", "angles"),
    [
        ("upright", (-10, 15, 5, 90)),
        ("reclined", (-32, 0, 3, 85)),
        ("feet tucked", (-15, 16, 35, 105)),
    ],
)
def test_the_original_hunch_rule_was_wrong_where_ours_is_right(
    name: str, angles: tuple[float, ...]
) -> None:
    points = side_view(**dict(zip(ANGLE_NAMES, angles, strict=True)))
    assert original_tutorial_is_hunched(points), "the original rule flags every one of these"
    assert read_posture(pose_from_points(points), DEFAULTS).hunched is False


def test_the_original_sitting_rule_called_feet_tucked_standing_and_ours_does_not() -> None:
    points = side_view(torso=-15, neck=16, thigh=35, knee=105)
    thigh = read_posture(pose_from_points(points), DEFAULTS).angles.thigh
    assert thigh is not None and 25 < thigh < 155, "outside the original's sitting band"
    assert read_posture(pose_from_points(points), DEFAULTS).state == "sitting"


def test_mediapipe_layout_is_judged_like_coco() -> None:
    points = side_view(torso=30, neck=30, thigh=6, knee=92)
    coco = read_posture(pose_from_points(points, COCO_17), DEFAULTS)
    mediapipe = read_posture(pose_from_points(points, MEDIAPIPE_33), DEFAULTS)
    assert (mediapipe.state, mediapipe.hunched, mediapipe.angles) == (
        coco.state,
        coco.hunched,
        coco.angles,
    )


def test_the_side_facing_the_camera_is_the_more_confident_one() -> None:
    near = side_view(torso=30, neck=30, side="right")
    far = {
        k.replace("right", "left"): (x + 40, y + 60) for k, (x, y) in near.items() if "right" in k
    }
    confidence = {name: (0.95 if name.startswith("right") else 0.6) for name in [*near, *far]}
    poses = pose_from_points({**near, **far}, confidence=confidence)
    assert choose_side(poses) == "right"
    assert read_posture(poses, DEFAULTS).hunched is True


def test_nobody_is_absent() -> None:
    assert read_posture(Poses.empty(COCO_17), DEFAULTS) == PostureReading.absent()


def test_a_few_stray_joints_are_not_a_person() -> None:
    poses = pose_from_points({"nose": (10, 10), "left_ear": (20, 10)})
    assert read_posture(poses, DEFAULTS).person is False


def test_hidden_legs_are_unknown_unless_configured_as_sitting() -> None:
    points = {
        k: v
        for k, v in side_view(torso=-5, neck=15).items()
        if "knee" not in k and "ankle" not in k
    }
    poses = pose_from_points(points)
    assert read_posture(poses, DEFAULTS).state == "unknown"
    seated_desk = PostureRulesConfig(legs_hidden_state="sitting")
    assert read_posture(poses, seated_desk).state == "sitting"
    assert read_posture(poses, DEFAULTS).hunched is False


def test_joints_below_the_confidence_threshold_are_not_used() -> None:
    points = side_view(torso=-10, neck=15, thigh=5, knee=90)
    confidence = {name: (0.3 if "knee" in name else 0.9) for name in points}
    poses = pose_from_points(points, confidence=confidence)
    assert read_posture(poses, DEFAULTS).state == "unknown"
    assert read_posture(poses, PostureRulesConfig(min_keypoint_confidence=0.25)).state == "sitting"


def test_without_a_facing_direction_hunching_is_not_judged() -> None:
    points = {
        k: v for k, v in side_view(torso=40, neck=40).items() if k not in ("nose", "left_knee")
    }
    reading = read_posture(pose_from_points(points), DEFAULTS)
    assert reading.angles.torso is None and reading.angles.neck is None
    assert reading.hunch_judged is False and reading.hunched is False


@pytest.mark.parametrize(
    ("overrides", "hunched"),
    [
        ({}, True),
        ({"hunch_torso_deg": 40.0}, False),
        ({"hunch_torso_deg": 40.0, "hunch_neck_deg": 30.0}, True),
    ],
)
def test_thresholds_are_configurable(overrides: dict[str, float], hunched: bool) -> None:
    poses = pose_from_points(side_view(torso=35, neck=31))
    assert read_posture(poses, PostureRulesConfig(**overrides)).hunched is hunched


def _reading(state: str, hunched: bool = False) -> PostureReading:
    poses = pose_from_points(
        side_view(
            torso=35 if hunched else -10,
            thigh=5 if state == "sitting" else 88,
            knee=90 if state == "sitting" else 178,
        )
    )
    reading = read_posture(poses, DEFAULTS)
    assert reading.state == state and reading.hunched == hunched
    return reading


def test_one_bad_frame_does_not_flip_the_smoothed_state() -> None:
    smoother = PostureSmoother(window_seconds=1.0)
    sitting, standing = _reading("sitting"), _reading("standing")
    states = []
    for i in range(30):
        frame_reading = standing if i == 15 else sitting
        states.append(smoother.update(i / 10, frame_reading).state)
    assert set(states) == {"sitting"}


def test_a_lasting_change_comes_through_within_the_window() -> None:
    smoother = PostureSmoother(window_seconds=1.0)
    sitting, standing = _reading("sitting"), _reading("standing")
    for i in range(20):
        smoother.update(i / 10, sitting)
    changed_at = next(
        i for i in range(20, 40) if smoother.update(i / 10, standing).state == "standing"
    )
    assert 20 < changed_at <= 26  # after about half the window


def test_smoothing_hunching_ignores_frames_where_it_could_not_be_judged() -> None:
    smoother = PostureSmoother(window_seconds=1.0)
    hunched = _reading("sitting", hunched=True)
    absent = PostureReading.absent()
    for i in range(10):
        smoother.update(i / 10, hunched)
    out = [smoother.update(1 + i / 10, absent if i % 2 else hunched) for i in range(6)]
    assert all(r.hunched for r in out if r.person)


def test_zero_window_passes_readings_through() -> None:
    smoother = PostureSmoother(window_seconds=0.0)
    standing = _reading("standing")
    assert smoother.update(0.0, _reading("sitting")).state == "sitting"
    assert smoother.update(0.1, standing) is standing


def test_poses_validate_their_shapes() -> None:
    with pytest.raises(ValueError, match=r"keypoints must have shape \(_, 17, 2\)"):
        Poses(
            np.zeros((1, 5, 2), np.float32),
            np.zeros((1, 5), np.float32),
            np.zeros(1, np.float32),
            COCO_17,
        )
