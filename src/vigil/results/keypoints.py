"""Named keypoint layouts, so that rules speak of joints by name, not by model-specific index."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class KeypointSchema:
    """A keypoint layout: the joint names in model order and the skeleton edges between them.

    Attributes:
        name: Short identifier, e.g. ``"coco-17"``.
        names: Joint names in the order a model outputs them.
        edges: Pairs of joint indices to draw as the skeleton.
    """

    name: str
    names: tuple[str, ...]
    edges: tuple[tuple[int, int], ...] = ()
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {n: i for i, n in enumerate(self.names)})
        if len(self._index) != len(self.names):
            raise ValueError(f"keypoint schema {self.name!r} repeats a joint name")
        for a, b in self.edges:
            if not (0 <= a < len(self.names) and 0 <= b < len(self.names)):
                raise ValueError(
                    f"keypoint schema {self.name!r} has an edge out of range: {(a, b)}"
                )

    def __len__(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        """Return the position of joint ``name``; raise KeyError naming the schema if absent."""
        try:
            return self._index[name]
        except KeyError:
            raise KeyError(f"keypoint schema {self.name!r} has no joint {name!r}") from None

    def __contains__(self, name: object) -> bool:
        return name in self._index


def _edges(names: tuple[str, ...], pairs: list[tuple[str, str]]) -> tuple[tuple[int, int], ...]:
    where = {n: i for i, n in enumerate(names)}
    return tuple((where[a], where[b]) for a, b in pairs)


_COCO_NAMES = (
    "nose",
    "left_eye",
    "right_eye",
    "left_ear",
    "right_ear",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
)

_BODY_EDGES = [
    ("left_ankle", "left_knee"),
    ("left_knee", "left_hip"),
    ("right_ankle", "right_knee"),
    ("right_knee", "right_hip"),
    ("left_hip", "right_hip"),
    ("left_shoulder", "left_hip"),
    ("right_shoulder", "right_hip"),
    ("left_shoulder", "right_shoulder"),
    ("left_shoulder", "left_elbow"),
    ("right_shoulder", "right_elbow"),
    ("left_elbow", "left_wrist"),
    ("right_elbow", "right_wrist"),
    ("left_eye", "right_eye"),
    ("nose", "left_eye"),
    ("nose", "right_eye"),
    ("left_eye", "left_ear"),
    ("right_eye", "right_ear"),
    ("left_ear", "left_shoulder"),
    ("right_ear", "right_shoulder"),
]

COCO_17 = KeypointSchema("coco-17", _COCO_NAMES, _edges(_COCO_NAMES, _BODY_EDGES))
"""The 17-joint COCO layout used by MoveNet, RTMPose, YOLO-pose and the original posture tracker."""

_MEDIAPIPE_NAMES = (
    "nose",
    "left_eye_inner",
    "left_eye",
    "left_eye_outer",
    "right_eye_inner",
    "right_eye",
    "right_eye_outer",
    "left_ear",
    "right_ear",
    "mouth_left",
    "mouth_right",
    "left_shoulder",
    "right_shoulder",
    "left_elbow",
    "right_elbow",
    "left_wrist",
    "right_wrist",
    "left_pinky",
    "right_pinky",
    "left_index",
    "right_index",
    "left_thumb",
    "right_thumb",
    "left_hip",
    "right_hip",
    "left_knee",
    "right_knee",
    "left_ankle",
    "right_ankle",
    "left_heel",
    "right_heel",
    "left_foot_index",
    "right_foot_index",
)

MEDIAPIPE_33 = KeypointSchema(
    "mediapipe-33",
    _MEDIAPIPE_NAMES,
    _edges(
        _MEDIAPIPE_NAMES,
        [
            *_BODY_EDGES,
            ("left_ankle", "left_heel"),
            ("left_heel", "left_foot_index"),
            ("right_ankle", "right_heel"),
            ("right_heel", "right_foot_index"),
        ],
    ),
)
"""MediaPipe BlazePose's 33-landmark layout; a superset of COCO-17 by joint name."""

SCHEMAS = {schema.name: schema for schema in (COCO_17, MEDIAPIPE_33)}
