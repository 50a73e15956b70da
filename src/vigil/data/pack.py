"""``vigil data pack``: a manifest's images, decoded once, resized and re-encoded into shards.

Every image is checked against its manifest entry (a changed or missing file stops the pack:
the manifest no longer describes the data), decoded as Vigil reads images (RGB, upright as
EXIF says, CMYK/greyscale/16-bit/alpha converted), resized (shorter side to ``size``, or that
and a centre crop) and encoded as JPEG by this process. An image that does not decode is
reported and skipped, so no shard can hold an image a reader would choke on. Within a split,
images are written in an order drawn from the manifest's seed, not class by class, so a
shuffle buffer mixes classes from the first batch.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import cv2

from vigil.data.config import SPLITS, Fit, PackOptions
from vigil.data.manifest import Manifest, ManifestItem, file_change
from vigil.data.parallel import Progress, parallel_map
from vigil.data.report import plural
from vigil.data.shards import (
    INDEX_NAME,
    ShardIndex,
    ShardInfo,
    ShardWriter,
    read_index,
    write_index,
)
from vigil.data.transforms import fit_image
from vigil.errors import SourceError, StorageError

logger = logging.getLogger(__name__)

MEGABYTE = 1_000_000


@dataclass(frozen=True, slots=True)
class PackTask:
    """What a worker needs to prepare one image (picklable)."""

    path: Path
    item: ManifestItem
    size: int
    fit: Fit
    quality: int


@dataclass(frozen=True, slots=True)
class Prepared:
    """A worker's result: the JPEG and its sizes, or why there is none."""

    jpeg: bytes = b""
    width: int = 0
    height: int = 0
    source_width: int = 0
    source_height: int = 0
    error: str | None = None
    change: str | None = None


@dataclass
class PackReport:
    """What :func:`pack_manifest` wrote: the index, and the images it skipped."""

    index: ShardIndex
    skipped: list[dict[str, str]] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Return a summary: per split, samples, shards and megabytes; then what was skipped."""
        lines = []
        for split, shards in self.index.splits.items():
            megabytes = sum(s.bytes for s in shards) / MEGABYTE
            lines.append(
                f"{split}: {plural(self.index.counts[split], 'image')} in "
                f"{plural(len(shards), 'shard')} "
                f"({megabytes:.1f} MB)"
            )
        lines += [f"skipped {s['path']}: {s['reason']}" for s in self.skipped]
        lines.append(f"index: {self.index.folder / INDEX_NAME}")
        return lines


def pack_manifest(
    manifest: Manifest,
    out: str | Path,
    options: PackOptions | None = None,
    progress: Progress | None = None,
) -> PackReport:
    """Write the images of every split of ``manifest`` into shards under ``out``.

    A set packed before into ``out`` is replaced; nothing else there is touched. On any error
    the shards written so far are removed, and no index is written.

    Raises:
        SourceError: a file changed since the manifest was written.
        StorageError: ``out`` cannot be written.

    """
    folder = Path(out)
    _prepare_folder(folder)
    packer = _Packer(manifest, folder, options or PackOptions(), progress)
    try:
        index = packer.pack()
    except BaseException:
        packer.abort()
        raise
    return PackReport(index, list(index.skipped))


def pack_order(manifest: Manifest, split: str) -> list[ManifestItem]:
    """Return a split's items in packing order: by a hash of the seed and the path."""

    def order(item: ManifestItem) -> str:
        return hashlib.sha256(f"{manifest.seed}\n{item.path}".encode()).hexdigest()

    return sorted(manifest.split(split), key=order)


def prepare_image(task: PackTask) -> Prepared:
    """Check, decode, fix, resize and encode one image (runs in a worker process)."""
    from vigil.data.imageinfo import read_image_quietly

    try:
        data = task.path.read_bytes()
    except OSError:
        data = None
    change = file_change(task.path, task.item, data)
    if change is not None:
        return Prepared(change=change)
    try:
        image = read_image_quietly(task.path)
    except SourceError:
        return Prepared(error="not an image or cannot be decoded")
    resized = fit_image(image, task.size, task.fit)
    ok, encoded = cv2.imencode(
        ".jpg", cv2.cvtColor(resized, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, task.quality]
    )
    if not ok:
        return Prepared(error="cannot be encoded as JPEG")
    height, width = resized.shape[:2]
    return Prepared(encoded.tobytes(), width, height, image.shape[1], image.shape[0])


class _Packer:
    """Packs one manifest split by split, keeping what it wrote so it can take it back."""

    def __init__(
        self, manifest: Manifest, folder: Path, options: PackOptions, progress: Progress | None
    ) -> None:
        self._manifest = manifest
        self._folder = folder
        self._options = options
        self._progress = progress
        self._writers: list[ShardWriter] = []
        self._skipped: list[dict[str, str]] = []
        self._done = 0

    def pack(self) -> ShardIndex:
        plan = [(split, pack_order(self._manifest, split)) for split in SPLITS]
        tasks = [self._task(item) for _, items in plan for item in items]
        splits: dict[str, tuple[ShardInfo, ...]] = {}
        counts: dict[str, int] = {}
        with closing(parallel_map(prepare_image, tasks, self._options.workers)) as results:
            for split, items in plan:
                prepared = itertools.islice(results, len(items))
                splits[split], counts[split] = self._pack_split(split, items, prepared)
        manifest, options = self._manifest, self._options
        index = ShardIndex(
            self._folder,
            manifest.classes,
            manifest.hash,
            options.size,
            options.fit,
            splits,
            counts,
            tuple(self._skipped),
        )
        write_index(index)
        return index

    def abort(self) -> None:
        for writer in self._writers:
            writer.abort()

    def _task(self, item: ManifestItem) -> PackTask:
        options = self._options
        path = self._manifest.path_of(item)
        return PackTask(path, item, options.size, options.fit, options.quality)

    def _pack_split(
        self, split: str, items: list[ManifestItem], results: Iterable[Prepared]
    ) -> tuple[tuple[ShardInfo, ...], int]:
        options = self._options
        per_shard = max(1, len(items) // options.min_shards)
        writer = ShardWriter(self._folder, split, int(options.shard_mb * MEGABYTE), per_shard)
        self._writers.append(writer)
        count = 0
        for item, prepared in zip(items, results, strict=True):
            self._tick()
            if self._accept(item, prepared):
                writer.add(f"{split}-{count:07d}", _members(item, prepared, self._manifest.classes))
                count += 1
        return tuple(writer.close()), count

    def _accept(self, item: ManifestItem, prepared: Prepared) -> bool:
        if prepared.change is not None:
            moved = ", or --root if the images moved" if prepared.change == "missing" else ""
            raise SourceError(
                f"{item.path} changed since the manifest was written ({prepared.change}): "
                f"run 'vigil data verify' to list every change, 'vigil data split' for a new "
                f"manifest{moved}"
            )
        if prepared.error is not None:
            logger.warning("%s: %s (skipped)", item.path, prepared.error)
            self._skipped.append({"path": item.path, "split": item.split, "reason": prepared.error})
            return False
        return True

    def _tick(self) -> None:
        self._done += 1
        if self._progress is not None:
            self._progress(self._done, len(self._manifest.items))


def _members(item: ManifestItem, prepared: Prepared, classes: tuple[str, ...]) -> dict[str, bytes]:
    meta = {
        "path": item.path,
        "label": item.label,
        "sha256": item.sha256,
        "width": prepared.width,
        "height": prepared.height,
        "source_width": prepared.source_width,
        "source_height": prepared.source_height,
    }
    return {
        "jpg": prepared.jpeg,
        "cls": str(classes.index(item.label)).encode(),
        "json": json.dumps(meta, ensure_ascii=False, sort_keys=True).encode(),
    }


def _prepare_folder(folder: Path) -> None:
    """Create ``folder``; remove a set packed there before and shards left half-written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create {folder}: {exc.strerror or exc}") from None
    for partial in folder.glob(".*.tar.partial"):
        partial.unlink(missing_ok=True)
    if not (folder / INDEX_NAME).exists():
        return
    try:
        previous = read_index(folder)
    except SourceError:
        raise StorageError(
            f"{folder} holds an {INDEX_NAME} that Vigil did not write: choose another --out"
        ) from None
    (folder / INDEX_NAME).unlink()
    for split in previous.splits:
        for path in previous.shard_paths(split):
            path.unlink(missing_ok=True)


__all__ = ["PackReport", "PackTask", "Prepared", "pack_manifest", "pack_order", "prepare_image"]
