"""The durable outbox between the pipeline and every network sink.

``OutboxSink.publish`` writes an event into an SQLite file and returns at once; one
:class:`Dispatcher` thread per transport takes the oldest messages of its sink, delivers them in
order, and deletes them only when the transport confirms delivery. So delivery is at least once,
in order per sink, and survives a broker that is down for hours, Ctrl-C and ``kill -9``::

    pipeline ─publish─▶ OutboxSink ─put─▶ Outbox (SQLite) ◀─fetch/ack─ Dispatcher ─send─▶ Transport

The file runs in WAL mode with ``synchronous=NORMAL``: a killed process never corrupts it and
keeps every message whose ``put`` returned. The outbox is bounded per sink (the oldest messages
are dropped when full), messages older than the time-to-live are dropped, and messages that a
destination refuses for good are moved to a dead-letter table.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from vigil.errors import ConfigError, PermanentDeliveryError, SinkError, StorageError
from vigil.events import Event
from vigil.paths import default_outbox_path
from vigil.sinks.base import OutboxMessage, Transport

log = logging.getLogger(__name__)

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS messages (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        sink TEXT NOT NULL,
        topic TEXT NOT NULL,
        payload BLOB NOT NULL,
        created REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0)""",
    "CREATE INDEX IF NOT EXISTS ix_messages_sink_id ON messages (sink, id)",
    "CREATE INDEX IF NOT EXISTS ix_messages_sink_created ON messages (sink, created)",
    """CREATE TABLE IF NOT EXISTS dead_letters (
        id INTEGER PRIMARY KEY,
        sink TEXT NOT NULL,
        topic TEXT NOT NULL,
        payload BLOB NOT NULL,
        created REAL NOT NULL,
        attempts INTEGER NOT NULL,
        failed REAL NOT NULL,
        reason TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS ix_dead_letters_sink_id ON dead_letters (sink, id)",
    """CREATE TABLE IF NOT EXISTS drop_counts (
        sink TEXT PRIMARY KEY,
        expired INTEGER NOT NULL DEFAULT 0,
        overflowed INTEGER NOT NULL DEFAULT 0)""",
)
_COLUMNS = "id, sink, topic, payload, created, attempts"
_IDS_PER_STATEMENT = 500


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message that its destination refused for good.

    Attributes:
        message: The message as it was in the outbox (``attempts`` includes the last one).
        reason: Why it was refused, as the transport said.
        failed: When it was refused, Unix seconds.

    """

    message: OutboxMessage
    reason: str
    failed: float


@dataclass(frozen=True, slots=True)
class SinkStats:
    """The state of one sink's queue, for ``vigil`` status commands and dashboards.

    Attributes:
        sink: The sink's name, e.g. ``"mqtt"``.
        pending: Messages waiting for delivery.
        oldest_age_seconds: Age of the oldest waiting message; None when nothing waits.
        expired: Messages dropped so far because they outlived the time-to-live.
        overflowed: Messages dropped so far because the sink's queue was full.
        dead: Messages in the dead-letter table.

    """

    sink: str
    pending: int
    oldest_age_seconds: float | None
    expired: int
    overflowed: int
    dead: int


class Outbox:
    """A bounded, durable, thread-safe queue of messages per sink, in one SQLite file.

    Args:
        path: The SQLite file; None uses ``outbox.db`` in the Vigil state folder.
        max_messages: Most messages kept per sink; when a put finds the sink full, the oldest
            messages are dropped and a warning is logged.
        warn_interval_seconds: Shortest time between two "queue full" warnings of one sink.

    The constructor touches nothing on disk; :meth:`open` creates or opens the file.

    """

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        max_messages: int = 100_000,
        warn_interval_seconds: float = 60.0,
    ) -> None:
        if max_messages < 1:
            raise ConfigError(f"outbox max_messages must be at least 1, got {max_messages}")
        self._path = Path(path).expanduser() if path is not None else None
        self.max_messages = max_messages
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._counts: dict[str, int] = {}
        self._wakeups: dict[str, threading.Event] = {}
        self._overflow = _OverflowWarnings(warn_interval_seconds)

    @property
    def path(self) -> Path | None:
        """The SQLite file; None until :meth:`open` when the default location is used."""
        return self._path

    @property
    def is_open(self) -> bool:
        """Whether :meth:`open` was called and :meth:`close` was not."""
        return self._conn is not None

    def open(self) -> Self:
        """Create or open the file and its tables; calling it again does nothing.

        Raises:
            StorageError: the file cannot be created, or is not an SQLite database.

        """
        with self._lock:
            if self._conn is None:
                if self._path is None:
                    self._path = default_outbox_path()
                self._conn = _connect(self._path)
                self._counts.clear()
        return self

    def close(self) -> None:
        """Close the file. Messages stay in it for the next :meth:`open`."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def put(
        self, sink: str, topic: str, payload: bytes | str, *, created: float | None = None
    ) -> int:
        """Store one message for ``sink`` durably and return its id.

        When the sink already holds ``max_messages``, the oldest are dropped to make room.

        Args:
            sink: The transport's name, e.g. ``"mqtt"``.
            topic: Where the transport sends it (MQTT topic, object key, event kind).
            payload: The bytes to deliver; text is stored as UTF-8.
            created: When the message was made, Unix seconds; default now. The time-to-live
                counts from it.

        """
        data = payload.encode("utf-8") if isinstance(payload, str) else bytes(payload)
        stamp = time.time() if created is None else created
        dropped = 0
        with self._lock:
            with self._write(f"store a message for {sink!r}") as conn:
                count = self._count(conn, sink) + 1
                cursor = conn.execute(
                    "INSERT INTO messages (sink, topic, payload, created) VALUES (?, ?, ?, ?)",
                    (sink, topic, data, stamp),
                )
                if count > self.max_messages:
                    count, dropped = self._trim(conn, sink)
            self._counts[sink] = count
        if dropped:
            self._overflow.report(sink, dropped, self.max_messages)
        self.wakeup(sink).set()
        return int(cursor.lastrowid or 0)

    def fetch(self, sink: str, limit: int) -> list[OutboxMessage]:
        """Return up to ``limit`` of the oldest messages of ``sink``, oldest first."""
        with self._read(f"read the messages of {sink!r}") as conn:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE sink = ? ORDER BY id LIMIT ?",
                (sink, limit),
            ).fetchall()
        return [_message(row) for row in rows]

    def ack(self, sink: str, ids: Iterable[int]) -> int:
        """Delete delivered messages of ``sink``; return how many were deleted."""
        wanted = list(ids)
        deleted = 0
        with self._lock:
            with self._write(f"remove delivered messages of {sink!r}") as conn:
                for start in range(0, len(wanted), _IDS_PER_STATEMENT):
                    chunk = wanted[start : start + _IDS_PER_STATEMENT]
                    marks = ",".join("?" * len(chunk))
                    deleted += conn.execute(
                        f"DELETE FROM messages WHERE sink = ? AND id IN ({marks})", (sink, *chunk)
                    ).rowcount
            self._forget(sink, deleted)
        return deleted

    def record_failure(self, message_id: int) -> None:
        """Count one more failed delivery of a message."""
        with self._write("count a failed delivery") as conn:
            conn.execute("UPDATE messages SET attempts = attempts + 1 WHERE id = ?", (message_id,))

    def dead_letter(self, message: OutboxMessage, reason: str) -> bool:
        """Move a message that can never be delivered to the dead-letter table.

        Returns:
            False if the message was no longer in the outbox.

        """
        with self._lock:
            with self._write(f"dead-letter a message of {message.sink!r}") as conn:
                conn.execute(
                    f"INSERT OR REPLACE INTO dead_letters ({_COLUMNS}, failed, reason) "
                    f"SELECT {_COLUMNS.replace('attempts', 'attempts + 1')}, ?, ? "
                    "FROM messages WHERE id = ?",
                    (time.time(), reason, message.id),
                )
                moved = conn.execute("DELETE FROM messages WHERE id = ?", (message.id,)).rowcount
            self._forget(message.sink, moved)
        return moved > 0

    def drop_expired(self, sink: str, max_age_seconds: float, *, now: float | None = None) -> int:
        """Drop messages of ``sink`` older than ``max_age_seconds``; log and return how many."""
        cutoff = (time.time() if now is None else now) - max_age_seconds
        with self._lock:
            with self._write(f"drop expired messages of {sink!r}") as conn:
                dropped = conn.execute(
                    "DELETE FROM messages WHERE sink = ? AND created < ?", (sink, cutoff)
                ).rowcount
                if dropped:
                    _add_drop_count(conn, sink, "expired", dropped)
            self._forget(sink, dropped)
        if dropped:
            log.warning(
                "outbox: dropped %d undelivered messages for %r that were older than the "
                "time-to-live of %s; raise outbox.ttl_hours to keep them longer",
                dropped,
                sink,
                _duration(max_age_seconds),
            )
        return dropped

    def pending(self, sink: str | None = None) -> int:
        """Return how many messages wait for delivery, for one sink or for all."""
        with self._read("count messages") as conn:
            if sink is None:
                row = conn.execute("SELECT COUNT(*) FROM messages").fetchone()
            else:
                query = "SELECT COUNT(*) FROM messages WHERE sink = ?"
                row = conn.execute(query, (sink,)).fetchone()
            return int(row[0])

    def dead_letters(self, sink: str | None = None, limit: int = 100) -> list[DeadLetter]:
        """Return the newest ``limit`` dead letters (of one sink or all), oldest first."""
        where, args = ("WHERE sink = ?", (sink, limit)) if sink is not None else ("", (limit,))
        query = (
            f"SELECT * FROM (SELECT {_COLUMNS}, failed, reason FROM dead_letters {where} "
            "ORDER BY id DESC LIMIT ?) ORDER BY id"
        )
        with self._read("read dead letters") as conn:
            rows = conn.execute(query, args).fetchall()
        return [DeadLetter(_message(row[:6]), reason=row[7], failed=row[6]) for row in rows]

    def stats(self, *, now: float | None = None) -> list[SinkStats]:
        """Return the state of every sink that has messages, drops or dead letters."""
        with self._read("read statistics") as conn:
            queued = conn.execute(
                "SELECT sink, COUNT(*), MIN(created) FROM messages GROUP BY sink"
            ).fetchall()
            dead = dict(conn.execute("SELECT sink, COUNT(*) FROM dead_letters GROUP BY sink"))
            drops = {r[0]: r[1:] for r in conn.execute("SELECT * FROM drop_counts")}
        current = time.time() if now is None else now
        waiting = {sink: (count, current - oldest) for sink, count, oldest in queued}
        return [
            SinkStats(
                sink=sink,
                pending=waiting.get(sink, (0, None))[0],
                oldest_age_seconds=waiting.get(sink, (0, None))[1],
                expired=drops.get(sink, (0, 0))[0],
                overflowed=drops.get(sink, (0, 0))[1],
                dead=dead.get(sink, 0),
            )
            for sink in sorted({*waiting, *dead, *drops})
        ]

    def wakeup(self, sink: str) -> threading.Event:
        """Return the event that :meth:`put` sets for ``sink``, so a dispatcher can wait on it."""
        with self._lock:
            return self._wakeups.setdefault(sink, threading.Event())

    @contextlib.contextmanager
    def _read(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connection(what)
            try:
                yield conn
            except sqlite3.Error as exc:
                raise StorageError(f"outbox {self._path}: cannot {what}: {exc}") from None

    @contextlib.contextmanager
    def _write(self, what: str) -> Iterator[sqlite3.Connection]:
        with self._read(what) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _connection(self, what: str) -> sqlite3.Connection:
        if self._conn is None:
            raise StorageError(f"cannot {what}: the outbox is not open; call Outbox.open() first")
        return self._conn

    def _count(self, conn: sqlite3.Connection, sink: str) -> int:
        if sink not in self._counts:
            query = "SELECT COUNT(*) FROM messages WHERE sink = ?"
            self._counts[sink] = int(conn.execute(query, (sink,)).fetchone()[0])
        return self._counts[sink]

    def _trim(self, conn: sqlite3.Connection, sink: str) -> tuple[int, int]:
        """Drop the oldest messages beyond ``max_messages``; return (count left, dropped)."""
        exact = conn.execute("SELECT COUNT(*) FROM messages WHERE sink = ?", (sink,)).fetchone()[0]
        excess = int(exact) - self.max_messages
        if excess <= 0:
            return int(exact), 0
        conn.execute(
            "DELETE FROM messages WHERE id IN "
            "(SELECT id FROM messages WHERE sink = ? ORDER BY id LIMIT ?)",
            (sink, excess),
        )
        _add_drop_count(conn, sink, "overflowed", excess)
        return self.max_messages, excess

    def _forget(self, sink: str, removed: int) -> None:
        if sink in self._counts:
            self._counts[sink] = max(0, self._counts[sink] - removed)


def _connect(path: Path) -> sqlite3.Connection:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        message = f"cannot create the outbox folder {path.parent}: {exc.strerror}"
        raise StorageError(message) from None
    conn = sqlite3.connect(path, timeout=5.0, isolation_level=None, check_same_thread=False)
    try:
        mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise sqlite3.OperationalError(f"journal mode is {mode!r}, not WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        for statement in _SCHEMA:
            conn.execute(statement)
    except sqlite3.Error as exc:
        conn.close()
        raise StorageError(
            f"cannot open the outbox {path}: {exc}; move the file away to start an empty outbox"
        ) from None
    return conn


def _message(row: Sequence[Any]) -> OutboxMessage:
    return OutboxMessage(
        id=row[0], sink=row[1], topic=row[2], payload=bytes(row[3]), created=row[4], attempts=row[5]
    )


def _add_drop_count(conn: sqlite3.Connection, sink: str, column: str, count: int) -> None:
    conn.execute(
        f"INSERT INTO drop_counts (sink, {column}) VALUES (?, ?) "
        f"ON CONFLICT (sink) DO UPDATE SET {column} = {column} + excluded.{column}",
        (sink, count),
    )


def _duration(seconds: float) -> str:
    if seconds >= 3600:
        return f"{seconds / 3600:g} h"
    return f"{seconds:g} s"


class _OverflowWarnings:
    """Log "queue full" at most once per interval per sink, with the count since the last line."""

    def __init__(self, interval_seconds: float) -> None:
        self._interval = interval_seconds
        self._unreported: dict[str, int] = {}
        self._last: dict[str, float] = {}

    def report(self, sink: str, dropped: int, limit: int) -> None:
        total = self._unreported.get(sink, 0) + dropped
        now = time.monotonic()
        last = self._last.get(sink)
        if last is not None and now - last < self._interval:
            self._unreported[sink] = total
            return
        self._unreported[sink] = 0
        self._last[sink] = now
        log.warning(
            "outbox: %r is full (%d messages waiting, its destination has been unreachable for "
            "a while); dropped the %d oldest undelivered messages to make room; raise "
            "outbox.max_messages to keep more",
            sink,
            limit,
            total,
        )


def event_kind_topic(event: Event) -> str:
    """Return the default topic of an event in the outbox: its kind."""
    return event.kind


class OutboxSink:
    """A sink that puts events into the outbox for one transport; never touches the network.

    Args:
        outbox: The shared outbox (opened before the first publish).
        sink: The transport's name; the dispatcher of that transport delivers the messages.
        topic_for: Makes the message topic of an event (default: the event's kind).
        kinds: Event kinds to accept; None accepts every kind.

    """

    def __init__(
        self,
        outbox: Outbox,
        sink: str,
        *,
        topic_for: Callable[[Event], str] = event_kind_topic,
        kinds: Iterable[str] | None = None,
    ) -> None:
        self.outbox = outbox
        self.name = sink
        self.kinds = frozenset(kinds) if kinds is not None else None
        self._topic_for = topic_for

    def accepts(self, event: Event) -> bool:
        """Whether ``event`` is of a kind this sink publishes."""
        return self.kinds is None or event.kind in self.kinds

    def publish(self, event: Event) -> None:
        """Store ``event`` as JSON for delivery, if its kind is accepted.

        Raises:
            SinkError: the event's data is not plain JSON.
            StorageError: the outbox file cannot be written.

        """
        if not self.accepts(event):
            return
        try:
            payload = event.to_json()
        except (TypeError, ValueError) as exc:
            raise SinkError(
                f"cannot publish a {event.kind!r} event of {event.app!r} to {self.name}: "
                f"its data is not plain JSON ({exc})"
            ) from None
        self.outbox.put(self.name, self._topic_for(event), payload, created=time.time())

    def close(self) -> None:
        """Nothing to flush: every accepted event is already on disk."""


def backoff_delay(failures: int, initial: float, maximum: float, rng: random.Random) -> float:
    """Return the pause after ``failures`` failed attempts in a row (1 for the first failure).

    The pause doubles with every failure, from ``initial`` up to ``maximum``, and is jittered
    down by up to half so that many devices do not retry in step; it never leaves
    ``[initial, maximum]``.
    """
    base = min(maximum, initial * 2.0 ** min(max(failures, 1) - 1, 60))
    return min(maximum, max(initial, base * rng.uniform(0.5, 1.0)))


def deliver_in_order(
    messages: Sequence[OutboxMessage], deliver_one: Callable[[OutboxMessage], None]
) -> int:
    """Deliver ``messages`` one by one until one fails; return how many were delivered.

    The helper of transports without batches (webhooks, notifications, uploads): a failure
    after some deliveries ends the batch early so that the outbox acknowledges those, and the
    failing message comes first in the next batch, where its error is raised.

    Raises:
        SinkError: the first message failed (PermanentDeliveryError when it never can succeed).

    """
    delivered = 0
    for message in messages:
        try:
            deliver_one(message)
        except SinkError:
            if delivered == 0:
                raise
            break
        delivered += 1
    return delivered


class _Outcome(enum.Enum):
    IDLE = "nothing to deliver"
    PROGRESS = "delivered or dead-lettered"
    FAILED = "delivery failed"


class Dispatcher:
    """Deliver one sink's messages from the outbox through its transport, on its own thread.

    Args:
        outbox: The shared, opened outbox.
        transport: Delivers batches; its ``name`` is the sink whose messages it takes.
        batch_size: Most messages per ``transport.send`` call.
        retry_initial_seconds: First pause after a failed attempt.
        retry_max_seconds: Longest pause between attempts.
        ttl_seconds: Messages older than this are dropped undelivered (with a warning).
        idle_poll_seconds: How often an idle dispatcher looks for messages that another
            process put into the same file (puts of this process wake it at once).
        seed: Seed of the retry jitter, for reproducible runs.

    """

    def __init__(
        self,
        outbox: Outbox,
        transport: Transport,
        *,
        batch_size: int = 100,
        retry_initial_seconds: float = 1.0,
        retry_max_seconds: float = 60.0,
        ttl_seconds: float = 7 * 24 * 3600.0,
        idle_poll_seconds: float = 5.0,
        seed: int | None = None,
    ) -> None:
        if not (batch_size >= 1 and 0 < retry_initial_seconds <= retry_max_seconds):
            raise ConfigError(
                "dispatcher needs batch_size >= 1 and 0 < retry_initial_seconds <= "
                f"retry_max_seconds, got {batch_size}, {retry_initial_seconds}, {retry_max_seconds}"
            )
        self.sink = transport.name
        self.delivered = 0
        self._outbox = outbox
        self._transport = transport
        self._batch_size = batch_size
        self._retry = (retry_initial_seconds, retry_max_seconds)
        self._ttl = ttl_seconds
        self._idle_poll = idle_poll_seconds
        self._rng = random.Random(seed)
        self._failures = 0
        self._refusals = 0  # batches or messages refused for good since the last delivery
        self._stopping = threading.Event()
        self._retry_now = threading.Event()
        self._deadline = float("inf")
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        """Whether the delivery thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the delivery thread (once)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run, name=f"vigil-dispatch-{self.sink}", daemon=True
        )
        self._thread.start()

    def retry_now(self) -> None:
        """Cut the current pause after a failure short, e.g. when the connection is back."""
        self._retry_now.set()

    def request_stop(self, grace_seconds: float) -> None:
        """Ask the thread to deliver what it can for ``grace_seconds`` more, then end."""
        self._deadline = time.monotonic() + max(0.0, grace_seconds)
        self._stopping.set()
        self._retry_now.set()
        self._outbox.wakeup(self.sink).set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the thread to end; return whether it did."""
        if self._thread is not None:
            self._thread.join(timeout)
        return not self.running

    def stop(self, grace_seconds: float = 5.0) -> bool:
        """Deliver what is pending for up to ``grace_seconds``, then stop; the rest stays on disk.

        Returns:
            Whether the thread ended (it may still be inside a slow ``send``).

        """
        self.request_stop(grace_seconds)
        ended = self.join(grace_seconds + 1.0)
        if not ended:
            log.warning(
                "%s: still inside a delivery after the %g s grace; undelivered messages stay in "
                "the outbox for the next start",
                self.sink,
                grace_seconds,
            )
        return ended

    def _run(self) -> None:
        wake = self._outbox.wakeup(self.sink)
        try:
            while not (self._stopping.is_set() and time.monotonic() >= self._deadline):
                wake.clear()
                outcome = self._attempt()
                if outcome is _Outcome.IDLE:
                    if self._stopping.is_set():
                        break
                    wake.wait(self._idle_poll)
                elif outcome is _Outcome.FAILED:
                    self._pause()
            self._report_left()
        except Exception:  # the thread must log, never die silently
            log.exception("%s: delivery thread stopped by an unexpected error", self.sink)

    def _attempt(self) -> _Outcome:
        try:
            return self._deliver_next_batch()
        except StorageError as exc:
            if self._stopping.is_set() and not self._outbox.is_open:
                self._deadline = 0.0
                return _Outcome.IDLE
            self._note_failure(None, str(exc))
            return _Outcome.FAILED

    def _deliver_next_batch(self) -> _Outcome:
        batch = self._next_batch()
        if not batch:
            return _Outcome.IDLE
        try:
            delivered = self._transport.send(batch)
        except PermanentDeliveryError as exc:
            self._dead_letter(batch if exc.whole_batch else batch[:1], str(exc))
            return _Outcome.PROGRESS
        except SinkError as exc:
            self._note_failure(batch[0], str(exc))
            return _Outcome.FAILED
        except Exception as exc:  # a library error that the transport did not translate
            log.debug("%s: unexpected delivery error", self.sink, exc_info=True)
            self._note_failure(batch[0], f"{type(exc).__name__}: {exc}")
            return _Outcome.FAILED
        if delivered <= 0:
            self._note_failure(batch[0], "the transport delivered nothing")
            return _Outcome.FAILED
        self._outbox.ack(self.sink, [m.id for m in batch[:delivered]])
        self._note_success(min(delivered, len(batch)))
        return _Outcome.PROGRESS

    def _next_batch(self) -> list[OutboxMessage]:
        batch = self._outbox.fetch(self.sink, self._batch_size)
        if batch and batch[0].created < time.time() - self._ttl:
            self._outbox.drop_expired(self.sink, self._ttl)
            batch = self._outbox.fetch(self.sink, self._batch_size)
        return batch

    def _dead_letter(self, messages: list[OutboxMessage], reason: str) -> None:
        """Move refused messages to the dead letters; warn once per run of refusals."""
        for message in messages:
            self._outbox.dead_letter(message, reason)
        self._refusals += 1
        what = f"message {messages[0].id} (topic {messages[0].topic!r})"
        if len(messages) > 1:
            what = f"{len(messages)} messages ({messages[0].id} to {messages[-1].id})"
        level = logging.WARNING if self._refusals == 1 else logging.INFO
        log.log(level, "%s: %s; %s moved to the dead letters", self.sink, reason, what)

    def _note_failure(self, head: OutboxMessage | None, reason: str) -> None:
        self._failures += 1
        if head is not None:
            self._outbox.record_failure(head.id)
        if self._failures == 1:
            log.warning(
                "%s: cannot deliver now (%s); messages stay in the outbox and are retried",
                self.sink,
                reason,
            )
        else:
            log.debug("%s: attempt %d failed: %s", self.sink, self._failures, reason)

    def _note_success(self, delivered: int) -> None:
        self.delivered += delivered
        self._refusals = 0
        if self._failures:
            log.info("%s: delivering again after %d failed attempts", self.sink, self._failures)
        self._failures = 0

    def _pause(self) -> None:
        delay = backoff_delay(self._failures, *self._retry, self._rng)
        if self._stopping.is_set():
            delay = min(delay, max(0.0, self._deadline - time.monotonic()))
        self._retry_now.wait(delay)
        self._retry_now.clear()

    def _report_left(self) -> None:
        with contextlib.suppress(StorageError):
            left = self._outbox.pending(self.sink)
            if left:
                log.info("%s: %d messages stay in the outbox for the next start", self.sink, left)


__all__ = [
    "DeadLetter",
    "Dispatcher",
    "Outbox",
    "OutboxSink",
    "SinkStats",
    "backoff_delay",
    "deliver_in_order",
    "event_kind_topic",
]
