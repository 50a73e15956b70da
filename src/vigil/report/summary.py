"""Posture records of a period summarised: time per state, hunching, streaks, reminders, buckets.

Pure functions over the rows that :meth:`vigil.storage.RecordStore.posture_records` and
:meth:`~vigil.storage.RecordStore.events` return; no I/O. Every record stands for one second
(``ts`` is the start of that second); seconds without a record are gaps ("no data").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from enum import IntEnum
from typing import Any

import numpy as np
import numpy.typing as npt

from vigil.errors import ConfigError
from vigil.report.timeparse import check_period, local_zone

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

RECORD_SECONDS = 1.0
"""The time one posture record stands for."""

DEFAULT_BREAK_SECONDS = 60.0
"""A pause shorter than this does not end a sitting streak."""


class Activity(IntEnum):
    """What one recorded second shows; seconds without a record are "no data"."""

    SITTING = 0
    STANDING = 1
    UNKNOWN = 2
    AWAY = 3


_STATE_CODES = {"sitting": Activity.SITTING, "standing": Activity.STANDING}


@dataclass(frozen=True, slots=True)
class SittingStreak:
    """One sitting streak: sitting seconds joined across pauses shorter than the break length.

    Attributes:
        start: Unix seconds of its first sitting second.
        end: Unix seconds just after its last sitting second.
        sitting_seconds: Seconds actually recorded as sitting inside it (pauses excluded).

    """

    start: float
    end: float
    sitting_seconds: float

    @property
    def duration(self) -> float:
        """Seconds from start to end, short pauses included."""
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Reminder:
    """One reminder the posture app sent."""

    ts: float
    reason: str
    title: str
    message: str
    sitting_seconds: float | None
    hunched_seconds: float | None


@dataclass(frozen=True, slots=True, eq=False)
class TimeBuckets:
    """Seconds per activity in consecutive local-time buckets (hours or days) of a period.

    Every array has one value per bucket. Buckets are clipped to the period, so the first and
    the last may be shorter than an hour or a day; ``no_data`` is the rest of each bucket.
    """

    starts: FloatArray
    ends: FloatArray
    sitting: FloatArray
    standing: FloatArray
    unknown: FloatArray
    away: FloatArray
    no_data: FloatArray
    hunched: FloatArray
    hunched_sitting: FloatArray

    def __len__(self) -> int:
        return len(self.starts)

    @property
    def present(self) -> FloatArray:
        """Seconds with a person in view per bucket."""
        return self.sitting + self.standing + self.unknown

    @property
    def hunched_share(self) -> FloatArray:
        """Share (0-1) of sitting time spent hunched per bucket; NaN where nobody sat."""
        share = np.full(len(self), np.nan)
        np.divide(self.hunched_sitting, self.sitting, out=share, where=self.sitting > 0)
        return share


@dataclass(frozen=True, slots=True, eq=False)
class StateRuns:
    """The period as runs of one activity (run-length encoded); gaps between runs are no data."""

    starts: FloatArray
    ends: FloatArray
    activities: IntArray

    def __len__(self) -> int:
        return len(self.starts)


@dataclass(frozen=True, slots=True, eq=False)
class PostureSummary:
    """What the posture records of one period add up to. Durations are in seconds.

    Attributes:
        since: Start of the period, Unix seconds.
        until: End of the period (exclusive), Unix seconds.
        tz: The zone of the hour and day buckets.
        observed_seconds: Seconds with a record.
        present_seconds: Seconds with a person in view.
        sitting_seconds: Seconds sitting.
        standing_seconds: Seconds standing.
        unknown_seconds: Seconds with a person whose posture could not be told.
        away_seconds: Recorded seconds without a person.
        hunched_seconds: Seconds hunched, in any posture.
        hunched_sitting_seconds: Seconds hunched while sitting.
        longest_streak: The longest sitting streak, or None without sitting.
        break_seconds: The shortest pause that ends a sitting streak.
        reminders: The reminders sent, in time order.
        hourly: Local hours of the period.
        daily: Local days of the period.
        timeline: The period as runs of one activity.

    """

    since: float
    until: float
    tz: tzinfo
    observed_seconds: float
    present_seconds: float
    sitting_seconds: float
    standing_seconds: float
    unknown_seconds: float
    away_seconds: float
    hunched_seconds: float
    hunched_sitting_seconds: float
    longest_streak: SittingStreak | None
    break_seconds: float
    reminders: tuple[Reminder, ...]
    hourly: TimeBuckets
    daily: TimeBuckets
    timeline: StateRuns

    @property
    def period_seconds(self) -> float:
        """Length of the period."""
        return self.until - self.since

    @property
    def no_data_seconds(self) -> float:
        """Seconds of the period without a record."""
        return self.period_seconds - self.observed_seconds

    @property
    def empty(self) -> bool:
        """True when the period holds no record at all."""
        return self.observed_seconds == 0

    @property
    def hunched_share(self) -> float | None:
        """Share (0-1) of sitting time spent hunched, or None without sitting."""
        if self.sitting_seconds == 0:
            return None
        return self.hunched_sitting_seconds / self.sitting_seconds

    @property
    def reminder_counts(self) -> dict[str, int]:
        """Number of reminders per reason, reasons in alphabetical order."""
        counts = Counter(reminder.reason for reminder in self.reminders)
        return dict(sorted(counts.items()))


@dataclass(frozen=True, slots=True, eq=False)
class _Seconds:
    """Recorded seconds of the period as parallel arrays, one entry per distinct second."""

    ts: FloatArray
    activity: IntArray
    hunched: npt.NDArray[np.bool_]

    def count(self, activity: Activity) -> float:
        return float(np.count_nonzero(self.activity == activity)) * RECORD_SECONDS


def summarize_posture(
    records: Sequence[Mapping[str, Any]],
    events: Iterable[Mapping[str, Any]] = (),
    *,
    since: float | None = None,
    until: float | None = None,
    tz: tzinfo | None = None,
    break_seconds: float = DEFAULT_BREAK_SECONDS,
) -> PostureSummary:
    """Summarise the posture records and reminder events of one device over a period.

    Args:
        records: Rows with at least ``ts``, ``person_present``, ``state`` and ``hunched``.
        events: Event rows (``ts``, ``kind``, ``data``); only posture reminders are used.
        since: Start of the period; the first record's second by default.
        until: End of the period (exclusive); just after the last record by default.
        tz: Zone of the hour and day buckets; the system's local zone by default.
        break_seconds: A pause in sitting (a gap or another state) shorter than this does not
            end a sitting streak.

    Returns:
        The summary; records outside the period are ignored, a second recorded twice counts once.

    """
    zone = tz or local_zone()
    seconds = _recorded_seconds(records)
    start, end = _period(seconds.ts, since, until)
    seconds = _within(seconds, start, end)
    present = seconds.activity != Activity.AWAY
    sitting = seconds.activity == Activity.SITTING
    return PostureSummary(
        since=start,
        until=end,
        tz=zone,
        observed_seconds=len(seconds.ts) * RECORD_SECONDS,
        present_seconds=float(np.count_nonzero(present)) * RECORD_SECONDS,
        sitting_seconds=seconds.count(Activity.SITTING),
        standing_seconds=seconds.count(Activity.STANDING),
        unknown_seconds=seconds.count(Activity.UNKNOWN),
        away_seconds=seconds.count(Activity.AWAY),
        hunched_seconds=float(np.count_nonzero(seconds.hunched & present)) * RECORD_SECONDS,
        hunched_sitting_seconds=float(np.count_nonzero(seconds.hunched & sitting)) * RECORD_SECONDS,
        longest_streak=longest_sitting_streak(seconds.ts[sitting], break_seconds),
        break_seconds=break_seconds,
        reminders=reminders_between(events, start, end),
        hourly=_buckets(seconds, hour_edges(start, end, zone), start, end),
        daily=_buckets(seconds, day_edges(start, end, zone), start, end),
        timeline=_runs(seconds),
    )


def _recorded_seconds(records: Sequence[Mapping[str, Any]]) -> _Seconds:
    count = len(records)
    ts = np.floor(np.fromiter((r["ts"] for r in records), np.float64, count))
    state = np.fromiter(
        (_STATE_CODES.get(r["state"], Activity.UNKNOWN) for r in records), np.int64, count
    )
    present = np.fromiter((bool(r["person_present"]) for r in records), np.bool_, count)
    hunched = np.fromiter((bool(r["hunched"]) for r in records), np.bool_, count)
    activity = np.where(present, state, Activity.AWAY)
    unique_ts, first = np.unique(ts, return_index=True)
    return _Seconds(ts=unique_ts, activity=activity[first], hunched=hunched[first])


def _period(ts: FloatArray, since: float | None, until: float | None) -> tuple[float, float]:
    start = since if since is not None else (float(ts[0]) if len(ts) else 0.0)
    end = until if until is not None else (float(ts[-1]) + RECORD_SECONDS if len(ts) else start)
    check_period(start, end, allow_empty=True)
    return float(start), float(end)


def _within(seconds: _Seconds, start: float, end: float) -> _Seconds:
    keep = (seconds.ts >= start) & (seconds.ts < end)
    return _Seconds(
        ts=seconds.ts[keep], activity=seconds.activity[keep], hunched=seconds.hunched[keep]
    )


def longest_sitting_streak(sitting_ts: FloatArray, break_seconds: float) -> SittingStreak | None:
    """Return the longest streak in sorted sitting seconds, or None when there are none.

    A pause between two sitting seconds (a gap or another state) shorter than ``break_seconds``
    keeps the streak going (with 0, every pause ends it); the earliest streak wins a tie.

    Raises:
        ConfigError: ``break_seconds`` is negative.

    """
    if break_seconds < 0:
        raise ConfigError(f"the sitting break length must be 0 s or more, got {break_seconds} s")
    if len(sitting_ts) == 0:
        return None
    pauses = sitting_ts[1:] - (sitting_ts[:-1] + RECORD_SECONDS)
    breaks = np.flatnonzero((pauses > 0) & (pauses >= break_seconds))
    firsts = np.concatenate(([0], breaks + 1))
    lasts = np.concatenate((breaks, [len(sitting_ts) - 1]))
    durations = sitting_ts[lasts] + RECORD_SECONDS - sitting_ts[firsts]
    best = int(np.argmax(durations))
    return SittingStreak(
        start=float(sitting_ts[firsts[best]]),
        end=float(sitting_ts[lasts[best]] + RECORD_SECONDS),
        sitting_seconds=float(lasts[best] - firsts[best] + 1) * RECORD_SECONDS,
    )


def reminders_between(
    events: Iterable[Mapping[str, Any]], since: float, until: float
) -> tuple[Reminder, ...]:
    """Return the posture reminders among ``events`` within the period, in time order."""
    found = [
        _reminder(event)
        for event in events
        if event.get("kind") == "reminder"
        and event.get("app", "posture") == "posture"
        and since <= event["ts"] < until
    ]
    return tuple(sorted(found, key=lambda reminder: reminder.ts))


def _reminder(event: Mapping[str, Any]) -> Reminder:
    data = event.get("data") or {}
    return Reminder(
        ts=float(event["ts"]),
        reason=str(data.get("reason", "unknown")),
        title=str(data.get("title", "")),
        message=str(data.get("message", "")),
        sitting_seconds=_optional_float(data.get("sitting_seconds")),
        hunched_seconds=_optional_float(data.get("hunched_seconds")),
    )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def hour_edges(since: float, until: float, tz: tzinfo) -> FloatArray:
    """Return the local hour boundaries that cover ``[since, until)`` (at least two)."""
    first = datetime.fromtimestamp(since, tz).replace(minute=0, second=0, microsecond=0)
    start = first.timestamp()
    hours = max(1, int(np.ceil((until - start) / 3600.0)))
    return start + 3600.0 * np.arange(hours + 1, dtype=np.float64)


def day_edges(since: float, until: float, tz: tzinfo) -> FloatArray:
    """Return the local midnights that cover ``[since, until)`` (at least two)."""
    day = datetime.fromtimestamp(since, tz).date()
    last = datetime.fromtimestamp(max(since, until - RECORD_SECONDS), tz).date()
    edges = []
    while day <= last + timedelta(days=1):
        edges.append(datetime(day.year, day.month, day.day, tzinfo=tz).timestamp())
        day += timedelta(days=1)
    return np.asarray(edges, dtype=np.float64)


def _buckets(seconds: _Seconds, edges: FloatArray, since: float, until: float) -> TimeBuckets:
    count = len(edges) - 1
    index = np.searchsorted(edges, seconds.ts, side="right") - 1
    kinds = len(Activity)
    counts = np.bincount(index * kinds + seconds.activity, minlength=count * kinds)
    per_activity = counts.reshape(count, kinds).astype(np.float64) * RECORD_SECONDS
    sitting = seconds.activity == Activity.SITTING
    present = seconds.activity != Activity.AWAY
    starts = np.maximum(edges[:-1], since)
    ends = np.maximum(np.minimum(edges[1:], until), starts)
    return TimeBuckets(
        starts=starts,
        ends=ends,
        sitting=per_activity[:, Activity.SITTING],
        standing=per_activity[:, Activity.STANDING],
        unknown=per_activity[:, Activity.UNKNOWN],
        away=per_activity[:, Activity.AWAY],
        no_data=(ends - starts) - per_activity.sum(axis=1),
        hunched=_count_per_bucket(index[seconds.hunched & present], count),
        hunched_sitting=_count_per_bucket(index[seconds.hunched & sitting], count),
    )


def _count_per_bucket(index: IntArray, count: int) -> FloatArray:
    return np.bincount(index, minlength=count).astype(np.float64) * RECORD_SECONDS


def _runs(seconds: _Seconds) -> StateRuns:
    if len(seconds.ts) == 0:
        empty = np.empty(0, dtype=np.float64)
        return StateRuns(starts=empty, ends=empty.copy(), activities=np.empty(0, dtype=np.int64))
    changed = np.diff(seconds.activity) != 0
    gap = np.diff(seconds.ts) != RECORD_SECONDS
    firsts = np.concatenate(([0], np.flatnonzero(changed | gap) + 1))
    lasts = np.concatenate((firsts[1:] - 1, [len(seconds.ts) - 1]))
    return StateRuns(
        starts=seconds.ts[firsts],
        ends=seconds.ts[lasts] + RECORD_SECONDS,
        activities=seconds.activity[firsts],
    )
