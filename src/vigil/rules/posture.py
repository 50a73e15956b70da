"""Posture from keypoints: which side faces the camera, sitting or standing, hunched or not.

Pure functions and small state machines over :class:`~vigil.results.Poses` in the COCO-17 layout;
no I/O, so every rule is testable with arrays alone.

The camera is expected beside the desk, seeing the person in profile. Angles are measured in the
image plane, in degrees:

* ``torso_angle``: lean of the hip->shoulder line from vertical, positive when leaning towards the
  direction the person faces (forward), negative when reclined.
* ``neck_angle``: lean of the shoulder->ear line from vertical, positive when the head is forward
  of the shoulders.
* ``thigh_angle``: incline of the hip->knee line above horizontal, 0 (thigh level, seated) to 90
  (thigh vertical, standing). Direction-free.
* ``knee_angle``: the angle at the knee between thigh and shin, 180 for a straight leg.
"""

from __future__ import annotations

import math
from collections import Counter, deque
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol, TypeVar, cast

import numpy as np
from pydantic import Field

from vigil.config import ConfigModel
from vigil.results import COCO_17, Poses

State = Literal["sitting", "standing", "unknown"]
Side = Literal["left", "right"]
VoteT = TypeVar("VoteT", str, bool)

_SIDE_JOINTS = ("ear", "shoulder", "hip", "knee", "ankle")
_MIN_VISIBLE_JOINTS = 3  # fewer confident joints than this is noise, not a person


class PostureRulesConfig(ConfigModel):
    """Thresholds of the posture rules; docs/posture.md gives the measurements behind them."""

    min_keypoint_confidence: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="A joint below this confidence counts as not visible.",
    )
    standing_thigh_min_deg: float = Field(
        60.0,
        ge=30.0,
        le=90.0,
        description="Standing needs the hip->knee line at least this steep above horizontal. "
        "Seated thighs measured 2-35 deg (35 = feet tucked under the chair); standing 73-90.",
    )
    standing_knee_min_deg: float = Field(
        140.0,
        ge=90.0,
        le=180.0,
        description="When the ankle is visible, standing also needs a knee this straight "
        "(kneeling has a steep thigh but a folded knee).",
    )
    hunch_torso_deg: float = Field(
        15.0,
        ge=0.0,
        le=90.0,
        description="Hunched when the torso leans forward of vertical by at least this much. "
        "Upright and reclined photos measured -35 to -11 deg; hunched forward 27 to 43.",
    )
    hunch_neck_deg: float = Field(
        35.0,
        ge=0.0,
        le=90.0,
        description="Hunched (forward head) when the shoulder->ear line leans forward of "
        "vertical by at least this much. Upright photos measured -6 to 17 deg.",
    )
    legs_hidden_state: Literal["unknown", "sitting"] = Field(
        "unknown",
        description="What to call a visible person whose hips or knees are hidden (e.g. by the "
        "desk). 'sitting' suits a camera that only sees the upper body at a sitting desk.",
    )
    smoothing_seconds: float = Field(
        1.0,
        ge=0.0,
        le=60.0,
        description="Majority vote over this many seconds of frames, so one bad frame does "
        "not flip the state. 0 judges every frame on its own.",
    )
    learned_classifier: str | None = Field(
        None,
        min_length=1,
        max_length=500,
        description="A learned posture classifier (made by 'vigil train posture') that decides "
        "sitting / standing and hunching instead of the thresholds above: a registered model "
        "such as posture-classifier@production, or an .onnx file. Angles are still measured "
        "and recorded. None: the angle rules decide.",
    )


@dataclass(frozen=True, slots=True)
class PostureAngles:
    """The joint angles of one person, in degrees; None where the joints were not visible."""

    torso: float | None = None
    neck: float | None = None
    thigh: float | None = None
    knee: float | None = None

    def as_dict(self) -> dict[str, float | None]:
        """Return the angles rounded to 0.1 degree, keyed by joint name."""
        return {
            "torso": _round(self.torso),
            "neck": _round(self.neck),
            "thigh": _round(self.thigh),
            "knee": _round(self.knee),
        }


@dataclass(frozen=True, slots=True)
class PostureReading:
    """What the rules concluded about one frame.

    Attributes:
        person: Whether a person was found.
        state: ``sitting``, ``standing`` or ``unknown`` (nobody, or the joints needed not visible).
        hunched: Torso or head forward past the thresholds; False when it could not be judged.
        side: The body side facing the camera, or None.
        angles: The measured angles.
        confidence: Mean confidence of the joints the rules used (0 when none).
    """

    person: bool
    state: State
    hunched: bool
    side: Side | None = None
    angles: PostureAngles = field(default_factory=PostureAngles)
    confidence: float = 0.0

    @property
    def hunch_judged(self) -> bool:
        """Whether the torso or neck angle was measurable, i.e. ``hunched`` means something."""
        return self.angles.torso is not None or self.angles.neck is not None

    @classmethod
    def absent(cls) -> PostureReading:
        """Return the reading of a frame with nobody in it."""
        return cls(person=False, state="unknown", hunched=False)


class PostureClassifier(Protocol):
    """Decides state and hunching from keypoints instead of the angle thresholds."""

    def classify(self, poses: Poses, person: int, reading: PostureReading) -> tuple[State, bool]:
        """Return the state and hunching of ``person`` in COCO-17 ``poses``.

        Args:
            poses: Keypoints in the COCO-17 layout.
            person: Which person to judge.
            reading: What the angle rules read from the same keypoints (side, angles).
        """
        ...


def main_person(poses: Poses, min_confidence: float = 0.3) -> int:
    """Return the index of the largest person (the one nearest the camera); 0 when empty."""
    if len(poses) <= 1:
        return 0
    boxes = poses.xyxy if poses.xyxy is not None else poses.boxes(min_confidence)
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return int(np.argmax(areas))


def choose_side(poses: Poses, person: int = 0) -> Side:
    """Return the body side whose ear, shoulder, hip, knee and ankle are most confident."""
    left = sum(float(poses.point_confidence(f"left_{j}")[person]) for j in _SIDE_JOINTS)
    right = sum(float(poses.point_confidence(f"right_{j}")[person]) for j in _SIDE_JOINTS)
    return "left" if left >= right else "right"


def read_posture(
    poses: Poses,
    config: PostureRulesConfig,
    person: int | None = None,
    classifier: PostureClassifier | None = None,
) -> PostureReading:
    """Classify one person's posture from a single frame's keypoints.

    Args:
        poses: Keypoints in any schema that has the COCO-17 joints (converted by name).
        config: Thresholds.
        person: Which person in ``poses`` to judge; None judges the largest.
        classifier: Decides state and hunching instead of the thresholds when given; the
            angles, side and confidence are measured the same way either way.
    """
    if len(poses) == 0:
        return PostureReading.absent()
    if person is None:
        person = main_person(poses)
    coco = poses.to_schema(COCO_17)
    if int((coco.confidence[person] >= config.min_keypoint_confidence).sum()) < _MIN_VISIBLE_JOINTS:
        return PostureReading.absent()
    side = choose_side(coco, person)
    joints = _SideJoints.of(coco, person, side, config.min_keypoint_confidence)
    facing = joints.facing()
    angles = PostureAngles(
        torso=_lean(joints.hip, joints.shoulder, facing),
        neck=_lean(joints.shoulder, joints.ear, facing),
        thigh=_incline(joints.hip, joints.knee),
        knee=_joint_angle(joints.hip, joints.knee, joints.ankle),
    )
    reading = PostureReading(
        person=True,
        state=_sit_or_stand(angles, config),
        hunched=_is_hunched(angles, config),
        side=side,
        angles=angles,
        confidence=joints.mean_confidence(),
    )
    if classifier is None:
        return reading
    state, hunched = classifier.classify(coco, person, reading)
    return replace(reading, state=state, hunched=hunched)


def _sit_or_stand(angles: PostureAngles, config: PostureRulesConfig) -> State:
    if angles.thigh is None:
        return config.legs_hidden_state
    legs_straight = angles.knee is None or angles.knee >= config.standing_knee_min_deg
    if angles.thigh >= config.standing_thigh_min_deg and legs_straight:
        return "standing"
    return "sitting"


def _is_hunched(angles: PostureAngles, config: PostureRulesConfig) -> bool:
    torso_forward = angles.torso is not None and angles.torso >= config.hunch_torso_deg
    head_forward = angles.neck is not None and angles.neck >= config.hunch_neck_deg
    return torso_forward or head_forward


Point = tuple[float, float] | None


@dataclass(frozen=True, slots=True)
class _SideJoints:
    """The confidently visible joints of one body side (None where not visible)."""

    nose: Point
    ear: Point
    shoulder: Point
    hip: Point
    knee: Point
    ankle: Point
    confidences: tuple[float, ...]

    @classmethod
    def of(cls, poses: Poses, person: int, side: Side, min_conf: float) -> _SideJoints:
        def joint(name: str) -> Point:
            i = poses.schema.index(name)
            if poses.confidence[person, i] < min_conf:
                return None
            x, y = poses.keypoints[person, i]
            return float(x), float(y)

        names = ["nose", *(f"{side}_{j}" for j in _SIDE_JOINTS)]
        used = [poses.confidence[person, poses.schema.index(n)] for n in names]
        nose, ear, shoulder, hip, knee, ankle = (joint(n) for n in names)
        return cls(
            nose,
            ear,
            shoulder,
            hip,
            knee,
            ankle,
            confidences=tuple(float(c) for c in used if c >= min_conf),
        )

    def facing(self) -> int | None:
        """Return +1 if the person faces image-right, -1 if image-left, None if unclear.

        The nose is in front of the ear; when the head is not visible, seated knees are in
        front of the hips.
        """
        for front, back in ((self.nose, self.ear), (self.knee, self.hip)):
            if front is not None and back is not None and abs(front[0] - back[0]) > 1.0:
                return 1 if front[0] > back[0] else -1
        return None

    def mean_confidence(self) -> float:
        return float(np.mean(self.confidences)) if self.confidences else 0.0


def _lean(base: Point, top: Point, facing: int | None) -> float | None:
    """Angle of base->top from vertical-up, positive towards ``facing``."""
    if base is None or top is None or facing is None:
        return None
    dx = (top[0] - base[0]) * facing
    dy = base[1] - top[1]  # image y grows downwards
    if dx == 0 and dy == 0:
        return None
    return math.degrees(math.atan2(dx, dy))


def _incline(a: Point, b: Point) -> float | None:
    """Angle of the a-b line above horizontal, 0..90, ignoring direction."""
    if a is None or b is None:
        return None
    dx, dy = abs(b[0] - a[0]), abs(b[1] - a[1])
    if dx == 0 and dy == 0:
        return None
    return math.degrees(math.atan2(dy, dx))


def _joint_angle(a: Point, b: Point, c: Point) -> float | None:
    """Angle at b between b->a and b->c, 0..180."""
    if a is None or b is None or c is None:
        return None
    v1 = np.subtract(a, b)
    v2 = np.subtract(c, b)
    norms = float(np.linalg.norm(v1) * np.linalg.norm(v2))
    if norms == 0:
        return None
    cosine = float(np.clip(np.dot(v1, v2) / norms, -1.0, 1.0))
    return math.degrees(math.acos(cosine))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


class PostureSmoother:
    """Majority vote over a sliding time window, so one bad frame does not flip the state.

    Presence and state are voted together (absent / sitting / standing / unknown); hunching is
    voted among the frames where it could be judged. A tie keeps the current value.

    Args:
        window_seconds: Width of the window in frame time; 0 passes readings through.
    """

    def __init__(self, window_seconds: float) -> None:
        self.window_seconds = window_seconds
        self._recent: deque[tuple[float, str, bool | None]] = deque()
        self._label = "absent"
        self._hunched = False

    def update(self, timestamp: float, reading: PostureReading) -> PostureReading:
        """Add a reading; return it with presence, state and hunching voted over the window."""
        if self.window_seconds <= 0:
            return reading
        recent = self._recent
        label = reading.state if reading.person else "absent"
        recent.append((timestamp, label, reading.hunched if reading.hunch_judged else None))
        while recent and recent[0][0] <= timestamp - self.window_seconds:
            recent.popleft()
        self._label = _vote([lbl for _, lbl, _ in recent], self._label)
        judged = [h for _, _, h in recent if h is not None]
        self._hunched = _vote(judged, self._hunched) if judged else False
        person = self._label != "absent"
        return PostureReading(
            person=person,
            state=cast(State, self._label) if person else "unknown",
            hunched=person and self._hunched,
            side=reading.side,
            angles=reading.angles,
            confidence=reading.confidence,
        )


def _vote(values: list[VoteT], current: VoteT) -> VoteT:
    """Return the most common value; ``current`` wins a tie it is part of."""
    counts = Counter(values)
    best = max(counts.values())
    if counts.get(current, 0) == best:
        return current
    return counts.most_common(1)[0][0]
