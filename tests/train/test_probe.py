"""The probe method: logistic regression on backbone vectors, its ONNX head, the vector cache."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
from pydantic import ValidationError

import vigil.models
from tests.train.conftest import PhotoFolder
from vigil.errors import ModelError
from vigil.models.spec import ModelSpec
from vigil.sources.images import read_image
from vigil.tasks import load_model
from vigil.tasks.probe import ProbeModel
from vigil.train.classify import TrainOptions, train_classifier
from vigil.train.probe import (
    FeatureCache,
    LinearHead,
    export_head,
    fit_probe,
    head_spec,
    image_features,
)


def blobs(classes: int, per_class: int, dim: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Vectors around one centre per class: separable, but not trivially."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 3, (classes, dim))
    labels = np.repeat(np.arange(classes), per_class)
    return centres[labels] + rng.normal(0, 2, (len(labels), dim)), labels


def onnx_scores(path: Path, vectors: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"embedding": vectors.astype(np.float32)})[0]


@pytest.mark.parametrize(("classes", "dim"), [(2, 8), (3, 16), (5, 4)])
def test_the_onnx_head_outputs_scikit_learns_probabilities(
    tmp_path: Path, classes: int, dim: int
) -> None:
    train = blobs(classes, 40, dim, seed=classes)
    validation = blobs(classes, 10, dim, seed=classes + 100)

    fit = fit_probe(train, validation, classes, seed=0)
    head = export_head(fit.head, tmp_path / "head.onnx")

    probe = np.random.default_rng(1).normal(0, 4, (64, dim))
    expected = fit.pipeline.predict_proba(probe)
    assert expected.shape == (64, classes)
    assert np.abs(onnx_scores(head, probe) - expected).max() < 1e-5
    assert np.abs(fit.head.scores(probe) - expected).max() < 1e-6


def test_c_is_chosen_on_validation() -> None:
    train = blobs(2, 30, 6, seed=3)
    validation = blobs(2, 15, 6, seed=4)

    fit = fit_probe(train, validation, 2)

    assert [c for c, _, _ in fit.trials] == [0.001, 0.01, 0.1, 1.0, 10.0, 100.0]
    best = max(t[1] for t in fit.trials)
    assert fit.c == min(c for c, accuracy, _ in fit.trials if accuracy == best)  # ties: smaller C
    assert fit.converged


def test_without_both_classes_in_validation_c_is_the_default() -> None:
    train = blobs(2, 20, 4, seed=5)
    only_one = (train[0][:3], np.zeros(3, np.int64))

    fit = fit_probe(train, only_one, 2)

    assert fit.trials == () and fit.c == 1.0


@pytest.mark.parametrize(("positive", "threshold"), [(1, 0.9), (1, 0.2), (0, 0.7)])
def test_a_threshold_moved_into_the_head_decides_by_the_top_class(
    positive: int, threshold: float
) -> None:
    rng = np.random.default_rng(0)
    head = LinearHead(rng.normal(size=(2, 5)).astype(np.float32), np.zeros(2, np.float32))
    vectors = rng.normal(0, 2, (500, 5))

    moved = head.with_threshold(positive, threshold)

    wanted = head.scores(vectors)[:, positive] >= threshold
    assert ((moved.scores(vectors).argmax(axis=1) == positive) == wanted).all()
    assert 0 < wanted.mean() < 1


def test_a_threshold_needs_two_classes() -> None:
    head = LinearHead(np.zeros((3, 4), np.float32), np.zeros(3, np.float32))

    with pytest.raises(ValueError, match="two-class"):
        head.with_threshold(1, 0.5)


class CountingEmbedder:
    """Opens the tiny embedder and counts the images it embeds."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.embedded = 0

    @contextlib.contextmanager
    def open(self) -> Iterator[object]:
        model = load_model(self.path, ModelSpec(task="embed"))

        def embed(image: np.ndarray) -> np.ndarray:
            self.embedded += 1
            return model.predict(image).vector  # type: ignore[attr-defined,no-any-return]

        try:
            yield embed
        finally:
            model.close()


def never_opened() -> contextlib.AbstractContextManager[object]:
    raise AssertionError("the backbone was opened although every vector is cached")


def test_vectors_are_computed_once_and_reused(
    photo_folder: PhotoFolder, tiny_embedder: Path, tmp_path: Path
) -> None:
    folder = photo_folder({"red": 3, "blue": 3})
    images = [(path, f"sha-{path.name}") for path in sorted(folder.rglob("*.jpg"))]
    cache = FeatureCache(tmp_path / "cache.sqlite")
    counting = CountingEmbedder(tiny_embedder)

    first = image_features(images, "backbone-a", counting.open, cache)
    second = image_features(images, "backbone-a", never_opened, cache)
    other = image_features(images[:2], "backbone-b", counting.open, cache)

    assert (first.computed, first.reused, counting.embedded) == (6, 0, 8)
    assert (second.computed, second.reused) == (0, 6)
    assert np.array_equal(first.vectors, second.vectors)
    assert first.vectors.shape == (6, 12)
    assert other.computed == 2  # another backbone's vectors are not these
    reds = first.vectors[[i for i, (p, _) in enumerate(images) if "red" in p.name]]
    assert (reds[:, 0] > reds[:, 2]).all()  # red over blue in the first quarter's mean


def test_a_probe_learns_the_classes_and_a_second_run_embeds_nothing(
    photo_folder: PhotoFolder, tiny_embedder: Path, tmp_path: Path
) -> None:
    folder = photo_folder({"red": 12, "blue": 12, "green": 12})
    options = TrainOptions(data=folder, name="colours", backbone=str(tiny_embedder))

    first = train_classifier(options)
    second = train_classifier(options.model_copy(update={"out": tmp_path / "second"}))

    assert first.evaluation is not None and first.evaluation.accuracy == 1.0
    assert first.evaluation.images == 6 and first.evaluation.classes == ("blue", "green", "red")
    assert (first.facts["vectors_computed"], first.facts["vectors_reused"]) == (36, 0)
    assert (second.facts["vectors_computed"], second.facts["vectors_reused"]) == (0, 36)
    assert second.evaluation is not None
    assert second.evaluation.confusion.tolist() == first.evaluation.confusion.tolist()
    assert first.version is not None and second.version is not None
    assert (first.version.ref, second.version.ref) == ("colours:1", "colours:2")
    assert second.run_dir == tmp_path / "second"
    assert {p.name for p in second.run_dir.iterdir()} >= {
        "manifest.json",
        "head.onnx",
        "report.html",
        "result.json",
    }


def test_an_unreadable_file_is_left_out_and_reported(
    photo_folder: PhotoFolder, tiny_embedder: Path
) -> None:
    folder = photo_folder({"red": 6, "blue": 6})
    (folder / "red" / "broken.jpg").write_bytes(b"not a photo at all")

    result = train_classifier(
        TrainOptions(data=folder, name="colours", backbone=str(tiny_embedder))
    )

    assert result.data.skipped == (("red/broken.jpg", "not an image or cannot be decoded"),)
    assert sum(sum(c.values()) for c in result.data.counts.values()) == 12
    assert result.report_path is not None
    assert "red/broken.jpg" in result.report_path.read_text()


def test_damaged_camera_trap_photos_do_not_break_a_probe_run(
    shared_data: Path, tiny_embedder: Path, tmp_path: Path
) -> None:
    traps = shared_data / "camera_trap"
    rows = [line.split(",") for line in (traps / "labels.csv").read_text().splitlines()[1:]]
    folder = tmp_path / "traps"
    for name, kind, *_ in rows:
        label = "empty" if kind == "empty" else "not_empty"
        (folder / label).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(traps / name, folder / label / name)

    result = train_classifier(TrainOptions(data=folder, name="traps", backbone=str(tiny_embedder)))

    kept = {item.path for item in result_manifest_items(result.manifest_path)}
    assert "not_empty/african_elephants_truncated_file.jpg" in kept
    assert "not_empty/african_elephants_cmyk.jpg" in kept
    assert len(kept) == 8 and result.data.skipped == ()
    assert result.evaluation is not None and result.version is not None


def result_manifest_items(path: Path) -> tuple[object, ...]:
    from vigil.data.manifest import read_manifest

    return read_manifest(path).items  # type: ignore[return-value]


# The composite model


def test_the_head_loads_with_its_backbone_as_one_classifier(
    photo_folder: PhotoFolder, tiny_embedder: Path, tmp_path: Path
) -> None:
    backbone = vigil.models.register(tiny_embedder, "tiny", task="embed")
    train = blobs(2, 20, 12, seed=9)
    fit = fit_probe(train, blobs(2, 5, 12, seed=10), 2)
    head = export_head(fit.head, tmp_path / "head.onnx")
    photo = read_image(next(photo_folder({"red": 1, "blue": 1}).rglob("red_*.jpg")))

    model = load_model(head, head_spec(("blue", "red"), backbone.ref))
    try:
        assert isinstance(model, ProbeModel)
        vector = model.embed(photo)
        assert vector.shape == (12,)
        expected = fit.pipeline.predict_proba(vector[None, :])[0]
        assert model.probabilities(photo) == pytest.approx(expected, abs=1e-5)
        top = model.predict(photo)
        assert top.labels[0] == ("blue", "red")[int(np.argmax(expected))]
        assert model.inputs[0].shape == (1, 16, 16, 3) and model.outputs[0].shape[-1] == 2
    finally:
        model.close()


def test_a_head_that_does_not_fit_its_backbone(tmp_path: Path, tiny_embedder: Path) -> None:
    backbone = vigil.models.register(tiny_embedder, "tiny", task="embed")
    fit = fit_probe(blobs(2, 10, 5, seed=1), blobs(2, 5, 5, seed=2), 2)
    head = export_head(fit.head, tmp_path / "head.onnx")

    with pytest.raises(ModelError, match="reads 5-D vectors but its backbone tiny:1 outputs 12-D"):
        load_model(head, head_spec(("a", "b"), backbone.ref))


def test_a_backbone_that_is_no_embed_model(tmp_path: Path) -> None:
    from tests.predict.support import tiny_classifier

    classifier = vigil.models.register(tiny_classifier(tmp_path / "cls"), "cls")
    fit = fit_probe(blobs(2, 10, 4, seed=1), blobs(2, 5, 4, seed=2), 2)
    head = export_head(fit.head, tmp_path / "head.onnx")

    with pytest.raises(ModelError, match="is a classify model, not an embed model"):
        load_model(head, head_spec(("a", "b"), classifier.ref))


def test_only_a_classifier_runs_on_a_backbone() -> None:
    with pytest.raises(ValidationError, match="only a classify head runs on a backbone"):
        ModelSpec(task="detect", backbone="embedder:1")
