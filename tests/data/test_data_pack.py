"""Packing: resized JPEGs in WebDataset tar shards, bad images skipped, written atomically."""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import tarfile
import warnings
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.data.support import class_folders, write_exif_rotated, write_not_image, write_truncated
from vigil.data import (
    CheckOptions,
    ImportOptions,
    Manifest,
    PackOptions,
    SplitOptions,
    inspect_dataset,
    load_dataset,
    pack_manifest,
    read_index,
    read_shard,
    split_dataset,
)
from vigil.data.manifest import ManifestItem
from vigil.data.shards import ShardWriter
from vigil.errors import SourceError, StorageError

SMALL = PackOptions(size=64, shard_mb=0.03, workers=1)


def make_manifest(root: Path, options: ImportOptions | None = None) -> Manifest:
    dataset = load_dataset(root, options)
    infos = inspect_dataset(dataset, CheckOptions(workers=1))
    return split_dataset(dataset, infos, SplitOptions(seed=2)).manifest


@pytest.fixture
def manifest(tmp_path: Path) -> Manifest:
    root = class_folders(tmp_path / "data", {"hardhat": 20, "no_hardhat": 14})
    write_exif_rotated(root / "hardhat" / "rotated.jpg", 200)
    write_truncated(root / "no_hardhat" / "truncated.jpg", 201)
    return make_manifest(root)


def tar_names(path: Path) -> list[str]:
    with tarfile.open(path) as tar:
        return tar.getnames()


def test_pack_layout_sizes_and_index(manifest: Manifest, tmp_path: Path) -> None:
    out = tmp_path / "shards"
    report = pack_manifest(manifest, out, SMALL)

    index = read_index(out)
    assert index == report.index
    assert index.classes == ("hardhat", "no_hardhat")
    assert index.manifest_hash == manifest.hash
    assert (index.size, index.fit) == (64, "shorter")
    assert index.counts == {s: len(manifest.split(s)) for s in ("train", "validation", "test")}
    assert len(index.splits["train"]) >= 3
    for split, shards in index.splits.items():
        for number, shard in enumerate(shards):
            path = out / shard.name
            assert shard.name == f"{split}-{number:05d}.tar"
            assert path.stat().st_size == shard.bytes <= 30_000 or shard.count == 1
            assert hashlib.sha256(path.read_bytes()).hexdigest() == shard.sha256
            names = tar_names(path)
            assert len(names) == 3 * shard.count
            assert [n.rsplit(".", 1)[1] for n in names[:3]] == ["jpg", "cls", "json"]
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["index.json", *(s.name for shards in index.splits.values() for s in shards)]
    )


def test_packed_samples_match_the_manifest(manifest: Manifest, tmp_path: Path) -> None:
    index = pack_manifest(manifest, tmp_path / "shards", SMALL).index
    labels = {item.path: item.label for item in manifest.items}
    seen = {}
    for split in index.splits:
        for path in index.shard_paths(split):
            for sample in read_shard(path):
                meta = sample.meta
                image = cv2.imdecode(np.frombuffer(sample.jpg, np.uint8), cv2.IMREAD_COLOR)
                assert min(image.shape[:2]) == 64
                assert (image.shape[1], image.shape[0]) == (meta["width"], meta["height"])
                assert index.classes[sample.cls] == labels[meta["path"]] == meta["label"]
                seen[meta["path"]] = (split, meta)
    assert {path: s for path, (s, _) in seen.items()} == {i.path: i.split for i in manifest.items}
    rotated = seen["hardhat/rotated.jpg"][1]
    assert (rotated["source_width"], rotated["source_height"]) == (96, 128)
    assert (rotated["width"], rotated["height"]) == (64, 85)


def test_shards_read_with_the_webdataset_library(manifest: Manifest, tmp_path: Path) -> None:
    import webdataset as wds

    index = pack_manifest(manifest, tmp_path / "shards", SMALL).index
    urls = [str(p) for p in index.shard_paths("train")]
    with warnings.catch_warnings():
        # webdataset 1.0 leaves its shard files for the garbage collector to close
        warnings.simplefilter("ignore", ResourceWarning)
        dataset = wds.WebDataset(urls, shardshuffle=False, empty_check=False).decode("rgb8")
        samples = list(dataset)
        del dataset
        gc.collect()
    assert len(samples) == index.counts["train"]
    for sample in samples:
        assert sample["jpg"].dtype == np.uint8
        assert sample["jpg"].ndim == 3 and min(sample["jpg"].shape[:2]) == 64
        assert index.classes[sample["cls"]] == sample["json"]["label"]
    ours = [s.key for p in index.shard_paths("train") for s in read_shard(p)]
    assert [s["__key__"] for s in samples] == ours


def test_packing_is_deterministic_and_replaces_an_earlier_set(
    manifest: Manifest, tmp_path: Path
) -> None:
    first = pack_manifest(manifest, tmp_path / "a", SMALL).index
    second = pack_manifest(manifest, tmp_path / "b", SMALL).index
    assert [s.sha256 for s in first.splits["train"]] == [s.sha256 for s in second.splits["train"]]

    bigger_options = SMALL.model_copy(update={"shard_mb": 50, "min_shards": 1})
    bigger = pack_manifest(manifest, tmp_path / "a", bigger_options).index
    assert [len(s) for s in bigger.splits.values()] == [1, 1, 1]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == [
        "index.json",
        "test-00000.tar",
        "train-00000.tar",
        "validation-00000.tar",
    ]


@pytest.mark.parametrize(
    ("min_shards", "expected"), [(1, [1, 1, 1]), (4, [5, 5, 5]), (50, [26, 5, 5])]
)
def test_small_splits_still_get_several_shards(
    manifest: Manifest, tmp_path: Path, min_shards: int, expected: list[int]
) -> None:
    options = SMALL.model_copy(update={"shard_mb": 50, "min_shards": min_shards})
    index = pack_manifest(manifest, tmp_path / "s", options).index
    assert [len(shards) for shards in index.splits.values()] == expected
    assert sum(s.count for s in index.splits["train"]) == len(manifest.split("train"))


def test_crop_fit_gives_squares(manifest: Manifest, tmp_path: Path) -> None:
    index = pack_manifest(
        manifest, tmp_path / "s", SMALL.model_copy(update={"fit": "crop", "size": 48})
    ).index
    for sample in read_shard(index.shard_paths("test")[0]):
        assert (sample.meta["width"], sample.meta["height"]) == (48, 48)


def test_a_bad_image_is_skipped_and_reported(
    manifest: Manifest, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    bad = write_not_image(manifest.root / "hardhat" / "zz_bad.jpg")
    entry = ManifestItem(
        "hardhat/zz_bad.jpg",
        "hardhat",
        "train",
        hashlib.sha256(bad.read_bytes()).hexdigest(),
        bad.stat().st_size,
        "hardhat/zz_bad.jpg",
    )
    with_bad = replace(manifest, items=(*manifest.items, entry))

    with caplog.at_level(logging.WARNING, logger="vigil.data.pack"):
        report = pack_manifest(with_bad, tmp_path / "shards", SMALL)

    assert report.skipped == [
        {
            "path": "hardhat/zz_bad.jpg",
            "split": "train",
            "reason": "not an image or cannot be decoded",
        }
    ]
    assert report.index.skipped == tuple(report.skipped)
    assert report.index.counts["train"] == len(manifest.split("train"))
    assert "hardhat/zz_bad.jpg: not an image or cannot be decoded (skipped)" in caplog.text
    assert "skipped hardhat/zz_bad.jpg: not an image or cannot be decoded" in report.lines()


def test_a_changed_file_stops_the_pack_and_leaves_nothing(
    manifest: Manifest, tmp_path: Path
) -> None:
    victim = manifest.path_of(manifest.split("test")[-1])
    victim.write_bytes(victim.read_bytes()[:-10])
    out = tmp_path / "shards"
    with pytest.raises(SourceError, match="changed since the manifest was written \\(size"):
        pack_manifest(manifest, out, SMALL)
    assert list(out.iterdir()) == []


def test_an_interrupted_pack_leaves_no_shard(
    manifest: Manifest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    added = []
    real_add = ShardWriter.add

    def add_then_fail(self: ShardWriter, key: str, members: dict[str, bytes]) -> None:
        if len(added) == 15:
            raise KeyboardInterrupt
        added.append(key)
        real_add(self, key, members)

    monkeypatch.setattr(ShardWriter, "add", add_then_fail)
    out = tmp_path / "shards"
    out.mkdir()
    (out / ".train-00002.tar.partial").write_bytes(b"left by a killed pack")
    (out / "notes.txt").write_text("mine")
    with pytest.raises(KeyboardInterrupt):
        pack_manifest(manifest, out, SMALL)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_a_shard_in_progress_has_no_final_name(tmp_path: Path) -> None:
    writer = ShardWriter(tmp_path, "train", 10_000_000)
    writer.add("train-0000000", {"jpg": b"x" * 600, "cls": b"0", "json": b"{}"})
    assert [p.name for p in tmp_path.iterdir()] == [".train-00000.tar.partial"]
    (shard,) = writer.close()
    assert [p.name for p in tmp_path.iterdir()] == ["train-00000.tar"]
    assert (shard.name, shard.count, shard.bytes) == ("train-00000.tar", 1, 10240)
    with pytest.raises(ValueError, match=r"no '\.' or '/'"):
        writer.add("a.b", {"jpg": b""})


def test_shard_size_limit_counts_tar_overhead(tmp_path: Path) -> None:
    writer = ShardWriter(tmp_path, "s", 20_480)
    for number in range(6):
        writer.add(f"s-{number}", {"jpg": b"x" * 3000, "cls": b"1"})
    shards = writer.close()
    assert [s.count for s in shards] == [4, 2]
    assert all(s.bytes <= 20_480 for s in shards)
    assert [s.key for s in read_shard(tmp_path / shards[1].name)] == ["s-4", "s-5"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a tar file at all" * 40, "cannot be read"),
        (None, "sample k lacks its .jpg or .cls member"),
    ],
)
def test_damaged_shards_raise_source_errors(
    tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "x.tar"
    if content is None:
        writer = ShardWriter(tmp_path, "x", 1_000_000)
        writer.add("k", {"json": b"{}"})
        path = tmp_path / writer.close()[0].name
    else:
        path.write_bytes(content)
    with pytest.raises(SourceError, match=message):
        list(read_shard(path))


def test_index_mistakes(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"holds no index\.json: pack it with 'vigil data pack'"):
        read_index(tmp_path)
    (tmp_path / "index.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(SourceError, match="is not a Vigil shard index"):
        read_index(tmp_path)
    with pytest.raises(StorageError, match=r"holds an index\.json that Vigil did not write"):
        pack_manifest(Manifest(tmp_path, ("a", "b"), (), 0), tmp_path, SMALL)


def test_real_damaged_camera_trap_photos_pack(shared_data: Path, tmp_path: Path) -> None:
    labels = shared_data / "camera_trap" / "labels.csv"
    manifest = make_manifest(labels, ImportOptions(label_column="md_class"))

    report = pack_manifest(manifest, tmp_path / "shards", PackOptions(size=96, workers=2))

    assert report.skipped == []
    assert sum(report.index.counts.values()) == 8
    images = {}
    for split in report.index.splits:
        for path in report.index.shard_paths(split):
            for sample in read_shard(path):
                decoded = cv2.imdecode(np.frombuffer(sample.jpg, np.uint8), cv2.IMREAD_COLOR)
                images[sample.meta["path"]] = decoded.astype(np.int16)
    original = images["african_elephants.jpg"]
    assert original.shape == (96, 128, 3)
    assert np.abs(images["african_elephants_cmyk.jpg"] - original).mean() < 8
    truncated = images["african_elephants_truncated_file.jpg"]
    assert np.abs(truncated[:40] - original[:40]).mean() < 8
