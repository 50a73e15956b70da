"""``vigil models ...`` in-process: output, exit codes and one-line errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.models.support import (
    FileServer,
    Route,
    catalogue_entry,
    file_server,
    sha256,
    write_catalogue,
    write_model,
)
from vigil.cli.main import main
from vigil.models.catalogue import load_catalogue


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    status = main(["models", *(str(a) for a in args)])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.fixture
def pose_file(tmp_path: Path) -> Path:
    return write_model(tmp_path / "desk.onnx", b"pose weights" * 100)


@pytest.fixture
def server() -> Iterator[FileServer]:
    with file_server() as running:
        yield running


def test_add_list_info_promote_rm(
    capsys: pytest.CaptureFixture[str], pose_file: Path, tmp_path: Path
) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text("person\n")
    status, out, err = run(
        capsys, "add", pose_file, "--name", "desk-pose", "--task", "pose", "--tag", "site=desk"
    )
    assert (status, err) == (0, "")
    digest = sha256(b"pose weights" * 100)[:12]
    assert out == f"registered desk-pose:1 (pose, onnx, 1.2 KB, sha256 {digest})\n"
    other = write_model(tmp_path / "cls.tflite", b"c" * 324)
    assert (
        run(capsys, "add", other, "-n", "birds", "--task", "classify", "--labels", labels)[0] == 0
    )
    assert run(capsys, "add", pose_file, "-n", "desk-pose", "--task", "pose")[0] == 0

    status, out, _ = run(capsys, "promote", "desk-pose:1", "--stage", "production")
    assert (status, out) == (0, "desk-pose@production is now desk-pose:1\n")

    status, out, _ = run(capsys, "list")
    lines = out.splitlines()
    assert status == 0 and len(lines) == 4
    assert lines[0].split() == [
        "NAME",
        "VERSION",
        "TASK",
        "FORMAT",
        "SIZE",
        "STAGES",
        "TAGS",
        "CREATED",
    ]
    assert lines[1].split()[:6] == ["birds", "1", "classify", "tflite", "324", "B"]
    assert lines[2].split()[:8] == [
        "desk-pose",
        "1",
        "pose",
        "onnx",
        "1.2",
        "KB",
        "production",
        "site=desk",
    ]
    assert lines[3].split()[:7] == ["desk-pose", "2", "pose", "onnx", "1.2", "KB", "latest"]

    status, out, _ = run(capsys, "list", "--tag", "site=desk", "--json")
    listed = json.loads(out)
    assert [(v["ref"], v["aliases"], v["tags"]) for v in listed] == [
        ("desk-pose:1", ["production"], {"site": "desk"})
    ]
    assert [
        v["ref"] for v in json.loads(run(capsys, "list", "--task", "classify", "--json")[1])
    ] == ["birds:1"]

    status, out, _ = run(capsys, "info", "birds")
    assert status == 0
    assert "model:       birds:1" in out and "labels:\n  - person" in out and "path:" in out
    info = json.loads(run(capsys, "info", "desk-pose@production", "--json")[1])
    assert (info["ref"], info["spec"]["task"], info["size"]) == ("desk-pose:1", "pose", 1200)

    status, _, err = run(capsys, "rm", "desk-pose:1")
    assert status == 1
    assert err == (
        "vigil: error: desk-pose:1 is production: promote another version first, "
        "or remove it anyway with --force\n"
    )
    status, out, _ = run(capsys, "rm", "desk-pose", "--force")
    assert (status, out) == (
        0,
        "removed desk-pose:1\nremoved desk-pose:2\ndeleted 1 file(s) no version uses (1.2 KB)\n",
    )
    assert run(capsys, "list")[1].splitlines()[1].startswith("birds")


def test_an_empty_registry_lists_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "list") == (0, "no models registered\n", "")
    assert run(capsys, "list", "--json") == (0, "[]\n", "")
    assert run(capsys, "list", "--task", "pose") == (0, "no models registered that match\n", "")


def test_registry_and_store_options(
    capsys: pytest.CaptureFixture[str], pose_file: Path, tmp_path: Path
) -> None:
    where = ["--registry", tmp_path / "other.db", "--store", tmp_path / "other-store"]
    assert run(capsys, *where, "add", pose_file, "-n", "m", "--task", "pose")[0] == 0
    assert (tmp_path / "other.db").is_file() and (tmp_path / "other-store" / "sha256").is_dir()
    assert run(capsys, "list")[1] == "no models registered\n"  # the default one is untouched
    assert json.loads(run(capsys, *where, "list", "--json")[1])[0]["ref"] == "m:1"


def test_pull_shows_progress_and_registers(
    capsys: pytest.CaptureFixture[str], server: FileServer, tmp_path: Path
) -> None:
    data = b"model bytes" * 3000
    url = server.serve("/m.tflite", Route(data))
    catalogue = write_catalogue(tmp_path / "c.yaml", catalogue_entry("tiny", url, data))

    status, out, err = run(capsys, "pull", "tiny", "--catalogue", catalogue)
    assert status == 0
    assert out == f"registered tiny:1 (pose, tflite, 33.0 KB, sha256 {sha256(data)[:12]})\n"
    assert err.splitlines()[-1] == "vigil: tiny: 33.0 KB of 33.0 KB (100%)"

    status, out, err = run(capsys, "pull", "tiny", "--catalogue", catalogue)
    assert (status, err) == (0, "")
    assert out == f"tiny:1 already has this file (sha256 {sha256(data)[:12]})\n"


def test_catalogue_lists_the_packaged_models(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "catalogue")
    names = [line.split()[0] for line in out.splitlines()[1:]]
    assert status == 0 and names == load_catalogue().names()
    assert "unpublished" in out  # entries without a published hash say so
    entries = json.loads(run(capsys, "catalogue", "--json")[1])
    assert {e["name"] for e in entries} == set(names)


def test_gc_reports(capsys: pytest.CaptureFixture[str], pose_file: Path) -> None:
    run(capsys, "add", pose_file, "-n", "m", "--task", "pose")
    assert run(capsys, "gc", "--dry-run") == (0, "would delete 0 unused file(s) (0 B)\n", "")
    assert run(capsys, "gc") == (0, "deleted 0 unused file(s) (0 B)\n", "")


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (
            ["add", "missing.onnx", "-n", "m", "--task", "pose"],
            1,
            "model file not found: missing.onnx",
        ),
        (
            ["add", "{model}", "-n", "m", "--task", "pose", "--tag", "oops"],
            2,
            "'oops' is not KEY=VALUE",
        ),
        (["add", "{model}", "-n", "m"], 1, "say what the model does: give a task"),
        (["add", "{model}", "-n", "m", "--task", "segment"], 2, "Invalid value for '--task'"),
        (
            ["add", "{model}", "-n", "bad name", "--task", "pose"],
            1,
            "'bad name' cannot name a model",
        ),
        (
            ["add", "{model}", "-n", "m", "--spec", "{bad_spec}"],
            2,
            "bad-spec.yaml line 2: 'score_threshold'",
        ),
        (
            ["info", "desk-poes"],
            1,
            "no model named 'desk-poes' in the registry; did you mean 'desk-pose'?",
        ),
        (["info", "desk-pose:5"], 1, "model 'desk-pose' has no version 5; its versions: 1"),
        (["info", "a/b.onnx"], 1, "'a/b.onnx' is not a model reference"),
        (["promote", "desk-pose:1", "--stage", "Prod"], 2, "'Prod' cannot name a stage"),
        (["promote", "desk-pose:1", "--stage", "latest"], 2, "'latest' always means the newest"),
        (["rm", "nothing"], 1, "no model named 'nothing'"),
        (
            ["pull", "movenet-lightnin"],
            1,
            "no model named 'movenet-lightnin' in the catalogue; did you mean 'movenet-lightning'?",
        ),
        (
            ["pull", "megadetector-v5a"],
            1,
            "the catalogue has no published sha256 for 'megadetector-v5a'",
        ),
        (["pull", "hf://acme/model.onnx", "--task", "pose"], 1, "is not a Hub file"),
        (["--registry", "nosuch://x", "list"], 2, "not a database URL"),
        (
            ["--store", "ftp://host/models", "add", "{model}", "-n", "m", "--task", "pose"],
            2,
            "use a folder or s3://",
        ),
    ],
)
def test_every_mistake_is_one_line(
    capsys: pytest.CaptureFixture[str],
    *,
    pose_file: Path,
    tmp_path: Path,
    args: list[str],
    status: int,
    message: str,
) -> None:
    assert run(capsys, "add", pose_file, "-n", "desk-pose", "--task", "pose")[0] == 0
    bad_spec = tmp_path / "bad-spec.yaml"
    bad_spec.write_text("task: pose\nscore_threshold: 2\n")
    filled = [a.format(model=pose_file, bad_spec=bad_spec) for a in args]

    got_status, out, err = run(capsys, *filled)

    assert got_status == status
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("vigil: error: ")
    assert message in err
    assert "Traceback" not in err
