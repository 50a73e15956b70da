"""What the posture pages ask: aggregates per bucket, the summary of a period, raw records.

Aggregates come from the quarter-hour roll-ups; where a period starts or ends inside a quarter
hour, that part is counted from the raw records, so every answer equals what
:func:`vigil.report.summary.summarize_posture` computes from the raw records of the same period,
while a year reads about 35,000 rows instead of 31 million.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, tzinfo
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vigil.hub import db
from vigil.hub.db import HubDatabase
from vigil.hub.rollups import (
    SLOT_COUNTS,
    SLOT_SECONDS,
    Rollups,
    Seconds,
    fetch_plain,
    unique_seconds,
)
from vigil.hub.rollups import activity_codes as _activity_codes
from vigil.report.summary import (
    Activity,
    SittingStreak,
    day_edges,
    hour_edges,
    longest_sitting_streak,
)
from vigil.storage.records import posture_records

FloatArray = npt.NDArray[np.float64]
Bucket = Literal["minute", "hour", "day", "week"]

COUNT_NAMES = ("records", *SLOT_COUNTS)
"""The columns of a count matrix: recorded seconds, then seconds per slot count."""

MAX_WINDOWS_PER_PAGE = 64
"""A page scans at most this many windows of ``limit`` buckets for buckets with data."""


@dataclass(frozen=True, slots=True, eq=False)
class Pieces:
    """Counted seconds of a period: each piece lies inside one quarter hour.

    Attributes:
        starts: Where each piece starts (a quarter hour, or a single second at the edges).
        counts: One row per piece, the columns of :data:`COUNT_NAMES`, in seconds.
    """

    starts: FloatArray
    counts: FloatArray

    @classmethod
    def empty(cls) -> Pieces:
        """Return no pieces."""
        return cls(np.empty(0), np.empty((0, len(COUNT_NAMES))))

    @classmethod
    def join(cls, parts: list[Pieces]) -> Pieces:
        """Return the pieces of ``parts`` together, in time order."""
        if not parts:
            return cls.empty()
        starts = np.concatenate([p.starts for p in parts])
        order = np.argsort(starts, kind="stable")
        return cls(starts[order], np.concatenate([p.counts for p in parts])[order])


@dataclass(frozen=True, slots=True, eq=False)
class Buckets:
    """Aggregates per bucket: clipped bounds, counts (:data:`COUNT_NAMES`) and reminders."""

    starts: FloatArray
    ends: FloatArray
    counts: FloatArray
    reminders: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return len(self.starts)

    def rows(self, only_with_data: bool = False) -> list[dict[str, Any]]:
        """One dict per bucket: ``start``, ``end``, the counts in seconds, ``reminders``."""
        rows = []
        for i in range(len(self)):
            if only_with_data and not (self.counts[i, 0] or self.reminders[i]):
                continue
            rows.append(bucket_row(self.starts[i], self.ends[i], self.counts[i], self.reminders[i]))
        return rows


def bucket_row(start: float, end: float, counts: FloatArray, reminders: int) -> dict[str, Any]:
    """Return the aggregate fields of one bucket as the API shows them."""
    return {
        "start": float(start),
        "end": float(end),
        "records": int(counts[0]),
        "sitting_seconds": float(counts[1]),
        "standing_seconds": float(counts[2]),
        "unknown_seconds": float(counts[3]),
        "away_seconds": float(counts[4]),
        "hunched_seconds": float(counts[5]),
        "hunched_sitting_seconds": float(counts[6]),
        "reminders": int(reminders),
    }


@dataclass(frozen=True, slots=True)
class Page:
    """Some items of a longer answer and where the next page starts (None at the end)."""

    items: list[dict[str, Any]]
    next_cursor: float | tuple[float, int] | None


@dataclass(frozen=True, slots=True, eq=False)
class Summary:
    """A period of one device summed up: totals, the longest streak, reminders, series."""

    totals: FloatArray
    reminders: dict[str, int]
    longest_streak: SittingStreak | None
    hourly: FloatArray
    hourly_reminders: npt.NDArray[np.int64]
    daily: Buckets
    weekly: Buckets


class PostureQueries:
    """Reads posture aggregates after bringing the roll-ups up to date.

    Args:
        database: The hub's database.
        rollups: The roll-ups; each query catches them up first.
    """

    def __init__(self, database: HubDatabase, rollups: Rollups) -> None:
        self.database = database
        self.rollups = rollups

    @property
    def break_seconds(self) -> float:
        """The shortest pause that ends a sitting streak."""
        return self.rollups.break_seconds

    def buckets(
        self, device_id: str, since: float, until: float, bucket: Bucket, tz: tzinfo
    ) -> Buckets:
        """Return aggregates of every ``bucket`` (local ``tz``) that covers ``[since, until)``."""
        self.rollups.catch_up()
        return self.database.read(
            "read posture aggregates",
            lambda conn: self._buckets(
                conn,
                device_id,
                since,
                until,
                bucket_edges(bucket, since, until, tz),
                raw=bucket == "minute",
            ),
        )

    def bucket_page(
        self,
        device_id: str,
        since: float,
        until: float,
        *,
        bucket: Bucket,
        tz: tzinfo,
        limit: int,
    ) -> Page:
        """Up to ``limit`` buckets with data from ``since`` on; the cursor is where to go on."""
        self.rollups.catch_up()
        return self.database.read(
            "read posture aggregates",
            lambda conn: self._bucket_page(
                conn, device_id, since, until, bucket=bucket, tz=tz, limit=limit
            ),
        )

    def summary(self, device_id: str, since: float, until: float, tz: tzinfo) -> Summary:
        """Totals, longest streak, reminders by reason and the series of a period."""
        self.rollups.catch_up()
        return self.database.read(
            "summarise posture records",
            lambda conn: self._summary(conn, device_id, since, until, tz),
        )

    def record_page(
        self,
        device_id: str,
        since: float,
        until: float,
        limit: int,
        after: tuple[float, int] | None = None,
    ) -> Page:
        """Raw records in time order, ``limit`` at a time; the cursor is the last (ts, id)."""
        query = raw_records_query(device_id, since, until, after).limit(limit + 1)
        rows = self.database.read(
            "read posture records", lambda conn: [dict(r._mapping) for r in conn.execute(query)]
        )
        more = len(rows) > limit
        rows = rows[:limit]
        cursor = (float(rows[-1]["ts"]), int(rows[-1]["id"])) if more else None
        return Page(rows, cursor)

    def iter_records(
        self, device_id: str, since: float, until: float, chunk: int = 10_000
    ) -> Iterator[list[dict[str, Any]]]:
        """Every raw record of the period, in chunks, in time order (for downloads)."""
        after: tuple[float, int] | None = None
        while True:
            page = self.record_page(device_id, since, until, chunk, after)
            if page.items:
                yield page.items
            if page.next_cursor is None:
                return
            assert isinstance(page.next_cursor, tuple)
            after = page.next_cursor

    def _bucket_page(
        self,
        conn: Connection,
        device_id: str,
        since: float,
        until: float,
        *,
        bucket: Bucket,
        tz: tzinfo,
        limit: int,
    ) -> Page:
        items: list[dict[str, Any]] = []
        start = since
        for _ in range(MAX_WINDOWS_PER_PAGE):
            edges = bucket_edges(bucket, start, until, tz)[: limit - len(items) + 1]
            window_end = min(float(edges[-1]), until)
            found = self._buckets(conn, device_id, start, window_end, edges, raw=bucket == "minute")
            items += found.rows(only_with_data=True)
            start = window_end
            if start >= until or len(items) >= limit:
                break
        return Page(items, start if start < until else None)

    def _buckets(
        self,
        conn: Connection,
        device_id: str,
        since: float,
        until: float,
        edges: FloatArray,
        *,
        raw: bool = False,
    ) -> Buckets:
        if raw:
            pieces = _raw_pieces(conn, device_id, since, until)
        else:
            pieces = self._pieces(conn, device_id, since, until)
        reminder_times = _reminder_times(conn, device_id, since, until)
        return sum_buckets(pieces, reminder_times, edges, since, until)

    def _pieces(self, conn: Connection, device_id: str, since: float, until: float) -> Pieces:
        if until <= since:
            return Pieces.empty()
        if bucket_is_minute_sized(since, until):
            return _raw_pieces(conn, device_id, since, until)
        first = math.ceil(since / SLOT_SECONDS) * SLOT_SECONDS
        last = math.floor(until / SLOT_SECONDS) * SLOT_SECONDS
        if first >= last:
            return _raw_pieces(conn, device_id, since, until)
        parts = [_slot_pieces(conn, device_id, first, last)]
        if since < first:
            parts.append(_raw_pieces(conn, device_id, since, first))
        if last < until:
            parts.append(_raw_pieces(conn, device_id, last, until))
        return Pieces.join(parts)

    def _summary(
        self, conn: Connection, device_id: str, since: float, until: float, tz: tzinfo
    ) -> Summary:
        pieces = self._pieces(conn, device_id, since, until)
        reminder_times = _reminder_times(conn, device_id, since, until)
        hours = sum_buckets(pieces, reminder_times, hour_edges(since, until, tz), since, until)
        hour_of_day = np.array([datetime.fromtimestamp(s, tz).hour for s in hours.starts], int)
        hourly = np.zeros((24, len(COUNT_NAMES)))
        np.add.at(hourly, hour_of_day, hours.counts)
        hourly_reminders = np.bincount(hour_of_day, weights=hours.reminders, minlength=24)
        return Summary(
            totals=pieces.counts.sum(axis=0),
            reminders=_reminder_reasons(conn, device_id, since, until),
            longest_streak=self._longest_streak(conn, device_id, since, until),
            hourly=hourly,
            hourly_reminders=hourly_reminders.astype(np.int64),
            daily=sum_buckets(pieces, reminder_times, day_edges(since, until, tz), since, until),
            weekly=sum_buckets(pieces, reminder_times, week_edges(since, until, tz), since, until),
        )

    def _longest_streak(
        self, conn: Connection, device_id: str, since: float, until: float
    ) -> SittingStreak | None:
        """Return the longest streak: those inside the period whole, those at its ends clipped."""
        table = db.streaks
        of_device = table.c.device_id == device_id
        inside = conn.execute(
            sa.select(table.c.start_ts, table.c.end_ts, table.c.sitting_seconds)
            .where(of_device & (table.c.start_ts >= since) & (table.c.end_ts <= until))
            .order_by((table.c.end_ts - table.c.start_ts).desc(), table.c.start_ts)
            .limit(1)
        ).first()
        candidates = [SittingStreak(*inside)] if inside is not None else []
        crossing = conn.execute(
            sa.select(table.c.start_ts, table.c.end_ts).where(
                of_device
                & (table.c.start_ts < until)
                & (table.c.end_ts > since)
                & ((table.c.start_ts < since) | (table.c.end_ts > until))
            )
        ).all()
        for start, end in crossing:
            seconds = _raw_seconds(conn, device_id, max(since, start), min(until, end))
            clipped = longest_sitting_streak(seconds.sitting_seconds, self.break_seconds)
            if clipped is not None:
                candidates.append(clipped)
        if not candidates:
            return None
        return min(candidates, key=lambda s: (-s.duration, s.start))


def bucket_is_minute_sized(since: float, until: float) -> bool:
    """Whether a period is short enough to count from raw records directly."""
    return until - since <= 2 * SLOT_SECONDS


def bucket_edges(bucket: Bucket, since: float, until: float, tz: tzinfo) -> FloatArray:
    """Return the edges of the ``bucket`` periods (local ``tz``) covering ``[since, until)``."""
    if bucket == "minute":
        first = math.floor(since / 60.0) * 60.0
        count = max(1, math.ceil((until - first) / 60.0))
        return first + 60.0 * np.arange(count + 1, dtype=np.float64)
    if bucket == "hour":
        return hour_edges(since, until, tz)
    if bucket == "day":
        return day_edges(since, until, tz)
    return week_edges(since, until, tz)


def week_edges(since: float, until: float, tz: tzinfo) -> FloatArray:
    """Return the local Monday midnights that cover ``[since, until)`` (at least two)."""
    day = datetime.fromtimestamp(since, tz).date()
    monday = day - timedelta(days=day.weekday())
    edges = []
    while True:
        moment = datetime(monday.year, monday.month, monday.day, tzinfo=tz).timestamp()
        edges.append(moment)
        if moment >= until and len(edges) >= 2:
            break
        monday += timedelta(days=7)
    return np.asarray(edges, dtype=np.float64)


def sum_buckets(
    pieces: Pieces, reminder_times: FloatArray, edges: FloatArray, since: float, until: float
) -> Buckets:
    """Add pieces and reminders into the buckets between ``edges``, clipped to the period."""
    count = len(edges) - 1
    index = np.searchsorted(edges, pieces.starts, side="right") - 1
    inside = (index >= 0) & (index < count)
    counts = np.zeros((count, len(COUNT_NAMES)))
    np.add.at(counts, index[inside], pieces.counts[inside])
    reminder_index = np.searchsorted(edges, reminder_times, side="right") - 1
    reminder_index = reminder_index[(reminder_index >= 0) & (reminder_index < count)]
    reminders = np.bincount(reminder_index, minlength=count).astype(np.int64)
    starts = np.maximum(edges[:-1], since)
    ends = np.maximum(np.minimum(edges[1:], until), starts)
    return Buckets(starts, ends, counts, reminders)


def raw_records_query(
    device_id: str, since: float, until: float, after: tuple[float, int] | None = None
) -> Any:
    """Return records of a device whose second lies in ``[since, until)``, in (ts, id) order."""
    table = posture_records
    query = (
        sa.select(table)
        .where(_in_seconds(table.c.ts, since, until) & (table.c.device_id == device_id))
        .order_by(table.c.ts, table.c.id)
    )
    if after is not None:
        ts, record_id = after
        query = query.where((table.c.ts > ts) | ((table.c.ts == ts) & (table.c.id > record_id)))
    return query


def _in_seconds(ts: Any, since: float, until: float) -> Any:
    """Return records whose second (the floor of their timestamp) lies in ``[since, until)``."""
    return (ts >= math.ceil(since)) & (ts < math.ceil(until))


def _raw_seconds(conn: Connection, device_id: str, since: float, until: float) -> Seconds:
    """Return recorded seconds of ``[since, until)`` from the raw records, one per second."""
    table = posture_records
    query = sa.select(
        table.c.id, table.c.ts, table.c.person_present, table.c.state, table.c.hunched
    ).where((table.c.device_id == device_id) & _in_seconds(table.c.ts, since, until))
    rows = conn.execute(query).all()
    count = len(rows)
    seconds = unique_seconds(
        ids=np.fromiter((r[0] for r in rows), np.int64, count),
        ts=np.fromiter((r[1] for r in rows), np.float64, count),
        activity=_activity_codes([r[2] for r in rows], [r[3] for r in rows]),
        hunched=np.fromiter((bool(r[4]) for r in rows), np.bool_, count),
    )
    return seconds


def _raw_pieces(conn: Connection, device_id: str, since: float, until: float) -> Pieces:
    """Each recorded second of ``[since, until)`` as a piece of its own."""
    seconds = _raw_seconds(conn, device_id, since, until)
    present = seconds.activity != Activity.AWAY
    sitting = seconds.activity == Activity.SITTING
    columns = (
        np.ones(len(seconds), np.bool_),
        sitting,
        seconds.activity == Activity.STANDING,
        seconds.activity == Activity.UNKNOWN,
        ~present,
        seconds.hunched & present,
        seconds.hunched & sitting,
    )
    return Pieces(seconds.second, np.stack(columns, axis=1).astype(np.float64))


def _slot_pieces(conn: Connection, device_id: str, first: float, last: float) -> Pieces:
    """Return the roll-up rows of the whole quarter hours in ``[first, last)``."""
    table = db.slots
    query = (
        sa.select(table.c.start, *(table.c[name] for name in COUNT_NAMES))
        .where((table.c.device_id == device_id) & (table.c.start >= first) & (table.c.start < last))
        .order_by(table.c.start)
    )
    rows = fetch_plain(conn, query)
    if not rows:
        return Pieces.empty()
    matrix = np.asarray(rows, dtype=np.float64)
    return Pieces(matrix[:, 0].copy(), matrix[:, 1:].copy())


def _reminder_times(conn: Connection, device_id: str, since: float, until: float) -> FloatArray:
    table = db.reminders
    rows = conn.execute(
        sa.select(table.c.ts).where(
            (table.c.device_id == device_id) & (table.c.ts >= since) & (table.c.ts < until)
        )
    ).all()
    return np.asarray([r[0] for r in rows], dtype=np.float64)


def _reminder_reasons(
    conn: Connection, device_id: str, since: float, until: float
) -> dict[str, int]:
    table = db.reminders
    rows = conn.execute(
        sa.select(table.c.reason, sa.func.count())
        .where((table.c.device_id == device_id) & (table.c.ts >= since) & (table.c.ts < until))
        .group_by(table.c.reason)
        .order_by(table.c.reason)
    ).all()
    return {str(reason): int(count) for reason, count in rows}


def reminders_since(database: HubDatabase, since: float) -> dict[str, int]:
    """Reminders per device from ``since`` on (e.g. local midnight: "alerts today")."""
    table = db.reminders
    query = (
        sa.select(table.c.device_id, sa.func.count())
        .where(table.c.ts >= since)
        .group_by(table.c.device_id)
    )
    rows = database.read("count reminders", lambda c: c.execute(query).all())
    return {str(device): int(count) for device, count in rows}
