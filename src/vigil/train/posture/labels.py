"""Labels for keypoint records: label names, a CSV of labels, or time ranges."""

from __future__ import annotations

import csv
import difflib
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, tzinfo
from pathlib import Path
from typing import Any, Protocol, cast

from vigil.errors import ConfigError
from vigil.rules.learned import (
    CLASS_READINGS,
)
from vigil.train.posture.config import IGNORE, LABEL_ALIASES
from vigil.train.posture.records import KeypointRecord, iso_datetime, local_zone_now, read_bytes


class LabelNames:
    """Turns the label names users write into posture classes.

    Args:
        extra: More names: ``{name: class}``; a class of None or ``ignore`` leaves the records
            with that label out. Classes may be written as any name :data:`LABEL_ALIASES` knows.

    Raises:
        ConfigError: an extra name maps to something that is not a posture class.
    """

    def __init__(self, extra: Mapping[str, str | None] | None = None) -> None:
        self._names: dict[str, str | None] = dict(LABEL_ALIASES)
        for name, target in (extra or {}).items():
            self._names[_normalise(name)] = self._target(name, target)

    def _target(self, name: str, target: str | None) -> str | None:
        if target is None or _normalise(target) == IGNORE:
            return None
        found = LABEL_ALIASES.get(_normalise(target))
        if found is None:
            raise ConfigError(
                f"label map: {name!r} maps to {target!r}, which is not a posture class: "
                f"use one of {', '.join(CLASS_READINGS)} (or null to leave it out)"
            )
        return found

    def known(self) -> list[str]:
        """Every name understood."""
        return sorted(self._names)

    def canonical(self, name: str, where: str) -> str | None:
        """Return the class of label ``name``; None when the label map leaves it out.

        Raises:
            ConfigError: the name is unknown (with the closest known name).
        """
        key = _normalise(name)
        if key in self._names:
            return self._names[key]
        close = difflib.get_close_matches(key, self.known(), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        raise ConfigError(
            f"{where}: unknown posture label {name!r}{hint} (known: {', '.join(self.known())}; "
            "map other names to these with --label-map)"
        )


def _normalise(name: str) -> str:
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def read_label_map(path: str | Path) -> LabelNames:
    """Read a YAML label map: ``{my_name: posture class or null}``.

    Raises:
        SourceError: the file cannot be read.
        ConfigError: it is not a mapping of names to classes.
    """
    import yaml

    file = Path(path).expanduser()
    try:
        data = yaml.safe_load(read_bytes(file, "label map").decode("utf-8", errors="replace"))
    except yaml.YAMLError as exc:
        raise ConfigError(f"label map {file}: not valid YAML: {exc}") from None
    valid = isinstance(data, dict) and all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in data.items()
    )
    if not valid:
        raise ConfigError(
            f"label map {file}: write one 'name: class' per line, e.g. 'slouch: hunched'"
        )
    return LabelNames(data)


# Labels from a CSV


class Labeller(Protocol):
    """Gives a record its posture class, or None when nothing labels it."""

    def label_of(self, record: KeypointRecord) -> str | None:
        """Return the class of ``record``; None when it has no label (or an ignored one)."""
        ...

    def lineage(self) -> dict[str, Any]:
        """Return where the labels came from, for the registry."""
        ...


_KEY_COLUMNS = {
    "image": "image",
    "path": "image",
    "file": "image",
    "frame": "frame",
    "timestamp": "timestamp",
    "time": "time",
}
_LABEL_COLUMNS = ("label", "posture", "class")


@dataclass
class CsvLabels:
    """Labels from a CSV that maps image paths, frame indexes or times to label names.

    A row's key is its first non-empty ``image`` (or ``path``, ``file``), ``timestamp`` (Unix
    seconds), ``time`` (ISO; without an offset, local time) or ``frame`` column. An image matches
    a record's image path exactly, or by file name when the CSV gives a bare name. A time matches
    the record of the same millisecond; a frame index matches that frame of every records file.
    """

    path: Path
    sha256: str
    images: dict[str, str | None] = field(default_factory=dict)
    names: dict[str, str | None] = field(default_factory=dict)
    millis: dict[int, str | None] = field(default_factory=dict)
    frames: dict[int, str | None] = field(default_factory=dict)

    def label_of(self, record: KeypointRecord) -> str | None:
        """Return the class the CSV gives ``record``."""
        for table, key in self._keys(record):
            if key in table:
                return table[key]
        return None

    def _keys(self, record: KeypointRecord) -> Iterable[tuple[dict[Any, str | None], Any]]:
        if record.image is not None:
            yield self.images, record.image
            yield self.names, Path(record.image).name
        if record.timestamp is not None:
            yield self.millis, round(record.timestamp * 1000)
        if record.frame is not None:
            yield self.frames, record.frame

    def lineage(self) -> dict[str, Any]:
        """Return the CSV file and its sha256."""
        return {"kind": "csv", "path": str(self.path.resolve()), "sha256": self.sha256}


def read_csv_labels(path: str | Path, names: LabelNames | None = None) -> CsvLabels:
    """Read a labels CSV (see :class:`CsvLabels`).

    Raises:
        SourceError: the file cannot be read.
        ConfigError: it lacks a label or key column, a label is unknown, a key is malformed, or
            one key has two different labels.
    """
    file = Path(path).expanduser()
    data = read_bytes(file, "labels file")
    rows = list(csv.DictReader(data.decode("utf-8-sig", errors="replace").splitlines()))
    columns = [c.strip().lower() for c in (rows[0].keys() if rows else [])]
    label_column = next((c for c in _LABEL_COLUMNS if c in columns), None)
    keys = [c for c in columns if c in _KEY_COLUMNS]
    if label_column is None or not keys:
        raise ConfigError(
            f"labels file {file}: needs a 'label' column and an 'image', 'frame', 'timestamp' or "
            f"'time' column (found: {', '.join(columns) or 'no rows'})"
        )
    labels = CsvLabels(file, hashlib.sha256(data).hexdigest())
    lookup = names or LabelNames()
    for number, row in enumerate(rows, start=2):
        clean = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        if clean.get(label_column):
            where = f"{file} line {number}"
            label = lookup.canonical(clean[label_column], where)
            _add_csv_row(labels, clean, keys, label, where)
    return labels


def _add_csv_row(
    labels: CsvLabels, row: Mapping[str, str], keys: Sequence[str], label: str | None, where: str
) -> None:
    column = next((c for c in keys if row.get(c)), None)
    if column is None:
        raise ConfigError(f"{where}: the row has a label but no {', '.join(keys)}")
    value, kind = row[column], _KEY_COLUMNS[column]
    if kind == "image":
        _put(labels.images, value, label, where)
        if "/" not in value and "\\" not in value:
            _put(labels.names, value, label, where)
    elif kind == "frame":
        _put(labels.frames, _int(value, where, column), label, where)
    else:
        _put(labels.millis, round(_moment(value, kind, where) * 1000), label, where)


def _put(table: dict[Any, str | None], key: Any, label: str | None, where: str) -> None:
    if key in table and table[key] != label:
        raise ConfigError(f"{where}: {key} is labelled twice, as {table[key]} and as {label}")
    table[key] = label


def _int(value: str, where: str, column: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ConfigError(f"{where}: {column} {value!r} is not a whole number") from None


def _moment(value: str, kind: str, where: str) -> float:
    if kind == "timestamp":
        try:
            return float(value)
        except ValueError:
            raise ConfigError(f"{where}: timestamp {value!r} is not Unix seconds") from None
    moment = iso_datetime(value)
    if moment is None:
        raise ConfigError(f"{where}: time {value!r} is not an ISO date-time")
    return moment.timestamp()


# Labels from time ranges

RANGE_FORMS = (
    "write START-END LABEL, e.g. '10:00-10:20 hunched' (local time of day) or "
    "'2026-11-20T10:00/2026-11-20T10:20 upright' (ISO date-times)"
)


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A labelled span of time: times of day (any date, local time) or date-times.

    The start is included, the end is not; a time-of-day range whose end is earlier than its
    start runs over midnight.
    """

    start: time | datetime
    end: time | datetime
    label: str | None
    text: str

    def contains(self, timestamp: float, zone: tzinfo) -> bool:
        """Whether the moment ``timestamp`` (Unix seconds) falls in this range."""
        if isinstance(self.start, datetime) and isinstance(self.end, datetime):
            return self.start.timestamp() <= timestamp < self.end.timestamp()
        of_day = datetime.fromtimestamp(timestamp, zone).time()
        start, end = cast(time, self.start), cast(time, self.end)  # both times of day
        if start < end:
            return start <= of_day < end
        return of_day >= start or of_day < end


@dataclass
class RangeLabels:
    """Labels from time ranges; a record takes the label of the first range it falls in."""

    ranges: list[TimeRange]
    source: str
    sha256: str | None = None
    zone: tzinfo | None = None

    def label_of(self, record: KeypointRecord) -> str | None:
        """Return the class of the first range holding the record's time."""
        if record.timestamp is None:
            return None
        zone = self.zone or local_zone_now()
        for span in self.ranges:
            if span.contains(record.timestamp, zone):
                return span.label
        return None

    def lineage(self) -> dict[str, Any]:
        """Return the ranges as written, and the file they came from."""
        found: dict[str, Any] = {"kind": "ranges", "ranges": [r.text for r in self.ranges]}
        if self.sha256 is not None:
            found |= {"path": self.source, "sha256": self.sha256}
        return found


def parse_ranges(
    lines: Sequence[str],
    origin: str = "--range",
    names: LabelNames | None = None,
    zone: tzinfo | None = None,
    *,
    numbered: bool = False,
) -> RangeLabels:
    """Parse time ranges, one per line (blank lines and ``#`` comments are skipped).

    Args:
        lines: ``START-END LABEL`` lines; START and END are both times of day (``10:00``,
            ``10:20:30``) or both ISO date-times (``2026-11-20T10:00``, with or without an
            offset), separated by ``-`` or ``/``.
        origin: Where the lines came from, for messages.
        names: The label names understood.
        zone: The zone of times written without an offset; local time by default.
        numbered: Name the line number of a bad line in messages (for files).

    Raises:
        ConfigError: a line is not a range, a label is unknown, or no range is given.
    """
    lookup = names or LabelNames()
    zone = zone or local_zone_now()
    ranges = []
    for number, raw in enumerate(lines, start=1):
        text = raw.split("#", 1)[0].strip()
        if text:
            where = f"{origin} line {number}" if numbered else origin
            ranges.append(_parse_range(text, where, lookup, zone))
    if not ranges:
        raise ConfigError(f"{origin}: no time ranges given: {RANGE_FORMS}")
    return RangeLabels(ranges, origin, zone=zone)


def read_ranges(path: str | Path, names: LabelNames | None = None) -> RangeLabels:
    """Read time ranges from a file (see :func:`parse_ranges`)."""
    file = Path(path).expanduser()
    data = read_bytes(file, "ranges file")
    text = data.decode("utf-8", errors="replace").splitlines()
    found = parse_ranges(text, str(file), names, numbered=True)
    found.sha256 = hashlib.sha256(data).hexdigest()
    return found


def _parse_range(text: str, where: str, names: LabelNames, zone: tzinfo) -> TimeRange:
    parts = text.rsplit(None, 1)
    bounds = _bounds(parts[0], zone) if len(parts) == 2 else None
    if bounds is None:
        raise ConfigError(f"{where}: {text!r} is not a time range: {RANGE_FORMS}")
    start, end = bounds
    backwards = isinstance(start, datetime) and isinstance(end, datetime) and start > end
    if start == end or backwards:
        raise ConfigError(f"{where}: {text!r} ends before it starts (or where it starts)")
    return TimeRange(start, end, names.canonical(parts[1], where), text)


def _bounds(text: str, zone: tzinfo) -> tuple[time, time] | tuple[datetime, datetime] | None:
    """Split ``START-END`` (or ``START/END``) where both halves parse as the same kind."""
    cuts = [m.start() for m in re.finditer(r"[-/\u2013]", text)]
    for cut in cuts:
        start, end = _bound(text[:cut], zone), _bound(text[cut + 1 :], zone)
        if isinstance(start, time) and isinstance(end, time):
            return start, end
        if isinstance(start, datetime) and isinstance(end, datetime):
            return start, end
    return None


def _bound(text: str, zone: tzinfo) -> time | datetime | None:
    cleaned = text.strip()
    if re.fullmatch(r"\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?", cleaned):
        try:
            return time.fromisoformat(cleaned if cleaned.index(":") == 2 else f"0{cleaned}")
        except ValueError:  # 25:00, 10:61
            return None
    if "T" in cleaned or " " in cleaned:
        return iso_datetime(cleaned, zone)
    return None
