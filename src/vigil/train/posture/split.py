"""Labelled records with their features and the rules' verdicts, split in time blocks."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from vigil.errors import ConfigError
from vigil.rules.learned import (
    CLASS_READINGS,
    FEATURE_NAMES,
    posture_features,
)
from vigil.rules.posture import PostureReading, PostureRulesConfig, read_posture
from vigil.train.posture.config import UNKNOWN, PostureTrainingConfig
from vigil.train.posture.labels import Labeller
from vigil.train.posture.records import KeypointRecord

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
