"""The split manifest: which image goes to train, validation or test, pinned by content hashes.

A manifest lists every image (path relative to the dataset root, label, split, SHA-256, size in
bytes, and the group it was kept together with) and carries its own hash, computed over
everything but where the data lies. The same inputs and seed give the same file, byte for
byte; a later run reads the file instead of splitting again, so it trains and evaluates on
exactly the same images, and :func:`verify_manifest` tells when a file on disk changed since.

The file is JSON, one image per line::

    {
     "format": "vigil-manifest/1",
     "hash": "3f1c...",
     "root": "../data",
     "classes": ["hardhat", "no_hardhat"],
     ...
     "items": [
      {"path": "hardhat/a.jpg", "label": "hardhat", "split": "train", "sha256": "...", ...},
      ...
     ]
    }
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.data.config import SPLITS
from vigil.errors import SourceError, StorageError

MANIFEST_FORMAT = "vigil-manifest/1"
_ITEM_FIELDS = ("path", "label", "split", "sha256", "size", "group")


@dataclass(frozen=True, slots=True)
class ManifestItem:
    """One image of a manifest.

    Attributes:
        path: Relative to the manifest's root, with ``/``.
        label: The class name.
        split: ``train``, ``validation`` or ``test``.
        sha256: Hex SHA-256 of the file when the split was made.
        size: File size in bytes when the split was made.
        group: The images kept in one split with this one share it (the smallest path among
            them): near duplicates and images of the same user-given group.

    """

    path: str
    label: str
    split: str
    sha256: str
    size: int
    group: str


@dataclass(frozen=True)
class Manifest:
    """A split of a dataset; see the module docstring.

    Attributes:
        root: The folder item paths are relative to.
        classes: Class names, sorted; a label's class index is its position here.
        items: The images, sorted by path.
        seed: The seed the split was made with.
        fractions: Intended fraction of each split.
        near_threshold: Hamming threshold used to keep near duplicates together.

    """

    root: Path
    classes: tuple[str, ...]
    items: tuple[ManifestItem, ...]
    seed: int
    fractions: dict[str, float] = field(default_factory=dict)
    near_threshold: int = 8

    @property
    def hash(self) -> str:
        """SHA-256 of the split's content (not of where the data lies)."""
        canonical = json.dumps(self._body(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    def split(self, name: str) -> tuple[ManifestItem, ...]:
        """Return the items of one split, in path order."""
        return tuple(item for item in self.items if item.split == name)

    def counts(self) -> dict[str, dict[str, int]]:
        """Images per class in each split: ``counts()["test"]["hardhat"]``."""
        counted = Counter((item.split, item.label) for item in self.items)
        return {s: {c: counted[s, c] for c in self.classes} for s in SPLITS}

    def path_of(self, item: ManifestItem) -> Path:
        """Return the file of ``item``."""
        return self.root / item.path

    def to_json(self, folder: Path) -> str:
        """Return the manifest as text, its root relative to ``folder`` (where it is saved)."""
        header = {
            "format": MANIFEST_FORMAT,
            "hash": self.hash,
            "root": _relative_root(self.root, folder),
            "classes": list(self.classes),
            "seed": self.seed,
            "fractions": self.fractions,
            "near_threshold": self.near_threshold,
        }
        lines = [
            f" {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in header.items()
        ]
        rows = [f"  {json.dumps(_item_dict(item), ensure_ascii=False)}" for item in self.items]
        return "{\n" + "\n".join(lines) + '\n "items": [\n' + ",\n".join(rows) + "\n ]\n}\n"

    def _body(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "classes": list(self.classes),
            "seed": self.seed,
            "fractions": self.fractions,
            "near_threshold": self.near_threshold,
            "items": [[getattr(item, name) for name in _ITEM_FIELDS] for item in self.items],
        }


@dataclass(frozen=True, slots=True)
class Change:
    """A file that differs from its manifest entry."""

    path: str
    reason: str


def write_manifest(manifest: Manifest, path: Path) -> None:
    """Write ``manifest`` to ``path`` atomically (a reader sees the old or the new file).

    Raises:
        StorageError: the file cannot be written.

    """
    write_text_atomic(path, manifest.to_json(path.parent))


def read_manifest(path: str | Path, root: str | Path | None = None) -> Manifest:
    """Read a manifest and check its own hash.

    Args:
        path: The manifest file.
        root: Where the images are now, when they moved; None: as the manifest says.

    Raises:
        SourceError: the file is missing, not a manifest, or was edited (hash mismatch).

    """
    path = Path(path)
    document = _read_document(path)
    try:
        manifest = _from_document(document, path, root)
        stored = document["hash"]
    except (KeyError, TypeError, ValueError) as exc:
        raise SourceError(f"{path} is not a Vigil manifest ({_describe(exc)})") from None
    if stored != manifest.hash:
        raise SourceError(
            f"{path} was edited after it was written (its hash does not match its content): "
            "make a new one with 'vigil data split'"
        )
    return manifest


def verify_manifest(manifest: Manifest) -> list[Change]:
    """Compare every file with its entry (size, then SHA-256); return what differs."""
    changes: list[Change] = []
    for item in manifest.items:
        reason = file_change(manifest.path_of(item), item)
        if reason is not None:
            changes.append(Change(item.path, reason))
    return changes


def file_change(path: Path, item: ManifestItem, data: bytes | None = None) -> str | None:
    """Why the file at ``path`` no longer matches ``item``, or None when it does."""
    try:
        data = path.read_bytes() if data is None else data
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return f"cannot be read ({exc.strerror or exc})"
    if len(data) != item.size:
        return f"size changed ({item.size} -> {len(data)} bytes)"
    if hashlib.sha256(data).hexdigest() != item.sha256:
        return "contents changed"
    return None


def describe_changes(changes: list[Change], total: int, limit: int = 3) -> str:
    """One line saying how many files changed, the first few, and what to do."""
    shown = "; ".join(f"{c.path}: {c.reason}" for c in changes[:limit])
    more = f"; and {len(changes) - limit} more" if len(changes) > limit else ""
    moved = " (or, if the images moved, give their folder with --root)"
    hint = moved if any(c.reason == "missing" for c in changes) else ""
    return (
        f"{len(changes)} of {total} images changed since the manifest was written ({shown}{more}): "
        f"run 'vigil data split' again for a new manifest{hint}"
    )


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename.

    Raises:
        StorageError: the folder or file cannot be written.

    """
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from None


def _read_document(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SourceError(
            f"manifest {path} does not exist: make one with 'vigil data split'"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read manifest {path}: {_describe(exc)}") from None
    except json.JSONDecodeError as exc:
        raise SourceError(f"{path} line {exc.lineno}: not a Vigil manifest: {exc.msg}") from None
    if not isinstance(document, dict) or document.get("format") != MANIFEST_FORMAT:
        raise SourceError(f"{path} is not a Vigil manifest (no format '{MANIFEST_FORMAT}')")
    return document


def _from_document(document: dict[str, Any], path: Path, root: str | Path | None) -> Manifest:
    items = tuple(
        ManifestItem(**{name: entry[name] for name in _ITEM_FIELDS}) for entry in document["items"]
    )
    classes = tuple(str(c) for c in document["classes"])
    for item in items:
        if item.split not in SPLITS or item.label not in classes or not isinstance(item.size, int):
            raise ValueError(f"item {item.path} has no valid split, class or size")
    base = Path(root) if root is not None else path.parent / document["root"]
    return Manifest(
        root=Path(os.path.normpath(base)),
        classes=classes,
        items=items,
        seed=int(document["seed"]),
        fractions={str(k): float(v) for k, v in document["fractions"].items()},
        near_threshold=int(document["near_threshold"]),
    )


def _item_dict(item: ManifestItem) -> dict[str, Any]:
    return {name: getattr(item, name) for name in _ITEM_FIELDS}


def _relative_root(root: Path, folder: Path) -> str:
    try:
        relative = os.path.relpath(root.absolute(), folder.absolute())
    except ValueError:  # another drive on Windows
        return root.absolute().as_posix()
    return Path(relative).as_posix()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"missing {exc}"
    if isinstance(exc, OSError):
        return exc.strerror or str(exc)
    return str(exc)


__all__ = [
    "MANIFEST_FORMAT",
    "Change",
    "Manifest",
    "ManifestItem",
    "describe_changes",
    "file_change",
    "read_manifest",
    "verify_manifest",
    "write_manifest",
    "write_text_atomic",
]
