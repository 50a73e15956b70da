"""The records database: per-second posture records and events, SQLite or PostgreSQL by URL."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from vigil.errors import ConfigError, DependencyError, StorageError
from vigil.events import Event
from vigil.redact import redact_url

T = TypeVar("T")

metadata = sa.MetaData()

posture_records = sa.Table(
    "posture_records",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("device_id", sa.String(128), nullable=False),
    sa.Column("ts", sa.Float, nullable=False, doc="start of the second, Unix seconds"),
    sa.Column("person_present", sa.Boolean, nullable=False),
    sa.Column("state", sa.String(16), nullable=False, doc="sitting | standing | unknown"),
    sa.Column("hunched", sa.Boolean, nullable=False),
    sa.Column("side", sa.String(8), nullable=True, doc="body side facing the camera"),
    sa.Column("torso_angle", sa.Float, nullable=True),
    sa.Column("neck_angle", sa.Float, nullable=True),
    sa.Column("thigh_angle", sa.Float, nullable=True),
    sa.Column("knee_angle", sa.Float, nullable=True),
    sa.Column("confidence", sa.Float, nullable=True),
    sa.Column("fps", sa.Float, nullable=False),
    sa.Column(
        "sitting_seconds", sa.Float, nullable=True, doc="length of the current sitting spell"
    ),
    sa.Column("hunched_seconds", sa.Float, nullable=True, doc="hunched time in that spell"),
    sa.Index("ix_posture_records_device_ts", "device_id", "ts"),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("device_id", sa.String(128), nullable=False),
    sa.Column("app", sa.String(32), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("data", sa.Text, nullable=False, doc="the event's payload as JSON"),
    sa.Index("ix_events_device_ts", "device_id", "ts"),
)

POSTURE_FIELDS = tuple(c.name for c in posture_records.columns if c.name != "id")
"""The columns of one posture record, in table order (also the order of rolled CSV files)."""


def create_engine(url: str) -> Engine:
    """Create an engine for ``url`` with durable, concurrent-reader settings for SQLite.

    SQLite runs in WAL mode with ``synchronous=NORMAL``: a killed process never corrupts the
    file and loses nothing that was committed.
    """
    if url.startswith("sqlite:///"):
        folder = Path(url.removeprefix("sqlite:///")).expanduser().parent
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the folder of {url}: {exc.strerror}") from None
    try:
        engine = sa.create_engine(url, pool_pre_ping=not url.startswith("sqlite"))
    except ModuleNotFoundError as exc:
        raise DependencyError(
            exc.name or "psycopg", "postgres", f"the database {url.split(':', maxsplit=1)[0]}"
        ) from None
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError):
        raise ConfigError(
            f"not a database URL: {redact_url(url)!r}; use sqlite:///path/vigil.db or "
            "postgresql+psycopg://user:password@host/database"
        ) from None
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class RecordStore:
    """Read and write posture records and events.

    Args:
        url: An SQLAlchemy URL: ``sqlite:///path/vigil.db`` (the default store) or
            ``postgresql+psycopg://user:pass@host/db``.
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine = create_engine(url)
        self._safely("create the tables", lambda: metadata.create_all(self._engine))

    def close(self) -> None:
        """Release the database connections."""
        self._engine.dispose()

    def add_posture_records(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Insert per-second posture records (dicts with the keys of :data:`POSTURE_FIELDS`)."""
        if rows:
            clean = [{k: row.get(k) for k in POSTURE_FIELDS} for row in rows]
            self._write(sa.insert(posture_records), clean)

    def add_events(self, items: Iterable[Event]) -> None:
        """Insert events of any kind (records are stored by :meth:`add_posture_records`)."""
        rows = [
            {
                "device_id": e.device_id,
                "app": e.app,
                "kind": e.kind,
                "ts": e.timestamp,
                "data": json.dumps(e.data),
            }
            for e in items
        ]
        if rows:
            self._write(sa.insert(events), rows)

    def posture_records(
        self, device_id: str | None = None, since: float | None = None, until: float | None = None
    ) -> list[dict[str, Any]]:
        """Return posture records in time order, optionally for one device and time range."""
        query = sa.select(posture_records).order_by(posture_records.c.ts, posture_records.c.id)
        query = _filtered(query, posture_records, device_id, since, until)
        return self._read(query)

    def events(
        self,
        device_id: str | None = None,
        since: float | None = None,
        until: float | None = None,
        kind: str | None = None,
    ) -> list[dict[str, Any]]:
        """Return events in time order with their ``data`` decoded from JSON."""
        query = _filtered(
            sa.select(events).order_by(events.c.ts, events.c.id), events, device_id, since, until
        )
        if kind is not None:
            query = query.where(events.c.kind == kind)
        rows = self._read(query)
        for row in rows:
            row["data"] = json.loads(row["data"])
        return rows

    def devices(self) -> list[str]:
        """Return the device ids that have posture records."""
        query = (
            sa.select(posture_records.c.device_id).distinct().order_by(posture_records.c.device_id)
        )
        return [row["device_id"] for row in self._read(query)]

    def _write(self, statement: Any, rows: list[dict[str, Any]]) -> None:
        def run() -> None:
            with self._engine.begin() as conn:
                conn.execute(statement, rows)

        self._safely("write records", run)

    def _read(self, query: Any) -> list[dict[str, Any]]:
        def run() -> list[dict[str, Any]]:
            with self._engine.connect() as conn:
                return [dict(row._mapping) for row in conn.execute(query)]

        return self._safely("read records", run)

    def _safely(self, what: str, action: Callable[[], T]) -> T:
        try:
            return action()
        except sa.exc.SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise StorageError(f"cannot {what} in {redact_url(self.url)}: {reason}") from None


def _filtered(
    query: Any, table: sa.Table, device_id: str | None, since: float | None, until: float | None
) -> Any:
    if device_id is not None:
        query = query.where(table.c.device_id == device_id)
    if since is not None:
        query = query.where(table.c.ts >= since)
    if until is not None:
        query = query.where(table.c.ts < until)
    return query
