"""``check_dataset``: decodability, duplicates, odd formats, tiny images and imbalance."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.data.support import (
    class_folders,
    write_16bit,
    write_alpha,
    write_cmyk,
    write_exif_rotated,
    write_grey,
    write_near_copy,
    write_not_image,
    write_photo,
    write_truncated,
)
from vigil.data import CheckOptions, ImportOptions, check_dataset, inspect_image, load_dataset
from vigil.data.check import advice, imbalance_ratio, usability_problem
from vigil.data.duplicates import hamming
from vigil.data.imageinfo import ImageInfo
from vigil.errors import DependencyError

IN_PROCESS = CheckOptions(workers=1)


@pytest.mark.parametrize(
    ("write", "traits", "truncated", "size"),
    [
        (lambda p: write_photo(p, 1), (), False, (128, 96)),
        (lambda p: write_cmyk(p, 1), ("cmyk",), False, (128, 96)),
        (lambda p: write_grey(p.with_suffix(".png"), 1), ("greyscale",), False, (128, 96)),
        (lambda p: write_16bit(p.with_suffix(".png"), 1), ("16-bit",), False, (128, 96)),
        (lambda p: write_alpha(p.with_suffix(".png"), 1), ("alpha",), False, (128, 96)),
        (lambda p: write_exif_rotated(p, 1), ("exif-rotated",), False, (96, 128)),
        (lambda p: write_truncated(p, 1), (), True, (256, 192)),
        (lambda p: write_photo(p, 1, (12, 20)), (), False, (20, 12)),
    ],
)
def test_inspect_one_image(
    tmp_path: Path,
    write: Callable[[Path], Path],
    traits: tuple[str, ...],
    truncated: bool,
    size: tuple[int, int],
) -> None:
    path = write(tmp_path / "image.jpg")
    info = inspect_image("image", path)
    assert info.usable
    assert info.error is None
    assert info.traits == traits
    assert info.truncated is truncated
    assert (info.width, info.height) == size
    assert info.size == path.stat().st_size
    assert info.sha256 is not None and len(info.sha256) == 64
    assert info.phash is not None


def _empty_file(path: Path) -> Path:
    path.write_bytes(b"")
    return path


@pytest.mark.parametrize(
    ("write", "error"),
    [
        (write_not_image, "not an image or cannot be decoded"),
        (_empty_file, "not an image or cannot be decoded"),
        (lambda p: p, "cannot read: No such file or directory"),
    ],
)
def test_inspect_an_unusable_file(
    tmp_path: Path, write: Callable[[Path], Path], error: str
) -> None:
    info = inspect_image("bad", write(tmp_path / "bad.jpg"))
    assert not info.usable
    assert info.error == error
    assert info.phash is None


def test_near_copies_are_close_and_other_photos_far(tmp_path: Path) -> None:
    original = inspect_image("a", write_photo(tmp_path / "a.jpg", 7))
    near = inspect_image("b", write_near_copy(tmp_path / "b.jpg", 7))
    other = inspect_image("c", write_photo(tmp_path / "c.jpg", 8))
    assert original.phash is not None and near.phash is not None and other.phash is not None
    assert original.sha256 != near.sha256
    assert hamming(original.phash, near.phash) <= 4
    assert hamming(original.phash, other.phash) >= 16


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    """Two classes with one of every problem the check knows."""
    root = class_folders(tmp_path / "data", {"hardhat": 3, "no_hardhat": 3})
    hard, bare = root / "hardhat", root / "no_hardhat"
    write_cmyk(hard / "cmyk.jpg", 101)
    write_grey(hard / "grey.png", 102)
    write_16bit(hard / "deep.png", 103)
    write_alpha(hard / "alpha.png", 104)
    write_exif_rotated(hard / "rotated.jpg", 105)
    write_truncated(hard / "truncated.jpg", 106)
    write_photo(hard / "tiny.jpg", 107, (20, 24))
    write_near_copy(hard / "near.jpg", 0)  # near hardhat_000.jpg (seed 0)
    shutil.copy(hard / "hardhat_001.jpg", hard / "copy.jpg")
    shutil.copy(hard / "hardhat_002.jpg", bare / "conflict.jpg")
    write_not_image(bare / "broken.jpg")
    return root


def test_check_reports_every_problem(messy: Path) -> None:
    report = check_dataset(load_dataset(messy), IN_PROCESS)

    assert report.usable
    assert report.images == 17
    assert report.counts == {"hardhat": 12, "no_hardhat": 4}
    assert [(f.key, f.detail) for f in report.unreadable] == [
        ("no_hardhat/broken.jpg", "not an image or cannot be decoded")
    ]
    assert report.truncated == ("hardhat/truncated.jpg",)
    assert [(f.key, f.detail) for f in report.tiny] == [("hardhat/tiny.jpg", "24x20")]
    assert report.odd == {
        "cmyk": ("hardhat/cmyk.jpg",),
        "greyscale": ("hardhat/grey.png",),
        "16-bit": ("hardhat/deep.png",),
        "alpha": ("hardhat/alpha.png",),
        "exif-rotated": ("hardhat/rotated.jpg",),
    }
    assert report.exact_duplicates == (
        ("hardhat/copy.jpg", "hardhat/hardhat_001.jpg"),
        ("hardhat/hardhat_002.jpg", "no_hardhat/conflict.jpg"),
    )
    assert report.near_duplicates == (("hardhat/hardhat_000.jpg", "hardhat/near.jpg"),)
    assert report.label_conflicts == (("hardhat/hardhat_002.jpg", "no_hardhat/conflict.jpg"),)
    assert report.imbalance_ratio == 3.0
    assert report.warnings == (
        "'hardhat' has 3.0x the images of 'no_hardhat': judge by per-class recall, "
        "not accuracy alone",
        "class 'no_hardhat' has only 4 usable images; a few dozen per class is a bare minimum",
    )


def test_check_report_as_text_and_json(messy: Path) -> None:
    report = check_dataset(load_dataset(messy), IN_PROCESS)
    text = "\n".join(report.lines(limit=1))
    assert "  hardhat          12   75.0%" in text
    assert "cannot be decoded (left out): 1\n  no_hardhat/broken.jpg: not an image" in text
    assert "exact duplicates (same bytes): 2 groups, 4 files" in text
    assert "  ... and 1 more (--json lists all)" in text
    assert "converted when read (fine to train on): 1 CMYK, 1 greyscale, 1 16-bit" in text
    assert "near duplicates (perceptual hashes within 8 bits): 1 group, 2 files" in text
    assert text.endswith("verdict: usable: 16 images in 2 classes")
    document = json.loads(json.dumps(report.to_dict()))
    assert document["usable"] is True
    assert document["usable_images"] == 16
    assert document["odd"]["cmyk"] == ["hardhat/cmyk.jpg"]
    assert document["unreadable"] == [
        {"key": "no_hardhat/broken.jpg", "detail": "not an image or cannot be decoded"}
    ]


def test_worker_processes_find_the_same(messy: Path) -> None:
    dataset = load_dataset(messy)
    assert check_dataset(dataset, CheckOptions(workers=2)) == check_dataset(dataset, IN_PROCESS)


@pytest.mark.parametrize(
    ("threshold", "groups"),
    [(0, ()), (8, (("hardhat/hardhat_000.jpg", "hardhat/near.jpg"),))],
)
def test_near_threshold(messy: Path, threshold: int, groups: tuple[tuple[str, ...], ...]) -> None:
    options = CheckOptions(workers=1, near_threshold=threshold)
    assert check_dataset(load_dataset(messy), options).near_duplicates == groups


def test_real_damaged_camera_trap_photos(shared_data: Path) -> None:
    labels = shared_data / "camera_trap" / "labels.csv"
    dataset = load_dataset(labels, ImportOptions(label_column="md_class"))

    report = check_dataset(dataset, IN_PROCESS)

    assert report.usable
    assert report.unreadable == ()
    assert report.counts == {"animal": 5, "empty": 2, "person": 1}
    assert report.truncated == ("african_elephants_truncated_file.jpg",)
    assert report.odd["cmyk"] == ("african_elephants_cmyk.jpg",)
    assert report.near_duplicates == (
        (
            "african_elephants.jpg",
            "african_elephants_cmyk.jpg",
            "african_elephants_truncated_file.jpg",
        ),
    )
    assert report.exact_duplicates == ()


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        (
            {"empty": 95, "leopard": 5},
            "95% of images are 'empty': accuracy alone will look good; "
            "judge by the recall of 'leopard'",
        ),
        (
            {"bird": 10, "cat": 40, "dog": 12},
            "'cat' has 4.0x the images of 'bird': judge by per-class recall, not accuracy alone",
        ),
        ({"hotdog": 50, "not_hotdog": 60}, None),
    ],
)
def test_imbalance_advice(counts: dict[str, int], expected: str | None) -> None:
    notes = advice(counts)
    assert (notes[0] if notes else None) == expected


def test_few_and_missing_images_are_advised() -> None:
    assert advice({"a": 20, "b": 3, "c": 0, "d": 10}) == [
        "'a' has 6.7x the images of 'b': judge by per-class recall, not accuracy alone",
        "class 'b' has only 3 usable images; a few dozen per class is a bare minimum",
        "class 'c' has no usable image",
    ]
    assert imbalance_ratio({"a": 50, "b": 0}) is None


@pytest.mark.parametrize(
    ("counts", "problem"),
    [
        ({"a": 3, "b": 1}, None),
        ({"a": 3, "b": 0}, "only one class has images ('a', 3): a classifier needs at least two"),
        ({"a": 0, "b": 0}, "none of the 2 images can be decoded (first: x.jpg: broken)"),
    ],
)
def test_usability(counts: dict[str, int], problem: str | None) -> None:
    infos = [ImageInfo("x.jpg", 3, None, "broken"), ImageInfo("y.jpg", 3, None, "broken")]
    found = usability_problem(counts, infos)
    if problem is None:
        assert found is None
    else:
        assert found is not None
        assert found.startswith(problem)


@pytest.mark.parametrize(("module", "package"), [("imagehash", "imagehash"), ("PIL", "pillow")])
def test_missing_libraries_name_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str, package: str
) -> None:
    photo = write_photo(tmp_path / "a.jpg", 1)
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(DependencyError, match=rf"needs the '{package}' package: .*vigil\[train\]"):
        inspect_image("a", photo)
