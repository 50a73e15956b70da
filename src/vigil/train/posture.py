"""Training the learned posture classifier (``vigil train posture``).

::

    records (vigil run posture --jsonl) ─┐
    labels (CSV, or time ranges) ────────┴─▶ features ─▶ split in time blocks ─▶ fit
        ─▶ evaluate next to the angle rules on the same test records ─▶ ONNX ─▶ registry ─▶ report

**Records** are the JSON lines ``vigil run posture --jsonl`` writes: one object per frame with
``frame``, ``image`` (photos), ``timestamp`` and ``time``, and the main person's ``keypoints``
(``name``, ``x``, ``y``, ``confidence``). Records without a person, without a label or without a
visible shoulder and hip are left out and counted.

**Labels** name what a person does; each maps to the app's outputs (see :data:`LABEL_ALIASES`):
``sitting``/``upright``/``reclined`` = sitting, not hunched; ``hunched``/``sitting_hunched`` =
sitting, hunched; ``standing``; ``standing_hunched``. A label map (YAML ``name: class``, ``null``
to leave a label out) adds names of one's own. Labels come from a CSV (:func:`read_csv_labels`)
or from time ranges (:func:`parse_ranges`).

**Split**: records are cut into blocks of ``block_seconds`` of record time; whole blocks go to
training or test (stratified by each block's main label, seeded), and training records within
``gap_seconds`` of a test record are dropped, so no test frame has a training neighbour.
"""

from __future__ import annotations

import csv
import difflib
import hashlib
import json
import re
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, tzinfo
from html import escape
from pathlib import Path
from typing import Any, Literal, Protocol, cast

import numpy as np
from pydantic import Field

from vigil.config import ConfigModel
from vigil.errors import ConfigError, DependencyError, SourceError
from vigil.results import COCO_17, Poses
from vigil.rules.learned import (
    CLASS_READINGS,
    FEATURE_NAMES,
    FEATURES_VERSION,
    POSTURE_TAG,
    classifier_metadata,
    posture_features,
)
from vigil.rules.posture import PostureReading, PostureRulesConfig, read_posture

UNKNOWN = "unknown"
"""What a reading that cannot be judged counts as in the evaluation."""

LABEL_ALIASES: Mapping[str, str] = {
    "sitting": "sitting",
    "sit": "sitting",
    "upright": "sitting",
    "sitting_upright": "sitting",
    "reclined": "sitting",
    "hunched": "sitting_hunched",
    "sitting_hunched": "sitting_hunched",
    "standing": "standing",
    "stand": "standing",
    "standing_upright": "standing",
    "standing_hunched": "standing_hunched",
}
"""Label names understood without a label map, and the class each one is."""

IGNORE = "ignore"
"""A label map value (like ``null``) that leaves records with that label out."""

Algorithm = Literal["logistic", "boosting"]
_ALGORITHM_NAMES: Mapping[str, str] = {
    "logistic": "logistic regression",
    "boosting": "gradient boosting",
}


class PostureTrainingConfig(ConfigModel):
    """How ``vigil train posture`` splits the records and fits the classifier."""

    algorithm: Algorithm = Field(
        "logistic",
        description="logistic: standardised features, multinomial logistic regression (the "
        "default: as accurate as boosting on posture features, tiny and smooth); boosting: "
        "histogram gradient boosting (trees; can fit odd cases the angles miss).",
    )
    test_fraction: float = Field(
        0.25, ge=0.05, le=0.9, description="Share of the time blocks held out for the test set."
    )
    block_seconds: float = Field(
        60.0,
        gt=0,
        le=86_400,
        description="Length of the time blocks that go whole to training or test.",
    )
    gap_seconds: float = Field(
        2.0,
        ge=0,
        le=3600,
        description="Training records this close in time to a test record are dropped.",
    )
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of the split and the model.")


# ---------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True, slots=True)
class KeypointRecord:
    """One line of a records file.

    Attributes:
        file: The records file.
        line: The 1-based line in it.
        frame: The frame index, if the line has one.
        image: The image path of a photo, if any.
        timestamp: Unix seconds, if the line has a time.
        poses: The main person's keypoints in COCO-17, or None when the line has none.
    """

    file: Path
    line: int
    frame: int | None
    image: str | None
    timestamp: float | None
    poses: Poses | None

    @property
    def where(self) -> str:
        """``file.jsonl:12``, for messages and reports."""
        return f"{self.file.name}:{self.line}"


@dataclass(frozen=True, slots=True)
class RecordsFile:
    """A records file read for training: where it is and its sha256 (for lineage)."""

    path: Path
    sha256: str
    lines: int


@dataclass(frozen=True, slots=True)
class Records:
    """The records of one or more files, in file and line order."""

    records: list[KeypointRecord]
    files: list[RecordsFile]


def read_records(paths: Sequence[str | Path]) -> Records:
    """Read the JSON lines of ``vigil run posture --jsonl`` files.

    Raises:
        ConfigError: no file was given.
        SourceError: a file is missing or unreadable, or a line is not a posture record.
    """
    if not paths:
        raise ConfigError("no records given: pass --records FILE.jsonl (from vigil run --jsonl)")
    records: list[KeypointRecord] = []
    files: list[RecordsFile] = []
    for given in paths:
        path = Path(given).expanduser()
        data = _read_bytes(path, "records file")
        lines = data.decode("utf-8", errors="replace").splitlines()
        for number, text in enumerate(lines, start=1):
            if text.strip():
                records.append(_parse_record(path, number, text))
        files.append(RecordsFile(path, hashlib.sha256(data).hexdigest(), len(lines)))
    if not records:
        names = ", ".join(str(f.path) for f in files)
        raise SourceError(f"no records in {names}: write them with 'vigil run posture --jsonl'")
    return Records(records, files)


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SourceError(f"{what} not found: {path}") from None
    except IsADirectoryError:
        raise SourceError(f"{what} {path} is a folder, not a file") from None
    except OSError as exc:
        raise SourceError(f"cannot read {what} {path}: {exc.strerror}") from None


def _parse_record(path: Path, number: int, text: str) -> KeypointRecord:
    where = f"{path} line {number}"
    try:
        line = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError(f"{where}: not JSON ({exc.msg}): is it from vigil run --jsonl?") from None
    if not isinstance(line, dict):
        raise SourceError(f"{where}: not a JSON object: is it from vigil run --jsonl?")
    frame = line.get("frame")
    image = line.get("image")
    return KeypointRecord(
        file=path,
        line=number,
        frame=frame if isinstance(frame, int) else None,
        image=image if isinstance(image, str) else None,
        timestamp=_record_time(line, where),
        poses=_record_poses(line, where),
    )


def _record_time(line: Mapping[str, Any], where: str) -> float | None:
    stamp = line.get("timestamp")
    if isinstance(stamp, int | float) and not isinstance(stamp, bool):
        return float(stamp)
    text = line.get("time")
    if isinstance(text, str):
        moment = _iso_datetime(text)
        if moment is None:
            raise SourceError(f"{where}: 'time' {text!r} is not an ISO date-time")
        return moment.timestamp()
    return None


def _record_poses(line: Mapping[str, Any], where: str) -> Poses | None:
    """Return the keypoints of a line as one COCO-17 person; None when it holds none.

    The keypoints decide, not the line's ``person``: that one is smoothed over a second.
    """
    points = line.get("keypoints", [])
    if not isinstance(points, list):
        raise SourceError(f"{where}: 'keypoints' must be a list of {{name, x, y, confidence}}")
    keypoints = np.zeros((1, len(COCO_17), 2), np.float32)
    confidence = np.zeros((1, len(COCO_17)), np.float32)
    found = 0
    for point in points:
        name, xy, conf = _keypoint(point, where)
        if name in COCO_17:
            i = COCO_17.index(name)
            keypoints[0, i], confidence[0, i] = xy, conf
            found += 1
    return Poses.from_arrays(keypoints, confidence, COCO_17) if found else None


def _keypoint(point: Any, where: str) -> tuple[str, tuple[float, float], float]:
    try:
        name = point["name"]
        values = (float(point["x"]), float(point["y"]), float(point["confidence"]))
    except (TypeError, KeyError, ValueError):
        raise SourceError(
            f"{where}: a keypoint must be {{name, x, y, confidence}}, got {str(point)[:80]}"
        ) from None
    if not isinstance(name, str) or not all(np.isfinite(values)):
        raise SourceError(f"{where}: a keypoint must have a name and finite numbers")
    return name, (values[0], values[1]), values[2]


# ---------------------------------------------------------------------------------------------
# Label names


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
        data = yaml.safe_load(_read_bytes(file, "label map").decode("utf-8", errors="replace"))
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


# ---------------------------------------------------------------------------------------------
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
    data = _read_bytes(file, "labels file")
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
    moment = _iso_datetime(value)
    if moment is None:
        raise ConfigError(f"{where}: time {value!r} is not an ISO date-time")
    return moment.timestamp()


def _iso_datetime(text: str, zone: tzinfo | None = None) -> datetime | None:
    """Parse an ISO date-time; one without an offset is in ``zone`` (local time by default)."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        from vigil.report.timeparse import local_zone

        moment = moment.replace(tzinfo=zone or local_zone())
    return moment


# ---------------------------------------------------------------------------------------------
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
        zone = self.zone or _local_zone()
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


def _local_zone() -> tzinfo:
    from vigil.report.timeparse import local_zone

    return local_zone()


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
    zone = zone or _local_zone()
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
    data = _read_bytes(file, "ranges file")
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
        return _iso_datetime(cleaned, zone)
    return None


# ---------------------------------------------------------------------------------------------
# Examples: labelled records with their features and the rules' verdicts


@dataclass
class PostureExamples:
    """The labelled records a classifier learns from, with what the rules say about each.

    Attributes:
        records: The records used, in file and line order.
        labels: Each record's class.
        features: (N, F) float32 features.
        rules: Each record's class by the angle rules (``unknown`` where they cannot tell).
        readings: The rules' reading of each record (angles, side).
        left_out: Why the other records were left out, with counts.
    """

    records: list[KeypointRecord]
    labels: list[str]
    features: np.ndarray
    rules: list[str]
    readings: list[PostureReading]
    left_out: Counter[str] = field(default_factory=Counter)


def reading_class(reading: PostureReading) -> str:
    """Return the posture class of a reading, or ``unknown``."""
    for label, (state, hunched) in CLASS_READINGS.items():
        if reading.person and (reading.state, reading.hunched) == (state, hunched):
            return label
    return UNKNOWN


def label_records(
    records: Sequence[KeypointRecord], labeller: Labeller, rules: PostureRulesConfig
) -> PostureExamples:
    """Label the records, compute their features and the rules' verdicts.

    Records without a person (no keypoints, or fewer than three confident joints), without a
    label (or with an ignored one) or without a visible shoulder and hip are left out and
    counted in ``left_out``.
    """
    examples = PostureExamples([], [], np.zeros((0, len(FEATURE_NAMES)), np.float32), [], [])
    rows = []
    for record in records:
        found = _example(record, labeller, rules)
        if isinstance(found, str):
            examples.left_out[found] += 1
            continue
        label, reading, features = found
        examples.records.append(record)
        examples.labels.append(label)
        examples.rules.append(reading_class(reading))
        examples.readings.append(reading)
        rows.append(features)
    if rows:
        examples.features = np.stack(rows)
    return examples


def _example(
    record: KeypointRecord, labeller: Labeller, rules: PostureRulesConfig
) -> tuple[str, PostureReading, np.ndarray] | str:
    """Return a record's label, the rules' reading and its features, or why it is left out."""
    poses = record.poses
    reading = read_posture(poses, rules, person=0) if poses is not None else None
    if poses is None or reading is None or not reading.person:
        return "no person"
    label = labeller.label_of(record)
    if label is None:
        return "no label"
    features = posture_features(poses, reading, 0, rules.min_keypoint_confidence)
    if features is None:
        return "no shoulder or hip visible"
    return label, reading, features


# ---------------------------------------------------------------------------------------------
# Split in time blocks


@dataclass(frozen=True, slots=True)
class Split:
    """Indexes into the examples: training and test records, and how many the gap dropped."""

    train: np.ndarray
    test: np.ndarray
    dropped: int
    blocks: int


def split_in_time_blocks(
    records: Sequence[KeypointRecord], labels: Sequence[str], config: PostureTrainingConfig
) -> Split:
    """Hold out whole blocks of record time for the test set (see the module docstring).

    Raises:
        ConfigError: the records span too few blocks to hold any out.
    """
    blocks = _block_keys(records, config.block_seconds)
    test_blocks = _test_blocks(blocks, labels, config)
    is_test = np.array([b in test_blocks for b in blocks], bool)
    if not is_test.any() or is_test.all():
        raise ConfigError(
            f"cannot hold out a test set: the labelled records span {len(set(blocks))} time "
            f"block(s) of {config.block_seconds:g} s; give more records or a smaller "
            "--block-seconds"
        )
    near = _near_test(records, is_test, config.gap_seconds)
    train = np.flatnonzero(~is_test & ~near)
    return Split(train, np.flatnonzero(is_test), int((~is_test & near).sum()), len(set(blocks)))


def _test_blocks(
    blocks: Sequence[tuple[str, int]], labels: Sequence[str], config: PostureTrainingConfig
) -> set[tuple[str, int]]:
    """Choose the test blocks: a share of the blocks of each main label, at least one of each.

    A label that is the main one of a single block keeps it for training.
    """
    members: dict[tuple[str, int], Counter[str]] = defaultdict(Counter)
    for key, label in zip(blocks, labels, strict=True):
        members[key][label] += 1
    by_label: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for key in sorted(members):
        by_label[members[key].most_common(1)[0][0]].append(key)
    rng = np.random.default_rng(config.seed)
    chosen: set[tuple[str, int]] = set()
    for label in sorted(by_label):
        keys = by_label[label]
        if len(keys) > 1:
            count = min(len(keys) - 1, max(1, round(len(keys) * config.test_fraction)))
            chosen.update(keys[i] for i in rng.permutation(len(keys))[:count])
    return chosen


def _clocks(records: Sequence[KeypointRecord]) -> tuple[np.ndarray, np.ndarray]:
    """Return each record's clock and time on it.

    Records with a timestamp share one clock, whichever file they are in (two files of the same
    hours hold neighbours); a record without one counts its line number as seconds on its
    file's own clock.
    """
    clocks = np.array(["" if r.timestamp is not None else str(r.file) for r in records])
    times = np.array(
        [r.timestamp if r.timestamp is not None else float(r.line) for r in records], np.float64
    )
    return clocks, times


def _block_keys(records: Sequence[KeypointRecord], seconds: float) -> list[tuple[str, int]]:
    clocks, times = _clocks(records)
    starts = {clock: float(times[clocks == clock].min()) for clock in np.unique(clocks)}
    return [
        (str(clock), int((t - starts[clock]) // seconds))
        for clock, t in zip(clocks, times, strict=True)
    ]


def _near_test(records: Sequence[KeypointRecord], is_test: np.ndarray, gap: float) -> np.ndarray:
    """Mark the records within ``gap`` seconds of a test record on the same clock."""
    near = np.zeros(len(records), bool)
    if gap <= 0:
        return near
    clocks, times = _clocks(records)
    for clock in np.unique(clocks):
        mine = clocks == clock
        test_times = np.sort(times[mine & is_test])
        if len(test_times) == 0:
            continue
        where = np.flatnonzero(mine)
        pos = np.searchsorted(test_times, times[where])
        after = np.abs(test_times[np.minimum(pos, len(test_times) - 1)] - times[where])
        before = np.abs(test_times[np.maximum(pos - 1, 0)] - times[where])
        near[where] = np.minimum(after, before) <= gap
    return near


# ---------------------------------------------------------------------------------------------
# Fit, evaluate, export


def fit_classifier(
    features: np.ndarray, targets: np.ndarray, algorithm: Algorithm, seed: int = 0
) -> Any:
    """Fit a scikit-learn classifier on class indexes ``targets``.

    Raises:
        DependencyError: scikit-learn is not installed.
    """
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError:
        raise DependencyError("scikit-learn", "train", "training a posture classifier") from None
    if algorithm == "boosting":
        model: Any = HistGradientBoostingClassifier(
            max_iter=150, learning_rate=0.1, max_leaf_nodes=15, random_state=seed
        )
    else:
        model = Pipeline(
            [
                ("scale", StandardScaler()),
                ("classify", LogisticRegression(C=1.0, max_iter=5000, class_weight="balanced")),
            ]
        )
    model.fit(features, targets)
    return model


@dataclass(frozen=True, slots=True)
class Evaluation:
    """How one way of classifying did on the test records.

    Attributes:
        classes: The true classes, in the order of the confusion matrix's rows.
        columns: The predicted classes, the columns (``unknown`` last when it occurs).
        confusion: Counts: ``confusion[i][j]`` records of ``classes[i]`` predicted ``columns[j]``.
        accuracy: Share of records predicted right.
        recall: Per true class, the share of its records predicted right.
    """

    classes: list[str]
    columns: list[str]
    confusion: list[list[int]]
    accuracy: float
    recall: dict[str, float]

    @property
    def count(self) -> int:
        """Number of records evaluated."""
        return sum(map(sum, self.confusion))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (for the registry's metrics)."""
        return {
            "accuracy": round(self.accuracy, 4),
            "recall": {k: round(v, 4) for k, v in self.recall.items()},
            "confusion": {"rows": self.classes, "columns": self.columns, "counts": self.confusion},
        }


def _class_order(names: Iterable[str]) -> list[str]:
    order = [*CLASS_READINGS, UNKNOWN]
    present = set(names)
    return [n for n in order if n in present] + sorted(present - set(order))


def evaluate(truth: Sequence[str], predicted: Sequence[str]) -> Evaluation:
    """Compare predicted classes with the true ones."""
    classes = _class_order(truth)
    columns = _class_order([*truth, *predicted])
    counts = Counter(zip(truth, predicted, strict=True))
    confusion = [[counts[(t, p)] for p in columns] for t in classes]
    total = len(truth)
    right = sum(counts[(c, c)] for c in classes)
    recall = {c: counts[(c, c)] / max(1, sum(counts[(c, p)] for p in columns)) for c in classes}
    return Evaluation(classes, columns, confusion, right / total if total else 0.0, recall)


def export_onnx(model: Any, labels: Sequence[str], min_confidence: float, path: Path) -> Path:
    """Write a fitted classifier as ONNX with the metadata the posture app checks.

    The graph takes ``features`` (N, F) float32 and gives ``label`` (N,) and ``probabilities``
    (N, C) in the order of ``labels``.

    Raises:
        DependencyError: skl2onnx or onnx is not installed.
    """
    try:
        import onnx
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType
    except ImportError as exc:
        package = "onnx" if exc.name == "onnx" else "skl2onnx"
        raise DependencyError(package, "train", "exporting a posture classifier") from None
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    graph = convert_sklearn(
        model,
        "vigil posture classifier",
        initial_types=[("features", FloatTensorType([None, len(FEATURE_NAMES)]))],
        options={id(final): {"zipmap": False}},
    )
    onnx.helper.set_model_props(graph, classifier_metadata(labels, min_confidence))
    graph.doc_string = f"Posture classifier over {FEATURES_VERSION} features: {', '.join(labels)}"
    path.write_bytes(graph.SerializeToString())
    return path


# ---------------------------------------------------------------------------------------------
# The whole run


@dataclass(frozen=True, slots=True)
class Disagreement:
    """A test record where the learned classifier and the rules say different things."""

    where: str
    timestamp: float | None
    image: str | None
    truth: str
    rules: str
    learned: str
    angles: dict[str, float | None]


@dataclass(frozen=True)
class PostureTrainingResult:
    """What ``vigil train posture`` did.

    Attributes:
        name: The registered model name.
        version: Its new version number.
        algorithm: The kind of classifier fitted.
        classes: The classes it predicts, in output order.
        files: The records files read.
        records: Records read in all.
        used: Labelled records with a body frame.
        left_out: Why the other records were left out.
        train: Training records.
        test: Test records.
        dropped: Training records dropped for being next to a test record.
        blocks: Time blocks the records span.
        learned: The learned classifier on the test records.
        rules: The angle rules on the same test records.
        disagreements: The test records where the two differ.
        labels_source: Where the labels came from.
        config: The split and model settings.
    """

    name: str
    version: int
    algorithm: Algorithm
    classes: list[str]
    files: list[RecordsFile]
    records: int
    used: int
    left_out: dict[str, int]
    train: int
    test: int
    dropped: int
    blocks: int
    learned: Evaluation
    rules: Evaluation
    disagreements: list[Disagreement]
    labels_source: dict[str, Any]
    config: PostureTrainingConfig

    @property
    def ref(self) -> str:
        """``name:version``."""
        return f"{self.name}:{self.version}"


def train_posture(
    records: Records,
    labeller: Labeller,
    name: str,
    *,
    config: PostureTrainingConfig | None = None,
    rules: PostureRulesConfig | None = None,
    stage: str | None = None,
) -> PostureTrainingResult:
    """Train, evaluate next to the rules, export and register a posture classifier.

    Args:
        records: The keypoint records (:func:`read_records`).
        labeller: Gives records their classes (:func:`read_csv_labels`, :func:`parse_ranges`).
        name: The registered model's name.
        config: Split and model settings.
        rules: The angle rules to compare with; their joint confidence threshold is also the
            classifier's.
        stage: Point this stage alias (e.g. ``production``) at the new version.

    Raises:
        ConfigError: no record is labelled, only one class is, or no test set can be held out.
        ModelError: the name cannot name a model.
        DependencyError: scikit-learn, skl2onnx or onnx is missing.
    """
    from vigil.models.registry import check_alias, check_name

    check_name(name)
    if stage is not None:
        check_alias(stage)
    settings = config or PostureTrainingConfig()
    thresholds = rules or PostureRulesConfig()
    examples = label_records(records.records, labeller, thresholds)
    _check_examples(examples, records)
    split = split_in_time_blocks(examples.records, examples.labels, settings)
    fitted = _fit(examples, split, settings)
    predicted = [
        fitted.classes[int(i)] for i in fitted.model.predict(examples.features[split.test])
    ]
    truth = [examples.labels[i] for i in split.test]
    learned = evaluate(truth, predicted)
    compared = evaluate(truth, [examples.rules[i] for i in split.test])
    metrics = learned.as_dict() | {
        "rules": compared.as_dict(),
        "train_records": len(split.train),
        "test_records": len(split.test),
    }
    lineage = _lineage(records, labeller, settings)
    version = _register(fitted, name, thresholds, metrics=metrics, lineage=lineage, stage=stage)
    return PostureTrainingResult(
        name=name,
        version=version,
        algorithm=settings.algorithm,
        classes=fitted.classes,
        files=records.files,
        records=len(records.records),
        used=len(examples.records),
        left_out=dict(examples.left_out),
        train=len(split.train),
        test=len(split.test),
        dropped=split.dropped,
        blocks=split.blocks,
        learned=learned,
        rules=compared,
        disagreements=_disagreements(examples, split.test, predicted),
        labels_source=labeller.lineage(),
        config=settings,
    )


@dataclass(frozen=True, slots=True)
class _Fitted:
    model: Any
    classes: list[str]
    algorithm: Algorithm


def _fit(examples: PostureExamples, split: Split, config: PostureTrainingConfig) -> _Fitted:
    """Fit the classifier on the training records; its classes are theirs, in class order."""
    classes = [c for c in _class_order(examples.labels[i] for i in split.train) if c != UNKNOWN]
    if len(classes) < 2:
        raise ConfigError(
            f"the training records hold only one class ({', '.join(classes)}): a classifier "
            "needs records of at least two"
        )
    targets = np.array([classes.index(examples.labels[i]) for i in split.train])
    model = fit_classifier(examples.features[split.train], targets, config.algorithm, config.seed)
    return _Fitted(model, classes, config.algorithm)


def _register(
    fitted: _Fitted,
    name: str,
    rules: PostureRulesConfig,
    *,
    metrics: dict[str, Any],
    lineage: dict[str, Any],
    stage: str | None,
) -> int:
    """Export to ONNX and register (and point ``stage`` at it); return the new version."""
    import vigil.models

    with tempfile.TemporaryDirectory(prefix="vigil-posture-") as folder:
        onnx_path = export_onnx(
            fitted.model,
            fitted.classes,
            rules.min_keypoint_confidence,
            Path(folder) / "posture.onnx",
        )
        version = vigil.models.register(
            onnx_path,
            name,
            task="classify",
            labels=fitted.classes,
            tags={POSTURE_TAG: FEATURES_VERSION, "algorithm": fitted.algorithm},
            description="Posture classifier over body-normalised keypoints (vigil train posture)",
            metrics=metrics,
            lineage=lineage,
        )
    if stage is not None:
        vigil.models.promote(version.ref, stage)
    return version.version


def _check_examples(examples: PostureExamples, records: Records) -> None:
    if examples.records:
        return
    reasons = ", ".join(f"{n} {why}" for why, n in examples.left_out.most_common())
    raise ConfigError(
        f"no labelled record to learn from: of {len(records.records)} records, {reasons}; check "
        "that the labels name these records (image paths, frames or times)"
    )


def _disagreements(
    examples: PostureExamples, test: np.ndarray, predicted: Sequence[str]
) -> list[Disagreement]:
    found = []
    for index, learned in zip(test, predicted, strict=True):
        rules = examples.rules[index]
        if rules != learned:
            record = examples.records[index]
            found.append(
                Disagreement(
                    where=record.where,
                    timestamp=record.timestamp,
                    image=record.image,
                    truth=examples.labels[index],
                    rules=rules,
                    learned=learned,
                    angles=examples.readings[index].angles.as_dict(),
                )
            )
    return found


def _lineage(records: Records, labeller: Labeller, config: PostureTrainingConfig) -> dict[str, Any]:
    return {
        "command": "vigil train posture",
        "records": [
            {"path": str(f.path.resolve()), "sha256": f.sha256, "lines": f.lines}
            for f in records.files
        ],
        "labels": labeller.lineage(),
        "features": FEATURES_VERSION,
        "split": config.model_dump(exclude={"algorithm"}),
        "algorithm": config.algorithm,
        "trained": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# ---------------------------------------------------------------------------------------------
# The report: text and a self-contained HTML file


def report_lines(result: PostureTrainingResult) -> list[str]:
    """Return the comparison as lines of text, for the terminal."""
    left = ", ".join(f"{n} {why}" for why, n in sorted(result.left_out.items())) or "none"
    lines = [
        f"records: {result.records} in {len(result.files)} file(s); {result.used} labelled and "
        f"used (left out: {left})",
        f"split: {result.train} training, {result.test} test records in time blocks of "
        f"{result.config.block_seconds:g} s ({result.blocks} blocks, seed {result.config.seed}"
        f", {result.dropped} training records dropped next to test ones)",
        f"model: {_ALGORITHM_NAMES[result.algorithm]}, classes {', '.join(result.classes)}",
        f"{'on the test records':24} {'learned':>8} {'rules':>8}",
        f"{'accuracy':24} {result.learned.accuracy:8.3f} {result.rules.accuracy:8.3f}",
    ]
    for label in result.learned.classes:
        learned, rules = result.learned.recall[label], result.rules.recall[label]
        lines.append(f"{'recall ' + label:24} {learned:8.3f} {rules:8.3f}")
    lines.append(f"they disagree on {len(result.disagreements)} of {result.test} test records")
    lines.append(
        f"registered {result.ref}: use it with 'rules: {{learned_classifier: {result.ref}}}' "
        "in the posture config"
    )
    return lines


def write_report(result: PostureTrainingResult, path: str | Path) -> Path:
    """Write the comparison as one self-contained HTML file.

    Raises:
        StorageError: the file cannot be written.
    """
    from vigil.errors import StorageError

    out = Path(path).expanduser()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_report_html(result), encoding="utf-8")
    except OSError as exc:
        raise StorageError(f"cannot write the report {out}: {exc.strerror}") from None
    return out


_MAX_DISAGREEMENTS_SHOWN = 200

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="Vigil">
<title>Posture classifier {title}</title>
<style>
  :root {{ --text: #222; --muted: #666; --line: #e2e2e2; --card: #fafafa; }}
  * {{ box-sizing: border-box; }}
  body {{ margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
         color: var(--text); background: #fff; line-height: 1.45; }}
  main {{ max-width: 1240px; margin: 0 auto; padding: 24px 20px 48px; }}
  h1 {{ font-size: 1.7rem; margin: 0 0 4px; }}
  h2 {{ font-size: 1.15rem; margin: 32px 0 8px; }}
  .meta {{ color: var(--muted); margin: 0; }}
  .cards {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr));
           gap: 12px; margin: 24px 0 8px; }}
  .card {{ background: var(--card); border: 1px solid var(--line); border-left: 6px solid #bbb;
          border-radius: 8px; padding: 12px 14px; }}
  .card.learned {{ border-left-color: #2e7d32; }}
  .card.rules {{ border-left-color: #ef6c00; }}
  .card .label {{ color: var(--muted); font-size: 0.85rem; text-transform: uppercase;
                 letter-spacing: 0.04em; }}
  .card .value {{ font-size: 1.55rem; font-weight: 650; margin: 2px 0; white-space: nowrap; }}
  .card .detail {{ color: var(--muted); font-size: 0.9rem; }}
  .pair {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr));
          gap: 24px; }}
  table {{ border-collapse: collapse; width: 100%; font-size: 0.95rem; }}
  th, td {{ text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line);
           vertical-align: top; }}
  th {{ color: var(--muted); font-weight: 600; }}
  td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
  td.hit {{ background: #e8f5e9; font-weight: 600; }}
  td.miss {{ background: #fff3e0; }}
  footer {{ margin-top: 40px; color: var(--muted); font-size: 0.85rem; }}
</style>
</head>
<body>
<main>
<header>
<h1>Posture classifier {title}</h1>
<p class="meta">{meta}</p>
</header>
{body}
<footer>
<p>Made by vigil train posture. Both columns are measured on the same held-out test records.</p>
</footer>
</main>
</body>
</html>
"""


def render_report_html(result: PostureTrainingResult) -> str:
    """Return the comparison report as HTML (styles inline, no external files)."""
    body = "\n".join(
        [
            _cards(result),
            _recall_table(result),
            '<div class="pair">',
            _confusion_html("Learned classifier: confusion matrix", result.learned),
            _confusion_html("Angle rules: confusion matrix", result.rules),
            "</div>",
            _disagreements_html(result),
            _data_html(result),
        ]
    )
    meta = (
        f"{escape(_ALGORITHM_NAMES[result.algorithm])} &middot; {result.train} training and "
        f"{result.test} test records &middot; time blocks of {result.config.block_seconds:g} s"
    )
    return _PAGE.format(title=escape(result.ref), meta=meta, body=body)


def _card(kind: str, label: str, value: str, detail: str) -> str:
    return (
        f'<div class="card {kind}"><div class="label">{escape(label)}</div>'
        f'<div class="value">{escape(value)}</div><div class="detail">{escape(detail)}</div></div>'
    )


def _cards(result: PostureTrainingResult) -> str:
    cards = [
        _card("learned", "learned accuracy", f"{result.learned.accuracy:.1%}", result.ref),
        _card("rules", "rules accuracy", f"{result.rules.accuracy:.1%}", "angle thresholds"),
        _card(
            "",
            "disagreements",
            str(len(result.disagreements)),
            f"of {result.test} test records",
        ),
    ]
    return f'<section class="cards">{"".join(cards)}</section>'


def _recall_table(result: PostureTrainingResult) -> str:
    rows = [
        f"<tr><td>{escape(label)}</td><td class='n'>{result.learned.recall[label]:.1%}</td>"
        f"<td class='n'>{result.rules.recall[label]:.1%}</td>"
        f"<td class='n'>{sum(result.learned.confusion[i])}</td></tr>"
        for i, label in enumerate(result.learned.classes)
    ]
    return (
        "<h2>Recall per class</h2><table><tr><th>class</th><th>learned</th><th>rules</th>"
        f"<th>test records</th></tr>{''.join(rows)}</table>"
    )


def _confusion_html(title: str, evaluation: Evaluation) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in evaluation.columns)
    rows = []
    for label, counts in zip(evaluation.classes, evaluation.confusion, strict=True):
        cells = "".join(
            f"<td class='n {_cell_class(label, column, n)}'>{n}</td>"
            for column, n in zip(evaluation.columns, counts, strict=True)
        )
        rows.append(f"<tr><th>{escape(label)}</th>{cells}</tr>")
    return (
        f"<section><h2>{escape(title)}</h2><table><tr><th>true \u2193 / predicted \u2192</th>"
        f"{head}</tr>{''.join(rows)}</table></section>"
    )


def _cell_class(label: str, column: str, count: int) -> str:
    if label == column:
        return "hit"
    return "miss" if count else ""


def _disagreements_html(result: PostureTrainingResult) -> str:
    shown = result.disagreements[:_MAX_DISAGREEMENTS_SHOWN]
    if not shown:
        return "<h2>Where they disagree</h2><p>Nowhere: both say the same on every test record.</p>"
    rows = [
        "<tr>"
        f"<td>{escape(d.image or d.where)}</td><td>{escape(_when(d.timestamp))}</td>"
        f"<td>{escape(d.truth)}</td><td class='{_right(d.rules, d.truth)}'>{escape(d.rules)}</td>"
        f"<td class='{_right(d.learned, d.truth)}'>{escape(d.learned)}</td>"
        f"<td>{escape(_angles(d.angles))}</td></tr>"
        for d in shown
    ]
    more = len(result.disagreements) - len(shown)
    note = f"<p class='meta'>and {more} more</p>" if more > 0 else ""
    return (
        f"<h2>Where they disagree ({len(result.disagreements)})</h2><table><tr><th>record</th>"
        "<th>time</th><th>label</th><th>rules</th><th>learned</th><th>angles (deg)</th></tr>"
        f"{''.join(rows)}</table>{note}"
    )


def _right(said: str, truth: str) -> str:
    return "hit" if said == truth else "miss"


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    from vigil.report.timeparse import format_local

    return format_local(timestamp, _local_zone(), seconds=True)


def _angles(angles: Mapping[str, float | None]) -> str:
    return "  ".join(f"{k} {v:.0f}" for k, v in angles.items() if v is not None) or "none"


def _data_html(result: PostureTrainingResult) -> str:
    files = "".join(
        f"<tr><td>{escape(str(f.path))}</td><td class='n'>{f.lines}</td>"
        f"<td><code>{f.sha256[:16]}</code></td></tr>"
        for f in result.files
    )
    left = "".join(
        f"<tr><td>{escape(why)}</td><td class='n'>{n}</td></tr>"
        for why, n in sorted(result.left_out.items())
    )
    labels = escape(json.dumps(result.labels_source)[:2000])
    return (
        "<h2>Data</h2><table><tr><th>records file</th><th>lines</th><th>sha256</th></tr>"
        f"{files}</table><h2>Left out</h2><table><tr><th>why</th><th>records</th></tr>"
        f"{left or '<tr><td>nothing</td><td></td></tr>'}</table>"
        f"<h2>Labels</h2><p><code>{labels}</code></p>"
    )


__all__ = [
    "LABEL_ALIASES",
    "CsvLabels",
    "Disagreement",
    "Evaluation",
    "KeypointRecord",
    "LabelNames",
    "Labeller",
    "PostureExamples",
    "PostureTrainingConfig",
    "PostureTrainingResult",
    "RangeLabels",
    "Records",
    "RecordsFile",
    "Split",
    "TimeRange",
    "evaluate",
    "export_onnx",
    "fit_classifier",
    "label_records",
    "parse_ranges",
    "read_csv_labels",
    "read_label_map",
    "read_ranges",
    "read_records",
    "reading_class",
    "render_report_html",
    "report_lines",
    "split_in_time_blocks",
    "train_posture",
    "write_report",
]
