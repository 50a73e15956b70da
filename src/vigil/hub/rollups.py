"""Posture roll-ups: per-second records summed per quarter hour, sitting streaks, reminders.

The hub reads the records database after its last rolled id ("everything after the last rolled
id"), whether the records came through ``POST /api/ingest`` or were written straight into the
database by a pipeline or the demo on the same machine. Each step reads a chunk of new records and
events and, in one transaction:

- adds their seconds to ``hub_slots`` (one row per device and quarter hour: recorded seconds,
  sitting, standing, unknown, away, hunched, hunched while sitting). Quarter hours add up to
  local hours and days in every time zone, including those 30 or 45 minutes off UTC;
- merges their sitting seconds into ``hub_streaks``: a pause shorter than the break length
  (60 s, as the posture tracker and the report use) does not end a streak;
- copies posture reminders into ``hub_reminders`` with their reason;
- notes the devices' last record time and frame rate;
- moves the cursor, only if no other hub process moved it meanwhile.

The counting rules are those of :func:`vigil.report.summary.summarize_posture`: a record stands
for the whole second it starts in, and a second recorded twice counts once (the first record
counts). Ids that a database hands out but whose rows appear later (concurrent writers on
PostgreSQL) are remembered for a while and rolled when they appear.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vigil.hub import db
from vigil.hub.accounts import ensure_device
from vigil.hub.db import HubDatabase
from vigil.report.summary import Activity
from vigil.storage.records import events as events_table
from vigil.storage.records import posture_records

log = logging.getLogger(__name__)

SLOT_SECONDS = 900.0
"""Length of one roll-up slot: a quarter hour."""

STATE_NAME = "posture"
GAP_SECONDS = 120.0
"""How long an id skipped by the cursor is looked for again."""
MAX_GAPS = 10_000
"""Most skipped ids remembered; a larger hole is rows deleted, not rows on their way."""

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

_ACTIVITY = sa.case(
    (sa.not_(posture_records.c.person_present), int(Activity.AWAY)),
    (posture_records.c.state == "sitting", int(Activity.SITTING)),
    (posture_records.c.state == "standing", int(Activity.STANDING)),
    else_=int(Activity.UNKNOWN),
)
RECORD_COLUMNS = (
    posture_records.c.id,
    posture_records.c.device_id,
    posture_records.c.ts,
    _ACTIVITY * 2 + sa.cast(posture_records.c.hunched, sa.Integer),
)
"""What the roll-ups read of each record: id, device, time, and activity * 2 + hunched."""

SLOT_COUNTS = ("sitting", "standing", "unknown", "away", "hunched", "hunched_sitting")
"""The counted columns of a slot besides ``records``."""


class _Moved(Exception):
    """Another process rolled the same records first."""


@dataclass(frozen=True, slots=True, eq=False)
class Seconds:
    """Recorded seconds of one device as parallel arrays, sorted by second, each second once."""

    ids: IntArray
    second: FloatArray
    activity: IntArray
    hunched: BoolArray

    def __len__(self) -> int:
        return len(self.second)

    def keep(self, mask: BoolArray | IntArray) -> Seconds:
        """Return the seconds where ``mask`` is true (or at the indices it lists)."""
        return Seconds(self.ids[mask], self.second[mask], self.activity[mask], self.hunched[mask])

    @property
    def sitting_seconds(self) -> FloatArray:
        """The seconds spent sitting."""
        sitting: FloatArray = self.second[self.activity == Activity.SITTING]
        return sitting


@dataclass
class _Cursor:
    """How far the roll-ups have read, and the ids skipped that may still appear."""

    last_record_id: int = 0
    last_event_id: int = 0
    record_gaps: dict[int, float] = field(default_factory=dict)
    event_gaps: dict[int, float] = field(default_factory=dict)

    def gaps_json(self) -> str:
        return json.dumps(
            {
                "records": sorted(self.record_gaps.items()),
                "events": sorted(self.event_gaps.items()),
            }
        )

    def forget_old_gaps(self, now: float) -> None:
        for gaps in (self.record_gaps, self.event_gaps):
            for gap in [g for g, noted in gaps.items() if now - noted > GAP_SECONDS]:
                del gaps[gap]


def activity_codes(person_present: Sequence[Any], state: Sequence[Any]) -> IntArray:
    """Activity of each record: sitting, standing, unknown, or away without a person."""
    present = np.fromiter((bool(p) for p in person_present), np.bool_, len(person_present))
    codes = np.fromiter(
        (
            Activity.SITTING if s == "sitting" else Activity.STANDING if s == "standing" else 2
            for s in state
        ),
        np.int64,
        len(state),
    )
    return np.where(present, codes, Activity.AWAY).astype(np.int64)


def unique_seconds(
    ids: IntArray,
    ts: FloatArray,
    activity: IntArray,
    hunched: BoolArray,
) -> Seconds:
    """Collapse records to one per second: the first by (timestamp, id), as the report does."""
    second = np.floor(ts)
    order = np.lexsort((ids, ts, second))
    second = second[order]
    first = np.ones(len(second), np.bool_)
    first[1:] = second[1:] != second[:-1]
    chosen = order[first]
    return Seconds(ids[chosen], second[first], activity[chosen], hunched[chosen])


def slot_rows(device_id: str, seconds: Seconds) -> list[dict[str, Any]]:
    """Sum ``seconds`` per quarter hour: one ``hub_slots`` row per slot they touch."""
    if not len(seconds):
        return []
    slot = np.floor(seconds.second / SLOT_SECONDS) * SLOT_SECONDS
    starts, index = np.unique(slot, return_inverse=True)
    count = len(starts)
    present = seconds.activity != Activity.AWAY
    sitting = seconds.activity == Activity.SITTING

    def per_slot(mask: BoolArray) -> IntArray:
        return np.bincount(index[mask], minlength=count).astype(np.int64)

    columns = {
        "records": np.bincount(index, minlength=count).astype(np.int64),
        "sitting": per_slot(sitting),
        "standing": per_slot(seconds.activity == Activity.STANDING),
        "unknown": per_slot(seconds.activity == Activity.UNKNOWN),
        "away": per_slot(~present),
        "hunched": per_slot(seconds.hunched & present),
        "hunched_sitting": per_slot(seconds.hunched & sitting),
    }
    return [
        {"device_id": device_id, "start": float(starts[i])}
        | {name: int(values[i]) for name, values in columns.items()}
        for i in range(count)
    ]


@dataclass(frozen=True, slots=True, eq=False)
class Streaks:
    """Sitting streaks as parallel arrays, in time order."""

    starts: FloatArray
    ends: FloatArray
    sitting: FloatArray

    def __len__(self) -> int:
        return len(self.starts)


def merge_streaks(existing: Streaks, sitting_seconds: FloatArray, break_seconds: float) -> Streaks:
    """Merge new sitting seconds into streaks; a pause shorter than ``break_seconds`` joins.

    ``existing`` are maximal streaks (apart by at least the break); the new seconds are not in
    them. The result is the streaks of both together, exactly as
    :func:`vigil.report.summary.longest_sitting_streak` would split all their seconds.
    """
    starts = np.concatenate((existing.starts, sitting_seconds))
    ends = np.concatenate((existing.ends, sitting_seconds + 1.0))
    counts = np.concatenate((existing.sitting, np.ones(len(sitting_seconds))))
    if not len(starts):
        return existing
    order = np.argsort(starts, kind="stable")
    starts, ends, counts = starts[order], ends[order], counts[order]
    reach = np.maximum.accumulate(ends)
    pauses = starts[1:] - reach[:-1]
    breaks = (pauses > 0) & (pauses >= break_seconds)
    group = np.concatenate(([0], np.cumsum(breaks)))
    firsts = np.flatnonzero(np.concatenate(([True], breaks)))
    lasts = np.concatenate((firsts[1:] - 1, [len(starts) - 1]))
    return Streaks(
        starts=starts[firsts],
        ends=reach[lasts],
        sitting=np.bincount(group, weights=counts).astype(np.float64),
    )


class Rollups:
    """Brings the roll-up tables up to date with the records database.

    Args:
        database: The hub's database.
        break_seconds: A pause in sitting shorter than this does not end a streak.
        chunk_records: Records read per step.
    """

    def __init__(
        self, database: HubDatabase, break_seconds: float = 60.0, chunk_records: int = 200_000
    ) -> None:
        self.database = database
        self.break_seconds = break_seconds
        self.chunk_records = chunk_records
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def stop(self) -> None:
        """Make a catch-up in progress end after its current step."""
        self._stopping.set()

    def catch_up(self) -> int:
        """Roll every record and event written since the last call; return the records rolled.

        Cheap when nothing is new: two small queries. Only one catch-up runs at a time; a
        caller that arrives during one waits for it, then finds nothing new.
        """
        with self._lock:
            rolled = 0
            while not self._stopping.is_set():
                try:
                    count, more = self.database.write("roll up records", self._step)
                except _Moved:
                    continue
                rolled += count
                if not more:
                    break
            return rolled

    def _step(self, conn: Connection) -> tuple[int, bool]:
        cursor = _read_cursor(conn)
        if not _anything_new(conn, cursor):
            return 0, False
        now = time.time()
        cursor.forget_old_gaps(now)
        before = (cursor.last_record_id, cursor.last_event_id)
        records, more_records = self._new_records(conn, cursor, now)
        reminder_rows, more_events = _new_reminders(conn, cursor, self.chunk_records, now)
        for device_id, seconds in records.items():
            self._roll_device(conn, device_id, seconds, before[0])
        db.insert_ignoring_duplicates(conn, db.reminders, reminder_rows)
        _save_cursor(conn, cursor, before, now)
        return sum(len(s) for s in records.values()), more_records or more_events

    def _new_records(
        self, conn: Connection, cursor: _Cursor, now: float
    ) -> tuple[dict[str, Seconds], bool]:
        query = (
            sa.select(*RECORD_COLUMNS)
            .where(posture_records.c.id > cursor.last_record_id)
            .order_by(posture_records.c.id)
            .limit(self.chunk_records)
        )
        rows = fetch_plain(conn, query)
        more = len(rows) == self.chunk_records
        if cursor.record_gaps:
            gaps = posture_records.c.id.in_(sorted(cursor.record_gaps))
            found = fetch_plain(conn, sa.select(*RECORD_COLUMNS).where(gaps))
            for row in found:
                cursor.record_gaps.pop(row[0], None)
            rows += found
        if not rows:
            return {}, more
        ids, devices, ts, flags = zip(*rows, strict=True)
        columns = (np.array(ids, np.int64), np.array(ts, np.float64), np.array(flags, np.int64))
        fresh = columns[0][columns[0] > cursor.last_record_id]
        cursor.last_record_id = _advance(cursor.last_record_id, fresh, cursor.record_gaps, now)
        return _by_device(devices, *columns), more

    def _roll_device(
        self, conn: Connection, device_id: str, seconds: Seconds, rolled_up_to: int
    ) -> None:
        seconds = _not_yet_counted(conn, device_id, seconds, rolled_up_to)
        if not len(seconds):
            return
        db.upsert_adding(conn, db.slots, slot_rows(device_id, seconds), ("device_id", "start"))
        sitting = seconds.sitting_seconds
        if len(sitting):
            self._merge_streaks(conn, device_id, sitting)
        _note_device(conn, device_id, seconds)

    def _merge_streaks(self, conn: Connection, device_id: str, sitting: FloatArray) -> None:
        low, high = float(sitting[0]) - self.break_seconds, float(sitting[-1]) + 1.0
        near = (
            (db.streaks.c.device_id == device_id)
            & (db.streaks.c.end_ts >= low)
            & (db.streaks.c.start_ts <= high + self.break_seconds)
        )
        rows = conn.execute(
            sa.select(db.streaks.c.start_ts, db.streaks.c.end_ts, db.streaks.c.sitting_seconds)
            .where(near)
            .order_by(db.streaks.c.start_ts)
        ).all()
        existing = Streaks(
            np.array([r[0] for r in rows], np.float64),
            np.array([r[1] for r in rows], np.float64),
            np.array([r[2] for r in rows], np.float64),
        )
        merged = merge_streaks(existing, sitting, self.break_seconds)
        if rows:
            conn.execute(sa.delete(db.streaks).where(near))
        conn.execute(
            sa.insert(db.streaks),
            [
                {
                    "device_id": device_id,
                    "start_ts": float(merged.starts[i]),
                    "end_ts": float(merged.ends[i]),
                    "sitting_seconds": float(merged.sitting[i]),
                }
                for i in range(len(merged))
            ],
        )


def _read_cursor(conn: Connection) -> _Cursor:
    row = conn.execute(
        sa.select(db.rollup_state).where(db.rollup_state.c.name == STATE_NAME)
    ).first()
    if row is None:
        conn.execute(
            sa.insert(db.rollup_state).values(
                name=STATE_NAME, last_record_id=0, last_event_id=0, gaps="{}", updated=0.0
            )
        )
        return _Cursor()
    mapping = row._mapping
    gaps = json.loads(mapping["gaps"] or "{}")
    return _Cursor(
        last_record_id=int(mapping["last_record_id"]),
        last_event_id=int(mapping["last_event_id"]),
        record_gaps={int(i): float(t) for i, t in gaps.get("records", [])},
        event_gaps={int(i): float(t) for i, t in gaps.get("events", [])},
    )


def _anything_new(conn: Connection, cursor: _Cursor) -> bool:
    if cursor.record_gaps or cursor.event_gaps:
        return True
    newest_record = conn.execute(sa.select(sa.func.max(posture_records.c.id))).scalar()
    newest_event = conn.execute(sa.select(sa.func.max(events_table.c.id))).scalar()
    return (newest_record or 0) > cursor.last_record_id or (
        newest_event or 0
    ) > cursor.last_event_id


def _save_cursor(conn: Connection, cursor: _Cursor, before: tuple[int, int], now: float) -> None:
    moved = conn.execute(
        sa.update(db.rollup_state)
        .where(
            (db.rollup_state.c.name == STATE_NAME)
            & (db.rollup_state.c.last_record_id == before[0])
            & (db.rollup_state.c.last_event_id == before[1])
        )
        .values(
            last_record_id=cursor.last_record_id,
            last_event_id=cursor.last_event_id,
            gaps=cursor.gaps_json(),
            updated=now,
        )
    )
    if moved.rowcount != 1:
        raise _Moved()


def _advance(last: int, fresh: IntArray, gaps: dict[int, float], now: float) -> int:
    """Return the new cursor after the sorted ``fresh`` ids; note the ids skipped on the way."""
    if not len(fresh):
        return last
    edges = np.concatenate(([last], fresh))
    for hole in np.flatnonzero(np.diff(edges) > 1):
        low, high = int(edges[hole]) + 1, int(edges[hole + 1])
        if len(gaps) + high - low <= MAX_GAPS:
            gaps.update(dict.fromkeys(range(low, high), now))
    return int(fresh[-1])


def _by_device(
    devices: Sequence[str], ids: IntArray, ts: FloatArray, flags: IntArray
) -> dict[str, Seconds]:
    """Split records (id, time, activity * 2 + hunched) into unique seconds per device."""
    columns = (ids, ts, flags // 2, (flags % 2).astype(np.bool_))
    names = set(devices)
    if len(names) == 1:
        return {names.pop(): unique_seconds(*columns)}
    device_of = np.array(devices, dtype=object)
    result = {}
    for name in sorted(names):
        mine = device_of == name
        result[name] = unique_seconds(*(column[mine] for column in columns))
    return result


def fetch_plain(conn: Connection, query: Any) -> list[tuple[Any, ...]]:
    """Run ``query`` on the connection's own driver cursor and return plain tuples.

    Rolling up millions of records, or handing thousands of roll-up rows to numpy, spends
    most of its time turning rows into objects; the driver's tuples are enough here.
    """
    compiled = query.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    params = compiled.construct_params()
    if compiled.positional:
        arguments: Any = tuple(params[name] for name in compiled.positiontup or ())
    else:
        arguments = params
    cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(str(compiled), arguments)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def _not_yet_counted(
    conn: Connection, device_id: str, seconds: Seconds, rolled_up_to: int
) -> Seconds:
    """Drop the seconds that an already rolled record of the device covers."""
    low, high = float(seconds.second[0]), float(seconds.second[-1]) + 1.0
    last_slot = conn.execute(
        sa.select(sa.func.max(db.slots.c.start)).where(db.slots.c.device_id == device_id)
    ).scalar()
    if last_slot is None or low >= last_slot + SLOT_SECONDS:
        return seconds  # the usual case: newer than everything rolled
    query = sa.select(posture_records.c.id, posture_records.c.ts).where(
        (posture_records.c.device_id == device_id)
        & (posture_records.c.ts >= low)
        & (posture_records.c.ts < high)
        & (posture_records.c.id <= rolled_up_to)
    )
    new_ids = set(seconds.ids.tolist())
    counted = {
        float(np.floor(ts)) for record_id, ts in conn.execute(query) if record_id not in new_ids
    }
    if not counted:
        return seconds
    return seconds.keep(~np.isin(seconds.second, np.fromiter(counted, np.float64)))


def _note_device(conn: Connection, device_id: str, seconds: Seconds) -> None:
    """Keep the device's last record time and frame rate, and add it when it is new."""
    newest = float(seconds.second[-1])
    fps = conn.execute(
        sa.select(posture_records.c.fps).where(posture_records.c.id == int(seconds.ids[-1]))
    ).scalar()
    ensure_device(conn, device_id, time.time(), app="posture")
    conn.execute(
        sa.update(db.devices)
        .where(
            (db.devices.c.id == device_id)
            & ((db.devices.c.last_seen.is_(None)) | (db.devices.c.last_seen < newest))
        )
        .values(last_seen=newest, fps=fps, app="posture")
    )


def _new_reminders(
    conn: Connection, cursor: _Cursor, chunk: int, now: float
) -> tuple[list[dict[str, Any]], bool]:
    reminder_data = sa.case(
        (events_table.c.kind == "reminder", events_table.c.data), else_=sa.null()
    )
    columns = (
        events_table.c.id,
        events_table.c.device_id,
        events_table.c.app,
        events_table.c.kind,
        events_table.c.ts,
        reminder_data.label("data"),
    )
    rows = list(
        conn.execute(
            sa.select(*columns)
            .where(events_table.c.id > cursor.last_event_id)
            .order_by(events_table.c.id)
            .limit(chunk)
        ).all()
    )
    more = len(rows) == chunk
    if cursor.event_gaps:
        found = sa.select(*columns).where(events_table.c.id.in_(list(cursor.event_gaps)))
        rows += conn.execute(found).all()
    fresh = np.array([row[0] for row in rows if row[0] > cursor.last_event_id], np.int64)
    cursor.last_event_id = _advance(cursor.last_event_id, fresh, cursor.event_gaps, now)
    for row in rows:
        cursor.event_gaps.pop(row[0], None)
    reminders = [
        {"event_id": row[0], "device_id": row[1], "ts": float(row[4]), "reason": _reason(row[5])}
        for row in rows
        if row[3] == "reminder" and row[2] == "posture"
    ]
    return reminders, more


def _reason(data: str | None) -> str:
    try:
        reason = json.loads(data or "{}").get("reason", "unknown")
    except (ValueError, AttributeError):
        return "unknown"
    return str(reason)[:64] if reason is not None else "unknown"
