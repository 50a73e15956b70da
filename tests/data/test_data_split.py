"""Splitting: stratified, group-aware, reproducible; the manifest pins it by content hashes."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import pytest

from tests.data.support import class_folders, write_near_copy, write_photo
from vigil.data import (
    CheckOptions,
    Dataset,
    ImageInfo,
    Item,
    Manifest,
    SplitOptions,
    inspect_dataset,
    load_dataset,
    read_manifest,
    split_dataset,
    verify_manifest,
    write_manifest,
)
from vigil.data.manifest import describe_changes
from vigil.data.split import split_targets
from vigil.errors import SourceError


def synthetic(
    counts: dict[str, int],
    groups: dict[str, str] | None = None,
    same_bytes: Sequence[tuple[str, str]] = (),
    close_hashes: Sequence[tuple[str, str]] = (),
    broken: tuple[str, ...] = (),
) -> tuple[Dataset, list[ImageInfo]]:
    """A dataset of ``counts`` images per class with made-up hashes (no files needed)."""
    groups = groups or {}
    keys = [
        (f"{label}/{n:04d}.jpg", label) for label, count in counts.items() for n in range(count)
    ]
    sha = {key: hashlib.sha256(key.encode()).hexdigest() for key, _ in keys}
    phash: dict[str, int | None] = dict.fromkeys(sha)
    for first, second in same_bytes:
        sha[second] = sha[first]
    for number, (first, second) in enumerate(close_hashes):
        phash[first], phash[second] = 1 << number, (1 << number) | (1 << 40)
    items = tuple(Item(key, Path(key), label, groups.get(key)) for key, label in sorted(keys))
    infos = [
        ImageInfo(i.key, 100, sha[i.key], "broken" if i.key in broken else None, phash=phash[i.key])
        for i in items
    ]
    return Dataset(Path("data"), "folder", Path("data"), items), infos


def splits_of(manifest: Manifest) -> dict[str, str]:
    return {item.path: item.split for item in manifest.items}


@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (100, (70, 15, 15)),
        (10, (7, 2, 1)),
        (30, (21, 5, 4)),
        (5, (3, 1, 1)),
        (3, (1, 1, 1)),
        (2, (2, 0, 0)),
        (1, (1, 0, 0)),
        (0, (0, 0, 0)),
    ],
)
def test_split_targets(count: int, expected: tuple[int, int, int]) -> None:
    targets = split_targets(count, SplitOptions().fractions())
    assert tuple(targets.values()) == expected


def test_stratified_proportions() -> None:
    dataset, infos = synthetic({"empty": 400, "leopard": 60, "person": 20})
    manifest = split_dataset(dataset, infos).manifest
    assert manifest.counts() == {
        "train": {"empty": 280, "leopard": 42, "person": 14},
        "validation": {"empty": 60, "leopard": 9, "person": 3},
        "test": {"empty": 60, "leopard": 9, "person": 3},
    }
    assert manifest.classes == ("empty", "leopard", "person")


def test_same_seed_same_split_other_seed_other_split() -> None:
    dataset, infos = synthetic({"a": 50, "b": 30})
    first = split_dataset(dataset, infos, SplitOptions(seed=3)).manifest
    again = split_dataset(dataset, infos, SplitOptions(seed=3)).manifest
    other = split_dataset(dataset, infos, SplitOptions(seed=4)).manifest
    assert again == first
    assert again.hash == first.hash
    assert splits_of(other) != splits_of(first)
    assert other.counts() == first.counts()
    assert other.hash != first.hash


def test_duplicates_and_groups_never_straddle_splits() -> None:
    groups = {f"a/{n:04d}.jpg": f"site{n % 7}" for n in range(0, 60, 2)}
    same_bytes = [("a/0001.jpg", "b/0001.jpg"), ("b/0003.jpg", "b/0005.jpg")]
    close = [
        ("a/0003.jpg", "a/0005.jpg"),
        ("a/0005.jpg", "b/0007.jpg"),
        ("b/0009.jpg", "b/0011.jpg"),
    ]
    dataset, infos = synthetic({"a": 60, "b": 40}, groups, same_bytes, close)

    manifest = split_dataset(dataset, infos, SplitOptions(seed=11)).manifest

    split = splits_of(manifest)
    for first, second in [*same_bytes, *close]:
        assert split[first] == split[second]
    by_site: dict[str, set[str]] = defaultdict(set)
    for key, site in groups.items():
        by_site[site].add(split[key])
    assert all(len(splits) == 1 for splits in by_site.values())
    assert len({s for splits in by_site.values() for s in splits}) > 1
    group_of = {item.path: item.group for item in manifest.items}
    assert group_of["a/0003.jpg"] == group_of["a/0005.jpg"] == group_of["b/0007.jpg"]
    assert group_of["a/0001.jpg"] == group_of["b/0001.jpg"] == "a/0001.jpg"


def test_near_duplicates_are_free_below_zero_threshold() -> None:
    close = [(f"a/{n:04d}.jpg", f"a/{n + 1:04d}.jpg") for n in range(0, 40, 2)]
    dataset, infos = synthetic({"a": 40, "b": 20}, close_hashes=close)
    together = split_dataset(dataset, infos, near_threshold=8).manifest
    apart = split_dataset(dataset, infos, near_threshold=-1).manifest
    assert all(splits_of(together)[a] == splits_of(together)[b] for a, b in close)
    assert any(splits_of(apart)[a] != splits_of(apart)[b] for a, b in close)


def test_tiny_classes_are_warned_about() -> None:
    dataset, infos = synthetic({"common": 30, "pair": 2, "single": 1, "three": 3})
    result = split_dataset(dataset, infos)
    counts = result.manifest.counts()
    assert [counts[s]["single"] for s in ("train", "validation", "test")] == [1, 0, 0]
    assert [counts[s]["pair"] for s in ("train", "validation", "test")] == [2, 0, 0]
    assert [counts[s]["three"] for s in ("train", "validation", "test")] == [1, 1, 1]
    assert result.warnings == (
        "class 'pair' has 2 images, fewer than the 3 splits: validation and test get none of "
        "it, so it cannot be evaluated; add images",
        "class 'single' has 1 image, fewer than the 3 splits: validation and test get none of "
        "it, so it cannot be evaluated; add images",
    )


def test_a_large_group_moves_proportions_and_says_so() -> None:
    groups = {f"a/{n:04d}.jpg": "camera1" for n in range(80)}
    dataset, infos = synthetic({"a": 100, "b": 100}, groups)
    result = split_dataset(dataset, infos)
    counts = result.manifest.counts()
    assert counts["train"]["a"] == 80
    assert counts["validation"]["a"] + counts["test"]["a"] == 20
    assert [counts[s]["b"] for s in ("train", "validation", "test")] == [70, 15, 15]
    assert any(
        w.startswith("class 'a': validation has ")
        and "because groups stay together (the largest holds 80)" in w
        for w in result.warnings
    )


def test_groups_spread_over_every_split() -> None:
    groups = {f"a/{n:04d}.jpg": f"site{n // 5}" for n in range(60)}
    dataset, infos = synthetic({"a": 60, "b": 20}, groups)
    split = splits_of(split_dataset(dataset, infos).manifest)
    sites_in = {
        s: {groups[k] for k in groups if split[k] == s} for s in ("train", "validation", "test")
    }
    assert all(sites_in.values())
    assert sum(len(sites) for sites in sites_in.values()) == 12


def test_undecodable_images_are_left_out() -> None:
    dataset, infos = synthetic({"a": 5, "b": 5}, broken=("a/0002.jpg",))
    result = split_dataset(dataset, infos)
    assert result.left_out == ("a/0002.jpg",)
    assert "a/0002.jpg" not in splits_of(result.manifest)
    assert len(result.manifest.items) == 9


@pytest.mark.parametrize("counts", [{"a": 5}, {"a": 5, "b": 1}])
def test_one_usable_class_cannot_be_split(counts: dict[str, int]) -> None:
    dataset, infos = synthetic(counts, broken=("b/0000.jpg",))
    with pytest.raises(SourceError, match="images of at least two classes must decode, found 1"):
        split_dataset(dataset, infos)


@pytest.mark.parametrize(
    ("fractions", "message"),
    [
        ({"train": 0.8, "validation": 0.15, "test": 0.15}, "must be 1, got 0.8 \\+ 0.15 \\+ 0.15"),
        ({"train": 0.0, "validation": 0.5, "test": 0.5}, "greater than 0"),
    ],
)
def test_fractions_are_validated(fractions: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SplitOptions(**fractions)


@pytest.fixture
def photos(tmp_path: Path) -> Path:
    root = class_folders(tmp_path / "data", {"hotdog": 12, "not_hotdog": 8})
    write_near_copy(root / "hotdog" / "near.jpg", 0)
    write_photo(root / "not_hotdog" / "copy.jpg", 12)  # same bytes as not_hotdog_000.jpg
    return root


def _split_to(root: Path, out: Path, seed: int = 0) -> Manifest:
    dataset = load_dataset(root)
    infos = inspect_dataset(dataset, CheckOptions(workers=1))
    manifest = split_dataset(dataset, infos, SplitOptions(seed=seed)).manifest
    write_manifest(manifest, out)
    return manifest


def test_manifest_of_real_files_is_byte_for_byte_reproducible(photos: Path, tmp_path: Path) -> None:
    first = _split_to(photos, tmp_path / "out" / "first.json")
    second = _split_to(photos, tmp_path / "out" / "second.json")
    third = _split_to(photos, tmp_path / "out" / "third.json", seed=5)

    text = (tmp_path / "out" / "first.json").read_bytes()
    assert (tmp_path / "out" / "second.json").read_bytes() == text
    assert (tmp_path / "out" / "third.json").read_bytes() != text
    assert first.hash == second.hash != third.hash
    document = json.loads(text)
    assert document["root"] == "../data"
    assert document["hash"] == first.hash
    assert set(document["items"][0]) == {"path", "label", "split", "sha256", "size", "group"}
    split = splits_of(first)
    assert split["hotdog/near.jpg"] == split["hotdog/hotdog_000.jpg"]
    assert split["not_hotdog/copy.jpg"] == split["not_hotdog/not_hotdog_000.jpg"]


def test_manifest_round_trip_and_moved_data(photos: Path, tmp_path: Path) -> None:
    written = _split_to(photos, tmp_path / "m.json")
    read = read_manifest(tmp_path / "m.json")
    assert read == written
    assert read.path_of(read.items[0]).is_file()
    moved = tmp_path / "elsewhere"
    photos.rename(moved)
    assert read_manifest(tmp_path / "m.json", root=moved).path_of(read.items[0]).is_file()


def test_a_changed_dataset_is_detected(photos: Path, tmp_path: Path) -> None:
    manifest = _split_to(photos, tmp_path / "m.json")
    assert verify_manifest(manifest) == []
    edited = photos / "hotdog" / "hotdog_003.jpg"
    data = bytearray(edited.read_bytes())
    data[len(data) // 2] ^= 0xFF
    edited.write_bytes(bytes(data))
    (photos / "hotdog" / "hotdog_004.jpg").unlink()
    grown = photos / "hotdog" / "hotdog_005.jpg"
    size = grown.stat().st_size
    grown.write_bytes(grown.read_bytes() + b"\0")

    changes = verify_manifest(read_manifest(tmp_path / "m.json"))

    assert [(c.path, c.reason) for c in changes] == [
        ("hotdog/hotdog_003.jpg", "contents changed"),
        ("hotdog/hotdog_004.jpg", "missing"),
        ("hotdog/hotdog_005.jpg", f"size changed ({size} -> {size + 1} bytes)"),
    ]
    assert describe_changes(changes, len(manifest.items)) == (
        "3 of 22 images changed since the manifest was written (hotdog/hotdog_003.jpg: contents "
        "changed; hotdog/hotdog_004.jpg: missing; hotdog/hotdog_005.jpg: size changed "
        f"({size} -> {size + 1} bytes)): run 'vigil data split' again for a new manifest "
        "(or, if the images moved, give their folder with --root)"
    )


def test_an_edited_manifest_is_refused(photos: Path, tmp_path: Path) -> None:
    _split_to(photos, tmp_path / "m.json")
    text = (tmp_path / "m.json").read_text()
    (tmp_path / "m.json").write_text(text.replace('"split": "test"', '"split": "train"', 1))
    with pytest.raises(SourceError, match="was edited after it was written"):
        read_manifest(tmp_path / "m.json")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "does not exist: make one with 'vigil data split'"),
        ("[1, 2", "line 1: not a Vigil manifest"),
        ('{"format": "other"}', "is not a Vigil manifest \\(no format"),
        ('{"format": "vigil-manifest/1", "items": []}', "is not a Vigil manifest \\(missing"),
        (
            '{"format": "vigil-manifest/1", "hash": "x", "root": ".", "classes": ["a"], "seed": 0,'
            ' "fractions": {}, "near_threshold": 8, "items": [{"path": "p", "label": "b",'
            ' "split": "train", "sha256": "s", "size": 1, "group": "p"}]}',
            "no valid split, class or size",
        ),
    ],
)
def test_not_a_manifest(tmp_path: Path, text: str | None, message: str) -> None:
    path = tmp_path / "m.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(SourceError, match=message):
        read_manifest(path)
