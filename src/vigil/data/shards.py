"""Tar shards in the WebDataset layout: writing, reading, and the index that describes a set.

A shard is a plain tar file. Each sample is three consecutive members sharing a key::

    train-0000042.jpg    the image, decoded, made RGB and upright, resized, re-encoded as JPEG
    train-0000042.cls    the class index as decimal text ("1")
    train-0000042.json   {"path": ..., "label": ..., "sha256": ..., "width": ..., ...}

so the ``webdataset`` library reads the shards as they are, and so does :func:`read_shard`
(standard library only). Members carry no time stamps or owners: the same input gives the same
bytes. A shard is written under a temporary hidden name and renamed when complete, so a shard
with its final name is always whole. ``index.json`` beside the shards lists them per split with
their sample counts, sizes and SHA-256, the classes, and the hash of the manifest they came from.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vigil.errors import SourceError, StorageError

INDEX_NAME = "index.json"
SHARDS_FORMAT = "vigil-shards/1"
_BLOCK = tarfile.BLOCKSIZE
_RECORD = tarfile.RECORDSIZE


@dataclass(frozen=True, slots=True)
class ShardInfo:
    """One shard file: its name (in the index's folder), samples, bytes and SHA-256."""

    name: str
    count: int
    bytes: int
    sha256: str


@dataclass(frozen=True, slots=True)
class PackedSample:
    """One sample of a shard: key, encoded image, class index and JSON metadata (bytes)."""

    key: str
    jpg: bytes
    cls: int
    meta_json: bytes

    @property
    def meta(self) -> dict[str, Any]:
        """The decoded JSON metadata (source path, label, sizes)."""
        value: dict[str, Any] = json.loads(self.meta_json)
        return value


@dataclass(frozen=True)
class ShardIndex:
    """What ``index.json`` says about a packed set.

    Attributes:
        folder: Where the index and shards are.
        classes: Class names; a sample's class index is the position here.
        manifest_hash: Hash of the manifest the shards were packed from.
        size: Target size the images were resized to.
        fit: ``shorter`` or ``crop``.
        splits: Shards of each split, in order.
        counts: Samples in each split.
        skipped: Images left out while packing, with the reason.

    """

    folder: Path
    classes: tuple[str, ...]
    manifest_hash: str
    size: int
    fit: str
    splits: dict[str, tuple[ShardInfo, ...]]
    counts: dict[str, int]
    skipped: tuple[dict[str, str], ...] = ()

    def shard_paths(self, split: str) -> list[Path]:
        """Return the files of one split's shards, in order.

        Raises:
            SourceError: the set has no such split.

        """
        if split not in self.splits:
            known = ", ".join(self.splits) or "none"
            raise SourceError(f"{self.folder} has no split '{split}' (splits: {known})")
        return [self.folder / shard.name for shard in self.splits[split]]

    def to_json(self) -> str:
        """Return the index as text."""
        document = {
            "format": SHARDS_FORMAT,
            "manifest_hash": self.manifest_hash,
            "classes": list(self.classes),
            "size": self.size,
            "fit": self.fit,
            "counts": self.counts,
            "splits": {s: [asdict(i) for i in infos] for s, infos in self.splits.items()},
            "skipped": list(self.skipped),
        }
        return json.dumps(document, indent=1, ensure_ascii=False) + "\n"


class ShardWriter:
    """Writes samples into numbered shards ``{prefix}-00000.tar`` of at most ``max_bytes``.

    A shard also ends after ``max_samples`` samples; a sample larger than ``max_bytes`` gets a
    shard of its own. Use :meth:`close` to finish the last shard, or :meth:`abort` to remove
    everything this writer wrote.
    """

    def __init__(
        self, folder: Path, prefix: str, max_bytes: int, max_samples: int | None = None
    ) -> None:
        self._folder = folder
        self._prefix = prefix
        self._max_bytes = max_bytes
        self._max_samples = max_samples
        self._tar: tarfile.TarFile | None = None
        self._temporary: Path | None = None
        self._count = 0
        self._bytes = 0
        self.written: list[ShardInfo] = []

    def add(self, key: str, members: dict[str, bytes]) -> None:
        """Add one sample: ``members`` maps extensions (``jpg``, ``cls``, ``json``) to bytes.

        Raises:
            StorageError: the shard cannot be written.

        """
        if "." in key or "/" in key:
            raise ValueError(f"a sample key has no '.' or '/': {key!r}")
        added = sum(_BLOCK + _padded(len(data)) for data in members.values())
        if self._tar is not None and self._full(added):
            self._finish()
        tar = self._tar or self._start()
        try:
            for extension, data in members.items():
                tar.addfile(_member(f"{key}.{extension}", len(data)), io.BytesIO(data))
        except OSError as exc:
            raise StorageError(f"cannot write shard in {self._folder}: {exc.strerror}") from None
        self._count += 1
        self._bytes += added

    def close(self) -> list[ShardInfo]:
        """Finish the last shard and return every shard written."""
        if self._tar is not None:
            self._finish()
        return list(self.written)

    def abort(self) -> None:
        """Remove the shard in progress and every shard this writer finished."""
        if self._tar is not None:
            self._tar.close()
            self._tar = None
        if self._temporary is not None:
            self._temporary.unlink(missing_ok=True)
        for shard in self.written:
            (self._folder / shard.name).unlink(missing_ok=True)
        self.written.clear()

    def _full(self, adding: int) -> bool:
        """Whether the shard in progress must end before a sample of ``adding`` bytes."""
        too_big = _archive_size(self._bytes + adding) > self._max_bytes
        return self._count >= (self._max_samples or self._count + 1) or too_big

    def _start(self) -> tarfile.TarFile:
        name = f"{self._prefix}-{len(self.written):05d}.tar"
        self._temporary = self._folder / f".{name}.partial"
        try:
            self._tar = tarfile.open(  # noqa: SIM115 (closed in _finish or abort)
                self._temporary, "w", format=tarfile.USTAR_FORMAT
            )
        except OSError as exc:
            raise StorageError(f"cannot write {self._temporary}: {exc.strerror}") from None
        self._count, self._bytes = 0, 0
        return self._tar

    def _finish(self) -> None:
        assert self._tar is not None and self._temporary is not None
        self._tar.close()
        self._tar = None
        final = self._temporary.with_name(self._temporary.name[1:].removesuffix(".partial"))
        digest, size = _file_digest(self._temporary)
        try:
            os.replace(self._temporary, final)
        except OSError as exc:
            raise StorageError(f"cannot rename {self._temporary}: {exc.strerror}") from None
        self.written.append(ShardInfo(final.name, self._count, size, digest))
        self._temporary = None


def read_shard(path: str | Path) -> Iterator[PackedSample]:
    """Yield the samples of one shard in stored order, reading the file once, start to end.

    Raises:
        SourceError: the file is missing, not a tar file, or a sample lacks its image or class.

    """
    path = Path(path)
    try:
        with tarfile.open(path, "r|") as tar:
            yield from _samples(tar, path)
    except (tarfile.TarError, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise SourceError(f"shard {path} cannot be read: {reason}") from None


def read_index(folder: str | Path) -> ShardIndex:
    """Read ``index.json`` of a packed set.

    Raises:
        SourceError: there is no index, or it is not one Vigil wrote.

    """
    folder = Path(folder)
    path = folder / INDEX_NAME
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourceError(
            f"{folder} holds no {INDEX_NAME}: pack it with 'vigil data pack'"
        ) from None
    except (OSError, ValueError) as exc:
        raise SourceError(f"cannot read {path}: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != SHARDS_FORMAT:
        raise SourceError(f"{path} is not a Vigil shard index (no format '{SHARDS_FORMAT}')")
    try:
        return _index_from(document, folder)
    except (KeyError, TypeError, ValueError) as exc:
        raise SourceError(f"{path} is not a valid Vigil shard index ({exc!r})") from None


def write_index(index: ShardIndex) -> Path:
    """Write ``index.json`` atomically; returns its path."""
    from vigil.data.manifest import write_text_atomic

    path = index.folder / INDEX_NAME
    write_text_atomic(path, index.to_json())
    return path


def _samples(tar: tarfile.TarFile, path: Path) -> Iterator[PackedSample]:
    key: str | None = None
    members: dict[str, bytes] = {}
    for member in tar:
        if not member.isfile():
            continue
        name = member.name.rsplit("/", 1)[-1]
        stem, _, extension = name.partition(".")
        if stem != key and key is not None:
            yield _sample(key, members, path)
            members = {}
        key = stem
        extracted = tar.extractfile(member)
        members[extension] = extracted.read() if extracted is not None else b""
    if key is not None:
        yield _sample(key, members, path)


def _sample(key: str, members: dict[str, bytes], path: Path) -> PackedSample:
    if "jpg" not in members or "cls" not in members:
        raise SourceError(f"shard {path}: sample {key} lacks its .jpg or .cls member")
    try:
        label = int(members["cls"])
    except ValueError:
        raise SourceError(f"shard {path}: sample {key} has no class number in .cls") from None
    return PackedSample(key, members["jpg"], label, members.get("json", b"{}"))


def _index_from(document: dict[str, Any], folder: Path) -> ShardIndex:
    splits = {
        str(split): tuple(ShardInfo(**shard) for shard in shards)
        for split, shards in document["splits"].items()
    }
    return ShardIndex(
        folder=folder,
        classes=tuple(str(c) for c in document["classes"]),
        manifest_hash=str(document["manifest_hash"]),
        size=int(document["size"]),
        fit=str(document["fit"]),
        splits=splits,
        counts={str(k): int(v) for k, v in document["counts"].items()},
        skipped=tuple(dict(s) for s in document.get("skipped", [])),
    )


def _member(name: str, size: int) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = size
    info.mode = 0o644
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def _padded(size: int) -> int:
    return -(-size // _BLOCK) * _BLOCK


def _archive_size(members_bytes: int) -> int:
    """Bytes of a tar file whose members take ``members_bytes``: end blocks, record padding."""
    return -(-(members_bytes + 2 * _BLOCK) // _RECORD) * _RECORD


def _file_digest(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


__all__ = [
    "INDEX_NAME",
    "SHARDS_FORMAT",
    "PackedSample",
    "ShardIndex",
    "ShardInfo",
    "ShardWriter",
    "read_index",
    "read_shard",
    "write_index",
]
