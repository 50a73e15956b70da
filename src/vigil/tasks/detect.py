"""Object detection: boxes, scores and classes from SSD, YOLO and already-suppressed outputs.

Decoders:

- ``ssd``: TFLite_Detection_PostProcess outputs: boxes (1, N, 4) as ymin, xmin, ymax, xmax
  normalised to the input, classes (1, N), scores (1, N), count (1,).
- ``yolo``: Ultralytics v8/v11 (1, 4 + classes, N) or YOLOv5-style (1, N, 5 + classes) with
  objectness; boxes cx, cy, w, h in input pixels; non-maximum suppression per class or across
  classes (``spec.class_agnostic_nms``).
- ``boxes-scores``: already suppressed ``dets`` (1, N, 5: x1, y1, x2, y2, score) in input pixels
  and ``labels`` (1, N), as RTMDet exports from mmdeploy write.

Boxes come back in frame pixels, clipped to the frame. Class ids beyond the spec's labels are
named by their number.
"""

from __future__ import annotations

from typing import Any, ClassVar

import cv2
import numpy as np

from vigil.errors import ModelError
from vigil.models.inspect import (
    SsdOutputs,
    YoloLayout,
    boxes_scores_outputs,
    ssd_outputs,
    yolo_layout,
)
from vigil.models.spec import ModelSpec, Task
from vigil.results import Detections
from vigil.runtimes.base import TensorModel
from vigil.tasks.base import FileTaskModel, output_shapes
from vigil.tasks.preprocess import InputMapping

YOLO_PREPROCESS: dict[str, Any] = {
    "resize": "letterbox",
    "pad_value": 114,
    "mean": (0.0, 0.0, 0.0),
    "std": (255.0, 255.0, 255.0),
}
"""Ultralytics input: letterboxed with grey 114, RGB, 0..1."""

MMDET_PREPROCESS: dict[str, Any] = {
    "resize": "letterbox",
    "pad_value": 114,
    "color": "bgr",
    "mean": (103.53, 116.28, 123.675),
    "std": (57.375, 57.12, 58.395),
}
"""MMDetection (RTMDet) input: BGR, ImageNet mean and std in BGR order."""

DECODER_DEFAULTS: dict[str, dict[str, Any]] = {
    "ssd": {},
    "yolo": {"preprocess": YOLO_PREPROCESS},
    "boxes-scores": {"preprocess": MMDET_PREPROCESS},
}
"""Spec values each detect decoder starts from; the file's and the user's values win."""


class DetectModel(FileTaskModel[Detections]):
    """An object detector; ``spec.decoder`` names its output layout.

    Raises:
        ModelError: the outputs do not fit the decoder, or a YOLO output does not fit the
            number of labels.
    """

    task: ClassVar[Task] = "detect"
    fallback_size: ClassVar[tuple[int, int] | None] = (640, 640)

    def __init__(self, model: TensorModel, spec: ModelSpec) -> None:
        super().__init__(model, spec)
        self._ssd: SsdOutputs | None = None
        self._dets: tuple[int, int] | None = None
        if spec.decoder == "ssd":
            self._ssd = ssd_outputs(model.outputs)
            fits = self._ssd is not None
        elif spec.decoder == "boxes-scores":
            self._dets = boxes_scores_outputs(model.outputs)
            fits = self._dets is not None
        else:
            fits = len(model.outputs) == 1 and bool(
                yolo_layout(model.outputs[0].shape, self.class_count)
            )
        if not fits:
            classes = f" with {self.class_count} classes" if self.class_count else ""
            raise ModelError(
                f"the {spec.decoder} decoder{classes} does not fit the outputs of {model.path}: "
                f"{output_shapes(model)}; {_LAYOUTS[spec.decoder]}"
            )

    @property
    def class_count(self) -> int | None:
        """Classes named by the spec, counting outputs before the first label; None if unnamed."""
        if self.spec.labels is None:
            return None
        return len(self.spec.labels) + self.spec.label_offset

    def decode(self, outputs: list[np.ndarray], mapping: InputMapping) -> Detections:
        """Decode the outputs with the spec's decoder."""
        if self._ssd is not None:
            found = self._decode_ssd(outputs, self._ssd, mapping)
        elif self._dets is not None:
            found = self._decode_boxes_scores(outputs, *self._dets, mapping)
        else:
            found = self._decode_yolo(outputs[0], mapping)
        return found[: self.spec.max_results]

    def _detections(
        self, xyxy: np.ndarray, scores: np.ndarray, class_id: np.ndarray, mapping: InputMapping
    ) -> Detections:
        """Build detections from input-pixel boxes: thresholded, best first, in frame pixels."""
        keep = scores >= self.spec.score_threshold
        order = np.argsort(-scores[keep], kind="stable")
        return Detections.from_arrays(
            mapping.boxes_to_frame(xyxy[keep][order]),
            scores[keep][order],
            class_id[keep][order],
            names=self.spec.labels,
            label_offset=self.spec.label_offset,
        )

    def _decode_ssd(
        self, outputs: list[np.ndarray], where: SsdOutputs, mapping: InputMapping
    ) -> Detections:
        count = int(outputs[where.count].reshape(-1)[0])
        boxes = outputs[where.boxes].reshape(-1, 4)[:count]
        classes = outputs[where.classes].reshape(-1)[:count]
        scores = outputs[where.scores].reshape(-1)[:count]
        if not _integral(classes) and _integral(scores):  # an export that lists them swapped
            classes, scores = scores, classes
        size = np.array([self.input.width, self.input.height] * 2, np.float32)
        xyxy = boxes[:, [1, 0, 3, 2]] * size  # ymin, xmin, ymax, xmax (0..1) -> input pixels
        return self._detections(xyxy, scores, np.round(classes), mapping)

    def _decode_boxes_scores(
        self, outputs: list[np.ndarray], dets: int, labels: int, mapping: InputMapping
    ) -> Detections:
        rows = outputs[dets].reshape(-1, 5)
        classes = outputs[labels].reshape(-1)
        return self._detections(rows[:, :4], rows[:, 4], np.round(classes), mapping)

    def _decode_yolo(self, raw: np.ndarray, mapping: InputMapping) -> Detections:
        layout = yolo_layout(raw.shape, self.class_count)
        if layout is None:
            raise ModelError(f"the yolo decoder does not fit an output of shape {raw.shape}")
        rows = _yolo_rows(raw, layout)
        class_scores = rows[:, 5:] * rows[:, 4:5] if layout.objectness else rows[:, 4:]
        class_id = class_scores.argmax(axis=1)
        scores = class_scores.max(axis=1)
        keep = scores >= self.spec.score_threshold
        xyxy = _xyxy_from_centre(rows[keep, :4])
        chosen = non_max_suppression(
            xyxy,
            scores[keep],
            class_id[keep],
            self.spec.iou_threshold,
            class_agnostic=self.spec.class_agnostic_nms,
        )
        return self._detections(xyxy[chosen], scores[keep][chosen], class_id[keep][chosen], mapping)


_LAYOUTS = {
    "ssd": "ssd needs boxes (1, N, 4), classes (1, N), scores (1, N) and count (1,)",
    "yolo": "yolo needs one output (1, 4 + classes, N) or (1, N, 5 + classes), one label per class",
    "boxes-scores": "boxes-scores needs dets (1, N, 5) and labels (1, N)",
}


def non_max_suppression(
    xyxy: np.ndarray,
    scores: np.ndarray,
    class_id: np.ndarray,
    iou_threshold: float,
    *,
    class_agnostic: bool = False,
) -> np.ndarray:
    """Return the indices of the boxes kept by greedy non-maximum suppression, best first.

    A box is dropped when it overlaps a better-scored kept box (of the same class, unless
    ``class_agnostic``) by more than ``iou_threshold`` intersection over union.
    """
    if len(xyxy) == 0:
        return np.zeros(0, np.int64)
    xywh: Any = np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1)
    score_list: Any = scores.astype(np.float32)
    if class_agnostic:
        kept = cv2.dnn.NMSBoxes(xywh, score_list, 0.0, iou_threshold)
    else:
        classes: Any = class_id.astype(np.int32)
        kept = cv2.dnn.NMSBoxesBatched(xywh, score_list, classes, 0.0, iou_threshold)
    indices = np.asarray(kept, np.int64).reshape(-1)
    return indices[np.argsort(-scores[indices], kind="stable")]


def _yolo_rows(raw: np.ndarray, layout: YoloLayout) -> np.ndarray:
    """One row per candidate box: cx, cy, w, h, [objectness], class scores."""
    batch = raw[0]
    return np.ascontiguousarray(batch.T if layout.channels_first else batch)


def _xyxy_from_centre(cxcywh: np.ndarray) -> np.ndarray:
    centre, half = cxcywh[:, :2], cxcywh[:, 2:4] / 2
    return np.concatenate([centre - half, centre + half], axis=1)


def _integral(values: np.ndarray) -> bool:
    return bool(np.all(values == np.round(values)))
