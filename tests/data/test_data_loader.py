"""The loader: every sample once per epoch, shuffled, deterministic, in worker processes."""

from __future__ import annotations

import hashlib
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.data.support import class_folders
from vigil.data import (
    CheckOptions,
    FileSplit,
    Loader,
    LoaderOptions,
    Manifest,
    PackOptions,
    Sample,
    ShardIndex,
    SplitOptions,
    inspect_dataset,
    load_dataset,
    open_shards,
    pack_manifest,
    read_shard,
    split_dataset,
    train_transform,
)
from vigil.data.loader import stack
from vigil.data.transforms import (
    CenterCrop,
    ColorJitter,
    RandomFlip,
    RandomResizedCrop,
    fit_image,
)
from vigil.errors import ConfigError, SourceError


@pytest.fixture(scope="module")
def packed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Manifest, ShardIndex]:
    folder = tmp_path_factory.mktemp("loader")
    root = class_folders(folder / "data", {"cat": 30, "dog": 20, "fox": 10})
    dataset = load_dataset(root)
    infos = inspect_dataset(dataset, CheckOptions(workers=1))
    manifest = split_dataset(dataset, infos, SplitOptions(seed=1)).manifest
    index = pack_manifest(
        manifest, folder / "shards", PackOptions(size=64, shard_mb=0.02, workers=1)
    ).index
    assert len(index.splits["train"]) >= 4
    return manifest, index


def fingerprints(samples: Iterable[Sample]) -> list[tuple[int, str]]:
    return [(s.label, hashlib.sha1(s.image.tobytes()).hexdigest()) for s in samples]


def stored(index: ShardIndex, split: str) -> list[tuple[int, str]]:
    """The split's samples decoded in stored order, without the loader."""
    import cv2

    samples = []
    for path in index.shard_paths(split):
        for packed in read_shard(path):
            bgr = cv2.imdecode(np.frombuffer(packed.jpg, np.uint8), cv2.IMREAD_COLOR)
            samples.append(Sample(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), packed.cls))
    return fingerprints(samples)


def test_every_sample_once_per_epoch_in_a_seeded_order(packed: tuple[Manifest, ShardIndex]) -> None:
    _, index = packed
    expected = stored(index, "train")
    options = LoaderOptions(workers=0, seed=7, shuffle_buffer=16)
    loader = Loader(open_shards(index.folder, "train"), options)

    epoch0, epoch1 = fingerprints(loader), fingerprints(loader)

    assert len(loader) == len(expected) == index.counts["train"]
    assert Counter(epoch0) == Counter(epoch1) == Counter(expected)
    assert epoch0 != expected
    assert epoch0 != epoch1
    again = Loader(open_shards(index.folder, "train"), options)
    assert fingerprints(again.epoch(1)) == epoch1
    other = Loader(open_shards(index.folder, "train"), options.model_copy(update={"seed": 8}))
    assert fingerprints(other.epoch(0)) != epoch0


def test_without_shuffle_samples_come_in_stored_order(packed: tuple[Manifest, ShardIndex]) -> None:
    _, index = packed
    loader = Loader(open_shards(index.folder, "test"), LoaderOptions(workers=0, shuffle=False))
    assert fingerprints(loader.epoch(3)) == stored(index, "test")


def test_worker_processes_are_deterministic(packed: tuple[Manifest, ShardIndex]) -> None:
    _, index = packed
    source = open_shards(index.folder, "train")
    options = LoaderOptions(workers=2, seed=3, chunk=4, shuffle_buffer=8)
    transform = train_transform(48)
    in_process = Loader(source, options.model_copy(update={"workers": 0}), transform)

    with Loader(source, options, transform) as first:
        run1 = [fingerprints(first.epoch(0)), fingerprints(first.epoch(1))]
    with Loader(source, options, transform) as second:
        run2 = [fingerprints(second.epoch(0)), fingerprints(second.epoch(1))]

    assert run1 == run2
    assert run1[0] != run1[1]
    assert Counter(run1[0]) == Counter(fingerprints(in_process.epoch(0)))
    assert len(run1[0]) == index.counts["train"]


def test_leaving_an_epoch_early_then_a_whole_epoch(packed: tuple[Manifest, ShardIndex]) -> None:
    _, index = packed
    source = open_shards(index.folder, "train")
    options = LoaderOptions(workers=2, chunk=2, prefetch=1)
    with Loader(source, options) as loader:
        for number, _ in enumerate(loader):
            if number == 3:
                break
        assert Counter(fingerprints(loader.epoch(0))) == Counter(stored(index, "train"))


def test_loose_files_have_the_same_interface(packed: tuple[Manifest, ShardIndex]) -> None:
    manifest, index = packed
    files = FileSplit(manifest, "train", size=64, files_per_unit=5)
    shards = open_shards(index.folder, "train")
    assert files.classes == shards.classes == ("cat", "dog", "fox")
    assert len(files) == len(shards)

    with Loader(files, LoaderOptions(workers=2, seed=1)) as loose:
        from_files = list(loose)
    from_shards = list(Loader(shards, LoaderOptions(workers=0)))

    assert Counter(s.label for s in from_files) == Counter(s.label for s in from_shards)
    assert {s.image.shape for s in from_files} == {s.image.shape for s in from_shards}
    assert {s.image.shape for s in from_files} == {(64, 85, 3)}
    by_label = [sorted(float(s.image.mean()) for s in from_files if s.label == 2)]
    packed_means = [sorted(float(s.image.mean()) for s in from_shards if s.label == 2)]
    assert np.allclose(by_label, packed_means, atol=2.0)


def test_batches(packed: tuple[Manifest, ShardIndex]) -> None:
    _, index = packed
    count = index.counts["validation"]
    source = open_shards(index.folder, "validation")
    cropped = Loader(source, LoaderOptions(workers=0), CenterCrop(32))
    full = list(cropped.batches(4))
    kept = list(cropped.batches(4, epoch=0, drop_last=True))

    assert [b.images.shape for b in full] == [(4, 32, 32, 3)] * (count // 4) + (
        [(count % 4, 32, 32, 3)] if count % 4 else []
    )
    assert all(b.labels.dtype == np.int64 for b in full)
    assert len(kept) == count // 4
    with pytest.raises(ConfigError, match="batch size must be at least 1"):
        next(cropped.batches(0))


def test_stacking_images_of_different_sizes_says_what_to_do() -> None:
    samples = [Sample(np.zeros((4, 5, 3), np.uint8), 0), Sample(np.zeros((4, 6, 3), np.uint8), 1)]
    with pytest.raises(ConfigError, match=r"differ in shape .* add a crop transform"):
        stack(samples)


def _not_picklable_transform(packed_index: ShardIndex) -> Loader:
    return Loader(
        open_shards(packed_index.folder, "test"),
        LoaderOptions(workers=1),
        lambda image, rng: image,
    )


def test_a_transform_that_cannot_reach_workers(packed: tuple[Manifest, ShardIndex]) -> None:
    _, index = packed
    with pytest.raises(ConfigError, match="cannot be sent to worker processes"):
        next(iter(_not_picklable_transform(index)))
    in_process = Loader(open_shards(index.folder, "test"), LoaderOptions(workers=0), lambda i, r: i)
    assert len(list(in_process)) == index.counts["test"]


def test_a_damaged_shard_fails_the_epoch(
    packed: tuple[Manifest, ShardIndex], tmp_path: Path
) -> None:
    _, index = packed
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("index.json", *(s.name for s in index.splits["test"])):
        (copy / name).write_bytes((index.folder / name).read_bytes())
    (copy / index.splits["test"][0].name).write_bytes(b"garbage" * 100)
    source = open_shards(copy, "test")
    with pytest.raises(SourceError, match=r"test-00000\.tar cannot be read"):
        list(Loader(source, LoaderOptions(workers=0)))
    with (
        Loader(source, LoaderOptions(workers=1)) as loader,
        pytest.raises(
            SourceError,
            match=r"loader worker 0: SourceError: shard .*test-00000\.tar cannot be read",
        ),
    ):
        list(loader)


def test_a_vanished_loose_file_is_skipped_once(
    packed: tuple[Manifest, ShardIndex], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    manifest, _ = packed
    item = manifest.split("validation")[0]
    gone = Manifest(tmp_path, manifest.classes, (item,), manifest.seed)
    loader = Loader(FileSplit(gone, "validation"), LoaderOptions(workers=0))
    with caplog.at_level(logging.WARNING, logger="vigil.data.loader"):
        assert list(loader) == []
        assert list(loader) == []
    assert caplog.text.count(f"cannot read image {tmp_path / item.path}") == 1


def test_unknown_split(packed: tuple[Manifest, ShardIndex]) -> None:
    _, index = packed
    with pytest.raises(
        SourceError, match="has no split 'dev' \\(splits: train, validation, test\\)"
    ):
        open_shards(index.folder, "dev")


class LowestDraw:
    """A stand-in generator whose every uniform draw is the low end of its range."""

    def uniform(self, low: float, high: float) -> float:
        return low


def test_augmentations() -> None:
    rng = np.random.default_rng(0)
    image = np.arange(60 * 80 * 3, dtype=np.uint32).reshape(60, 80, 3).astype(np.uint8)
    assert RandomResizedCrop(32)(image, rng).shape == (32, 32, 3)
    assert np.array_equal(RandomFlip(p=1.0)(image, rng), image[:, ::-1])
    assert RandomFlip(p=0.0)(image, rng) is image
    assert np.array_equal(ColorJitter(0, 0, 0)(image, rng), image)
    jittered = ColorJitter(0.5, 0.5, 0.5)(image, np.random.default_rng(1))
    assert jittered.dtype == np.uint8 and not np.array_equal(jittered, image)
    lowest = LowestDraw()
    grey = ColorJitter(0, 0, 1)(image, lowest)
    assert np.array_equal(grey[..., 0], grey[..., 1]) and np.array_equal(grey[..., 1], grey[..., 2])
    darker = ColorJitter(0.5, 0, 0)(image, lowest)
    assert np.abs(darker.astype(int) - image / 2).max() <= 1
    assert CenterCrop(40)(image, rng).shape == (40, 40, 3)
    again = train_transform(24)(image, np.random.default_rng(5))
    assert np.array_equal(again, train_transform(24)(image, np.random.default_rng(5)))


@pytest.mark.parametrize(
    ("shape", "size", "fit", "expected"),
    [
        ((60, 80), 30, "shorter", (30, 40)),
        ((80, 60), 30, "shorter", (40, 30)),
        ((10, 20), 30, "shorter", (30, 60)),
        ((60, 80), 60, "shorter", (60, 80)),
        ((60, 80), 30, "crop", (30, 30)),
    ],
)
def test_fit_image(shape: tuple[int, int], size: int, fit: str, expected: tuple[int, int]) -> None:
    image = np.zeros((*shape, 3), np.uint8)
    assert fit_image(image, size, fit).shape[:2] == expected  # type: ignore[arg-type]


def test_shuffle_buffer_starts_early_and_keeps_every_sample() -> None:
    import random

    from vigil.data.loader import _shuffled

    taken: list[int] = []

    def numbered() -> Iterator[Sample]:
        for number in range(100):
            taken.append(number)
            yield Sample(np.zeros((1, 1, 3), np.uint8), number)

    shuffled = _shuffled(numbered(), 40, random.Random(1))
    first = next(shuffled)
    assert len(taken) == 4
    rest = [first, *shuffled]
    assert sorted(s.label for s in rest) == list(range(100))
    assert [s.label for s in rest] != list(range(100))
