"""Detection decoders on tiny ONNX models with known outputs: layouts, mapping back, NMS."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.onnx_models import constant_output_model
from tests.tasks.tiny_models import with_metadata, yolo_model
from vigil.errors import ModelError
from vigil.models import ModelSpec
from vigil.tasks import DetectModel, load_model

FRAME = np.zeros((480, 640, 3), np.uint8)  # into 320 x 320 letterboxed: scale 0.5, 40 px bars
LABELS = ["person", "car", "dog"]


def v8_rows(boxes: list[tuple[float, float, float, float, int, float]]) -> np.ndarray:
    """Rows cx, cy, w, h, one score per class (the class's score, others 0.01)."""
    rows = np.full((len(boxes), 4 + len(LABELS)), 0.01, np.float32)
    for i, (cx, cy, w, h, cls, score) in enumerate(boxes):
        rows[i, :4] = (cx, cy, w, h)
        rows[i, 4 + cls] = score
    return rows


def detector(path: Path, rows: np.ndarray, **spec: object) -> DetectModel:
    model = load_model(yolo_model(path, rows), ModelSpec(task="detect", labels=LABELS, **spec))
    assert isinstance(model, DetectModel)
    return model


def test_yolo_v8_boxes_map_back_through_the_letterbox(tmp_path: Path) -> None:
    rows = v8_rows([(160, 160, 100, 50, 2, 0.9), (60, 100, 20, 40, 0, 0.8)])
    model = detector(tmp_path / "v8.onnx", rows)
    assert model.spec.decoder == "yolo" and model.spec.preprocess.pad_value == 114
    found = model.predict(FRAME)
    assert found.labels.tolist() == ["dog", "person"]
    assert found.confidence.tolist() == pytest.approx([0.9, 0.8])
    # input (110, 135, 210, 185) -> frame ((x - 0) / 0.5, (y - 40) / 0.5)
    assert found.xyxy.tolist() == [[220.0, 190.0, 420.0, 290.0], [100.0, 80.0, 140.0, 160.0]]


def test_yolo_v5_multiplies_objectness_and_class_scores(tmp_path: Path) -> None:
    rows = np.zeros((3, 5 + len(LABELS)), np.float32)
    rows[0] = (160, 160, 100, 50, 0.5, 0.1, 0.9, 0.0)  # car 0.45
    rows[1] = (40, 200, 20, 20, 0.9, 0.3, 0.0, 0.0)  # person 0.27
    rows[2] = (300, 300, 20, 20, 0.2, 0.0, 0.0, 0.9)  # dog 0.18: below 0.25
    path = yolo_model(tmp_path / "v5.onnx", rows, channels_first=False)
    found = load_model(path, ModelSpec(task="detect", labels=LABELS)).predict(FRAME)
    assert found.to_dict()["detections"] == [
        {"label": "car", "class_id": 1, "score": 0.45, "box": [220.0, 190.0, 420.0, 290.0]},
        {"label": "person", "class_id": 0, "score": 0.27, "box": [60.0, 300.0, 100.0, 340.0]},
    ]


def overlapping(shift: float) -> np.ndarray:
    """Two 100 x 100 boxes ``shift`` px apart: a person 0.9 and a car 0.8."""
    return v8_rows([(160, 160, 100, 100, 0, 0.9), (160 + shift, 160, 100, 100, 1, 0.8)])


@pytest.mark.parametrize(
    ("shift", "iou", "agnostic", "kept"),
    [
        (50, 0.3, True, ["person"]),  # IoU 1/3 > 0.3: suppressed across classes
        (50, 0.34, True, ["person", "car"]),  # IoU 1/3 < 0.34: kept
        (50, 0.3, False, ["person", "car"]),  # different classes never suppress each other
        (0, 0.99, True, ["person"]),  # the same box twice
    ],
)
def test_non_maximum_suppression_per_class_or_across(
    tmp_path: Path, shift: float, iou: float, agnostic: bool, kept: list[str]
) -> None:
    model = detector(
        tmp_path / "nms.onnx", overlapping(shift), iou_threshold=iou, class_agnostic_nms=agnostic
    )
    assert model.predict(FRAME).labels.tolist() == kept


def test_same_class_duplicates_are_suppressed(tmp_path: Path) -> None:
    rows = v8_rows([(160, 160, 100, 100, 0, 0.9), (170, 160, 100, 100, 0, 0.7)])
    assert detector(tmp_path / "dup.onnx", rows).predict(FRAME).confidence.tolist() == [
        pytest.approx(0.9)
    ]


def test_threshold_and_max_results_come_from_the_spec(tmp_path: Path) -> None:
    rows = v8_rows([(40 * i + 20, 160, 10, 10, 0, 0.3 + 0.1 * i) for i in range(6)])
    found = detector(tmp_path / "many.onnx", rows, score_threshold=0.45, max_results=2).predict(
        FRAME
    )
    assert found.confidence.tolist() == pytest.approx([0.8, 0.7])


def test_ultralytics_metadata_names_the_classes_and_the_task(tmp_path: Path) -> None:
    rows = v8_rows([(160, 160, 100, 50, 2, 0.9)])
    path = with_metadata(
        yolo_model(tmp_path / "u.onnx", rows, input_shape=(1, 3, None, None)),
        {
            "author": "Ultralytics",
            "task": "detect",
            "names": "{0: 'person', 1: 'car', 2: 'dog'}",
            "imgsz": "[320, 320]",
            "stride": "32",
        },
    )
    model = load_model(path)
    assert model.spec.task == "detect" and model.spec.labels == LABELS
    assert model.spec.preprocess.input_size == (320, 320)
    assert model.predict(FRAME).to_dict()["detections"][0]["label"] == "dog"


def test_labels_that_do_not_fit_a_yolo_output_are_an_error(tmp_path: Path) -> None:
    path = yolo_model(tmp_path / "y.onnx", v8_rows([(1, 1, 1, 1, 0, 0.5)] * 20))
    with pytest.raises(
        ModelError, match=r"yolo decoder with 2 classes does not fit .*\(1, 7, 20\)"
    ):
        load_model(path, ModelSpec(task="detect", decoder="yolo", labels=["a", "b"]))


def test_a_transposed_v8_output_is_told_apart_by_its_labels(tmp_path: Path) -> None:
    rows = v8_rows([(160, 160, 100, 50, 2, 0.9)] + [(0, 0, 1, 1, 0, 0.0)] * 9)
    path = yolo_model(tmp_path / "t.onnx", rows, channels_first=False)  # (1, 10, 7)
    found = load_model(path, ModelSpec(task="detect", labels=LABELS)).predict(FRAME)
    assert found.labels.tolist() == ["dog"] and found.confidence.tolist() == [pytest.approx(0.9)]


def test_ssd_postprocess_outputs_are_normalised_yx_boxes(tmp_path: Path) -> None:
    boxes = np.zeros((1, 10, 4), np.float32)
    boxes[0, 0] = (0.25, 0.5, 0.75, 1.0)  # ymin, xmin, ymax, xmax
    boxes[0, 1] = (0.0, 0.0, 0.5, 0.5)
    classes = np.zeros((1, 10), np.float32)
    classes[0, :2] = (2, 0)
    scores = np.zeros((1, 10), np.float32)
    scores[0, :3] = (0.8, 0.6, 0.55)  # the third is beyond the count
    path = constant_output_model(
        tmp_path / "ssd.onnx",
        (1, 300, 300, 3),
        {
            "boxes": boxes,
            "classes": classes,
            "scores": scores,
            "count": np.array([2], np.float32),
        },
        np.uint8,
    )
    model = load_model(path, ModelSpec(task="detect", labels=LABELS))
    assert model.spec.decoder == "ssd" and model.spec.preprocess.resize == "stretch"
    found = model.predict(FRAME)
    assert found.labels.tolist() == ["dog", "person"]
    assert found.xyxy.tolist() == [[320.0, 120.0, 640.0, 360.0], [0.0, 0.0, 320.0, 240.0]]


def test_boxes_scores_come_already_suppressed(tmp_path: Path) -> None:
    dets = np.array([[[110, 135, 210, 185, 0.9], [0, 0, 10, 10, 0.1]]], np.float32)
    labels = np.array([[2, 0]], np.float32)
    path = constant_output_model(
        tmp_path / "rtmdet.onnx", (1, 3, 320, 320), {"dets": dets, "labels": labels}
    )
    model = load_model(path, ModelSpec(task="detect", labels=LABELS))
    assert model.spec.decoder == "boxes-scores"
    assert model.spec.preprocess.color == "bgr" and model.spec.preprocess.mean is not None
    found = model.predict(FRAME)
    assert found.labels.tolist() == ["dog"]
    assert found.xyxy.tolist() == [[220.0, 190.0, 420.0, 290.0]]


def test_detections_filter_by_label(tmp_path: Path) -> None:
    rows = v8_rows([(160, 160, 100, 50, 2, 0.9), (60, 100, 20, 40, 0, 0.8)])
    found = detector(tmp_path / "f.onnx", rows).predict(FRAME)
    assert found.with_labels(["person"]).labels.tolist() == ["person"]
