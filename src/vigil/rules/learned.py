"""A learned posture classifier: keypoints normalised to the body, judged by a small ONNX model.

``vigil train posture`` fits a classifier on labelled keypoint records and exports it as ONNX;
with ``rules: {learned_classifier: posture-classifier@production}`` the posture app asks it for
the state and hunching of every frame with a person, while the angles are still measured by the
rules.

The features (:func:`posture_features`) do not depend on the image size, where the person is or
which way they face:

* every joint is taken relative to the hip centre and divided by the torso length (hip centre to
  shoulder centre);
* x is mirrored so that the person always faces image-right, and the joints are those of the body
  side nearer the camera (the side the rules choose), so a mirrored photo gives the same numbers;
* a joint below the confidence threshold is masked: its coordinates are 0 and its ``visible``
  feature is 0; the rules' four angles come with a ``measured`` flag the same way.

A frame whose shoulders or hips are all hidden has no body frame: the classifier does not judge
it and its state is ``unknown`` (hunching not judged), as the rules do for joints they cannot see.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import numpy as np

from vigil.errors import ConfigError
from vigil.results import COCO_17, Poses
from vigil.rules.posture import PostureReading, State

if TYPE_CHECKING:
    from vigil.runtimes.onnx import OnnxModel

FEATURES_VERSION: Final = "posture-keypoints-1"
"""Names the feature layout; a model trained on another layout is refused."""

CLASS_READINGS: Final[Mapping[str, tuple[State, bool]]] = {
    "sitting": ("sitting", False),
    "sitting_hunched": ("sitting", True),
    "standing": ("standing", False),
    "standing_hunched": ("standing", True),
}
"""The classes a posture classifier predicts and the (state, hunched) each one means."""

POSTURE_TAG: Final = "posture"
"""Registry tag key of posture classifiers (value: the feature layout)."""

METADATA_KIND: Final = "vigil.kind"
METADATA_FEATURES: Final = "vigil.posture.features"
METADATA_LABELS: Final = "vigil.posture.labels"
METADATA_MIN_CONFIDENCE: Final = "vigil.posture.min_confidence"
CLASSIFIER_KIND: Final = "posture-classifier"
"""ONNX metadata that marks a file as a posture classifier and carries what it needs."""

_JOINTS: Final = ("nose", "ear", "shoulder", "hip", "knee", "ankle")
_ANGLES: Final = ("torso", "neck", "thigh", "knee")
_DEGREES_SCALE: Final = 90.0

FEATURE_NAMES: Final[tuple[str, ...]] = (
    *(f"{joint}_{part}" for joint in _JOINTS for part in ("x", "y", "visible")),
    *(f"{angle}_{part}" for angle in _ANGLES for part in ("angle", "measured")),
)
"""The feature vector, in order: near-side joints in body units, then the rules' angles."""

Point = tuple[float, float]


def posture_features(
    poses: Poses, reading: PostureReading, person: int = 0, min_confidence: float = 0.5
) -> np.ndarray | None:
    """Return the feature vector of one person, or None when there is no body frame.

    Args:
        poses: Keypoints in any schema that has the COCO-17 joints.
        reading: What the rules read from the same keypoints (the side and the angles).
        person: Which person in ``poses``.
        min_confidence: A joint below this confidence is masked.

    Returns:
        float32 array of ``len(FEATURE_NAMES)``, or None when the reading has no person or no
        shoulder or no hip is visible.
    """
    if not reading.person or reading.side is None:
        return None
    coco = poses.to_schema(COCO_17)
    visible = {name: _point(coco, person, name, min_confidence) for name in COCO_17.names}
    frame = _body_frame(visible)
    if frame is None:
        return None
    origin, scale = frame
    near = {j: visible[j if j == "nose" else f"{reading.side}_{j}"] for j in _JOINTS}
    facing = _facing(near)
    values: list[float] = []
    for joint in _JOINTS:
        values.extend(_normalised(near[joint], origin, scale, facing))
    for angle in _ANGLES:
        value = getattr(reading.angles, angle)
        values.extend((0.0, 0.0) if value is None else (value / _DEGREES_SCALE, 1.0))
    return np.asarray(values, np.float32)


def _point(poses: Poses, person: int, name: str, min_confidence: float) -> Point | None:
    index = COCO_17.index(name)
    if poses.confidence[person, index] < min_confidence:
        return None
    x, y = poses.keypoints[person, index]
    return float(x), float(y)


def _centre(points: Sequence[Point | None]) -> Point | None:
    seen = [p for p in points if p is not None]
    if not seen:
        return None
    return float(np.mean([p[0] for p in seen])), float(np.mean([p[1] for p in seen]))


def _body_frame(visible: Mapping[str, Point | None]) -> tuple[Point, float] | None:
    """Return the hip centre and the torso length, or None when they cannot be measured."""
    hips = _centre([visible["left_hip"], visible["right_hip"]])
    shoulders = _centre([visible["left_shoulder"], visible["right_shoulder"]])
    if hips is None or shoulders is None:
        return None
    torso = float(np.hypot(shoulders[0] - hips[0], shoulders[1] - hips[1]))
    if torso < 1e-6:
        return None
    return hips, torso


def _facing(near: Mapping[str, Point | None]) -> int:
    """Return +1 when the person faces image-right, -1 image-left (+1 when it cannot be told).

    The nose is in front of the ear; with the head out of view, seated knees are in front of
    the hips (the same test as the rules).
    """
    for front, back in (("nose", "ear"), ("knee", "hip")):
        a, b = near[front], near[back]
        if a is not None and b is not None and abs(a[0] - b[0]) > 1.0:
            return 1 if a[0] > b[0] else -1
    return 1


def _normalised(point: Point | None, origin: Point, scale: float, facing: int) -> list[float]:
    if point is None:
        return [0.0, 0.0, 0.0]
    x = (point[0] - origin[0]) / scale * facing
    y = (point[1] - origin[1]) / scale
    return [x, y, 1.0]


class LearnedPostureClassifier:
    """A posture classifier model run on :func:`posture_features`.

    Args:
        model: The loaded ONNX model: float features (N, F) in, class probabilities (N, C)
            among its outputs.
        labels: Class names in output order, each a key of :data:`CLASS_READINGS`.
        min_confidence: The joint confidence threshold the model was trained with.
        name: What the model is called in messages.

    Raises:
        ConfigError: a label is not a posture class.
    """

    def __init__(
        self, model: OnnxModel, labels: Sequence[str], min_confidence: float, name: str
    ) -> None:
        unknown = [label for label in labels if label not in CLASS_READINGS]
        if unknown or not labels:
            raise ConfigError(
                f"{name} is not a posture classifier: its classes {list(labels)} are not among "
                f"{', '.join(CLASS_READINGS)}"
            )
        self.model = model
        self.labels = list(labels)
        self.min_confidence = min_confidence
        self.name = name
        self._output = _probabilities_output(model, len(self.labels), name)

    def classify(self, poses: Poses, person: int, reading: PostureReading) -> tuple[State, bool]:
        """Return the state and hunching of ``person``; ``unknown`` without a body frame."""
        features = posture_features(poses, reading, person, self.min_confidence)
        if features is None:
            return "unknown", False
        label = self.labels[int(self.predict(features[np.newaxis])[0])]
        return CLASS_READINGS[label]

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Return the class index of each row of ``features`` (N, F)."""
        return np.asarray(np.argmax(self.probabilities(features), axis=1), np.int64)

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Return the class probabilities (N, C) of each row of ``features`` (N, F)."""
        outputs = self.model.run([np.asarray(features, np.float32)])
        return np.asarray(outputs[self._output], np.float32).reshape(len(features), -1)

    def close(self) -> None:
        """Release the model."""
        self.model.close()


def _probabilities_output(model: OnnxModel, classes: int, name: str) -> int:
    """Return the index of the (N, classes) float output."""
    if len(model.inputs) != 1 or model.inputs[0].shape[-1:] != (len(FEATURE_NAMES),):
        raise ConfigError(
            f"{name} is not a posture classifier: it must take one (N, {len(FEATURE_NAMES)}) "
            "input of posture features"
        )
    for index, output in enumerate(model.outputs):
        if output.dtype == np.float32 and output.shape[-1:] == (classes,):
            return index
    raise ConfigError(f"{name} is not a posture classifier: no (N, {classes}) probability output")


def classifier_metadata(labels: Sequence[str], min_confidence: float) -> dict[str, str]:
    """Return the ONNX metadata that marks a model file as a posture classifier."""
    return {
        METADATA_KIND: CLASSIFIER_KIND,
        METADATA_FEATURES: FEATURES_VERSION,
        METADATA_LABELS: json.dumps(list(labels)),
        METADATA_MIN_CONFIDENCE: repr(float(min_confidence)),
    }


def open_posture_classifier(ref: str, threads: int = 1) -> LearnedPostureClassifier:
    """Load a posture classifier by reference: ``name@stage``, ``name:3``, ``name`` or a file.

    Raises:
        ModelError: the reference names no registered model or file, or the file cannot load.
        ConfigError: the model is not a posture classifier made by ``vigil train posture``, or
            its features are of another layout.
    """
    from vigil.models.api import resolve
    from vigil.runtimes.onnx import OnnxModel

    resolved = resolve(ref)
    if resolved.spec is not None and resolved.spec.task != "classify":
        raise ConfigError(
            f"{ref} is a {resolved.spec.task} model, not a posture classifier: "
            "train one with 'vigil train posture'"
        )
    if Path(resolved.path).suffix.lower() != ".onnx":
        raise ConfigError(
            f"{ref} is not a posture classifier: a posture classifier is an ONNX file"
        )
    model = OnnxModel(resolved.path, threads=threads, providers=["cpu"])
    try:
        labels, min_confidence = _read_metadata(model.metadata, ref)
        return LearnedPostureClassifier(model, labels, min_confidence, ref)
    except BaseException:
        model.close()
        raise


def _read_metadata(metadata: Mapping[str, str], ref: str) -> tuple[list[str], float]:
    """Return the labels and confidence threshold a posture classifier file carries."""
    if metadata.get(METADATA_KIND) != CLASSIFIER_KIND:
        raise ConfigError(
            f"{ref} is not a posture classifier (it carries no posture metadata): "
            "train one with 'vigil train posture'"
        )
    layout = metadata.get(METADATA_FEATURES)
    if layout != FEATURES_VERSION:
        raise ConfigError(
            f"{ref} was trained on features {layout!r}; this version of Vigil computes "
            f"{FEATURES_VERSION!r}: train it again with 'vigil train posture'"
        )
    try:
        labels = json.loads(metadata[METADATA_LABELS])
        min_confidence = float(metadata[METADATA_MIN_CONFIDENCE])
    except (KeyError, ValueError) as exc:
        raise ConfigError(f"{ref} has damaged posture metadata ({exc}): train it again") from None
    if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
        raise ConfigError(f"{ref} has damaged posture metadata (labels): train it again")
    return labels, min_confidence


__all__ = [
    "CLASS_READINGS",
    "FEATURES_VERSION",
    "FEATURE_NAMES",
    "POSTURE_TAG",
    "LearnedPostureClassifier",
    "classifier_metadata",
    "open_posture_classifier",
    "posture_features",
]
