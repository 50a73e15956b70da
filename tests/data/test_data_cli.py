"""``vigil data ...`` in-process: reports, manifests, shards, and one-line errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.data.support import class_folders, label_studio_task, write_json, write_not_image
from vigil.cli.main import main

Runner = Callable[..., tuple[int, str, str]]


@pytest.fixture
def vigil(capsys: pytest.CaptureFixture[str]) -> Runner:
    """Run ``vigil data ARGS...`` in this process; return (status, stdout, stderr)."""

    def run(*args: object) -> tuple[int, str, str]:
        capsys.readouterr()
        status = main(["data", *(str(a) for a in args)])
        out, err = capsys.readouterr()
        return status, out, err

    return run


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    return class_folders(tmp_path / "data", {"hardhat": 12, "no_hardhat": 9})


def test_check_a_usable_folder(vigil: Runner, photos: Path) -> None:
    status, out, err = vigil("check", photos, "--workers", 1)
    assert status == 0, err
    assert f"{photos} (folder): 21 images, 2 classes" in out
    assert "  no_hardhat        9   42.9%" in out
    assert out.rstrip().endswith("verdict: usable: 21 images in 2 classes")


def test_check_as_json(vigil: Runner, photos: Path) -> None:
    write_not_image(photos / "hardhat" / "notes.jpg")
    status, out, _ = vigil("check", photos, "--json", "--workers", 1, "--min-side", 100)
    document = json.loads(out)
    assert status == 0
    assert document["counts"] == {"hardhat": 12, "no_hardhat": 9}
    assert document["unreadable"] == [
        {"key": "hardhat/notes.jpg", "detail": "not an image or cannot be decoded"}
    ]
    assert len(document["tiny"]) == 21
    assert document["usable"] is True


def test_check_real_camera_trap_photos(vigil: Runner, shared_data: Path) -> None:
    labels = shared_data / "camera_trap" / "labels.csv"
    status, out, err = vigil("check", labels, "--label-column", "md_class", "--workers", 2)
    assert status == 0, err
    assert "truncated JPEGs (usable; the missing part is grey): 1" in out
    assert "CMYK: african_elephants_cmyk.jpg" in out
    assert err == ""


def _one_class(tmp_path: Path) -> Path:
    return class_folders(tmp_path / "data", {"hardhat": 3})


def _nothing_decodes(tmp_path: Path) -> Path:
    write_not_image(tmp_path / "data" / "a" / "x.jpg")
    write_not_image(tmp_path / "data" / "b" / "y.jpg")
    return tmp_path / "data"


def _empty(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


def _bad_columns(tmp_path: Path) -> Path:
    (tmp_path / "labels.csv").write_text("image_file,kind\na.jpg,cat\n")
    return tmp_path / "labels.csv"


def _malformed_json(tmp_path: Path) -> Path:
    return write_json(tmp_path / "export.json", {"data": {"image": "a.jpg"}})


def _task_without_image(tmp_path: Path) -> Path:
    return write_json(tmp_path / "export.json", [label_studio_task(3, "", [["cat"]])])


@pytest.mark.parametrize(
    ("make", "args", "expected"),
    [
        (lambda p: p / "nowhere", (), (1, "does not exist: give a folder of class folders")),
        (_empty, (), (1, "has no class sub-folders")),
        (_one_class, (), (1, "only one class has images ('hardhat', 3)")),
        (_nothing_decodes, (), (1, "none of the 2 images can be decoded")),
        (_bad_columns, (), (1, "has no path column (columns: image_file, kind)")),
        (
            _bad_columns,
            ("--path-column", "image_file", "--label-column", "label"),
            (2, "no column 'label'"),
        ),
        (_malformed_json, (), (1, "expected a list of tasks, got a dict")),
        (_task_without_image, (), (1, "task 3: no 'data.image' image URL")),
        (_one_class, ("--near-threshold", 40), (2, "40 is not in the range 0<=x<=32")),
        (_one_class, ("--group-pattern", "(x"), (2, "not a valid regular expression")),
    ],
)
def test_check_mistakes_are_one_line(
    vigil: Runner,
    tmp_path: Path,
    make: Callable[[Path], Path],
    args: tuple[object, ...],
    expected: tuple[int, str],
) -> None:
    status, message = expected
    code, _, err = vigil("check", make(tmp_path), "--workers", 1, *args)
    assert code == status
    assert len(err.strip().splitlines()) == 1, err
    assert err.startswith("vigil: error: ")
    assert message in err


def test_split_verify_and_pack(vigil: Runner, photos: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "split.json"
    status, out, err = vigil("split", photos, "--out", manifest, "--seed", 4, "--workers", 1)
    assert status == 0, err
    assert "  hardhat           8           2        2" in out
    assert "  no_hardhat        6           2        1" in out
    assert out.rstrip().splitlines()[-1].startswith(f"manifest: {manifest} (21 images, hash ")
    text = manifest.read_bytes()

    assert vigil("split", photos, "--out", manifest, "--seed", 4, "--workers", 1)[0] == 0
    assert manifest.read_bytes() == text

    hash_ = json.loads(text)["hash"]
    status, out, _ = vigil("verify", manifest)
    assert (status, out) == (0, f"{manifest}: all 21 images match (manifest {hash_[:12]})\n")

    status, out, err = vigil("pack", manifest, "--out", tmp_path / "shards", "--size", 32)
    assert status == 0, err
    assert [line.split(" (")[0] for line in out.splitlines()] == [
        "train: 14 images in 14 shards",
        "validation: 4 images in 4 shards",
        "test: 3 images in 3 shards",
        f"index: {tmp_path / 'shards' / 'index.json'}",
    ]
    assert (tmp_path / "shards" / "index.json").is_file()


def test_a_changed_dataset_is_caught(vigil: Runner, photos: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "split.json"
    assert vigil("split", photos, "--out", manifest, "--workers", 1)[0] == 0
    changed = photos / "hardhat" / "hardhat_004.jpg"
    changed.write_bytes(changed.read_bytes()[:-1] + b"\x00")

    status, _, err = vigil("verify", manifest)
    assert status == 1
    assert err.strip() == (
        "vigil: error: 1 of 21 images changed since the manifest was written "
        "(hardhat/hardhat_004.jpg: contents changed): run 'vigil data split' again for a new "
        "manifest"
    )
    status, _, err = vigil("pack", manifest, "--out", tmp_path / "shards")
    assert status == 1
    assert "hardhat/hardhat_004.jpg changed since the manifest was written" in err
    status, _, err = vigil("split", photos, "--out", manifest, "--workers", 1)
    assert status == 2
    assert "holds a different split (0 images added, 0 removed, 1 changed" in err
    assert "pass --force to replace it" in err
    assert vigil("split", photos, "--out", manifest, "--workers", 1, "--force")[0] == 0
    assert vigil("verify", manifest)[0] == 0


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (
            ("split", "{photos}", "--out", "{tmp}/m.json", "--train", 0.9),
            (2, "train + validation + test must be 1"),
        ),
        (("split", "{photos}"), (2, "Missing option '--out'")),
        (("verify", "{tmp}/none.json"), (1, "manifest {tmp}/none.json does not exist")),
        (("pack", "{tmp}/none.json", "--out", "{tmp}/s"), (1, "does not exist")),
        (
            ("pack", "{tmp}/none.json", "--out", "{tmp}/s", "--shard-mb", 0),
            (2, "'shard_mb': Input should be greater than 0"),
        ),
        (
            ("pack", "{tmp}/none.json", "--out", "{tmp}/s", "--size", 8),
            (2, "'size': Input should be greater than or equal to 16"),
        ),
    ],
)
def test_split_and_pack_mistakes(
    vigil: Runner, photos: Path, tmp_path: Path, args: tuple[object, ...], expected: tuple[int, str]
) -> None:
    status, message = expected
    filled = [str(a).format(photos=photos, tmp=tmp_path) for a in args]
    code, _, err = vigil(*filled)
    assert code == status
    assert len(err.strip().splitlines()) == 1, err
    assert message.format(tmp=tmp_path) in err


def test_moved_images_are_found_with_root(vigil: Runner, photos: Path, tmp_path: Path) -> None:
    manifest = tmp_path / "split.json"
    assert vigil("split", photos, "--out", manifest, "--workers", 1)[0] == 0
    moved = photos.rename(tmp_path / "moved")

    status, _, err = vigil("pack", manifest, "--out", tmp_path / "shards", "--workers", 1)
    assert status == 1
    assert err.strip().endswith(
        "(missing): run 'vigil data verify' to list every change, "
        "'vigil data split' for a new manifest, or --root if the images moved"
    )
    status, _, err = vigil("verify", manifest)
    assert (status, err.count("\n")) == (1, 1)
    assert "21 of 21 images changed" in err
    assert vigil("verify", manifest, "--root", moved)[0] == 0
    status, out, err = vigil(
        "pack", manifest, "--out", tmp_path / "shards", "--root", moved, "--workers", 1
    )
    assert status == 0, err
    assert out.startswith("train: 14 images")
