"""A fake :class:`~vigil.tasks.base.TaskModel` for any task: no model file, no runtime.

Its results are fixed in shape and realistic in content (an ImageNet-like classifier, a COCO
detector, a COCO-17 pose model, a 16-D embedder) and depend on the image in a simple, exact
way, so a test can tell whether the image that reached the model is the one that was sent:

- boxes and keypoints are placed at fixed fractions of the image's width and height;
- scores move with the mean red, green and blue of the image (a channel swap changes them);
- the embedding is the mean colour of the image's four quadrants.

It honours ``spec.score_threshold``, ``spec.top_k`` and ``spec.max_results`` like real models.
"""

from __future__ import annotations

import time

import numpy as np

from vigil.errors import ModelError
from vigil.models.spec import ModelSpec, Task
from vigil.results import COCO_17, Classifications, Detections, Embeddings, Poses
from vigil.tasks.base import Prediction

CLASS_LABELS = ("cheeseburger", "hotdog", "pizza", "bagel", "pretzel", "plate")
"""Labels of the fake classifier, in output order."""

DETECT_LABELS = ("person", "bicycle", "car", "cat", "dog")
"""Labels of the fake detector (a few COCO classes), in output order."""

_CLASS_BASE = np.array([0.62, 0.2, 0.08, 0.05, 0.03, 0.02], np.float32)
# Detected objects: (class id, base score, box as fractions of width and height).
_OBJECTS = (
    (0, 0.86, (0.10, 0.15, 0.45, 0.95)),
    (4, 0.71, (0.55, 0.55, 0.90, 0.92)),
    (3, 0.31, (0.60, 0.10, 0.80, 0.30)),
)
# A person standing, seen from the front: COCO-17 joints as fractions of the image.
_SKELETON = np.array(
    [
        (0.50, 0.16),  # nose
        (0.52, 0.14),  # left_eye
        (0.48, 0.14),  # right_eye
        (0.54, 0.15),  # left_ear
        (0.46, 0.15),  # right_ear
        (0.58, 0.28),  # left_shoulder
        (0.42, 0.28),  # right_shoulder
        (0.61, 0.42),  # left_elbow
        (0.39, 0.42),  # right_elbow
        (0.62, 0.55),  # left_wrist
        (0.38, 0.55),  # right_wrist
        (0.55, 0.56),  # left_hip
        (0.45, 0.56),  # right_hip
        (0.56, 0.72),  # left_knee
        (0.44, 0.72),  # right_knee
        (0.56, 0.90),  # left_ankle
        (0.44, 0.90),  # right_ankle
    ],
    np.float32,
)
_JOINT_CONFIDENCE = np.array(
    [
        *(0.93, 0.9, 0.9, 0.78, 0.74),  # head
        *(0.95, 0.95, 0.88, 0.86, 0.8, 0.79),  # shoulders, elbows, wrists
        *(0.9, 0.9, 0.85, 0.84, 0.7, 0.69),  # hips, knees, ankles
    ],
    np.float32,
)


class FakeModel:
    """A model that returns fixed, image-dependent results of its spec's task.

    Args:
        task: The task, when ``spec`` is not given.
        spec: The model spec; a default one for ``task`` (with labels) when None.
        delay: Seconds each prediction takes, to imitate a slow model.
        thread_safe: What the model tells a server about calling it from several threads at
            once (most runtimes, LiteRT among them, are not).

    Attributes:
        calls: How many predictions were made.
        closed: Whether :meth:`close` was called.
    """

    def __init__(
        self,
        task: Task = "classify",
        spec: ModelSpec | None = None,
        *,
        delay: float = 0.0,
        thread_safe: bool = False,
    ) -> None:
        self.spec = spec if spec is not None else default_spec(task)
        self.delay = delay
        self.thread_safe = thread_safe
        self.calls = 0
        self.closed = False

    def predict(self, image: np.ndarray) -> Prediction:
        """Return this task's results for ``image`` (RGB uint8, H x W x 3).

        Raises:
            ModelError: the model was closed, or the image is not RGB uint8.
        """
        if self.closed:
            raise ModelError("the fake model was closed")
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ModelError(f"expected an RGB uint8 image, got {image.dtype} {image.shape}")
        self.calls += 1
        if self.delay:
            time.sleep(self.delay)
        task = self.spec.task
        if task == "classify":
            return self._classify(image)
        if task == "detect":
            return self._detect(image)
        if task == "pose":
            return self._pose(image)
        return self._embed(image)

    def close(self) -> None:
        """Mark the model closed; later predictions fail."""
        self.closed = True

    def _classify(self, image: np.ndarray) -> Classifications:
        red, green, blue = _mean_colour(image)
        shift = np.array([red, green, blue, 0, 0, 0], np.float32) * 0.1
        scores = _CLASS_BASE + shift
        return Classifications.from_scores(
            scores / scores.sum(),
            self.spec.labels or CLASS_LABELS,
            top_k=self.spec.top_k,
            min_score=self.spec.score_threshold,
        )

    def _detect(self, image: np.ndarray) -> Detections:
        height, width = image.shape[:2]
        red, green, _ = _mean_colour(image)
        ids = np.array([cid for cid, _, _ in _OBJECTS], np.int64)
        scores = np.array([base for _, base, _ in _OBJECTS], np.float32)
        scores = scores * (0.9 + 0.1 * red) + 0.05 * green
        scale = np.array([width, height, width, height], np.float32)
        boxes = np.array([box for _, _, box in _OBJECTS], np.float32) * scale
        detections = Detections.from_arrays(
            boxes, scores, ids, names=self.spec.labels or DETECT_LABELS
        )
        kept = detections[detections.confidence >= self.spec.score_threshold]
        return kept[: self.spec.max_results]

    def _pose(self, image: np.ndarray) -> Poses:
        height, width = image.shape[:2]
        _, green, blue = _mean_colour(image)
        confidence = np.clip(_JOINT_CONFIDENCE * (0.9 + 0.1 * green), 0, 1)
        points = _SKELETON * np.array([width, height], np.float32)
        score = float(confidence.mean()) * (0.95 + 0.05 * blue)
        poses = Poses.from_arrays(points[None], confidence[None], COCO_17, np.array([score]))
        return poses[poses.scores >= self.spec.score_threshold]

    def _embed(self, image: np.ndarray) -> Embeddings:
        height, width = image.shape[:2]
        half_h, half_w = max(1, height // 2), max(1, width // 2)
        quadrants = [
            image[:half_h, :half_w],
            image[:half_h, half_w:],
            image[half_h:, :half_w],
            image[half_h:, half_w:],
        ]
        means = [_mean_colour(q) if q.size else (0.0, 0.0, 0.0) for q in quadrants]
        vector = np.array([c for mean in means for c in (*mean, sum(mean) / 3)], np.float32)
        return Embeddings.from_array(vector)


def default_spec(task: Task) -> ModelSpec:
    """Return the spec the fake model uses for ``task`` when none is given."""
    labels: list[str] | None = None
    if task == "classify":
        labels = list(CLASS_LABELS)
    elif task == "detect":
        labels = list(DETECT_LABELS)
    keypoints = "coco-17" if task == "pose" else None
    return ModelSpec(task=task, labels=labels, keypoint_schema=keypoints, score_threshold=0.0)


def _mean_colour(image: np.ndarray) -> tuple[float, float, float]:
    """Mean red, green and blue of ``image`` in 0..1."""
    red, green, blue = (image.reshape(-1, 3).mean(axis=0) / 255.0).tolist()
    return float(red), float(green), float(blue)
