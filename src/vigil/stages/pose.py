"""The pose stage and its config: which pose model runs, chosen in config, not code."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Protocol

import numpy as np
from pydantic import Field

from vigil.config import ConfigModel
from vigil.errors import ModelError
from vigil.frame import Frame
from vigil.models.spec import ModelSpec
from vigil.results import KeypointSchema, Poses
from vigil.stages.base import FrameResults
from vigil.tasks.pose import POSE_FORMATS, PoseFormat


class PoseEstimator(Protocol):
    """Anything that finds people's keypoints in an RGB image: a pose task model."""

    spec: ModelSpec

    @property
    def schema(self) -> KeypointSchema:
        """The keypoint layout of the results."""

    def predict(self, image: np.ndarray) -> Poses:
        """Return the people in ``image`` with keypoints in its pixel coordinates."""

    def reset(self) -> None:
        """Forget state carried between frames."""

    def close(self) -> None:
        """Release the model."""


PoseModel = PoseEstimator
"""The name apps annotate pose models with."""


class MediaPipePoseConfig(ConfigModel):
    """MediaPipe BlazePose (33 landmarks), bundled with ``vigil[pose]``: the offline default."""

    type: Literal["mediapipe"] = Field("mediapipe", description="Selects MediaPipe BlazePose.")
    model_complexity: Literal[0, 1, 2] = Field(
        1, description="1 ships with mediapipe; 0 (lite) and 2 (heavy) are downloaded on first use."
    )
    min_detection_confidence: float = Field(
        0.5, ge=0.0, le=1.0, description="Person detection threshold."
    )
    min_tracking_confidence: float = Field(
        0.8,
        ge=0.0,
        le=1.0,
        description="Below this, tracking gives up and the person detector runs again. At 0.5 the "
        "tracker kept 'finding' a person on an empty table for 30 of 30 frames after a scene "
        "change; at 0.8 for 1 of 30, with the same detections on the people clip.",
    )


class KeypointModelConfig(ConfigModel):
    """A 17-keypoint COCO pose model: MoveNet (.tflite), RTMPose or YOLO-pose (.onnx)."""

    type: Literal["keypoints"] = Field("keypoints", description="Selects a keypoint model.")
    model: str = Field(
        description="A model file (.tflite, .onnx) or a registry reference: name, name:3, "
        "name@production.",
        min_length=1,
    )
    format: PoseFormat | Literal["auto"] = Field(
        "auto",
        description=f"Output layout, one of {', '.join(POSE_FORMATS)}; auto reads it "
        "from the model or its registered spec.",
    )
    threads: int = Field(2, ge=1, le=64, description="Inference threads.")
    min_person_score: float | None = Field(
        None, ge=0.0, le=1.0, description="Drop people scored below this; null: the model's own."
    )
    nms_iou: float | None = Field(
        None, gt=0.0, le=1.0, description="Merge people overlapping more; null: the model's own."
    )

    def overrides(self) -> dict[str, Any]:
        """Return the spec fields this config sets."""
        given = {
            "score_threshold": self.min_person_score,
            "iou_threshold": self.nms_iou,
            "decoder": None if self.format == "auto" else self.format,
        }
        return {key: value for key, value in given.items() if value is not None}


PoseConfig = Annotated[MediaPipePoseConfig | KeypointModelConfig, Field(discriminator="type")]


def build_pose_model(
    config: MediaPipePoseConfig | KeypointModelConfig, video: bool = True
) -> PoseEstimator:
    """Load the pose model ``config`` names.

    A keypoint model is opened by reference (file or registry) with its spec, the config's
    values winning.

    Args:
        config: The ``pose`` section of an app config.
        video: Frames are consecutive (tracking helps); False for unrelated photos or crops.

    Raises:
        ModelError: the model is unknown, missing, not a model, or not a keypoint model.
    """
    if isinstance(config, MediaPipePoseConfig):
        from vigil.runtimes.mediapipe import MediaPipePose

        return MediaPipePose(
            model_complexity=config.model_complexity,
            video=video,
            min_detection_confidence=config.min_detection_confidence,
            min_tracking_confidence=config.min_tracking_confidence,
        )
    from vigil.models.opening import open_model
    from vigil.tasks import PoseModel as KeypointFileModel

    opened = open_model(
        config.model, task="pose", overrides=config.overrides(), threads=config.threads
    )
    if not isinstance(opened.model, KeypointFileModel):
        opened.model.close()
        raise ModelError(f"{config.model} is not a keypoint model")
    return opened.model


class PoseStage:
    """Runs a pose model on each frame and puts the people into ``results.poses``."""

    def __init__(self, model: PoseEstimator) -> None:
        self.model = model

    def run(self, frame: Frame, results: FrameResults) -> FrameResults:
        """Estimate poses for ``frame``."""
        results.poses = self.model.predict(frame.image)
        return results

    def close(self) -> None:
        """Release the model."""
        self.model.close()
