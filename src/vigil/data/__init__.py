"""Datasets for training image classifiers: import, check, split, pack into shards, load.

The flow, each step usable from Python and from ``vigil data``::

    dataset = load_dataset("photos/")                 # folder of class folders, CSV, Label Studio
    report = check_dataset(dataset)                   # decodability, duplicates, imbalance, ...
    result = split_dataset(dataset, infos)            # stratified, group-aware, reproducible
    write_manifest(result.manifest, "split.json")     # pinned by content hashes
    pack_manifest(read_manifest("split.json"), "shards/")    # resized JPEGs in tar shards
    with Loader(open_shards("shards/", "train"), transform=train_transform()) as loader:
        for batch in loader.batches(64): ...

Pillow and imagehash (``pip install 'vigil[train]'``) are needed for checking and splitting;
packing and loading need only the core dependencies.
"""

from vigil.data.check import CheckReport, Finding, build_report, check_dataset, inspect_dataset
from vigil.data.config import (
    SPLITS,
    CheckOptions,
    ImportOptions,
    LoaderOptions,
    PackOptions,
    SplitOptions,
)
from vigil.data.dataset import Dataset, Item, Skipped, load_dataset
from vigil.data.imageinfo import ImageInfo, inspect_image
from vigil.data.loader import Batch, FileSplit, Loader, Sample, ShardSplit, open_shards
from vigil.data.manifest import (
    Change,
    Manifest,
    ManifestItem,
    read_manifest,
    verify_manifest,
    write_manifest,
)
from vigil.data.pack import PackReport, pack_manifest
from vigil.data.shards import PackedSample, ShardIndex, read_index, read_shard
from vigil.data.split import SplitResult, split_dataset
from vigil.data.transforms import (
    CenterCrop,
    ColorJitter,
    Compose,
    RandomFlip,
    RandomResizedCrop,
    Transform,
    eval_transform,
    train_transform,
)

__all__ = [
    "SPLITS",
    "Batch",
    "CenterCrop",
    "Change",
    "CheckOptions",
    "CheckReport",
    "ColorJitter",
    "Compose",
    "Dataset",
    "FileSplit",
    "Finding",
    "ImageInfo",
    "ImportOptions",
    "Item",
    "Loader",
    "LoaderOptions",
    "Manifest",
    "ManifestItem",
    "PackOptions",
    "PackReport",
    "PackedSample",
    "RandomFlip",
    "RandomResizedCrop",
    "Sample",
    "ShardIndex",
    "ShardSplit",
    "Skipped",
    "SplitOptions",
    "SplitResult",
    "Transform",
    "build_report",
    "check_dataset",
    "eval_transform",
    "inspect_dataset",
    "inspect_image",
    "load_dataset",
    "open_shards",
    "pack_manifest",
    "read_index",
    "read_manifest",
    "read_shard",
    "split_dataset",
    "train_transform",
    "verify_manifest",
    "write_manifest",
]
