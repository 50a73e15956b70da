"""Result containers: validated on construction, filtered by indexing, plain JSON out."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from tests.factories import pose_from_points
from vigil.results import COCO_17, Classifications, Detections, Embeddings, Poses


def detections(**overrides: Any) -> Detections:
    """Three objects: a person, a cat and a dog."""
    arrays: dict[str, Any] = {
        "xyxy": np.array([[10, 20, 110, 220], [0, 0, 50, 50], [5.55, 6.66, 7.77, 8.88]]),
        "confidence": np.array([0.912345, 0.5, 0.25]),
        "class_id": np.array([0, 15, 16]),
    }
    arrays |= overrides
    names = ["person", *[f"c{i}" for i in range(1, 15)], "cat", "dog"]
    return Detections.from_arrays(**arrays, names=names)


def test_detections_resolve_labels_and_filter_by_indexing() -> None:
    found = detections()
    assert len(found) == 3
    assert found.labels.tolist() == ["person", "cat", "dog"]
    confident = found[found.confidence > 0.3]
    assert confident.labels.tolist() == ["person", "cat"]
    assert len(found[1]) == 1 and found[1].labels.tolist() == ["cat"]
    assert found.with_labels(["dog", "person"]).class_id.tolist() == [0, 16]
    assert len(found.with_labels(["zebra"])) == 0
    assert found.area.tolist() == pytest.approx([20000.0, 2500.0, 2.22 * 2.22], rel=1e-5)


def test_detections_name_unknown_classes_by_number() -> None:
    found = Detections.from_arrays(np.zeros((2, 4)), np.ones(2), np.array([1, 7]), names=["a", "b"])
    assert found.labels.tolist() == ["b", "7"]
    shifted = Detections.from_arrays(
        np.zeros((2, 4)), np.ones(2), np.array([0, 2]), names=["a", "b"], label_offset=1
    )
    assert shifted.labels.tolist() == ["0", "b"]


def test_detections_to_dict_is_rounded_plain_json() -> None:
    found = detections(confidence=np.array([0.912345, 0.5, 0.25]))
    found.data["track"] = np.array([7, 8, 9])
    out = found.to_dict()
    assert json.loads(json.dumps(out)) == out
    assert out["task"] == "detect"
    assert out["detections"][0] == {
        "label": "person",
        "class_id": 0,
        "score": 0.9123,
        "box": [10.0, 20.0, 110.0, 220.0],
        "track": 7,
    }
    assert out["detections"][2]["box"] == [5.6, 6.7, 7.8, 8.9]
    assert Detections.empty().to_dict() == {"task": "detect", "detections": []}


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("xyxy", np.zeros((3, 3), np.float32), r"xyxy must have shape \(_, 4\)"),
        ("xyxy", np.zeros(12, np.float32), "xyxy must be a 2D np.ndarray"),
        ("confidence", np.zeros(2, np.float32), "confidence must have length 3"),
        ("confidence", np.zeros(3, np.int64), "confidence must hold float values"),
        ("class_id", np.zeros(3, np.float32), "class_id must hold integer values"),
        ("labels", np.array([1, 2, 3]), "labels must hold str values"),
        ("data", {"track": np.zeros(2)}, r"data\['track'\] must be an np.ndarray of length 3"),
    ],
)
def test_detections_reject_inconsistent_arrays(field: str, value: Any, message: str) -> None:
    good = detections()
    arrays = {
        "xyxy": good.xyxy,
        "confidence": good.confidence,
        "class_id": good.class_id,
        "labels": good.labels,
        "data": {},
    }
    arrays[field] = value
    with pytest.raises(ValueError, match=message):
        Detections(**arrays)


def test_classifications_are_the_best_classes_best_first() -> None:
    scores = np.array([0.9, 0.01, 0.05, 0.6, 0.3, 0.04])  # output 0 is background
    top = Classifications.from_scores(
        scores, ["a", "b", "c", "d", "e"], label_offset=1, top_k=3, min_score=0.04
    )
    assert top.class_id.tolist() == [3, 4, 2]
    assert top.labels.tolist() == ["c", "d", "b"]
    assert top.top is not None and top.top.label == "c" and top.top.score == pytest.approx(0.6)
    assert len(top.top_k(2)) == 2 and len(top[top.scores > 0.1]) == 2
    out = top.to_dict()
    assert json.loads(json.dumps(out)) == out
    assert out == {
        "task": "classify",
        "classes": [
            {"label": "c", "class_id": 3, "score": 0.6},
            {"label": "d", "class_id": 4, "score": 0.3},
            {"label": "b", "class_id": 2, "score": 0.05},
        ],
    }
    nothing = Classifications.from_scores(scores, min_score=0.95)
    assert len(nothing) == 0 and nothing.top is None


def test_classifications_must_stay_sorted() -> None:
    top = Classifications.from_scores(np.array([0.1, 0.7, 0.2]))
    with pytest.raises(ValueError, match="sorted best first"):
        top[[2, 0, 1]]


def test_embeddings_normalise_and_compare() -> None:
    vectors = Embeddings.from_array(np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 0.0], [-3.0, -4.0, 0]]))
    assert len(vectors) == 3 and vectors.dim == 3
    unit = vectors.normalized()
    assert unit.vectors[0].tolist() == pytest.approx([0.6, 0.8, 0.0])
    assert unit.vectors[1].tolist() == [0.0, 0.0, 0.0]
    assert vectors.vectors[0].tolist() == [3.0, 4.0, 0.0]  # the original is unchanged
    similarity = vectors.similarity(vectors[[0]])
    assert similarity[:, 0].tolist() == pytest.approx([1.0, 0.0, -1.0])
    with pytest.raises(ValueError, match="cannot compare 3-D with 2-D"):
        vectors.similarity(Embeddings.from_array(np.ones(2)))
    single = Embeddings.from_array(np.array([0.1234567891, 2.0]))
    assert single.vector.tolist() == pytest.approx([0.1234567891, 2.0])
    assert single.to_dict() == {"task": "embed", "dim": 2, "embeddings": [[0.123457, 2.0]]}
    with pytest.raises(ValueError, match=r"vectors must be a 2D np\.ndarray"):
        Embeddings(np.zeros(3, np.float32))


def test_poses_to_dict_names_every_keypoint() -> None:
    poses = pose_from_points({"nose": (100.04, 50.06), "left_hip": (120.0, 300.0)})
    out = poses.to_dict()
    assert json.loads(json.dumps(out)) == out
    assert out["task"] == "pose" and out["schema"] == "coco-17"
    (person,) = out["people"]
    assert [k["name"] for k in person["keypoints"]] == list(COCO_17.names)
    assert person["keypoints"][0] == {"name": "nose", "x": 100.0, "y": 50.1, "confidence": 0.95}
    assert person["score"] == pytest.approx(0.95 * 2 / 17, abs=1e-4)
    x1, y1, x2, y2 = person["box"]  # around the confident joints, grown by 10 %
    assert (x1, y1, x2, y2) == pytest.approx((98.0, 25.1, 122.0, 325.0), abs=0.01)


def test_poses_keep_the_model_boxes_through_indexing() -> None:
    keypoints = np.zeros((2, 17, 2), np.float32)
    boxes = np.array([[1, 2, 3, 4], [5, 6, 7, 8]], np.float32)
    poses = Poses.from_arrays(keypoints, np.ones((2, 17)), COCO_17, np.array([0.9, 0.4]), boxes)
    kept = poses[poses.scores > 0.5]
    assert kept.xyxy is not None and kept.xyxy.tolist() == [[1, 2, 3, 4]]
    assert kept.to_dict()["people"][0]["box"] == [1.0, 2.0, 3.0, 4.0]
    moved = poses.scaled(2.0, 3.0, 10.0, 0.0)
    assert moved.xyxy is not None and moved.xyxy[1].tolist() == [20.0, 18.0, 24.0, 24.0]
    with pytest.raises(ValueError, match=r"xyxy must have shape \(2, 4\)"):
        Poses(keypoints, np.ones((2, 17), np.float32), np.ones(2, np.float32), COCO_17, boxes[:1])
