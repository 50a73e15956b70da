"""The hub's tables, beside the records tables that pipelines write.

The hub shares the records database (``posture_records`` and ``events`` of
:mod:`vigil.storage.records`) with pipelines on the same machine, and adds its own tables:

==========================  ===============================================================
table                       what it keeps
==========================  ===============================================================
``hub_devices``             every device the hub knows: name, app, last seen, frame rate
``hub_users``               people who log in: name, role, Argon2 password hash
``hub_sessions``            login sessions: hashes of the session and CSRF secrets, expiry
``hub_tokens``              device tokens: the device, the hash of the secret, revocation
``hub_messages``            ids of ingested messages, so a retried batch stores nothing twice
``hub_slots``               posture roll-ups per device and quarter hour (seconds per state)
``hub_streaks``             sitting streaks per device
``hub_reminders``           reminders per device, with their reason
``hub_rollup_state``        how far the roll-ups have read the records and events
``hub_snapshots``           snapshot images in the snapshot store
==========================  ===============================================================
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from vigil.errors import StorageError
from vigil.redact import redact_url
from vigil.storage import records

T = TypeVar("T")

metadata = sa.MetaData()

ID_LENGTH = 64
"""Longest device id, user name or token id."""

devices = sa.Table(
    "hub_devices",
    metadata,
    sa.Column("id", sa.String(ID_LENGTH), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    sa.Column("app", sa.String(32), nullable=True),
    sa.Column("created", sa.Float, nullable=False, doc="Unix seconds"),
    sa.Column("last_seen", sa.Float, nullable=True, doc="last ingest or record, Unix seconds"),
    sa.Column("fps", sa.Float, nullable=True, doc="frames per second of its latest record"),
)

users = sa.Table(
    "hub_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(ID_LENGTH), nullable=False, unique=True),
    sa.Column("role", sa.String(16), nullable=False, doc="admin | viewer"),
    sa.Column("password_hash", sa.String(255), nullable=False, doc="Argon2id"),
    sa.Column("created", sa.Float, nullable=False),
)

sessions = sa.Table(
    "hub_sessions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("secret_hash", sa.String(64), nullable=False, unique=True, doc="sha256 hex"),
    sa.Column("csrf_hash", sa.String(64), nullable=False, doc="sha256 hex"),
    sa.Column(
        "user_id", sa.Integer, sa.ForeignKey("hub_users.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("expires", sa.Float, nullable=False),
)

tokens = sa.Table(
    "hub_tokens",
    metadata,
    sa.Column("id", sa.String(ID_LENGTH), primary_key=True, doc="public token id"),
    sa.Column("device_id", sa.String(ID_LENGTH), nullable=False, index=True),
    sa.Column("secret_hash", sa.String(64), nullable=False, doc="sha256 hex of the secret"),
    sa.Column("created", sa.Float, nullable=False),
    sa.Column("last_used", sa.Float, nullable=True),
    sa.Column("revoked", sa.Float, nullable=True),
)

messages = sa.Table(
    "hub_messages",
    metadata,
    sa.Column("device_id", sa.String(ID_LENGTH), primary_key=True),
    sa.Column("message_id", sa.String(128), primary_key=True),
    sa.Column("received", sa.Float, nullable=False, index=True),
)

slots = sa.Table(
    "hub_slots",
    metadata,
    sa.Column("device_id", sa.String(ID_LENGTH), primary_key=True),
    sa.Column("start", sa.Float, primary_key=True, doc="start of the quarter hour, Unix seconds"),
    sa.Column("records", sa.Integer, nullable=False, doc="recorded seconds"),
    sa.Column("sitting", sa.Integer, nullable=False),
    sa.Column("standing", sa.Integer, nullable=False),
    sa.Column("unknown", sa.Integer, nullable=False),
    sa.Column("away", sa.Integer, nullable=False),
    sa.Column("hunched", sa.Integer, nullable=False, doc="hunched with a person in view"),
    sa.Column("hunched_sitting", sa.Integer, nullable=False),
)

streaks = sa.Table(
    "hub_streaks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("device_id", sa.String(ID_LENGTH), nullable=False),
    sa.Column("start_ts", sa.Float, nullable=False),
    sa.Column("end_ts", sa.Float, nullable=False),
    sa.Column("sitting_seconds", sa.Float, nullable=False),
    sa.Index("ix_hub_streaks_device_start", "device_id", "start_ts"),
)

reminders = sa.Table(
    "hub_reminders",
    metadata,
    sa.Column("event_id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("device_id", sa.String(ID_LENGTH), nullable=False),
    sa.Column("ts", sa.Float, nullable=False),
    sa.Column("reason", sa.String(64), nullable=False),
    sa.Index("ix_hub_reminders_device_ts", "device_id", "ts"),
)

rollup_state = sa.Table(
    "hub_rollup_state",
    metadata,
    sa.Column("name", sa.String(32), primary_key=True),
    sa.Column("last_record_id", sa.BigInteger, nullable=False),
    sa.Column("last_event_id", sa.BigInteger, nullable=False),
    sa.Column("gaps", sa.Text, nullable=False, doc="JSON: ids skipped, re-checked for a while"),
    sa.Column("updated", sa.Float, nullable=False),
)

snapshots = sa.Table(
    "hub_snapshots",
    metadata,
    sa.Column("sha256", sa.String(64), primary_key=True),
    sa.Column("device_id", sa.String(ID_LENGTH), nullable=False),
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("created", sa.Float, nullable=False),
)


class HubDatabase:
    """The records database with the hub's tables: SQLite by default, PostgreSQL by URL.

    Args:
        url: An SQLAlchemy URL, e.g. ``sqlite:///path/vigil.db`` or
            ``postgresql+psycopg://user:pass@host/db``; None for the embedded SQLite database in
            ``VIGIL_HOME``. Nothing is opened until :meth:`open` (or the first use).
    """

    def __init__(self, url: str | None = None) -> None:
        self.url = url or ""
        self._engine: Engine | None = None
        self._opening = threading.Lock()

    @property
    def engine(self) -> Engine:
        """The engine; the database is opened (and its tables made) on first use."""
        if self._engine is None:
            self.open()
        assert self._engine is not None
        return self._engine

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def open(self) -> HubDatabase:
        """Connect and create the records and hub tables that do not exist yet.

        Raises:
            StorageError: the database cannot be reached or written.
            ConfigError: the URL is not a database URL.
            DependencyError: the database's driver is not installed.
        """
        with self._opening:
            if self._engine is None:
                self._engine = self._connect()
        return self

    def _connect(self) -> Engine:
        if not self.url:
            from vigil.paths import default_database_url

            self.url = default_database_url()
        engine = records.create_engine(self.url)

        def create_tables() -> None:
            records.metadata.create_all(engine)
            metadata.create_all(engine)

        try:
            self._safely("create the tables", create_tables)
        except BaseException:
            engine.dispose()
            raise
        return engine

    def close(self) -> None:
        """Release the database connections."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def read(self, what: str, action: Callable[[Connection], T]) -> T:
        """Run ``action`` on a connection; ``what`` names it in a StorageError."""

        def run() -> T:
            with self.engine.connect() as conn:
                return action(conn)

        return self._safely(what, run)

    def write(self, what: str, action: Callable[[Connection], T]) -> T:
        """Run ``action`` in one transaction, committed when it returns."""

        def run() -> T:
            with self.engine.begin() as conn:
                return action(conn)

        return self._safely(what, run)

    def _safely(self, what: str, action: Callable[[], T]) -> T:
        try:
            return action()
        except sa.exc.SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise StorageError(f"cannot {what} in {redact_url(self.url)}: {reason}") from None


def upsert_adding(
    conn: Connection, table: sa.Table, rows: list[dict[str, Any]], keys: tuple[str, ...]
) -> None:
    """Insert ``rows``; where a row with the same ``keys`` exists, add the other columns to it."""
    if not rows:
        return
    statement = _dialect_insert(conn, table)
    added = {name: table.c[name] + statement.excluded[name] for name in rows[0] if name not in keys}
    conn.execute(statement.on_conflict_do_update(index_elements=list(keys), set_=added), rows)


def insert_ignoring_duplicates(
    conn: Connection, table: sa.Table, rows: list[dict[str, Any]]
) -> None:
    """Insert ``rows``, skipping those whose primary key exists already."""
    if rows:
        conn.execute(_dialect_insert(conn, table).on_conflict_do_nothing(), rows)


def _dialect_insert(conn: Connection, table: sa.Table) -> Any:
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(table)
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    return sqlite_insert(table)


def insert_plain(
    conn: Connection, table: sa.Table, rows: list[dict[str, Any]], *, skip_existing: bool = False
) -> None:
    """Insert many rows through the driver itself: no per-row work by the library.

    Ingest writes thousands of rows a second; this is several times cheaper than a Core
    ``insert``. The column names come from the rows' keys (the code's own names, never input).

    Args:
        conn: The connection (and transaction) to write in.
        table: The table.
        rows: Dicts with the same keys.
        skip_existing: Leave out rows whose primary key exists already.
    """
    if not rows:
        return
    names = list(rows[0])
    marker = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    skip = " ON CONFLICT DO NOTHING" if skip_existing else ""
    text = (
        f"INSERT INTO {table.name} ({', '.join(names)}) "
        f"VALUES ({', '.join([marker] * len(names))}){skip}"
    )
    conn.exec_driver_sql(text, [tuple(row[name] for name in names) for row in rows])
