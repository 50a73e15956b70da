"""The catalogue of public models: well-formed, and its hashes true to the real files we hold."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.models.support import catalogue_entry, write_catalogue
from vigil.errors import ConfigError, ModelError
from vigil.models.catalogue import load_catalogue, packaged_catalogue_path

# Files in ../shared/data/models that are byte-for-byte the files of these entries.
SHARED_FILES = {
    "movenet-lightning": "tfls_movenet_singlepose_lightning_int8_4.tflite",
    "ssd-mobilenet-v1-coco": "tfls_coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.tflite",
    "mobilenet-v2-quant": "tfls_mobilenet_v2_1.0_224_quant.tflite",
    "mobilenet-v1-025-quant": "tfls_mobilenet_v1_0.25_224_quant.tflite",
}
IMAGENET_LABELS = "tfls_imagenet_labels_1001.txt"


def test_the_packaged_catalogue_is_well_formed() -> None:
    catalogue = load_catalogue()

    assert packaged_catalogue_path().is_file()
    assert len(catalogue.models) >= 6
    for entry in catalogue.models:
        assert entry.url.startswith("https://"), entry.name
        if entry.sha256 is None:
            assert entry.hash_source is None, f"{entry.name}: a source but no hash"
        else:
            assert entry.hash_source, f"{entry.name}: say where the hash was published"
    tasks = {entry.spec.task for entry in catalogue.models}
    assert {"pose", "detect", "classify"} <= tasks


@pytest.mark.parametrize(("name", "file_name"), sorted(SHARED_FILES.items()))
def test_published_hashes_match_the_real_files(
    shared_data: Path, name: str, file_name: str
) -> None:
    data = (shared_data / "models" / file_name).read_bytes()
    entry = load_catalogue().entry(name)
    assert (entry.sha256, entry.size) == (hashlib.sha256(data).hexdigest(), len(data))


def test_the_imagenet_labels_hash_matches_the_real_file(shared_data: Path) -> None:
    data = (shared_data / "models" / IMAGENET_LABELS).read_bytes()
    with_labels = [e for e in load_catalogue().models if e.labels_url]
    assert with_labels
    assert {e.labels_sha256 for e in with_labels} == {hashlib.sha256(data).hexdigest()}


def test_a_catalogue_file_replaces_the_packaged_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    own = write_catalogue(tmp_path / "site.yaml", catalogue_entry("ours", "https://x/m.onnx", b"m"))
    monkeypatch.setenv("VIGIL_CATALOGUE", str(own))
    assert load_catalogue().names() == ["ours"]
    assert load_catalogue(packaged_catalogue_path()).entry("movenet-lightning").spec.task == "pose"
    assert load_catalogue().entry("ours").target_name == "m.onnx"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"sha256": "1234"}, "line 5: 'models.0.sha256': String should match pattern"),
        ({"url": "ftp://x/m"}, "'models.0.url': String should match pattern"),
        ({"labels_url": "https://x/l.txt"}, "give labels_sha256 with labels_url"),
        ({"spec": {"task": "pose", "decoder": "ssd"}}, "does not fit task 'pose'"),
        ({"licence": None}, "'models.0.licence'"),
        ({"mirror": "https://y"}, "unknown field 'models.0.mirror'"),
    ],
)
def test_catalogue_mistakes_point_at_the_line(
    tmp_path: Path, change: dict[str, object], message: str
) -> None:
    entry = catalogue_entry("m", "https://x/m.onnx", b"model")
    entry.update(change)
    with pytest.raises(ConfigError, match=message):
        load_catalogue(write_catalogue(tmp_path / "c.yaml", entry))


def test_duplicate_names_and_unknown_names(tmp_path: Path) -> None:
    twice = [catalogue_entry("m", "https://x/m.onnx", b"m")] * 2
    with pytest.raises(ConfigError, match="the name 'm' is used twice"):
        load_catalogue(write_catalogue(tmp_path / "c.yaml", *twice))
    with pytest.raises(ModelError, match="no model named 'zzz' in the catalogue; known: "):
        load_catalogue().entry("zzz")
    with pytest.raises(ConfigError, match="config file not found"):
        load_catalogue(tmp_path / "absent.yaml")
