"""``vigil train classify`` and ``vigil eval`` from the command line: output and mistakes."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.cli import VigilRunner
from tests.predict.support import tiny_classifier
from tests.train.conftest import PhotoFolder
from vigil.models.api import get, list_versions


def test_training_prints_the_numbers_and_where_everything_is(
    vigil: VigilRunner, photo_folder: PhotoFolder, tiny_embedder: Path, tmp_path: Path
) -> None:
    done = vigil(
        "train", "classify", "--data", photo_folder(), "--name", "colours",
        "--backbone", tiny_embedder, "--out", tmp_path / "run",
    )  # fmt: skip

    assert done.status == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "trained colours (probe on tiny_embedder:1) on 16 images"
    assert lines[1] == (
        "test: accuracy 1.000 on 4 images, balanced accuracy 1.000, ROC AUC 1.000, "
        "average precision 1.000"
    )
    assert "  blue        2       0" in lines and "  red         0       2" in lines
    assert "note: The backbone file tiny_embedder.onnx was registered as tiny_embedder:1." in lines
    where = dict(line.split(": ", 1) for line in lines if re.match(r"^[a-z ]+: /", line))
    assert where["run folder"] == str(tmp_path / "run")
    for key in ("manifest", "model file", "report"):
        assert Path(where[key]).is_file(), key
    assert lines[-1] == "registered colours:1: vigil predict colours photo.jpg"


def test_eval_judges_a_registered_model_on_a_folder(
    vigil: VigilRunner, photo_folder: PhotoFolder, tiny_embedder: Path, tmp_path: Path
) -> None:
    train = vigil(
        "train", "classify", "--data", photo_folder(), "--name", "colours",
        "--backbone", tiny_embedder,
    )  # fmt: skip
    assert train.status == 0, train.stderr
    fresh = photo_folder({"red": 5, "blue": 3}, name="fresh", first_seed=500)

    as_json = vigil("eval", "colours", "--data", fresh, "--json")
    as_text = vigil("eval", "colours", "--data", fresh, "--out", tmp_path / "eval.html")

    assert as_json.status == 0, as_json.stderr
    found = json.loads(as_json.stdout)
    assert found["model"] == "colours:1" and found["images"] == 8
    assert found["accuracy"] == 1.0 and found["confusion"] == [[3, 0], [0, 5]]
    assert found["positive"] == "blue"  # the rarer class in the data
    assert found["data"]["counts"] == {"test": {"blue": 3, "red": 5}}
    assert as_text.status == 0, as_text.stderr
    assert as_text.stdout.splitlines()[0] == f"colours:1 on {fresh}:"
    assert (tmp_path / "eval.html").is_file()
    assert f"report: {tmp_path / 'eval.html'}" in as_text.stdout


def test_eval_runs_any_classifier_file(vigil: VigilRunner, tmp_path: Path) -> None:
    from tests.predict.support import photos

    model = tiny_classifier(tmp_path / "model")  # always: dog 0.7, fox 0.15, cat 0.1, owl 0.05
    photos(tmp_path / "pets" / "dog", count=3)
    photos(tmp_path / "pets" / "cat", count=2)

    done = vigil("eval", model, "--data", tmp_path / "pets", "--json")

    assert done.status == 0, done.stderr
    found = json.loads(done.stdout)
    assert found["classes"] == ["cat", "dog", "fox", "owl"]
    assert found["accuracy"] == 0.6
    assert found["confusion"][:2] == [[0, 2, 0, 0], [0, 3, 0, 0]]
    assert found["per_class"]["dog"]["precision"] == 0.6


@pytest.fixture
def one_class(tmp_path: Path, photo_folder: PhotoFolder) -> Path:
    return photo_folder({"red": 6}, name="only-red")


@pytest.mark.parametrize(
    ("changes", "status", "message"),
    [
        ({"--data": "{tmp}/nowhere"}, 1, "does not exist"),
        ({"--data": "{one_class}"}, 1, "only one class has images ('red', 6)"),
        ({"--backbone": "nosuch"}, 1, "backbone nosuch: "),
        ({"--backbone": "{classifier}"}, 1, "is a classify model, not an embed model"),
        ({"--backbone": "pets"}, 1, "backbone pets is a classify model, not an embed model"),
        ({"--target-recall": "1.5"}, 2, "'target_recall': Input should be less than or equal"),
        ({"--target-recall": "0"}, 2, "'target_recall': Input should be greater than 0"),
        ({"--target-recall": "0.9", "--target-precision": "0.9"}, 2, "not both"),
        ({"--backbone": None}, 2, "--method probe needs --backbone"),
        ({"--epochs": "3"}, 2, "--epochs is for --method finetune"),
        ({"--int8": True}, 2, "--int8 is for --method finetune"),
        ({"--positive": "green"}, 2, "--positive 'green' is not a class of the data"),
        ({"--name": "no spaces"}, 1, "cannot name a model"),
    ],
)
def test_bad_input_is_one_line_and_a_failure(
    *,
    vigil: VigilRunner,
    photo_folder: PhotoFolder,
    tiny_embedder: Path,
    tmp_path: Path,
    one_class: Path,
    vigil_home: Path,
    changes: dict[str, str | bool | None],
    status: int,
    message: str,
) -> None:
    classifier = tiny_classifier(tmp_path / "classifier")
    assert vigil("models", "add", classifier, "--name", "pets").status == 0
    places = {"tmp": tmp_path, "one_class": one_class, "classifier": classifier}
    given: dict[str, str | bool | None] = {
        "--data": str(photo_folder()),
        "--name": "colours",
        "--backbone": str(tiny_embedder),
    }
    given |= {k: v.format(**places) if isinstance(v, str) else v for k, v in changes.items()}
    words: list[str] = []
    for flag, value in given.items():
        if value is True:
            words.append(flag)
        elif isinstance(value, str):
            words += [flag, value]

    done = vigil("train", "classify", *words)

    assert message in done.single_error()
    assert done.status == status
    assert [v.name for v in list_versions()] == ["pets"]  # nothing else registered
    assert not (vigil_home / "runs").exists()  # and no run folder left behind


@pytest.mark.parametrize(
    ("model", "data", "message"),
    [
        ("nosuch", "{photos}", "nosuch"),
        ("emb", "{photos}", "is a embed model, not a classify model"),
        ("pets", "{photos}", "the model does not know the classes 'blue', 'red' of the data"),
        ("pets", "{tmp}/nowhere", "does not exist"),
    ],
)
def test_eval_refuses_what_it_cannot_judge(
    *,
    vigil: VigilRunner,
    photo_folder: PhotoFolder,
    tiny_embedder: Path,
    tmp_path: Path,
    model: str,
    data: str,
    message: str,
) -> None:
    assert vigil("models", "add", tiny_classifier(tmp_path / "c"), "--name", "pets").status == 0
    assert vigil("models", "add", tiny_embedder, "--name", "emb", "--task", "embed").status == 0
    where = data.format(photos=photo_folder(), tmp=tmp_path)

    done = vigil("eval", model, "--data", where)

    assert message in done.single_error()


def test_finetuning_goes_through_the_same_evaluation_and_registration(
    vigil: VigilRunner, photo_folder: PhotoFolder, tmp_path: Path
) -> None:
    done = vigil(
        "train", "classify", "--data", photo_folder(), "--name", "colours-ft",
        "--method", "finetune", "--backbone", "tiny_cnn", "--from-scratch", "--epochs", "2",
        "--image-size", "32", "--workers", "0", "--int8", "--out", tmp_path / "run",
    )  # fmt: skip

    assert done.status == 0, done.stderr
    version = get("colours-ft")
    int8 = version.metrics["int8"]
    assert done.stdout.splitlines()[0] == "trained colours-ft (finetune) on 16 images"
    assert re.search(
        r"^int8: accuracy [\d.]+ -> [\d.]+ on 4 validation images, ", done.stdout, re.M
    )
    assert int8["images"] == 4 and int8["max_loss"] == 0.01
    loss = int8["fp32_accuracy"] - int8["int8_accuracy"]
    assert int8["kept"] == (loss < 0.01 and int8["int8_ms"] < int8["fp32_ms"])
    assert version.file_name == ("model.int8.onnx" if int8["kept"] else "model.onnx")
    assert version.lineage["method"] == "finetune" and version.spec.backbone is None
    report = (tmp_path / "run" / "report.html").read_text()
    assert "Training history" in report and "int8 quantisation" in report
