"""The durable outbox and its dispatcher: order, acks, bounds, TTL, dead letters, crashes."""

from __future__ import annotations

import json
import logging
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tests.services import wait_until
from tests.sinks.support import ScriptedTransport, make_event
from vigil.errors import ConfigError, PermanentDeliveryError, SinkError, StorageError
from vigil.sinks.outbox import (
    Dispatcher,
    Outbox,
    OutboxSink,
    backoff_delay,
    deliver_in_order,
)

SINK = "fake"


def put_numbers(outbox: Outbox, count: int, sink: str = SINK, start: int = 0) -> list[int]:
    return [outbox.put(sink, "t", str(n)) for n in range(start, start + count)]


def numbers(messages: list) -> list[int]:
    return [int(m.payload) for m in messages]


def dispatcher(outbox: Outbox, transport: ScriptedTransport, **options: float) -> Dispatcher:
    settings = {"retry_initial_seconds": 0.02, "retry_max_seconds": 0.1, **options}
    return Dispatcher(outbox, transport, seed=7, **settings)


# --- the outbox itself -------------------------------------------------------------------


def test_messages_come_back_in_order_per_sink(outbox: Outbox) -> None:
    for n in range(6):
        outbox.put("a" if n % 2 == 0 else "b", f"topic/{n}", str(n))

    assert numbers(outbox.fetch("a", 10)) == [0, 2, 4]
    assert numbers(outbox.fetch("b", 10)) == [1, 3, 5]
    assert [m.topic for m in outbox.fetch("b", 10)] == ["topic/1", "topic/3", "topic/5"]
    assert numbers(outbox.fetch("a", 2)) == [0, 2]
    assert outbox.pending() == 6
    assert outbox.pending("a") == 3


def test_ack_removes_only_the_delivered_batch_of_that_sink(outbox: Outbox) -> None:
    put_numbers(outbox, 10)
    other = outbox.put("other", "t", "x")
    batch = outbox.fetch(SINK, 4)

    assert outbox.ack("other", [m.id for m in batch]) == 0
    assert outbox.ack(SINK, [m.id for m in batch] + [other]) == 4
    assert numbers(outbox.fetch(SINK, 100)) == list(range(4, 10))
    assert outbox.pending("other") == 1


def test_put_accepts_text_and_bytes_and_keeps_creation_time(outbox: Outbox) -> None:
    outbox.put(SINK, "t", "héllo", created=123.5)
    outbox.put(SINK, "t", b"\x00\xff")

    first, second = outbox.fetch(SINK, 2)
    assert first.payload == "héllo".encode()
    assert first.created == 123.5
    assert second.payload == b"\x00\xff"
    assert abs(second.created - time.time()) < 5
    assert first.id < second.id


def test_messages_older_than_the_ttl_are_dropped_with_a_warning(
    outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    now = time.time()
    outbox.put(SINK, "t", "old-1", created=now - 7200)
    outbox.put(SINK, "t", "old-2", created=now - 3700)
    outbox.put(SINK, "t", "fresh", created=now - 10)

    with caplog.at_level(logging.WARNING, logger="vigil.sinks.outbox"):
        dropped = outbox.drop_expired(SINK, 3600)

    assert dropped == 2
    assert [m.payload for m in outbox.fetch(SINK, 10)] == [b"fresh"]
    warning = caplog.records[-1]
    assert warning.levelno == logging.WARNING
    assert "dropped 2 undelivered messages" in warning.getMessage()
    assert "time-to-live of 1 h" in warning.getMessage()
    assert outbox.stats()[0].expired == 2


def test_a_full_sink_drops_its_oldest_messages_with_one_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        Outbox(tmp_path / "o.db", max_messages=5) as box,
        caplog.at_level(logging.WARNING, logger="vigil.sinks.outbox"),
    ):
        put_numbers(box, 8)
        put_numbers(box, 2, sink="other")
        kept = numbers(box.fetch(SINK, 100))
        stats = {s.sink: s for s in box.stats()}

    assert kept == [3, 4, 5, 6, 7]
    assert stats[SINK].overflowed == 3
    assert stats[SINK].pending == 5
    assert stats["other"].pending == 2
    assert stats["other"].overflowed == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # later drops within a minute are counted, not logged each time
    assert "'fake' is full (5 messages waiting" in warnings[0]
    assert "dropped the 1 oldest" in warnings[0]


def test_the_bound_holds_across_acks_and_reopening(tmp_path: Path) -> None:
    path = tmp_path / "o.db"
    with Outbox(path, max_messages=4) as box:
        put_numbers(box, 4)
        box.ack(SINK, [m.id for m in box.fetch(SINK, 2)])
        put_numbers(box, 2, start=4)
        assert numbers(box.fetch(SINK, 10)) == [2, 3, 4, 5]
    with Outbox(path, max_messages=4) as box:
        put_numbers(box, 1, start=6)
        assert numbers(box.fetch(SINK, 10)) == [3, 4, 5, 6]


def test_dead_letters_keep_the_message_and_the_reason(outbox: Outbox) -> None:
    put_numbers(outbox, 3)
    head = outbox.fetch(SINK, 1)[0]
    outbox.record_failure(head.id)

    assert outbox.dead_letter(head, "HTTP 400 Bad Request") is True
    assert outbox.dead_letter(head, "again") is False

    letters = outbox.dead_letters()
    assert len(letters) == 1
    assert letters[0].message.payload == b"0"
    assert letters[0].message.attempts == 2
    assert letters[0].reason == "HTTP 400 Bad Request"
    assert outbox.dead_letters("other") == []
    assert numbers(outbox.fetch(SINK, 10)) == [1, 2]
    assert outbox.stats()[0].dead == 1


def test_a_new_outbox_on_the_same_file_resumes(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "outbox.db"
    with Outbox(path) as first:
        ids = put_numbers(first, 3)
        first.ack(SINK, ids[:1])

    with Outbox(path) as second:
        assert numbers(second.fetch(SINK, 10)) == [1, 2]
        new_id = second.put(SINK, "t", "3")
        assert new_id > ids[-1]
        assert second.stats()[0].pending == 3


def test_stats_report_age_of_the_oldest_waiting_message(outbox: Outbox) -> None:
    outbox.put("mqtt", "t", "a", created=1000.0)
    outbox.put("mqtt", "t", "b", created=1030.0)
    outbox.put("s3", "k", "c", created=1050.0)

    stats = outbox.stats(now=1100.0)

    assert [(s.sink, s.pending, s.oldest_age_seconds) for s in stats] == [
        ("mqtt", 2, 100.0),
        ("s3", 1, 50.0),
    ]


def test_two_threads_can_put_at_once_without_losing_order(outbox: Outbox) -> None:
    def writer(name: str) -> None:
        for n in range(300):
            outbox.put(SINK, name, f"{name}:{n}")

    threads = [threading.Thread(target=writer, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    messages = outbox.fetch(SINK, 1000)
    assert len(messages) == 600
    for name in ("a", "b"):
        sequence = [int(m.payload.split(b":")[1]) for m in messages if m.topic == name]
        assert sequence == list(range(300))


CHILD = textwrap.dedent(
    """
    import sys
    from vigil.sinks.outbox import Outbox
    box = Outbox(sys.argv[1]).open()
    n = 0
    while True:
        box.put("crash", "t", str(n) * 50)
        print(n, flush=True)
        n += 1
    """
)


def test_a_killed_writer_loses_nothing_that_put_returned_for(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    acknowledged = -1
    deadline = time.monotonic() + 20
    while acknowledged < 300 and time.monotonic() < deadline:
        line = child.stdout.readline()
        if not line:
            break
        acknowledged = int(line)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    child.stdout.close()
    assert acknowledged >= 300, "the writer did not get going"

    check = sqlite3.connect(path)
    assert check.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    check.close()
    with Outbox(path) as box:
        stored = [int(m.payload[: len(m.payload) // 50]) for m in box.fetch("crash", 100_000)]
    assert stored[: acknowledged + 1] == list(range(acknowledged + 1))
    assert stored == list(range(len(stored)))  # nothing half-written, no gaps


def test_an_outbox_that_is_not_open_says_so(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    assert not (tmp_path / "o.db").exists()  # the constructor touches nothing
    with pytest.raises(StorageError, match=r"not open; call Outbox.open\(\)"):
        box.put(SINK, "t", "x")


def test_a_file_that_is_not_a_database_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "outbox.db"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StorageError, match="move the file away"):
        Outbox(path).open()


def test_the_default_file_is_in_the_vigil_state_folder(vigil_home: Path) -> None:
    with Outbox() as box:
        box.put(SINK, "t", "x")
        assert box.path == vigil_home / "outbox.db"
    assert (vigil_home / "outbox.db").is_file()


@pytest.mark.parametrize("bad", [0, -5])
def test_max_messages_must_be_positive(bad: int) -> None:
    with pytest.raises(ConfigError, match="max_messages"):
        Outbox("unused.db", max_messages=bad)


# --- the sink ----------------------------------------------------------------------------


def test_outbox_sink_stores_accepted_kinds_as_json(outbox: Outbox) -> None:
    sink = OutboxSink(outbox, SINK, kinds=["reminder"], topic_for=lambda e: f"x/{e.kind}")
    sink.publish(make_event(1, kind="record"))
    sink.publish(make_event(2, kind="reminder", title="Stand up"))

    [message] = outbox.fetch(SINK, 10)
    assert message.topic == "x/reminder"
    body = json.loads(message.payload)
    assert body["n"] == 2
    assert body["title"] == "Stand up"
    assert body["kind"] == "reminder"


def test_outbox_sink_refuses_data_that_is_not_json(outbox: Outbox) -> None:
    sink = OutboxSink(outbox, SINK)
    with pytest.raises(SinkError, match="not plain JSON"):
        sink.publish(make_event(1, value=float("nan")))
    assert outbox.pending() == 0


# --- backoff and batch helpers -------------------------------------------------------------


@pytest.mark.parametrize(
    ("failures", "low", "high"),
    [
        (1, 1.0, 1.0),
        (2, 1.0, 2.0),
        (3, 2.0, 4.0),
        (5, 8.0, 16.0),
        (7, 30.0, 60.0),
        (60, 30.0, 60.0),
    ],
)
def test_backoff_doubles_with_jitter_and_stays_within_bounds(
    failures: int, low: float, high: float
) -> None:
    rng = random.Random(1)
    delays = [backoff_delay(failures, 1.0, 60.0, rng) for _ in range(200)]
    assert min(delays) >= low
    assert max(delays) <= high
    if high > low:
        assert len(set(delays)) > 100  # jittered, not constant


def test_deliver_in_order_stops_at_the_first_failure() -> None:
    seen: list[int] = []

    def deliver(message: object) -> None:
        n = int(message.payload)
        if n == 2:
            raise SinkError("down")
        seen.append(n)

    class Message:
        def __init__(self, n: int) -> None:
            self.payload = str(n).encode()

    assert deliver_in_order([Message(n) for n in range(4)], deliver) == 2
    assert seen == [0, 1]
    with pytest.raises(SinkError, match="down"):
        deliver_in_order([Message(2), Message(3)], deliver)


# --- the dispatcher ------------------------------------------------------------------------


def test_dispatcher_delivers_in_batches_and_in_order(outbox: Outbox) -> None:
    put_numbers(outbox, 7)
    transport = ScriptedTransport(SINK)
    worker = dispatcher(outbox, transport, batch_size=3)
    worker.start()
    assert transport.wait_delivered(7, timeout=5)
    assert worker.stop(1.0)

    assert [numbers(call) for call in transport.calls] == [[0, 1, 2], [3, 4, 5], [6]]
    assert outbox.pending() == 0
    assert worker.delivered == 7


def test_dispatcher_wakes_at_once_when_a_message_is_put(outbox: Outbox) -> None:
    transport = ScriptedTransport(SINK)
    worker = dispatcher(outbox, transport, idle_poll_seconds=30)
    worker.start()
    time.sleep(0.1)  # let it go idle

    started = time.monotonic()
    outbox.put(SINK, "t", "1")
    assert transport.wait_delivered(1, timeout=5)
    latency = time.monotonic() - started
    worker.stop(1.0)
    assert latency < 0.5


def test_transient_failures_are_retried_with_backoff_and_counted(outbox: Outbox) -> None:
    put_numbers(outbox, 2)
    transport = ScriptedTransport(SINK, [SinkError("down"), SinkError("down"), None])
    worker = dispatcher(outbox, transport, retry_initial_seconds=0.1, retry_max_seconds=0.2)
    started = time.monotonic()
    worker.start()
    assert transport.wait_delivered(2, timeout=5)
    elapsed = time.monotonic() - started
    worker.stop(1.0)

    assert len(transport.calls) == 3
    assert transport.delivered[0].attempts == 2
    assert elapsed >= 0.2  # two pauses of at least retry_initial_seconds
    assert outbox.pending() == 0


def test_a_transport_error_that_is_not_a_sink_error_does_not_stop_delivery(
    outbox: Outbox,
) -> None:
    put_numbers(outbox, 1)
    transport = ScriptedTransport(SINK, [RuntimeError("library bug"), None])
    worker = dispatcher(outbox, transport)
    worker.start()
    assert transport.wait_delivered(1, timeout=5)
    assert worker.stop(1.0)
    assert outbox.pending() == 0


def test_partial_delivery_acks_the_front_and_resends_the_rest(outbox: Outbox) -> None:
    put_numbers(outbox, 5)
    transport = ScriptedTransport(SINK, [2, 0, None])
    worker = dispatcher(outbox, transport, batch_size=5)
    worker.start()
    assert transport.wait_delivered(5, timeout=5)
    worker.stop(1.0)

    assert [numbers(call) for call in transport.calls] == [[0, 1, 2, 3, 4], [2, 3, 4], [2, 3, 4]]
    assert numbers(transport.delivered) == [0, 1, 2, 3, 4]


def test_a_permanent_failure_dead_letters_the_head_and_delivery_goes_on(
    outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    put_numbers(outbox, 3)
    transport = ScriptedTransport(SINK, [PermanentDeliveryError("HTTP 400 Bad Request"), None])
    worker = dispatcher(outbox, transport)
    with caplog.at_level(logging.WARNING, logger="vigil.sinks.outbox"):
        worker.start()
        assert transport.wait_delivered(2, timeout=5)
        worker.stop(1.0)

    assert numbers(transport.delivered) == [1, 2]
    [letter] = outbox.dead_letters(SINK)
    assert letter.message.payload == b"0"
    assert letter.reason == "HTTP 400 Bad Request"
    assert any("moved to the dead letters" in r.getMessage() for r in caplog.records)


def test_a_whole_batch_refusal_dead_letters_the_batch_with_one_warning(
    outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    put_numbers(outbox, 3)
    refusal = PermanentDeliveryError("credentials refused", whole_batch=True)
    transport = ScriptedTransport(SINK, [refusal, refusal, None])
    worker = dispatcher(outbox, transport, batch_size=2)
    with caplog.at_level(logging.INFO, logger="vigil.sinks.outbox"):
        worker.start()
        assert wait_until(lambda: len(outbox.dead_letters(SINK)) == 3, timeout=5)
        worker.stop(1.0)

    assert [numbers(call) for call in transport.calls] == [[0, 1], [2]]
    assert [letter.message.payload for letter in outbox.dead_letters(SINK)] == [b"0", b"1", b"2"]
    assert outbox.pending(SINK) == 0
    refusals = [r for r in caplog.records if "moved to the dead letters" in r.getMessage()]
    assert [r.levelno for r in refusals] == [logging.WARNING, logging.INFO]
    assert "2 messages (1 to 2)" in refusals[0].getMessage()


def test_the_dispatcher_drops_expired_messages_instead_of_sending_them(outbox: Outbox) -> None:
    outbox.put(SINK, "t", "0", created=time.time() - 100)
    outbox.put(SINK, "t", "1")
    transport = ScriptedTransport(SINK)
    worker = dispatcher(outbox, transport, ttl_seconds=50)
    worker.start()
    assert transport.wait_delivered(1, timeout=5)
    worker.stop(1.0)

    assert numbers(transport.delivered) == [1]
    assert outbox.stats()[0].expired == 1


def test_stop_drains_what_is_pending_within_the_grace(outbox: Outbox) -> None:
    put_numbers(outbox, 250)
    transport = ScriptedTransport(SINK)
    worker = dispatcher(outbox, transport, batch_size=10)
    worker.start()
    assert worker.stop(grace_seconds=5.0)

    assert outbox.pending() == 0
    assert numbers(transport.delivered) == list(range(250))


def test_stop_gives_up_after_the_grace_and_a_new_process_delivers_the_rest(
    tmp_path: Path,
) -> None:
    path = tmp_path / "outbox.db"
    down = ScriptedTransport(SINK, [SinkError("unreachable")] * 1000)
    with Outbox(path) as box:
        put_numbers(box, 4)
        worker = dispatcher(box, down, retry_initial_seconds=0.05, retry_max_seconds=10)
        worker.start()
        assert down.wait_calls(1, timeout=5)
        started = time.monotonic()
        assert worker.stop(grace_seconds=0.3)
        assert time.monotonic() - started < 1.5
        assert box.pending() == 4

    up = ScriptedTransport(SINK)
    with Outbox(path) as reopened:
        worker = dispatcher(reopened, up)
        worker.start()
        assert up.wait_delivered(4, timeout=5)
        worker.stop(1.0)
        assert reopened.pending() == 0
    assert numbers(up.delivered) == [0, 1, 2, 3]


def test_retry_now_cuts_a_long_pause_short(outbox: Outbox) -> None:
    put_numbers(outbox, 1)
    transport = ScriptedTransport(SINK, [SinkError("not connected")])
    worker = dispatcher(outbox, transport, retry_initial_seconds=30, retry_max_seconds=30)
    worker.start()
    assert transport.wait_calls(1, timeout=5)
    started = time.monotonic()
    worker.retry_now()
    assert transport.wait_delivered(1, timeout=5)
    assert time.monotonic() - started < 1.0
    worker.stop(0.5)


@pytest.mark.parametrize(
    "options",
    [
        {"batch_size": 0},
        {"retry_initial_seconds": 0},
        {"retry_initial_seconds": 5, "retry_max_seconds": 1},
    ],
)
def test_dispatcher_settings_are_checked(outbox: Outbox, options: dict[str, float]) -> None:
    with pytest.raises(ConfigError, match="dispatcher needs"):
        Dispatcher(outbox, ScriptedTransport(SINK), **options)
