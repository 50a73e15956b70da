"""Real TFLite models on real photos, against the outputs their publishers measured.

``classification/tfls_EXPECTED.txt`` holds the reference outputs of TensorFlow Lite's task
library for these models and photos.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from vigil.models import ModelSpec, Preprocess
from vigil.models.inspect import read_labels
from vigil.results import Classifications, Detections, Embeddings, Poses
from vigil.tasks import ClassifyModel, DetectModel, EmbedModel, PoseModel, load_model


@pytest.fixture(autouse=True)
def _litert() -> None:
    pytest.importorskip("ai_edge_litert", reason="TFLite models need vigil[tflite]")


def photo(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def classify(model_path: Path, image: np.ndarray, spec: ModelSpec | None = None) -> Classifications:
    model = load_model(model_path, spec)
    assert isinstance(model, ClassifyModel)
    found = model.predict(image)
    model.close()
    return found


def test_quantised_mobilenet_v2_finds_the_cheeseburger(shared_data: Path) -> None:
    models = shared_data / "models"
    labels = read_labels(models / "tfls_imagenet_labels_1001.txt")  # line 0 is "background"
    found = classify(
        models / "tfls_mobilenet_v2_1.0_224_quant.tflite",
        photo(shared_data / "classification" / "tfls_burger.jpg"),
        ModelSpec(task="classify", labels=labels),
    )
    assert found.top is not None
    assert (found.top.class_id, found.top.label) == (934, "cheeseburger")
    assert found.top.score == pytest.approx(0.96, abs=0.02)  # dequantised logits, softmaxed
    assert len(found) == 5 and found.scores.sum() <= 1.0


@pytest.mark.parametrize(
    "name",
    ["tfls_mobilenet_v1_0.25_224_quant", "tfls_mobilenet_v1_0.25_224_1_metadata_1"],
)
def test_mobilenet_v1_with_embedded_labels_and_metadata(shared_data: Path, name: str) -> None:
    found = classify(
        shared_data / "models" / f"{name}.tflite",
        photo(shared_data / "classification" / "tfls_burger.jpg"),
    )
    assert found.top is not None and found.top.label == "cheeseburger" and found.top.score > 0.9
    assert len(found) == 5 and len(set(found.labels.tolist())) == 5
    assert all(label.isascii() and not label.isdigit() for label in found.labels.tolist())
    assert np.all(np.diff(found.scores) <= 0) and found.scores.sum() <= 1.0 + 1e-6


def expected_detections(shared_data: Path) -> list[tuple[str, float, tuple[float, ...]]]:
    """The four objects tfls_EXPECTED.txt lists for the cats and dogs photo: label, score, xywh."""
    text = (shared_data / "classification" / "tfls_EXPECTED.txt").read_text(encoding="utf-8")
    line = text[text.index("cat 0.64") :].split("\n- ")[0].replace("\n", " ")
    pattern = r"(cat|dog) ([\d.]+) (?:box)?\((?:x=)?(\d+),(?:y=)?(\d+),(?:w=)?(\d+),(?:h=)?(\d+)\)"
    found = [
        (label, float(score), tuple(float(v) for v in box))
        for label, score, *box in re.findall(pattern, line)
    ]
    assert len(found) == 4
    return found


def test_coco_ssd_finds_the_cats_and_the_dog(shared_data: Path) -> None:
    image = photo(shared_data / "classification" / "tfls_cats_and_dogs.jpg")
    height, width = image.shape[:2]
    spec = ModelSpec(  # bilinear resizing, as the reference outputs were made
        task="detect", max_results=4, preprocess=Preprocess(interpolation="linear")
    )
    model = load_model(
        shared_data / "models" / "tfls_coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.tflite", spec
    )
    assert isinstance(model, DetectModel) and model.spec.decoder == "ssd"
    found = model.predict(image)
    assert isinstance(found, Detections) and len(found) == 4
    expected = expected_detections(shared_data)
    assert found.labels.tolist() == [label for label, _, _ in expected]
    assert found.confidence.tolist() == pytest.approx([s for _, s, _ in expected], abs=0.05)
    for box, (_, _, (x, y, w, h)) in zip(found.xyxy, expected, strict=True):
        reference = np.clip([x, y, x + w, y + h], 0, [width, height, width, height])
        assert box.tolist() == pytest.approx(reference.tolist(), abs=5)


def test_movenet_finds_the_sitting_person(shared_data: Path) -> None:
    model = load_model(shared_data / "models" / "tfls_movenet_singlepose_lightning_int8_4.tflite")
    assert isinstance(model, PoseModel) and model.spec.decoder == "movenet"
    for path in sorted((shared_data / "posture_side").glob("*.jpg")):
        image = photo(path)
        poses = model.predict(image)
        assert isinstance(poses, Poses) and len(poses) == 1, path.name
        assert 0.5 < poses.scores[0] <= 1, path.name
        y = {name: float(poses.point(name)[0, 1]) for name in poses.schema.names}
        assert y["nose"] < min(y["left_shoulder"], y["right_shoulder"]), path.name
        assert max(y["left_shoulder"], y["right_shoulder"]) < min(y["left_hip"], y["right_hip"])
        assert max(y["left_hip"], y["right_hip"]) < max(y["left_ankle"], y["right_ankle"])
        inside = (poses.keypoints >= 0) & (poses.keypoints <= [image.shape[1], image.shape[0]])
        assert inside.all(), path.name
    model.close()


def test_embeddings_of_the_same_photo_are_closer(shared_data: Path) -> None:
    model = load_model(
        shared_data / "models" / "tfex_mobilenet_v2_035_96_embedder_with_metadata.tflite"
    )
    assert isinstance(model, EmbedModel)
    assert model.spec.preprocess.mean == (127.5, 127.5, 127.5)  # read from the file's metadata
    burger = photo(shared_data / "classification" / "tfls_burger.jpg")
    cats = photo(shared_data / "classification" / "tfls_cats_and_dogs.jpg")
    width = burger.shape[1]
    left = model.predict(burger[:, : width * 4 // 5])
    right = model.predict(burger[:, width // 5 :])
    other = model.predict(cats)
    assert isinstance(left, Embeddings) and left.dim == 1280
    same = float(left.similarity(right)[0, 0])
    different = max(float(left.similarity(other)[0, 0]), float(right.similarity(other)[0, 0]))
    assert same > different + 0.3
    assert np.linalg.norm(left.normalized().vector) == pytest.approx(1.0)
