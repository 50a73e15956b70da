"""Pose estimation with keypoint model files: MoveNet, YOLO-pose and RTMPose output layouts.

Each layout has a decoder that turns the raw output tensors into :class:`~vigil.results.Poses`
in frame pixels. The layout is read from the model's output shapes unless configured.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from vigil.errors import ModelError
from vigil.results import COCO_17, KeypointSchema, Poses
from vigil.runtimes.base import TensorModel, TensorSpec
from vigil.tasks.preprocess import Letterbox, letterbox, to_layout

PoseFormat = Literal["movenet", "movenet-multipose", "yolo-pose", "rtmpose"]
POSE_FORMATS: tuple[PoseFormat, ...] = ("movenet", "movenet-multipose", "yolo-pose", "rtmpose")

_RTMPOSE_MEAN = np.array([123.675, 116.28, 103.53], np.float32)
_RTMPOSE_STD = np.array([58.395, 57.12, 57.375], np.float32)


@dataclass(frozen=True, slots=True)
class DecodeSettings:
    """Thresholds applied while decoding."""

    min_person_score: float = 0.2
    nms_iou: float = 0.45


def detect_pose_format(model: TensorModel) -> PoseFormat:
    """Tell the output layout from the model's output shapes.

    Raises:
        ModelError: the outputs match no known layout.
    """
    shapes = [o.shape for o in model.outputs]
    if len(shapes) == 1:
        shape = shapes[0]
        if len(shape) == 4 and shape[1:] == (1, 17, 3):
            return "movenet"
        if len(shape) == 3 and shape[2] == 56 and shape[1] is not None and shape[1] <= 10:
            return "movenet-multipose"
        if len(shape) == 3 and 56 in shape[1:]:
            return "yolo-pose"
    if len(shapes) == 2 and all(len(s) == 3 and s[1] == shapes[0][1] for s in shapes):
        return "rtmpose"
    raise ModelError(
        f"cannot tell the keypoint layout of {model.path} from its outputs {shapes}; "
        f"set the pose model's format to one of: {', '.join(POSE_FORMATS)}"
    )


class KeypointModel:
    """A pose model file (ONNX or TFLite) with the pre- and post-processing its layout needs.

    Args:
        model: The loaded tensor model.
        pose_format: The output layout; detected from the outputs when None.
        settings: Decoding thresholds.
    """

    schema: KeypointSchema = COCO_17

    def __init__(
        self,
        model: TensorModel,
        pose_format: PoseFormat | None = None,
        settings: DecodeSettings | None = None,
    ) -> None:
        if len(model.inputs) != 1:
            raise ModelError(
                f"pose model {model.path} must have one image input, has {len(model.inputs)}"
            )
        self.model = model
        self.format: PoseFormat = pose_format or detect_pose_format(model)
        self.settings = settings or DecodeSettings()
        self._input = model.inputs[0]
        self._channels_first, self._width, self._height = _input_geometry(self._input, model.path)
        self._decode = _DECODERS[self.format]

    def infer(self, image: np.ndarray) -> Poses:
        """Find people in an RGB frame; keypoints come back in frame pixels."""
        fill = 114 if self.format == "yolo-pose" else 0
        padded, box = letterbox(image, self._width, self._height, fill=fill)
        batch = to_layout(self._normalise(padded), self._channels_first)
        outputs = self.model.run([batch])
        real = [spec.dequantize(out) for spec, out in zip(self.model.outputs, outputs, strict=True)]
        return self._decode(real, box, self._width, self._height, self.settings)

    def reset(self) -> None:
        """Keypoint models keep no state between frames."""

    def close(self) -> None:
        """Release the model."""
        self.model.close()

    def _normalise(self, padded: np.ndarray) -> np.ndarray:
        spec = self._input
        if self.format == "rtmpose":
            values = (padded.astype(np.float32) - _RTMPOSE_MEAN) / _RTMPOSE_STD
        elif self.format == "yolo-pose":
            values = padded.astype(np.float32) / 255.0
        else:  # MoveNet takes pixel values 0..255 in whatever dtype its input has
            values = padded.astype(np.float32)
        if spec.quantized:
            values = np.round(values / spec.scale + spec.zero_point)
        if np.issubdtype(spec.dtype, np.integer):
            info = np.iinfo(spec.dtype)
            values = np.clip(values, info.min, info.max)
        return values.astype(spec.dtype)


def _input_geometry(spec: TensorSpec, path: str) -> tuple[bool, int, int]:
    shape = spec.shape
    if len(shape) != 4:
        raise ModelError(f"pose model {path} input must be a batch of images, has shape {shape}")
    channels_first = shape[1] == 3
    height, width = (shape[2], shape[3]) if channels_first else (shape[1], shape[2])
    if height is None or width is None:
        height, width = 640, 640  # dynamic input: the usual size of detection-style pose models
    return channels_first, int(width), int(height)


def _decode_movenet(
    outputs: list[np.ndarray], box: Letterbox, width: int, height: int, settings: DecodeSettings
) -> Poses:
    kp = outputs[0].reshape(1, 17, 3)
    return _poses_from_yx(
        kp[..., :2], kp[..., 2], None, box=box, width=width, height=height, settings=settings
    )


def _decode_movenet_multipose(
    outputs: list[np.ndarray], box: Letterbox, width: int, height: int, settings: DecodeSettings
) -> Poses:
    people = outputs[0].reshape(-1, 56)
    kp = people[:, :51].reshape(-1, 17, 3)
    return _poses_from_yx(
        kp[..., :2],
        kp[..., 2],
        people[:, 55],
        box=box,
        width=width,
        height=height,
        settings=settings,
    )


def _poses_from_yx(
    yx: np.ndarray,
    confidence: np.ndarray,
    scores: np.ndarray | None,
    *,
    box: Letterbox,
    width: int,
    height: int,
    settings: DecodeSettings,
) -> Poses:
    """MoveNet gives (y, x) normalised to the model input."""
    xy = yx[..., ::-1] * np.array([width, height], np.float32)
    poses = Poses.from_arrays(box.to_frame(xy), confidence, COCO_17, scores)
    return poses[poses.scores >= settings.min_person_score]


def _decode_yolo_pose(
    outputs: list[np.ndarray], box: Letterbox, width: int, height: int, settings: DecodeSettings
) -> Poses:
    raw = outputs[0][0]
    rows = raw if raw.shape[1] == 56 and raw.shape[0] != 56 else raw.T  # (N, 56)
    keep = rows[:, 4] >= settings.min_person_score
    rows = rows[keep]
    if len(rows) == 0:
        return Poses.empty(COCO_17)
    cx, cy, w, h = rows[:, 0], rows[:, 1], rows[:, 2], rows[:, 3]
    boxes_xywh = np.stack([cx - w / 2, cy - h / 2, w, h], axis=1)
    chosen = cv2.dnn.NMSBoxes(
        boxes_xywh.tolist(), rows[:, 4].tolist(), settings.min_person_score, settings.nms_iou
    )
    rows = rows[np.asarray(chosen, dtype=np.int64).reshape(-1)]
    kp = rows[:, 5:].reshape(-1, 17, 3)
    return Poses.from_arrays(box.to_frame(kp[..., :2]), kp[..., 2], COCO_17, rows[:, 4])


def _decode_rtmpose(
    outputs: list[np.ndarray], box: Letterbox, width: int, height: int, settings: DecodeSettings
) -> Poses:
    simcc_x, simcc_y = outputs[0][0], outputs[1][0]  # (K, W * ratio), (K, H * ratio)
    ratio_x, ratio_y = simcc_x.shape[1] / width, simcc_y.shape[1] / height
    x = simcc_x.argmax(axis=1) / ratio_x
    y = simcc_y.argmax(axis=1) / ratio_y
    confidence = np.minimum(simcc_x.max(axis=1), simcc_y.max(axis=1))
    xy = np.stack([x, y], axis=1).astype(np.float32)[None]
    poses = Poses.from_arrays(box.to_frame(xy), confidence[None], COCO_17)
    return poses[poses.scores >= settings.min_person_score]


_Decoder = Callable[[list[np.ndarray], Letterbox, int, int, DecodeSettings], Poses]
_DECODERS: dict[PoseFormat, _Decoder] = {
    "movenet": _decode_movenet,
    "movenet-multipose": _decode_movenet_multipose,
    "yolo-pose": _decode_yolo_pose,
    "rtmpose": _decode_rtmpose,
}
