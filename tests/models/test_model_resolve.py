"""One resolve() for every way of naming a model, and the module-level API."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import vigil.models
from tests.models.support import write_model
from vigil.errors import ModelError
from vigil.models.api import Models, ResolvedModel


@pytest.fixture
def registered(sqlite_models: Models, tmp_path: Path) -> Models:
    for i in range(3):
        write_model(tmp_path / "files" / f"pose{i}.onnx", f"pose weights {i}".encode() * 20)
        sqlite_models.register(
            tmp_path / "files" / f"pose{i}.onnx", "desk-pose", task="pose", labels=["person"]
        )
    sqlite_models.promote("desk-pose:2", "production")
    return sqlite_models


@pytest.mark.parametrize(
    ("ref", "version"),
    [("desk-pose", 3), ("desk-pose@latest", 3), ("desk-pose:1", 1), ("desk-pose@production", 2)],
)
def test_registered_references_resolve_to_the_file_and_spec(
    registered: Models, ref: str, version: int
) -> None:
    resolved = registered.resolve(ref)

    expected = registered.get(f"desk-pose:{version}")
    assert resolved == ResolvedModel(
        path=expected.path,  # type: ignore[arg-type]
        spec=expected.spec,
        name="desk-pose",
        version=version,
        sha256=expected.sha256,
    )
    assert resolved.path.read_bytes() == f"pose weights {version - 1}".encode() * 20
    assert resolved.spec is not None and resolved.spec.labels == ["person"]
    assert resolved.ref == f"desk-pose:{version}"


def test_a_plain_file_resolves_to_itself_without_a_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_model(tmp_path / "any.tflite")
    monkeypatch.chdir(tmp_path)
    models = Models(registry=tmp_path / "never-created.db", store=tmp_path / "no-store")

    for ref in (path, str(path), "any.tflite"):
        assert models.resolve(ref) == ResolvedModel(path=path, spec=None)
    assert not (tmp_path / "never-created.db").exists()  # no registry needed for a file


def test_an_existing_file_wins_over_a_registered_name(
    registered: Models, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_model(tmp_path / "desk-pose", b"a file that happens to have the name")
    assert registered.resolve("desk-pose").spec is None


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("desk-poes", "no model named 'desk-poes' in the registry; did you mean 'desk-pose'?"),
        ("desk-pose:9", "has no version 9"),
        ("desk-pose@canary", "has no alias 'canary'"),
        ("missing/model.onnx", "model not found: missing/model.onnx"),
        ("model.onnx", "model not found: model.onnx"),
        ("files", "model is not a file: files"),
    ],
)
def test_unresolvable_references_are_one_clear_error(
    registered: Models, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ref: str, message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelError, match=message):
        registered.resolve(ref)


def test_the_module_level_api_uses_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIGIL_REGISTRY_URL", f"sqlite:///{tmp_path / 'env-registry.db'}")
    monkeypatch.setenv("VIGIL_MODEL_STORE", str(tmp_path / "env-store"))
    source = write_model(tmp_path / "m.onnx")

    version = vigil.models.register(source, "m", task="detect", tags={"site": "gate"})
    vigil.models.register(source, "m", task="detect")
    assert [v.ref for v in vigil.models.list(tags={"site": "gate"})] == ["m:1"]
    assert vigil.models.promote("m:1", "production").aliases == ("production",)
    assert vigil.models.get("m@production").sha256 == version.sha256
    assert vigil.models.resolve("m").version == 2
    assert [v.ref for v in vigil.models.remove("m:2").versions] == ["m:2"]
    assert (tmp_path / "env-registry.db").is_file()
    assert version.path is not None and version.path.is_relative_to(tmp_path / "env-store")


def test_the_defaults_live_in_vigil_home(vigil_home: Path, tmp_path: Path) -> None:
    version = vigil.models.register(write_model(tmp_path / "m.onnx"), "m", task="pose")
    assert (vigil_home / "vigil.db").is_file()
    assert version.path is not None and version.path.is_relative_to(vigil_home / "models")


def test_importing_vigil_models_stays_light() -> None:
    code = (
        "import sys, vigil.models; "
        "print(sorted(m for m in ('sqlalchemy', 'httpx', 'boto3') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert callable(vigil.models.register) and callable(vigil.models.list)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = vigil.models.nothing  # type: ignore[attr-defined]
