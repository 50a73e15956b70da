"""Storing the batches that pipelines send to ``POST /api/ingest``, each message once.

A batch is checked whole before anything is written: every event belongs to the batch's device,
every posture record has its fields with the right types, every snapshot is a JPEG. Then, in
one transaction, messages whose id was ingested before are left out, and so are records of a
second the device already has and events already stored (a pipeline on the same machine writes
its own records into the shared database); the rest are stored, the message ids are kept for
``message_id_days``, and the device's last-seen time and frame rate are updated.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Connection

from vigil.errors import VigilError
from vigil.hub import db
from vigil.hub.accounts import ensure_device
from vigil.hub.api.schemas import IngestEvent, IngestRequest, PostureRecordData
from vigil.hub.db import HubDatabase
from vigil.hub.snapshots import Snapshots, is_jpeg
from vigil.storage.records import POSTURE_FIELDS, events, posture_records

ENVELOPE = frozenset({"id", "kind", "app", "device_id", "timestamp", "time"})
"""The keys of an ingested event that are not its data."""

SNAPSHOT_KEY = "snapshot"
PRUNE_INTERVAL_SECONDS = 3600.0
IDS_PER_QUERY = 500


class BadBatch(VigilError):
    """A batch the hub refuses as a whole (422), with the first problem."""


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    """How many events of a batch were stored now, and how many had been stored before."""

    accepted: int
    duplicates: int


@dataclass
class _Prepared:
    """A checked batch, ready to write."""

    records: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    snapshots: dict[str, int] = field(default_factory=dict)
    app: str | None = None

    @property
    def message_ids(self) -> list[str]:
        return [message_id for message_id, _ in (*self.records, *self.events)]


class Ingest:
    """Stores ingested batches.

    Args:
        database: The hub's database.
        snapshots: Where snapshot images go.
        message_id_days: How long message ids are kept to recognise retries.
    """

    def __init__(
        self, database: HubDatabase, snapshots: Snapshots, message_id_days: float = 8.0
    ) -> None:
        self.database = database
        self.snapshots = snapshots
        self.message_id_seconds = message_id_days * 86_400.0
        self._lock = threading.Lock()
        self._pruned = 0.0

    def store(self, batch: IngestRequest) -> IngestOutcome:
        """Check and store one batch.

        Raises:
            BadBatch: an event is for another device, a record has a wrong field, or a
                snapshot is not a base64 JPEG; nothing is stored then.
            StorageError: the database cannot be written.
        """
        prepared = self._prepare(batch)
        with self._lock:  # one batch at a time: a retry arriving twice is stored once
            outcome = self.database.write(
                "store ingested events", lambda conn: self._write(conn, batch.device_id, prepared)
            )
            self._prune()
        return outcome

    def _prepare(self, batch: IngestRequest) -> _Prepared:
        prepared = _Prepared()
        seen: set[str] = set()
        for index, event in enumerate(batch.events):
            if event.device_id != batch.device_id:
                raise BadBatch(
                    f"events.{index}.device_id: {event.device_id!r} is not the batch's device "
                    f"{batch.device_id!r}; send each device's events in its own batch"
                )
            if event.id in seen:
                continue
            seen.add(event.id)
            prepared.app = prepared.app or event.app
            data = event_data(event)
            if event.kind == "record" and event.app == "posture":
                prepared.records.append((event.id, _record_row(index, event, data)))
            else:
                data = self._keep_snapshot(index, data, prepared.snapshots)
                prepared.events.append((event.id, _event_row(event, data)))
        return prepared

    def _keep_snapshot(
        self, index: int, data: dict[str, Any], stored: dict[str, int]
    ) -> dict[str, Any]:
        encoded = data.get(SNAPSHOT_KEY)
        if encoded is None:
            return data
        image = _snapshot_bytes(index, encoded)
        digest = self.snapshots.put(image)
        stored[digest] = len(image)
        return {**data, SNAPSHOT_KEY: digest}

    def _write(self, conn: Connection, device_id: str, prepared: _Prepared) -> IngestOutcome:
        known = _known_message_ids(conn, device_id, prepared.message_ids)
        records = [(m, row) for m, row in prepared.records if m not in known]
        other = [(m, row) for m, row in prepared.events if m not in known]
        new_records = _new_seconds(conn, device_id, [row for _, row in records])
        new_events = _new_events(conn, device_id, [row for _, row in other])
        if new_records:
            db.insert_plain(conn, posture_records, new_records)
        if new_events:
            db.insert_plain(conn, events, new_events)
        now = time.time()
        fresh_ids = [m for m, _ in (*records, *other)]
        if fresh_ids:
            rows = [{"device_id": device_id, "message_id": m, "received": now} for m in fresh_ids]
            db.insert_plain(conn, db.messages, rows, skip_existing=True)
        self.snapshots.record(conn, device_id, prepared.snapshots)
        _note_device(conn, device_id, prepared, now)
        accepted = len(new_records) + len(new_events)
        return IngestOutcome(accepted, len(prepared.message_ids) - accepted)

    def _prune(self) -> None:
        now = time.time()
        if now - self._pruned < PRUNE_INTERVAL_SECONDS:
            return
        self._pruned = now
        old = sa.delete(db.messages).where(db.messages.c.received < now - self.message_id_seconds)
        self.database.write("forget old message ids", lambda conn: conn.execute(old))


def event_data(event: IngestEvent) -> dict[str, Any]:
    """Return the data of an ingested event: every field besides the envelope."""
    extra = event.model_extra or {}
    return {key: value for key, value in extra.items() if key not in ENVELOPE}


def _record_row(index: int, event: IngestEvent, data: dict[str, Any]) -> dict[str, Any]:
    try:
        record = PostureRecordData.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise BadBatch(f"events.{index}.{where}: {first['msg']}") from None
    row = {name: getattr(record, name, None) for name in POSTURE_FIELDS}
    return row | {"device_id": event.device_id, "ts": event.timestamp}


def _event_row(event: IngestEvent, data: dict[str, Any]) -> dict[str, Any]:
    return {
        "device_id": event.device_id,
        "app": event.app,
        "kind": event.kind,
        "ts": event.timestamp,
        "data": json.dumps(data, allow_nan=False),
    }


def _snapshot_bytes(index: int, encoded: Any) -> bytes:
    if not isinstance(encoded, str):
        raise BadBatch(f"events.{index}.snapshot: must be a base64 JPEG as text")
    try:
        image = base64.b64decode("".join(encoded.split()), validate=True)
    except (binascii.Error, ValueError):
        raise BadBatch(f"events.{index}.snapshot: not valid base64 text") from None
    if not is_jpeg(image):
        raise BadBatch(f"events.{index}.snapshot: not a JPEG image")
    return image


def _known_message_ids(conn: Connection, device_id: str, message_ids: Sequence[str]) -> set[str]:
    known: set[str] = set()
    table = db.messages
    for start in range(0, len(message_ids), IDS_PER_QUERY):
        chunk = message_ids[start : start + IDS_PER_QUERY]
        query = sa.select(table.c.message_id).where(
            (table.c.device_id == device_id) & table.c.message_id.in_(chunk)
        )
        known.update(row[0] for row in conn.execute(query))
    return known


def _new_seconds(
    conn: Connection, device_id: str, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Return the records of seconds the device has no record of yet (each second once)."""
    if not rows:
        return []
    low = math.floor(min(row["ts"] for row in rows))
    high = math.floor(max(row["ts"] for row in rows)) + 1
    query = sa.select(posture_records.c.ts).where(
        (posture_records.c.device_id == device_id)
        & (posture_records.c.ts >= low)
        & (posture_records.c.ts < high)
    )
    taken = {math.floor(row[0]) for row in conn.execute(query)}
    fresh = []
    for row in rows:
        second = math.floor(row["ts"])
        if second not in taken:
            taken.add(second)
            fresh.append(row)
    return fresh


def _new_events(
    conn: Connection, device_id: str, rows: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Return the events not stored yet (the same device, app, kind, time and data)."""
    if not rows:
        return []
    low, high = min(row["ts"] for row in rows), max(row["ts"] for row in rows)
    query = sa.select(events.c.app, events.c.kind, events.c.ts, events.c.data).where(
        (events.c.device_id == device_id) & (events.c.ts >= low) & (events.c.ts <= high)
    )
    stored = {tuple(row) for row in conn.execute(query)}
    fresh = []
    for row in rows:
        key = (row["app"], row["kind"], row["ts"], row["data"])
        if key not in stored:
            stored.add(key)
            fresh.append(row)
    return fresh


def _note_device(conn: Connection, device_id: str, prepared: _Prepared, now: float) -> None:
    ensure_device(conn, device_id, now, app=prepared.app)
    values: dict[str, Any] = {"last_seen": now}
    if prepared.records:
        newest = max((row for _, row in prepared.records), key=lambda row: row["ts"])
        values["fps"] = newest["fps"]
    if prepared.app is not None:
        values["app"] = prepared.app
    conn.execute(sa.update(db.devices).where(db.devices.c.id == device_id).values(**values))
