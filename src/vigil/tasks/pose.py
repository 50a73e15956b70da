"""Pose estimation with keypoint model files: MoveNet, YOLO-pose and RTMPose output layouts.

Each layout has a decoder that turns the real-valued output tensors into
:class:`~vigil.results.Poses` in frame pixels, clipped to the frame. The layout is read from the
model's output shapes unless the spec names it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from vigil.errors import ModelError
from vigil.models.inspect import pose_decoder
from vigil.models.spec import ModelSpec, Task
from vigil.results import COCO_17, SCHEMAS, KeypointSchema, Poses
from vigil.runtimes.base import TensorModel
from vigil.tasks.base import FileTaskModel, output_shapes
from vigil.tasks.detect import YOLO_PREPROCESS, non_max_suppression
from vigil.tasks.preprocess import InputMapping

PoseFormat = Literal["movenet", "movenet-multipose", "yolo-pose", "rtmpose"]
POSE_FORMATS: tuple[PoseFormat, ...] = ("movenet", "movenet-multipose", "yolo-pose", "rtmpose")
"""The keypoint file layouts; MediaPipe's BlazePose is the other pose decoder."""

_COCO = {"keypoint_schema": "coco-17"}
DECODER_DEFAULTS: dict[str, dict[str, Any]] = {
    "movenet": {**_COCO, "preprocess": {"resize": "letterbox"}},
    "movenet-multipose": {**_COCO, "preprocess": {"resize": "letterbox"}},
    "yolo-pose": {**_COCO, "preprocess": YOLO_PREPROCESS},
    "rtmpose": {
        **_COCO,
        "preprocess": {
            "resize": "letterbox",
            "mean": (123.675, 116.28, 103.53),
            "std": (58.395, 57.12, 57.375),
        },
    },
    "mediapipe": {"keypoint_schema": "mediapipe-33", "score_threshold": 0.5},
}
"""Spec values each pose decoder starts from: MoveNet takes raw pixels, YOLO-pose 0..1 with
grey padding, RTMPose ImageNet normalisation; MediaPipe's person detector its own threshold."""


def detect_pose_format(model: TensorModel) -> PoseFormat:
    """Tell the output layout from the model's output shapes.

    Raises:
        ModelError: the outputs match no known layout.
    """
    found = pose_decoder([o.shape for o in model.outputs])
    if found is None:
        raise ModelError(
            f"cannot tell the keypoint layout of {model.path} from its outputs "
            f"{output_shapes(model)}; set the pose model's format to one of: "
            f"{', '.join(POSE_FORMATS)}"
        )
    return next(f for f in POSE_FORMATS if f == found)


@dataclass(frozen=True, slots=True)
class DecodeSettings:
    """What a keypoint decoder needs besides the outputs.

    Attributes:
        width: Model input width in pixels.
        height: Model input height in pixels.
        min_score: Drop people scored below this.
        nms_iou: Overlap above which duplicate people are merged.
        max_people: Most people kept.
    """

    width: int
    height: int
    min_score: float
    nms_iou: float
    max_people: int


class PoseModel(FileTaskModel[Poses]):
    """A keypoint model file (ONNX or TFLite) with the decoder its output layout needs.

    Raises:
        ModelError: the outputs do not fit the decoder, or the spec's keypoint schema is not
            COCO-17 (the layout of every keypoint file decoder).
    """

    task: ClassVar[Task] = "pose"
    fallback_size: ClassVar[tuple[int, int] | None] = (640, 640)

    def __init__(self, model: TensorModel, spec: ModelSpec) -> None:
        super().__init__(model, spec)
        if spec.decoder not in _DECODERS:
            raise ModelError(
                f"pose decoder {spec.decoder!r} does not run model files; use one of "
                f"{', '.join(POSE_FORMATS)}"
            )
        _check_fits(model, spec.decoder)
        if spec.keypoint_schema not in (None, COCO_17.name):
            raise ModelError(
                f"the {spec.decoder} decoder gives COCO-17 keypoints, but the spec of "
                f"{model.path} says {spec.keypoint_schema}"
            )
        self._decode = _DECODERS[spec.decoder]

    @property
    def schema(self) -> KeypointSchema:
        """The keypoint layout of the results."""
        return SCHEMAS[self.spec.keypoint_schema or COCO_17.name]

    def decode(self, outputs: list[np.ndarray], mapping: InputMapping) -> Poses:
        """Decode the people's keypoints with the spec's decoder."""
        settings = DecodeSettings(
            width=self.input.width,
            height=self.input.height,
            min_score=self.spec.score_threshold,
            nms_iou=self.spec.iou_threshold,
            max_people=self.spec.max_results,
        )
        return self._decode(outputs, mapping, settings)[: settings.max_people]


def _check_fits(model: TensorModel, decoder: str) -> None:
    shapes = [o.shape for o in model.outputs]
    fits = {
        "movenet": len(shapes) == 1 and int(np.prod([d or 1 for d in shapes[0]])) == 51,
        "movenet-multipose": len(shapes) == 1 and shapes[0][-1] in (56, None),
        "yolo-pose": len(shapes) == 1 and len(shapes[0]) == 3,
        "rtmpose": len(shapes) == 2 and all(len(s) == 3 for s in shapes),
    }
    if not fits[decoder]:
        raise ModelError(
            f"the {decoder} decoder does not fit the outputs of {model.path}: "
            f"{output_shapes(model)}; set the spec's decoder to one of {', '.join(POSE_FORMATS)}"
        )


def _decode_movenet(
    outputs: list[np.ndarray], mapping: InputMapping, settings: DecodeSettings
) -> Poses:
    kp = outputs[0].reshape(1, 17, 3)
    return _poses_from_yx(kp[..., :2], kp[..., 2], None, None, mapping=mapping, settings=settings)


def _decode_movenet_multipose(
    outputs: list[np.ndarray], mapping: InputMapping, settings: DecodeSettings
) -> Poses:
    people = outputs[0].reshape(-1, 56)
    kp = people[:, :51].reshape(-1, 17, 3)
    boxes_yx = people[:, 51:55].reshape(-1, 2, 2)  # ymin, xmin, ymax, xmax
    return _poses_from_yx(
        kp[..., :2], kp[..., 2], people[:, 55], boxes_yx, mapping=mapping, settings=settings
    )


def _poses_from_yx(
    yx: np.ndarray,
    confidence: np.ndarray,
    scores: np.ndarray | None,
    boxes_yx: np.ndarray | None,
    *,
    mapping: InputMapping,
    settings: DecodeSettings,
) -> Poses:
    """MoveNet gives (y, x) normalised to the model input."""
    size = np.array([settings.width, settings.height], np.float32)
    xy = mapping.to_frame(yx[..., ::-1] * size)
    boxes = None if boxes_yx is None else mapping.to_frame(boxes_yx[..., ::-1] * size)
    poses = Poses.from_arrays(xy, confidence, COCO_17, scores, boxes)
    return poses[poses.scores >= settings.min_score]


def _decode_yolo_pose(
    outputs: list[np.ndarray], mapping: InputMapping, settings: DecodeSettings
) -> Poses:
    raw = outputs[0][0]
    rows = raw if raw.shape[1] == 56 and raw.shape[0] != 56 else raw.T  # (N, 56)
    rows = rows[rows[:, 4] >= settings.min_score]
    if len(rows) == 0:
        return Poses.empty(COCO_17)
    centre, half = rows[:, :2], rows[:, 2:4] / 2
    xyxy = np.concatenate([centre - half, centre + half], axis=1)
    chosen = non_max_suppression(xyxy, rows[:, 4], np.zeros(len(rows), np.int64), settings.nms_iou)
    rows, xyxy = rows[chosen], xyxy[chosen]
    kp = rows[:, 5:].reshape(-1, 17, 3)
    return Poses.from_arrays(
        mapping.to_frame(kp[..., :2]),
        kp[..., 2],
        COCO_17,
        rows[:, 4],
        mapping.boxes_to_frame(xyxy),
    )


def _decode_rtmpose(
    outputs: list[np.ndarray], mapping: InputMapping, settings: DecodeSettings
) -> Poses:
    simcc_x, simcc_y = outputs[0][0], outputs[1][0]  # (K, W * ratio), (K, H * ratio)
    ratio_x, ratio_y = simcc_x.shape[1] / settings.width, simcc_y.shape[1] / settings.height
    x = simcc_x.argmax(axis=1) / ratio_x
    y = simcc_y.argmax(axis=1) / ratio_y
    confidence = np.minimum(simcc_x.max(axis=1), simcc_y.max(axis=1))
    xy = np.stack([x, y], axis=1).astype(np.float32)[None]
    poses = Poses.from_arrays(mapping.to_frame(xy), confidence[None], COCO_17)
    return poses[poses.scores >= settings.min_score]


_Decoder = Callable[[list[np.ndarray], InputMapping, DecodeSettings], Poses]
_DECODERS: dict[str, _Decoder] = {
    "movenet": _decode_movenet,
    "movenet-multipose": _decode_movenet_multipose,
    "yolo-pose": _decode_yolo_pose,
    "rtmpose": _decode_rtmpose,
}
