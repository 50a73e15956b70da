"""Fine-tuning on generated textures: it learns, exports what torch computes, keeps its schedule.

One run from scratch (module fixture) serves the learning, export and history checks; the
schedule, stopping and weighting checks train for a few epochs each. Every run uses one torch
thread: on two cores shared with other work, that trains many times faster than two.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from tests.train.conftest import TEXTURES
from vigil.data import read_manifest
from vigil.errors import ConfigError, DependencyError, ModelError, SourceError
from vigil.tasks import ClassifyModel, load_model

torch = pytest.importorskip("torch", reason="fine-tuning needs torch (vigil[train])")

from vigil.train.backbones import build_backbone  # noqa: E402
from vigil.train.finetune import (  # noqa: E402
    BACKBONE_NAMES,
    EpochStats,
    FinetuneOptions,
    FinetuneResult,
    class_weights,
    classification_scores,
    default_threads,
    finetune,
)

CLASSES = list(TEXTURES)
QUICK: dict[str, Any] = {
    "backbone": "tiny_cnn",
    "image_size": 64,
    "batch_size": 16,
    "workers": 0,
    "threads": 1,
    "lr_full": 0.003,
}
MIN_TEST_ACCURACY = 0.6
"""Chance is 1/3. Ten epochs from scratch scored 0.77 to 0.92 on the test split over seeds 0-7."""
MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)


@pytest.fixture(autouse=True)
def empty_torch_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No weights in torch's hub cache: a user's downloads must not change these tests."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


@pytest.fixture(scope="module")
def trained(textures: Path, tmp_path_factory: pytest.TempPathFactory) -> FinetuneResult:
    """Ten epochs from scratch with two loader processes."""
    options = FinetuneOptions(**{**QUICK, "workers": 2}, from_scratch=True, epochs=10, patience=10)
    return finetune(textures, CLASSES, options, tmp_path_factory.mktemp("run"), progress=False)


def labelled_test_images(manifest_file: Path) -> list[tuple[np.ndarray, str]]:
    manifest = read_manifest(manifest_file)
    return [
        (cv2.cvtColor(cv2.imread(str(manifest.path_of(item))), cv2.COLOR_BGR2RGB), item.label)
        for item in manifest.split("test")
    ]


def best_network(result: FinetuneResult) -> Any:
    network = build_backbone("tiny_cnn", len(CLASSES))
    stored = torch.load(result.checkpoint, weights_only=True)
    network.load_state_dict(stored["state_dict"])
    return network.eval()


def test_learns_the_textures_far_better_than_chance(
    trained: FinetuneResult, textures: Path
) -> None:
    model = load_model(trained.onnx_path)  # the spec comes from the sidecar
    found = [model.predict(image).top for image, _ in labelled_test_images(textures)]
    model.close()
    truth = [label for _, label in labelled_test_images(textures)]
    accuracy = np.mean([f is not None and f.label == t for f, t in zip(found, truth, strict=True)])
    assert accuracy >= MIN_TEST_ACCURACY
    assert trained.history[trained.best_epoch - 1].val_balanced_accuracy >= MIN_TEST_ACCURACY


def test_exported_model_gives_the_probabilities_torch_gives(
    trained: FinetuneResult, textures: Path
) -> None:
    network = best_network(trained)
    spec = trained.spec.model_copy(update={"top_k": len(CLASSES)})
    model = load_model(trained.onnx_path, spec)
    assert isinstance(model, ClassifyModel)
    for image, _ in labelled_test_images(textures)[:8]:
        tensor = ((image.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1)[None]
        with torch.no_grad():
            expected = torch.softmax(network(torch.from_numpy(tensor)), 1)[0].numpy()
        found = model.predict(image)
        by_class = np.zeros(len(CLASSES), np.float32)
        by_class[found.class_id] = found.scores
        np.testing.assert_allclose(by_class, expected, rtol=1e-4, atol=1e-5)
        assert found.labels.tolist() == [CLASSES[i] for i in found.class_id]
    model.close()


def test_the_spec_says_how_the_model_was_trained(trained: FinetuneResult) -> None:
    spec = trained.spec
    assert (spec.task, spec.decoder, spec.labels) == ("classify", "scores", CLASSES)
    assert spec.preprocess.resize == "crop"
    assert spec.preprocess.input_size == (64, 64)
    np.testing.assert_allclose(spec.preprocess.mean or (), MEAN, rtol=1e-6)
    np.testing.assert_allclose(spec.preprocess.std or (), STD, rtol=1e-6)
    sidecar = Path(f"{trained.onnx_path}.vigil.yaml")
    assert sidecar.is_file() and "123.675" in sidecar.read_text()


def test_history_has_every_epoch_and_the_best_one_is_exported(trained: FinetuneResult) -> None:
    history = trained.history
    assert [s.epoch for s in history] == list(range(1, 11))
    assert {s.phase for s in history} == {"full"}  # from scratch: no head-only phase
    assert not trained.interrupted and not trained.stopped_early
    best = history[trained.best_epoch - 1]
    assert best.improved
    assert all(s.score <= best.score + 1e-9 for s in history)
    assert not any(s.improved for s in history[trained.best_epoch :])
    for stats in history:
        assert 0 <= stats.val_balanced_accuracy <= 1 and 0 <= stats.train_accuracy <= 1
        assert stats.images_per_second > 0 and stats.step_ms_median > 0
        assert stats.load_ms_p95 >= stats.load_ms_median >= 0 and 0 <= stats.load_share < 1
        assert stats.load_first_ms >= 0
    stored = torch.load(trained.checkpoint, weights_only=True)
    assert stored["epoch"] == trained.best_epoch and stored["classes"] == CLASSES


def test_a_pretrained_body_stays_frozen_while_the_head_trains(
    trained: FinetuneResult, textures: Path, tmp_path: Path
) -> None:
    pretrained = torch.load(trained.checkpoint, weights_only=True)["state_dict"]
    after: dict[int, dict[str, Any]] = {}

    def snapshot(stats: EpochStats) -> None:
        last = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
        after[stats.epoch] = last["model"]

    options = FinetuneOptions(
        **QUICK, weights=trained.checkpoint, epochs=3, head_epochs=2, lr_head=0.01
    )
    result = finetune(
        textures, CLASSES, options, tmp_path / "run", progress=False, on_epoch_end=snapshot
    )
    assert [s.phase for s in result.history] == ["head", "head", "full"]
    assert result.history[0].learning_rate == pytest.approx(0.01)
    assert result.history[2].learning_rate == pytest.approx(0.003)
    body = [key for key in pretrained if not key.startswith("classifier.")]
    for key in body:  # weights and batch-norm statistics alike
        assert torch.equal(after[2][key], pretrained[key]), key
    assert not torch.equal(after[2]["classifier.weight"], pretrained["classifier.weight"])
    assert any(not torch.equal(after[3][key], pretrained[key]) for key in body)


@pytest.mark.parametrize("patience", [1, 2])
def test_stops_when_the_validation_score_stops_improving(
    textures: Path, tmp_path: Path, patience: int
) -> None:
    options = FinetuneOptions(**QUICK, from_scratch=True, epochs=25, patience=patience)
    result = finetune(textures, CLASSES, options, tmp_path / "run", progress=False)
    history = result.history
    assert result.stopped_early and len(history) < 25
    assert not any(s.improved for s in history[-patience:])
    assert history[-patience - 1].improved or len(history) == patience
    assert result.best_epoch == max(s.epoch for s in history if s.improved)


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ([10, 10, 10], [1.0, 1.0, 1.0]),
        ([30, 10], [2 / 3, 2.0]),
        ([1, 3], [2.0, 2 / 3]),
        ([5], [1.0]),
    ],
)
def test_class_weights_give_every_class_the_same_share(
    counts: list[int], expected: list[float]
) -> None:
    weights = class_weights(counts)
    np.testing.assert_allclose(weights, expected)
    np.testing.assert_allclose(weights * counts, sum(counts) / len(counts))


@pytest.mark.parametrize(("drop", "changes"), [(0, False), (45, True)])
def test_class_weighting_reaches_the_loss_when_classes_are_imbalanced(
    textures: Path, tmp_path: Path, drop: int, changes: bool
) -> None:
    manifest = read_manifest(textures)
    rare = [item for item in manifest.split("train") if item.label == "checker"][:drop]
    kept = tuple(item for item in manifest.items if item not in rare)
    imbalanced = dataclasses.replace(manifest, items=kept)
    losses = []
    for weighting in (True, False):
        options = FinetuneOptions(**QUICK, from_scratch=True, epochs=1, class_weighting=weighting)
        run = tmp_path / f"weighting-{weighting}"
        losses.append(finetune(imbalanced, CLASSES, options, run, progress=False).history[0])
    assert (losses[0].train_loss != losses[1].train_loss) is changes
    assert losses[0].val_loss == losses[1].val_loss or changes  # validation loss is unweighted


def test_packs_the_manifest_into_the_run_folder_when_it_has_no_shards(
    textures: Path, tmp_path: Path
) -> None:
    manifest = read_manifest(textures)  # given as an object: no folder to look beside
    options = FinetuneOptions(**QUICK, from_scratch=True, epochs=1)
    finetune(manifest, CLASSES, options, tmp_path / "run", progress=False)
    index = (tmp_path / "run" / "shards" / "index.json").read_text()
    assert manifest.hash in index
    finetune(textures, CLASSES, options, tmp_path / "beside", progress=False)
    assert not (tmp_path / "beside" / "shards").exists()  # the shards next to the manifest


def test_class_order_follows_the_caller(textures: Path, tmp_path: Path) -> None:
    reordered = list(reversed(CLASSES))
    options = FinetuneOptions(**QUICK, from_scratch=True, epochs=1)
    result = finetune(textures, reordered, options, tmp_path / "run", progress=False)
    assert result.spec.labels == reordered


def test_default_threads_are_the_idle_cores() -> None:
    assert 1 <= default_threads(0.05) <= len(os.sched_getaffinity(0))


def test_restores_the_number_of_torch_threads(textures: Path, tmp_path: Path) -> None:
    before = torch.get_num_threads()
    options = FinetuneOptions(**QUICK, from_scratch=True, epochs=1)
    finetune(textures, CLASSES, options, tmp_path / "run", progress=False)
    assert torch.get_num_threads() == before


@pytest.mark.parametrize(
    ("settings", "error", "says"),
    [
        ({"backbone": "mobilenet_v2"}, ConfigError, "no pretrained weights for mobilenet_v2"),
        ({"backbone": "resnet18"}, ConfigError, "resnet18-f37072fd.pth"),
        ({}, ConfigError, "tiny_cnn has no published weights"),
        ({"weights": "missing.pth"}, ModelError, "weights file not found"),
        ({"weights": "garbage.pth"}, ModelError, "not a PyTorch checkpoint"),
        ({"weights": "resnet18.pth"}, ModelError, "does not fit tiny_cnn"),
    ],
)
def test_refuses_without_usable_pretrained_weights_before_any_work(
    textures: Path, tmp_path: Path, settings: dict[str, Any], error: type[Exception], says: str
) -> None:
    (tmp_path / "garbage.pth").write_bytes(b"\x80\x02not a checkpoint at all")
    torch.save(build_backbone("resnet18", 3).state_dict(), tmp_path / "resnet18.pth")
    if "weights" in settings:
        settings = {"weights": tmp_path / settings["weights"]}
    options = FinetuneOptions(**{**QUICK, **settings})
    with pytest.raises(error) as raised:
        finetune(textures, CLASSES, options, tmp_path / "run", progress=False)
    message = str(raised.value)
    assert says in message and "\n" not in message
    assert not (tmp_path / "run").exists()
    if error is ConfigError:
        assert "--from-scratch" in message


@pytest.mark.parametrize(
    ("classes", "says"),
    [
        (["checker", "horizontal"], "must be the manifest's classes"),
        ([*CLASSES, "dots"], "must be the manifest's classes"),
        (["checker", "checker", "vertical"], "each once"),
    ],
)
def test_refuses_classes_that_are_not_the_manifests(
    textures: Path, tmp_path: Path, classes: list[str], says: str
) -> None:
    options = FinetuneOptions(**QUICK, from_scratch=True, epochs=1)
    with pytest.raises(ConfigError, match=says):
        finetune(textures, classes, options, tmp_path / "run", progress=False)


@pytest.mark.parametrize(("split", "says"), [("validation", "no validation images")])
def test_refuses_a_manifest_without_a_split_it_needs(
    textures: Path, tmp_path: Path, split: str, says: str
) -> None:
    manifest = read_manifest(textures)
    moved = tuple(
        dataclasses.replace(item, split="test") if item.split == split else item
        for item in manifest.items
    )
    options = FinetuneOptions(**QUICK, from_scratch=True, epochs=1)
    with pytest.raises(SourceError, match=says):
        finetune(dataclasses.replace(manifest, items=moved), CLASSES, options, tmp_path / "r")


@pytest.mark.parametrize(
    ("settings", "says"),
    [
        ({"backbone": "mobilenet"}, "unknown backbone"),
        ({"from_scratch": True, "weights": "w.pth"}, "not both"),
        ({"batch_size": 1}, "greater than or equal to 2"),
        ({"image_size": 16}, "greater than or equal to 32"),
        ({"lr_full": 0}, "greater than 0"),
        ({"threads": 0}, "greater than or equal to 1"),
        ({"augmentation": True}, "Extra inputs are not permitted"),
    ],
)
def test_options_reject_bad_values(settings: dict[str, Any], says: str) -> None:
    with pytest.raises(ValidationError, match=says):
        FinetuneOptions(**settings)


def test_backbone_names_match_the_networks() -> None:
    from vigil.train.backbones import BACKBONES

    assert tuple(BACKBONES) == BACKBONE_NAMES
    for field, info in FinetuneOptions.model_fields.items():
        assert info.description, field


@pytest.mark.parametrize(
    ("confusion", "expected"),
    [
        ([[5, 0], [0, 5]], (1.0, 1.0, 1.0)),
        ([[9, 0], [1, 0]], (0.9, 0.5, 9 / 19)),  # always "class 0": accurate, not balanced
        ([[2, 2], [0, 4]], (0.75, 0.75, (2 / 3 + 0.8) / 2)),
        ([[0, 0], [0, 0]], (0.0, 0.0, 0.0)),
    ],
)
def test_classification_scores(confusion: list[list[int]], expected: tuple[float, ...]) -> None:
    np.testing.assert_allclose(classification_scores(np.array(confusion)), expected)


def test_without_torch_it_names_the_extra_to_install(
    textures: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "torch", None)
    options = FinetuneOptions(**QUICK, from_scratch=True, epochs=1)
    with pytest.raises(DependencyError, match=r"pip install 'vigil\[train\]'") as raised:
        finetune(textures, CLASSES, options, tmp_path / "run", progress=False)
    assert raised.value.package == "torch"
