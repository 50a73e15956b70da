"""A trained classifier is registered with its lineage and is at once usable everywhere."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.cli import VigilRunner
from tests.train.conftest import PhotoFolder
from vigil.data.manifest import read_manifest
from vigil.models.api import get, list_versions
from vigil.models.opening import open_model
from vigil.sources.images import read_image


def run_folder(stdout: str) -> Path:
    (line,) = [line for line in stdout.splitlines() if line.startswith("run folder: ")]
    return Path(line.removeprefix("run folder: "))


@pytest.fixture
def trained(vigil: VigilRunner, photo_folder: PhotoFolder, tiny_embedder: Path) -> Path:
    """Train ``colours`` on red and blue photos with the tiny embedder; return its run folder."""
    folder = photo_folder({"red": 12, "blue": 12})
    done = vigil(
        "train", "classify", "--data", folder, "--name", "colours", "--backbone", tiny_embedder
    )
    assert done.status == 0, done.stderr
    return run_folder(done.stdout)


def test_the_version_carries_metrics_and_lineage(trained: Path, tiny_embedder: Path) -> None:
    version = get("colours")
    result = json.loads((trained / "result.json").read_text())
    manifest = read_manifest(trained / "manifest.json")

    assert version.ref == "colours:1" and version.task == "classify"
    assert version.spec.backbone == "tiny_embedder:1"
    assert version.spec.labels == ["blue", "red"]
    assert version.lineage["method"] == "probe"
    assert version.lineage["backbone"] == "tiny_embedder:1"
    assert version.lineage["dataset"] == manifest.hash
    assert Path(version.lineage["manifest"]) == (trained / "manifest.json").resolve()
    assert version.lineage["command"].startswith("vigil train classify --data ")
    assert f"--backbone {tiny_embedder}" in version.lineage["command"]
    assert version.metrics["accuracy"] == result["evaluation"]["accuracy"] == 1.0
    assert version.metrics["per_class"]["red"]["recall"] == 1.0
    assert version.metrics["confusion"] == [[2, 0], [0, 2]]
    assert version.metrics["split"] == "test" and version.metrics["images"] == 4
    backbone = get("tiny_embedder:1")
    assert backbone.task == "embed"


def test_predict_and_open_model_give_the_same_numbers(
    trained: Path, vigil: VigilRunner, tmp_path: Path
) -> None:
    photo = tmp_path / "photos" / "red" / "red_000.jpg"

    done = vigil("predict", "colours", photo, "--json")
    from_run = vigil("predict", trained / "head.onnx", photo, "--json")  # its sidecar says all
    opened = open_model("colours")
    try:
        direct = opened.model.predict(read_image(photo)).to_dict()
    finally:
        opened.model.close()

    assert done.status == 0, done.stderr
    line = json.loads(done.stdout.splitlines()[0])
    assert line["results"] == direct
    assert json.loads(from_run.stdout.splitlines()[0])["results"] == direct
    assert [c["label"] for c in direct["classes"]] == ["red", "blue"]
    assert sum(c["score"] for c in direct["classes"]) == pytest.approx(1.0, abs=1e-3)
    assert (opened.name, opened.version) == ("colours", 1)


def test_a_file_backbone_is_registered_once(
    trained: Path, vigil: VigilRunner, photo_folder: PhotoFolder, tiny_embedder: Path
) -> None:
    folder = photo_folder({"red": 12, "blue": 12}, name="more")

    done = vigil(
        "train", "classify", "--data", folder, "--name", "colours", "--backbone", tiny_embedder
    )

    assert done.status == 0, done.stderr
    assert [v.ref for v in list_versions(name="tiny_embedder")] == ["tiny_embedder:1"]
    assert get("colours:2").spec.backbone == "tiny_embedder:1"


def test_a_registered_backbone_is_pinned_to_its_version(
    vigil: VigilRunner, photo_folder: PhotoFolder, tiny_embedder: Path
) -> None:
    assert vigil("models", "add", tiny_embedder, "--name", "emb", "--task", "embed").status == 0
    assert vigil("models", "promote", "emb:1", "--stage", "production").status == 0

    done = vigil(
        "train", "classify", "--data", photo_folder(), "--name", "colours",
        "--backbone", "emb@production",
    )  # fmt: skip

    assert done.status == 0, done.stderr
    assert get("colours").spec.backbone == "emb:1"
    assert "probe on emb:1" in done.stdout


def test_a_chosen_threshold_is_built_into_the_registered_model(
    vigil: VigilRunner, photo_folder: PhotoFolder, tiny_embedder: Path
) -> None:
    done = vigil(
        "train", "classify", "--data", photo_folder(), "--name", "colours",
        "--backbone", tiny_embedder, "--target-recall", "0.99", "--positive", "red",
    )  # fmt: skip
    assert done.status == 0, done.stderr
    run = run_folder(done.stdout)

    version = get("colours")
    again = vigil("eval", "colours", "--data", run / "manifest.json", "--json")

    decision = version.metrics["decision"]
    assert decision["positive"] == "red" and decision["target"] == "recall"
    assert decision["goal"] == 0.99 and decision["built_in"] is True
    assert 0 < decision["threshold"] < 1
    assert "threshold: recall >= 0.99 for 'red': threshold" in done.stdout
    assert again.status == 0, again.stderr
    evaluated = json.loads(again.stdout)
    assert evaluated["confusion"] == version.metrics["confusion"]
    assert evaluated["model"] == "colours:1"
