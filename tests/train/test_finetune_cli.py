"""``vigil train classify --method finetune`` end to end, on generated textures."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli import VigilRunner
from tests.train.conftest import write_textures

pytest.importorskip("torch", reason="fine-tuning needs torch (vigil[train])")


@pytest.fixture(autouse=True)
def empty_torch_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))


def test_trains_exports_and_registers_a_network(vigil: VigilRunner, tmp_path: Path) -> None:
    images = write_textures(tmp_path / "images", 20)
    result = vigil(
        "train", "classify", "--data", images, "--name", "textures", "--method", "finetune",
        "--backbone", "tiny_cnn", "--from-scratch", "--epochs", "2", "--out", tmp_path / "run",
    )  # fmt: skip
    assert result.status == 0, result.stderr
    assert "registered textures:1" in result.stdout
    assert (tmp_path / "run" / "model.onnx").is_file()
    assert (tmp_path / "run" / "model.onnx.vigil.yaml").is_file()
    assert (tmp_path / "run" / "checkpoints" / "best.pt").is_file()
    assert (tmp_path / "run" / "shards" / "index.json").is_file()


@pytest.mark.parametrize(
    ("extra", "status", "says"),
    [
        (["--backbone", "mobilenet_v2"], 2, "no pretrained weights for mobilenet_v2"),
        (["--backbone", "tiny_cnn", "--weights", "notes.txt"], 1, "not a PyTorch checkpoint"),
    ],
)
def test_without_usable_weights_it_says_what_to_do_in_one_line(
    vigil: VigilRunner, tmp_path: Path, extra: list[str], status: int, says: str
) -> None:
    images = write_textures(tmp_path / "images", 5)
    (tmp_path / "notes.txt").write_text("not weights")
    result = vigil(
        "train", "classify", "--data", images, "--name", "textures", "--method", "finetune",
        "--out", tmp_path / "run", *extra,
    )  # fmt: skip
    assert says in result.single_error()
    assert result.status == status
    assert not (tmp_path / "run" / "model.onnx").exists()
