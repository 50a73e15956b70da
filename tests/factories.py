"""Factories for results: skeletons with known joint angles, in any keypoint schema."""

from __future__ import annotations

import math

import numpy as np

from vigil.results import COCO_17, KeypointSchema, Poses

TORSO, NECK, THIGH, SHIN = 180.0, 60.0, 160.0, 150.0


def pose_from_points(
    points: dict[str, tuple[float, float]],
    schema: KeypointSchema = COCO_17,
    confidence: float | dict[str, float] = 0.95,
) -> Poses:
    """One person with the named joints placed; joints not named get confidence 0."""
    keypoints = np.zeros((1, len(schema), 2), np.float32)
    conf = np.zeros((1, len(schema)), np.float32)
    for name, xy in points.items():
        i = schema.index(name)
        keypoints[0, i] = xy
        conf[0, i] = confidence.get(name, 0.95) if isinstance(confidence, dict) else confidence
    return Poses.from_arrays(keypoints, conf, schema)


ANGLE_NAMES = ("torso", "neck", "thigh", "knee")


def side_view(
    *,
    torso: float = -10.0,
    neck: float = 15.0,
    thigh: float = 5.0,
    knee: float = 90.0,
    facing: int = 1,
    side: str = "left",
    hip: tuple[float, float] = (400.0, 500.0),
) -> dict[str, tuple[float, float]]:
    """Joint positions of a person in profile with the given angles, as the rules define them.

    Args:
        torso: Forward lean of hip->shoulder from vertical.
        neck: Forward lean of shoulder->ear from vertical.
        thigh: Incline of hip->knee above horizontal (knee forward of the hip).
        knee: Angle at the knee between thigh and shin.
        facing: +1 faces image-right, -1 image-left.
        side: Which body side is near the camera (gets the joints; the far side is left out).
        hip: Hip position in pixels.
    """
    hx, hy = hip
    t, n, th = map(math.radians, (torso, neck, thigh))
    shoulder = (hx + facing * TORSO * math.sin(t), hy - TORSO * math.cos(t))
    ear = (shoulder[0] + facing * NECK * math.sin(n), shoulder[1] - NECK * math.cos(n))
    knee_xy = (hx + facing * THIGH * math.cos(th), hy + THIGH * math.sin(th))
    # The shin leaves the knee at `knee` degrees from the knee->hip direction, turning downwards.
    back = math.atan2(hy - knee_xy[1], hx - knee_xy[0])
    turn = math.radians(knee) * (-1 if facing > 0 else 1)
    shin = back + turn
    ankle = (knee_xy[0] + SHIN * math.cos(shin), knee_xy[1] + SHIN * math.sin(shin))
    if ankle[1] < knee_xy[1]:  # keep the foot below the knee whichever way round the angle went
        shin = back - turn
        ankle = (knee_xy[0] + SHIN * math.cos(shin), knee_xy[1] + SHIN * math.sin(shin))
    nose = (ear[0] + facing * 25.0, ear[1] + 5.0)
    return {
        "nose": nose,
        f"{side}_ear": ear,
        f"{side}_shoulder": shoulder,
        f"{side}_hip": (hx, hy),
        f"{side}_knee": knee_xy,
        f"{side}_ankle": ankle,
    }
