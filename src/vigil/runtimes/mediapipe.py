"""MediaPipe BlazePose: the pose model that ships inside the ``mediapipe`` wheel (works offline)."""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np

from vigil.errors import DependencyError, ModelError
from vigil.models.spec import ModelSpec
from vigil.native import MEDIAPIPE_NOISE, native_messages_to_log
from vigil.results import MEDIAPIPE_33, KeypointSchema, Poses
from vigil.tasks.preprocess import check_image

log = logging.getLogger(__name__)


def _pose_module() -> Any:
    try:
        from mediapipe.python.solutions import pose
    except ImportError:
        raise DependencyError(
            "mediapipe", "pose", "the default pose model (MediaPipe BlazePose)"
        ) from None
    # MediaPipe 0.10.14 calls a protobuf 4 API that warns on every graph; the call is MediaPipe's.
    warnings.filterwarnings("ignore", message=r"SymbolDatabase\.GetPrototype\(\) is deprecated")
    return pose


class MediaPipePose:
    """BlazePose through MediaPipe's pose solution; one person per frame, 33 landmarks.

    A task model like the model files: ``predict(image) -> Poses``; its spec is the
    ``mediapipe`` pose decoder with the MediaPipe-33 schema and the detection threshold as
    ``score_threshold``.

    Args:
        model_complexity: 0, 1 or 2. Only 1 (pose_landmark_full) ships inside the wheel; 0 and 2
            are downloaded by MediaPipe on first use and need a network.
        video: Track between frames (faster, steadier); False judges each image on its own.
        min_detection_confidence: Person detector threshold.
        min_tracking_confidence: Below this, tracking falls back to detection.
    """

    schema: KeypointSchema = MEDIAPIPE_33

    def __init__(
        self,
        model_complexity: int = 1,
        video: bool = True,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.8,
    ) -> None:
        self._settings = {
            "static_image_mode": not video,
            "model_complexity": model_complexity,
            "smooth_landmarks": video,
            "min_detection_confidence": min_detection_confidence,
            "min_tracking_confidence": min_tracking_confidence,
        }
        self.spec = ModelSpec(
            task="pose",
            decoder="mediapipe",
            keypoint_schema="mediapipe-33",
            score_threshold=min_detection_confidence,
            max_results=1,
        )
        self._solution = self._open()
        self._started = False

    def _open(self) -> Any:
        pose = _pose_module()
        try:
            with native_messages_to_log(MEDIAPIPE_NOISE, log):
                solution = pose.Pose(**self._settings)
                solution.process(np.zeros((64, 64, 3), np.uint8))  # starts the graph's threads
            return solution
        except Exception as exc:  # MediaPipe raises bare RuntimeErrors from its graph
            complexity = self._settings["model_complexity"]
            hint = (
                " (only model_complexity 1 ships with mediapipe; 0 and 2 are downloaded)"
                if complexity != 1
                else ""
            )
            raise ModelError(
                f"cannot start MediaPipe pose{hint}: {str(exc).splitlines()[0]}"
            ) from None

    def predict(self, image: np.ndarray) -> Poses:
        """Find the person in an RGB frame; landmarks come back in frame pixels.

        Raises:
            ModelError: the image is not RGB uint8.
        """
        check_image(image)
        if self._started:
            result = self._solution.process(image)
        else:  # the graph logs as it starts its detector, then its landmark model on a first person
            with native_messages_to_log(MEDIAPIPE_NOISE, log):
                result = self._solution.process(image)
            self._started = result.pose_landmarks is not None
        landmarks = result.pose_landmarks
        if landmarks is None:
            return Poses.empty(MEDIAPIPE_33)
        h, w = image.shape[:2]
        points = np.array(
            [(lm.x * w, lm.y * h, lm.visibility) for lm in landmarks.landmark], np.float32
        )
        return Poses.from_arrays(points[None, :, :2], points[None, :, 2], MEDIAPIPE_33)

    def reset(self) -> None:
        """Forget tracking state (e.g. between unrelated photos)."""
        self._solution.close()
        self._solution = self._open()
        self._started = False

    def close(self) -> None:
        """Release the MediaPipe graph."""
        self._solution.close()
