"""Detector -> per-object stages: find people (or any class), then run a model on each one.

The DeepLens posture tracker chained a person detector with a pose model run on each detected
person. :class:`DetectStage` finds the objects of the chosen classes; :class:`PerObjectStage`
runs a pose or classification model on each object's crop and maps the results back to frame
coordinates, so a person far from the camera, or two people in the frame, are seen properly.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field

from vigil.config import ConfigModel
from vigil.frame import Frame
from vigil.results import Detections, Poses
from vigil.stages.base import FrameResults
from vigil.tasks.base import Prediction, TaskModel

DETECTIONS = "detections"
"""The key of :attr:`FrameResults.extras` that holds the detector's kept objects."""

MIN_CROP_PIXELS = 8


class DetectorConfig(ConfigModel):
    """A detector that picks the objects a second model looks at, one by one."""

    model: str = Field(
        description="Detector model: a file (.tflite, .onnx) or a registry reference "
        "(name, name:3, name@production).",
        min_length=1,
    )
    classes: list[str] | None = Field(
        default_factory=lambda: ["person"],
        description="Labels to keep, e.g. [person]; null keeps every class.",
    )
    min_score: float = Field(0.4, ge=0.0, le=1.0, description="Drop objects scored below this.")
    max_objects: int = Field(5, ge=1, le=100, description="Keep at most this many, largest first.")
    crop_margin: float = Field(
        0.15, ge=0.0, le=1.0, description="Grow each box by this share of its size on every side."
    )


class DetectStage:
    """Runs a detector and keeps the largest confident objects of the chosen classes.

    The kept detections, largest first, go into ``results.extras["detections"]``.
    """

    def __init__(
        self,
        model: TaskModel,
        classes: list[str] | None = None,
        min_score: float = 0.4,
        max_objects: int = 5,
    ) -> None:
        self.model = model
        self.classes = None if classes is None else set(classes)
        self.min_score = min_score
        self.max_objects = max_objects

    def run(self, frame: Frame, results: FrameResults) -> FrameResults:
        """Detect, filter and sort the objects of ``frame``."""
        found = self.model.predict(frame.image)
        if not isinstance(found, Detections):
            raise TypeError(f"the detector stage needs a detect model, got {type(found).__name__}")
        results.extras[DETECTIONS] = self._kept(found)
        return results

    def _kept(self, found: Detections) -> Detections:
        keep = found.confidence >= self.min_score
        if self.classes is not None:
            keep &= np.isin(found.labels, list(self.classes))
        kept = found[np.flatnonzero(keep)]
        areas = (kept.xyxy[:, 2] - kept.xyxy[:, 0]) * (kept.xyxy[:, 3] - kept.xyxy[:, 1])
        return kept[np.argsort(-areas, kind="stable")[: self.max_objects]]

    def close(self) -> None:
        """Release the detector."""
        self.model.close()


class PerObjectStage:
    """Runs a model on the crop of every detected object and maps the results to the frame.

    Pose results become ``results.poses`` (one person per object, in detection order, each with
    the detection's box); any other prediction goes to ``results.extras[name]`` as a list aligned
    with the detections.

    Args:
        model: A pose or classification model, run on each crop.
        margin: Share of the box size added on every side before cropping.
        name: The key of ``results.extras`` for non-pose predictions.
    """

    def __init__(self, model: TaskModel, margin: float = 0.15, name: str = "objects") -> None:
        self.model = model
        self.margin = margin
        self.name = name

    def run(self, frame: Frame, results: FrameResults) -> FrameResults:
        """Crop each detection out of ``frame`` and run the model on it."""
        detections: Detections = results.extras.get(DETECTIONS, Detections.empty())
        predictions = [self._predict(frame.image, box) for box in detections.xyxy]
        if predictions and all(isinstance(p, Poses) for p in predictions):
            results.poses = _one_person_each(predictions, detections)
        elif not predictions and _is_pose_model(self.model):
            results.poses = Poses.empty(_schema_of(self.model))
        else:
            results.extras[self.name] = predictions
        return results

    def _predict(self, image: np.ndarray, box: np.ndarray) -> Prediction:
        x1, y1, x2, y2 = _grown(box, self.margin, image.shape[1], image.shape[0])
        prediction = self.model.predict(np.ascontiguousarray(image[y1:y2, x1:x2]))
        if isinstance(prediction, Poses):
            return prediction.scaled(1.0, 1.0, float(x1), float(y1))
        return prediction

    def close(self) -> None:
        """Release the model."""
        self.model.close()


def _grown(box: np.ndarray, margin: float, width: int, height: int) -> tuple[int, int, int, int]:
    """Return the box grown by ``margin`` on every side, clipped, at least a few pixels."""
    x1, y1, x2, y2 = (float(v) for v in box)
    dx, dy = (x2 - x1) * margin, (y2 - y1) * margin
    left, top = max(0, int(x1 - dx)), max(0, int(y1 - dy))
    right = min(width, max(left + MIN_CROP_PIXELS, int(np.ceil(x2 + dx))))
    bottom = min(height, max(top + MIN_CROP_PIXELS, int(np.ceil(y2 + dy))))
    return left, top, right, bottom


def _one_person_each(predictions: list[Any], detections: Detections) -> Poses:
    """Return the best person of each crop, boxed by its detection, as one Poses."""
    people = [
        (p[int(np.argmax(p.scores))], box)
        for p, box in zip(predictions, detections.xyxy, strict=True)
        if len(p)
    ]
    schema = predictions[0].schema
    if not people:
        return Poses.empty(schema)
    return Poses(
        keypoints=np.concatenate([p.keypoints for p, _ in people]),
        confidence=np.concatenate([p.confidence for p, _ in people]),
        scores=np.concatenate([p.scores for p, _ in people]),
        schema=schema,
        xyxy=np.stack([box for _, box in people]).astype(np.float32),
    )


def _is_pose_model(model: TaskModel) -> bool:
    return model.spec.task == "pose"


def _schema_of(model: TaskModel) -> Any:
    from vigil.results import SCHEMAS

    return SCHEMAS[model.spec.keypoint_schema or "coco-17"]
