"""A labelled image dataset, imported from a folder of class folders, a CSV or Label Studio.

Three ways to bring data, one result:

- a folder whose sub-folders are the classes (``data/hardhat/*.jpg``, ``data/no_hardhat/*.jpg``);
  images may sit deeper inside a class folder;
- a CSV with a header, one row per image: a path (relative to the CSV) and a label;
- a Label Studio JSON export of an image-classification project.

Items are sorted by their key (the path relative to the dataset's root, with ``/``), classes
are the sorted distinct labels, so the same files always give the same dataset.
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Literal

from vigil.data.config import ImportOptions
from vigil.data.report import plural
from vigil.errors import ConfigError, SourceError
from vigil.sources.images import is_image_path

DatasetKind = Literal["folder", "csv", "label-studio"]

PATH_COLUMNS = ("path", "file", "filename", "image", "image_path")
LABEL_COLUMNS = ("label", "class", "category")


@dataclass(frozen=True, slots=True)
class Item:
    """One labelled image.

    Attributes:
        key: The image's path relative to the dataset root, with ``/`` separators; unique.
        path: The file to read.
        label: The class name.
        group: Images with the same group (a camera site, a source video) stay in one split.
        time: When the photo was taken (POSIX seconds), where the source says.

    """

    key: str
    path: Path
    label: str
    group: str | None = None
    time: float | None = None


@dataclass(frozen=True, slots=True)
class Skipped:
    """An entry of the source that gives no item, and why (a row without a label, ...)."""

    where: str
    reason: str


@dataclass(frozen=True)
class Dataset:
    """Labelled images from one source.

    Attributes:
        source: The folder, CSV or JSON file the dataset came from.
        kind: Which of the three forms it is.
        root: The folder that item keys are relative to.
        items: The images, sorted by key.
        skipped: Entries that name no usable image (reported by ``vigil data check``).

    """

    source: Path
    kind: DatasetKind
    root: Path
    items: tuple[Item, ...]
    skipped: tuple[Skipped, ...] = field(default=())

    @property
    def classes(self) -> tuple[str, ...]:
        """The distinct labels, sorted."""
        return tuple(sorted({item.label for item in self.items}))

    def counts(self) -> dict[str, int]:
        """Images per class, in class order."""
        counted = Counter(item.label for item in self.items)
        return {label: counted[label] for label in self.classes}

    def __len__(self) -> int:
        return len(self.items)


def load_dataset(source: str | Path, options: ImportOptions | None = None) -> Dataset:
    """Read a dataset from a folder of class folders, a ``.csv`` or a Label Studio ``.json``.

    Args:
        source: The folder or file.
        options: Column names, groups and the Label Studio root.

    Raises:
        SourceError: the path is missing or unreadable, or names no images.
        ConfigError: a named column is missing or the group pattern is not a valid regex.

    """
    options = options or ImportOptions()
    path = Path(source).expanduser()
    if not path.exists():
        raise SourceError(f"{path} does not exist: give a folder of class folders, a CSV or JSON")
    if path.is_dir():
        dataset = _from_folder(path)
    elif path.suffix.lower() == ".csv":
        dataset = _from_csv(path, options)
    elif path.suffix.lower() == ".json":
        from vigil.data.labelstudio import read_label_studio

        dataset = read_label_studio(path, options)
    else:
        raise SourceError(
            f"{path} is not a folder, .csv or .json: give a folder of class folders "
            "(data/cat/*.jpg), a CSV of path,label or a Label Studio JSON export"
        )
    if options.group_pattern:
        dataset = _with_pattern_groups(dataset, options.group_pattern)
    if not dataset.items:
        raise SourceError(f"no labelled images in {path}{_first_reason(dataset.skipped)}")
    return dataset


def make_dataset(
    source: Path, kind: DatasetKind, root: Path, items: list[Item], skipped: list[Skipped]
) -> Dataset:
    """Build a :class:`Dataset`, sorting items and keeping the first of any repeated key."""
    chosen: dict[str, Item] = {}
    notes = list(skipped)
    for item in items:
        first = chosen.setdefault(item.key, item)
        if first is not item:
            again = "again" if first.label == item.label else f"again as '{item.label}'"
            notes.append(Skipped(item.key, f"listed {again}; kept the first ('{first.label}')"))
    ordered = tuple(chosen[key] for key in sorted(chosen))
    return Dataset(source, kind, root, ordered, tuple(notes))


def item_key(path: Path, root: Path) -> str:
    """Return the key of ``path``: relative to ``root`` where possible, with ``/``."""
    try:
        relative = os.path.relpath(path, root)
    except ValueError:  # another drive on Windows
        relative = str(path)
    return PurePosixPath(Path(relative)).as_posix()


def parse_time(value: str, where: str) -> float | None:
    """Parse POSIX seconds or an ISO date/time into POSIX seconds; '' gives None.

    Raises:
        SourceError: the value is neither.

    """
    text = value.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text).timestamp()
    except ValueError:
        raise SourceError(
            f"{where}: time {text!r} is neither an ISO date/time nor POSIX seconds"
        ) from None


def _from_folder(folder: Path) -> Dataset:
    class_dirs = sorted(d for d in folder.iterdir() if d.is_dir() and not _hidden(d))
    if not class_dirs:
        loose = sum(1 for p in folder.iterdir() if is_image_path(p))
        found = f" (found {plural(loose, 'image')} directly in it)" if loose else ""
        raise SourceError(
            f"{folder} has no class sub-folders{found}: put each class's images in a folder "
            f"named after the class, e.g. {folder}/cat/*.jpg and {folder}/dog/*.jpg"
        )
    items: list[Item] = []
    skipped: list[Skipped] = []
    for class_dir in class_dirs:
        found_items, found_skipped = _scan_class_folder(folder, class_dir)
        items += found_items
        skipped += found_skipped
    return make_dataset(folder, "folder", folder, items, skipped)


def _scan_class_folder(root: Path, class_dir: Path) -> tuple[list[Item], list[Skipped]]:
    items: list[Item] = []
    skipped: list[Skipped] = []
    for path in sorted(class_dir.rglob("*")):
        if not path.is_file() or _hidden(path.relative_to(root)):
            continue
        key = item_key(path, root)
        if is_image_path(path):
            items.append(Item(key, path, class_dir.name))
        else:
            skipped.append(Skipped(key, f"not an image file type ({path.suffix or 'no suffix'})"))
    if not items:
        skipped.append(Skipped(class_dir.name + "/", "class folder holds no images"))
    return items, skipped


def _hidden(path: Path) -> bool:
    return any(part.startswith(".") for part in path.parts)


def _from_csv(path: Path, options: ImportOptions) -> Dataset:
    rows, columns = _read_csv(path)
    path_column = _column(columns, options.path_column, PATH_COLUMNS, "path", path)
    label_column = _column(columns, options.label_column, LABEL_COLUMNS, "label", path)
    group_column = _optional_column(columns, options.group_column, "group", path)
    time_column = _optional_column(columns, options.time_column, "time", path)
    root = path.parent
    items: list[Item] = []
    skipped: list[Skipped] = []
    for line, row in rows:
        where = f"{path.name} line {line}"
        raw_path = (row.get(path_column) or "").strip()
        label = (row.get(label_column) or "").strip()
        if not raw_path or not label:
            skipped.append(Skipped(where, "no image path" if not raw_path else "no label"))
            continue
        image = root / raw_path
        group = _cell(row, group_column) or None
        time = parse_time(_cell(row, time_column), where) if time_column else None
        items.append(Item(item_key(image, root), image, label, group, time))
    return make_dataset(path, "csv", root, items, skipped)


def _read_csv(path: Path) -> tuple[list[tuple[int, dict[str, str]]], list[str]]:
    """Return (line number, row with stripped column names) pairs and the column names."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SourceError(f"{path} is not UTF-8 text: save the CSV as UTF-8") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows: list[tuple[int, dict[str, str]]] = []
    try:
        for row in reader:
            cells = {k.strip(): v for k, v in row.items() if isinstance(k, str)}
            rows.append((reader.line_num, cells))
    except csv.Error as exc:
        raise SourceError(f"{path} line {reader.line_num}: not valid CSV: {exc}") from None
    columns = [c.strip() for c in reader.fieldnames or []]
    if not columns:
        raise SourceError(f"{path} is empty: the first line must name the columns (path,label)")
    return rows, columns


def _cell(row: dict[str, str], column: str | None) -> str:
    return (row.get(column) or "").strip() if column else ""


def _column(
    columns: list[str], chosen: str | None, defaults: tuple[str, ...], what: str, path: Path
) -> str:
    if chosen is not None:
        if chosen not in columns:
            raise ConfigError(
                f"{path} has no column '{chosen}' for the {what} (columns: {', '.join(columns)})"
            )
        return chosen
    lower = {c.lower(): c for c in columns}
    for name in defaults:
        if name in lower:
            return lower[name]
    raise SourceError(
        f"{path} has no {what} column (columns: {', '.join(columns)}): name one "
        f"{' or '.join(defaults[:2])}, or pass --{what}-column"
    )


def _optional_column(columns: list[str], chosen: str | None, what: str, path: Path) -> str | None:
    if chosen is None:
        return None
    return _column(columns, chosen, (), what, path)


def _with_pattern_groups(dataset: Dataset, pattern: str) -> Dataset:
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise ConfigError(
            f"group pattern {pattern!r} is not a valid regular expression: {exc}"
        ) from None
    items = tuple(replace(item, group=_pattern_group(regex, item.key)) for item in dataset.items)
    return replace(dataset, items=items)


def _pattern_group(regex: re.Pattern[str], key: str) -> str | None:
    match = regex.search(key)
    if match is None:
        return None
    return match.group(1) if regex.groups else match.group(0)


def _first_reason(skipped: tuple[Skipped, ...]) -> str:
    if not skipped:
        return ""
    return f" ({len(skipped)} entries skipped; first: {skipped[0].where}: {skipped[0].reason})"


__all__ = [
    "Dataset",
    "DatasetKind",
    "Item",
    "Skipped",
    "item_key",
    "load_dataset",
    "make_dataset",
    "parse_time",
]
