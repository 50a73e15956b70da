"""The posture tracker: pose keypoints -> sitting / standing / hunched -> reminders and records.

A camera beside the desk sees the person in profile. Every frame is classified; the state is
smoothed over a second; sitting and hunching timers send reminders; one record per second is kept.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from vigil.annotate import GREEN, GREY, ORANGE, RED, Color, draw_box, draw_panel, draw_skeleton
from vigil.apps.base import AppConfig, AppParts, DeviceId
from vigil.events import iso_time
from vigil.frame import Frame
from vigil.rules.posture import (
    PostureClassifier,
    PostureReading,
    PostureRulesConfig,
    main_person,
)
from vigil.rules.reminders import RemindersConfig
from vigil.rules.tracker import APP, PostureStatus, PostureTracker
from vigil.stages.base import FrameResults, Stage
from vigil.stages.crops import DetectorConfig, DetectStage, PerObjectStage
from vigil.stages.pose import MediaPipePoseConfig, PoseConfig, PoseStage, build_pose_model

STATE_COLORS: dict[str, Color] = {"sitting": ORANGE, "standing": GREEN, "unknown": GREY}


class PostureConfig(AppConfig):
    """Config of ``vigil run posture``."""

    device_id: DeviceId = Field(
        "desk", description="Names this camera in records, MQTT topics and the hub."
    )
    pose: PoseConfig = Field(
        default_factory=MediaPipePoseConfig,
        description="The pose model: {type: mediapipe} (default, offline) or "
        "{type: keypoints, model: movenet.tflite | rtmpose.onnx | yolo-pose.onnx | a registered "
        "name such as posture-pose@production}.",
    )
    rules: PostureRulesConfig = Field(
        default_factory=PostureRulesConfig, description="Posture thresholds."
    )
    reminders: RemindersConfig = Field(
        default_factory=RemindersConfig, description="When to remind."
    )
    detector: DetectorConfig | None = Field(
        None,
        description="Find people with a detector first and run the pose model on each one "
        "(several people, or a person far from the camera); the largest person is tracked. "
        "Off unless set.",
    )


class PostureApp:
    """``vigil run posture``."""

    name: ClassVar[str] = APP
    summary: ClassVar[str] = "sitting / standing / hunching from a side-view camera, with reminders"
    config_model: ClassVar[type[AppConfig]] = PostureConfig

    def build(self, config: PostureConfig, stills: bool) -> AppParts:
        """Load the models and create the tracker."""
        tracker = PostureTracker(
            config.device_id,
            config.rules,
            config.reminders,
            stills=stills,
            classifier=_classifier(config.rules),
        )
        min_confidence = config.rules.min_keypoint_confidence
        return AppParts(
            stages=_stages(config, stills),
            rules=[tracker],
            annotate=lambda frame, results: annotate_posture(frame, results, min_confidence),
            describe=describe_posture,
        )


def _classifier(rules: PostureRulesConfig) -> PostureClassifier | None:
    """Load the learned classifier that ``rules.learned_classifier`` names, if any."""
    if rules.learned_classifier is None:
        return None
    from vigil.rules.learned import open_posture_classifier

    return open_posture_classifier(rules.learned_classifier)


def _stages(config: PostureConfig, stills: bool) -> list[Stage]:
    """Pose on the whole frame, or a person detector feeding crops to the pose model."""
    if config.detector is None:
        return [PoseStage(build_pose_model(config.pose, video=not stills))]
    from vigil.models.opening import open_model

    detector = config.detector
    found = open_model(detector.model, task="detect")
    pose = build_pose_model(config.pose, video=False)  # crops move: no tracking across frames
    return [
        DetectStage(found.model, detector.classes, detector.min_score, detector.max_objects),
        PerObjectStage(pose, margin=detector.crop_margin),
    ]


def describe_posture(frame: Frame, results: FrameResults) -> dict[str, Any]:
    """Return one frame's JSON line: where it came from, posture, angles and keypoints."""
    status: PostureStatus = results.extras[APP]
    reading = status.reading
    line: dict[str, Any] = {"frame": frame.index}
    if frame.path is not None:
        line["image"] = frame.path
    line |= {
        "timestamp": math.floor(frame.timestamp * 1000) / 1000,  # same millisecond as "time"
        "time": iso_time(frame.timestamp),
        "person": reading.person,
        "state": reading.state,
        "hunched": reading.hunched,
        "side": reading.side,
        "angles": reading.angles.as_dict(),
        "confidence": round(reading.confidence, 3),
        "sitting_seconds": round(status.sitting_seconds, 1),
        "hunched_seconds": round(status.hunched_seconds, 1),
        "raw": {"state": status.raw.state, "hunched": status.raw.hunched},
    }
    line["keypoints"] = _keypoints(results)
    return line


def _keypoints(results: FrameResults) -> list[dict[str, Any]]:
    poses = results.poses
    if poses is None or len(poses) == 0:
        return []
    main = main_person(poses)
    return [
        {
            "name": name,
            "x": round(float(x), 1),
            "y": round(float(y), 1),
            "confidence": round(float(c), 3),
        }
        for name, (x, y), c in zip(
            poses.schema.names, poses.keypoints[main], poses.confidence[main], strict=True
        )
    ]


def annotate_posture(
    frame: Frame, results: FrameResults, min_confidence: float = 0.5
) -> np.ndarray:
    """Draw the skeleton, the person box, the state, the angles and the timers on a copy."""
    image = frame.image.copy()
    status: PostureStatus = results.extras[APP]
    reading = status.reading
    poses = results.poses
    if poses is not None and len(poses) and reading.person:
        main = main_person(poses)
        for other in (i for i in range(len(poses)) if i != main):
            draw_skeleton(image, poses[other], min_confidence, color=GREY)
        draw_skeleton(image, poses[main], min_confidence)
        box = poses.xyxy[main] if poses.xyxy is not None else poses[main].boxes(min_confidence)[0]
        draw_box(image, box, STATE_COLORS[reading.state], reading.state)
    draw_panel(image, _panel_lines(reading, status))
    return image


def _panel_lines(reading: PostureReading, status: PostureStatus) -> list[tuple[str, Color]]:
    if not reading.person:
        return [("nobody there", GREY)]
    hunch = ("HUNCHED", RED) if reading.hunched else ("upright", GREEN)
    angles = reading.angles.as_dict()
    shown = "  ".join(f"{k} {v:.0f}" for k, v in angles.items() if v is not None) or "no angles"
    return [
        (reading.state.upper(), STATE_COLORS[reading.state]),
        hunch,
        (f"deg: {shown}", GREY),
        (
            f"sitting {_clock(status.sitting_seconds)}  hunched {_clock(status.hunched_seconds)}",
            GREY,
        ),
    ]


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"
