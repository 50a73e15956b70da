"""Settings of the data layer: importing, checking, splitting, packing and loading images."""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from vigil.config import ConfigModel

SPLITS = ("train", "validation", "test")
"""The split names, in the order images are handed out to them."""

Fit = Literal["shorter", "crop"]
"""How an image is resized: shorter side to the size (aspect kept), or that plus a centre crop."""


class ImportOptions(ConfigModel):
    """How a CSV or Label Studio export names its images, labels and groups."""

    path_column: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description=(
            "CSV column with the image path (relative to the CSV). None: the first of "
            "path, file, filename, image, image_path."
        ),
    )
    label_column: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="CSV column with the label. None: the first of label, class, category.",
    )
    group_column: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description=(
            "CSV column (or Label Studio 'data' key) naming a group that must stay in one split, "
            "such as a camera site or source video. None: no groups."
        ),
    )
    time_column: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description=(
            "CSV column (or Label Studio 'data' key) with when the photo was taken: an ISO date "
            "and time or POSIX seconds. None: no times."
        ),
    )
    group_pattern: str | None = Field(
        default=None,
        min_length=1,
        max_length=500,
        description=(
            "Regular expression searched in each image's relative path; its first group (or the "
            "whole match) names the image's group, e.g. '^(site\\d+)/'. Wins over group_column."
        ),
    )
    image_key: str = Field(
        default="image",
        min_length=1,
        max_length=200,
        description="Key of the image URL in each Label Studio task's 'data'.",
    )
    root: str | None = Field(
        default=None,
        max_length=4096,
        description=(
            "Folder that Label Studio's '/data/local-files/?d=' and '/data/upload/' paths are "
            "relative to. None: the export file's folder."
        ),
    )


class CheckOptions(ConfigModel):
    """What counts as tiny and as a near duplicate, and how many processes inspect images."""

    min_side: int = Field(
        default=64,
        ge=1,
        le=100_000,
        description="Images whose shorter side is below this many pixels are reported as tiny.",
    )
    near_threshold: int = Field(
        default=8,
        ge=0,
        le=32,
        description=(
            "Two images whose 64-bit perceptual hashes differ in at most this many bits are near "
            "duplicates (unrelated photos differ in about 32); 0: only identical hashes."
        ),
    )
    workers: int = Field(
        default=2,
        ge=1,
        le=256,
        description="Processes that decode and hash images; 1: all in this process.",
    )


class SplitOptions(ConfigModel):
    """Fractions and seed of a stratified, group-aware train/validation/test split."""

    train: float = Field(default=0.70, gt=0, le=1, description="Fraction of images to train on.")
    validation: float = Field(
        default=0.15, ge=0, lt=1, description="Fraction for choosing the model while training."
    )
    test: float = Field(
        default=0.15, ge=0, lt=1, description="Fraction held back for the final evaluation."
    )
    seed: int = Field(
        default=0,
        ge=0,
        le=2**63 - 1,
        description="Which of the possible splits to make; the same seed gives the same split.",
    )

    @model_validator(mode="after")
    def _fractions_sum_to_one(self) -> Self:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(
                f"train + validation + test must be 1, got {self.train:g} + "
                f"{self.validation:g} + {self.test:g} = {total:g}"
            )
        return self

    def fractions(self) -> dict[str, float]:
        """Return the fraction of each split, keyed by split name in :data:`SPLITS` order."""
        return {"train": self.train, "validation": self.validation, "test": self.test}


class PackOptions(ConfigModel):
    """How images are resized, re-encoded and grouped into shards."""

    size: int = Field(
        default=224,
        ge=16,
        le=4096,
        description="Target size in pixels: the shorter side (fit 'shorter') or both sides.",
    )
    fit: Fit = Field(
        default="shorter",
        description=(
            "'shorter': scale so the shorter side is `size`, keeping the aspect ratio (training "
            "can still crop anywhere); 'crop': that, then a centre crop to size x size."
        ),
    )
    quality: int = Field(
        default=90, ge=50, le=100, description="JPEG quality of the re-encoded images."
    )
    shard_mb: float = Field(
        default=64,
        gt=0,
        le=4096,
        description=(
            "Start a new shard before one would exceed this many megabytes (10-100 suits "
            "training; a single image larger than this gets a shard of its own)."
        ),
    )
    min_shards: int = Field(
        default=8,
        ge=1,
        le=4096,
        description=(
            "Give each split at least this many shards (when it has as many images), even if "
            "they are smaller than shard_mb: a loader worker reads whole shards, so a split in "
            "one shard keeps all but one worker idle."
        ),
    )
    workers: int = Field(
        default=2,
        ge=1,
        le=256,
        description="Processes that decode, resize and encode images; 1: all in this process.",
    )


class LoaderOptions(ConfigModel):
    """How a loader reads, shuffles and hands out samples."""

    workers: int = Field(
        default=2,
        ge=0,
        le=256,
        description="Worker processes that read and decode; 0: all in the calling process.",
    )
    shuffle: bool = Field(
        default=True,
        description=(
            "Shuffle shard (or file) order every epoch and samples within a buffer; off: "
            "stored order, as for evaluation."
        ),
    )
    shuffle_buffer: int = Field(
        default=1000,
        ge=1,
        le=1_000_000,
        description=(
            "Samples held in memory to shuffle among (with shuffle on); output starts when a "
            "tenth of it is filled. 1000 images of 224 x 224 take about 150 MB."
        ),
    )
    seed: int = Field(
        default=0,
        ge=0,
        le=2**63 - 1,
        description="Seed of the order and the augmentation; same seed and workers, same samples.",
    )
    chunk: int = Field(
        default=32,
        ge=1,
        le=4096,
        description="Samples a worker sends to the consumer at once.",
    )
    prefetch: int = Field(
        default=4,
        ge=1,
        le=1024,
        description="Chunks each worker may have ready ahead of the consumer (bounds memory).",
    )
    worker_timeout_s: float = Field(
        default=300,
        gt=0,
        le=86_400,
        description="Give up when a live worker sends nothing for this many seconds.",
    )


__all__ = [
    "SPLITS",
    "CheckOptions",
    "Fit",
    "ImportOptions",
    "LoaderOptions",
    "PackOptions",
    "SplitOptions",
]
