"""``vigil run posture --mqtt URL`` against a real mosquitto that goes away and comes back.

Per-second records go to ``vigil/<device>/posture/record`` with QoS 1 through the durable
outbox; ``vigil/<device>/availability`` holds a retained ``online`` during the run and
``offline`` after it.
"""

from __future__ import annotations

import json
import math
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli import VigilRunner
from tests.e2e.support import CLIP, Spawner, db_events, db_records, sqlite_url, write_yaml
from tests.services import (
    Mosquitto,
    MqttCollector,
    Received,
    free_port,
    mjpeg_stream,
    mosquitto,
    mqtt_subscriber,
)

pytestmark = pytest.mark.timeout(120)

DEVICE = "e2e-cam"
RECORDS = f"vigil/{DEVICE}/posture/record"
AVAILABILITY = f"vigil/{DEVICE}/availability"
OUTAGE_SECONDS = 4.0
WAIT_SECONDS = 30.0


def mqtt_config(tmp_path: Path, url: str) -> Path:
    """Quick reconnects and retries, so an outage of seconds is bridged within seconds."""
    return write_yaml(
        tmp_path / "vigil.yaml",
        {
            "records": {"roll_seconds": 0},
            "sinks": {
                "mqtt": {"url": url, "reconnect_max_seconds": 1, "publish_timeout_seconds": 2},
                "outbox": {
                    "path": str(tmp_path / "outbox.db"),
                    "retry_initial_seconds": 0.1,
                    "retry_max_seconds": 0.5,
                },
            },
        },
    )


def record_stamps(messages: list[Received]) -> list[float]:
    """Timestamps of the records received, each once, in the order they first arrived."""
    stamps: list[float] = []
    for message in messages:
        stamp = float(message.json()["timestamp"])
        if stamp not in stamps:
            stamps.append(stamp)
    return stamps


def retained(broker: Mosquitto, topic: str) -> Received:
    """The message a new subscriber gets at once on ``topic``."""
    with mqtt_subscriber(broker, topic) as fresh:
        assert fresh.wait_for_count(1, timeout=5), f"nothing retained on {topic}"
        return fresh.on(topic)[0]


def wait_for_records(
    watcher: MqttCollector, condition: Callable[[list[float]], bool], what: str
) -> None:
    """Wait until the record timestamps received so far meet ``condition``."""
    ok = watcher.wait_for(lambda _: condition(record_stamps(watcher.on(RECORDS))), WAIT_SECONDS)
    assert ok, f"{what}; got {len(watcher.on(RECORDS))} records"


def test_every_record_reaches_the_broker_across_an_outage(spawn: Spawner, tmp_path: Path) -> None:
    database = tmp_path / "vigil.db"
    with (
        mosquitto(directory=tmp_path / "broker", persistence=True) as broker,
        mjpeg_stream(fps=25) as camera,
        mqtt_subscriber(
            broker, f"vigil/{DEVICE}/#", client_id="e2e-watcher", clean_session=False
        ) as watcher,
    ):
        config = mqtt_config(tmp_path, "mqtt://unused.invalid:1883")  # --mqtt wins over it
        run = spawn(
            "run", "posture", "--source", camera.url(), "--config", config,
            "--mqtt", broker.url, "--device-id", DEVICE, "--database", sqlite_url(database),
        )  # fmt: skip
        wait_for_records(watcher, lambda s: len(s) >= 2, "no records before the outage")
        online = retained(broker, AVAILABILITY)
        assert (online.payload, online.retain) == (b"online", True)

        broker.stop()
        outage_started = time.time()
        time.sleep(OUTAGE_SECONDS)
        assert run.running, run.stderr()
        broker.start()
        outage_ended = time.time()

        wait_for_records(
            watcher, lambda s: s[-1] > outage_ended + 1, "no records after the broker came back"
        )
        result = run.wait_after(signal.SIGTERM, timeout=20)
        assert result.status == 0, result.stderr
        stored = [r["ts"] for r in db_records(database, DEVICE)]
        wait_for_records(watcher, lambda s: len(s) >= len(stored), "records missing")
        assert watcher.wait_for(
            lambda _: watcher.on(AVAILABILITY)[-1].payload == b"offline", timeout=5
        )
        offline = retained(broker, AVAILABILITY)

    assert record_stamps(watcher.on(RECORDS)) == stored
    during = [ts for ts in stored if outage_started + 1 <= ts <= outage_ended - 1]
    assert during, "no record was taken while the broker was down"
    messages = watcher.on(RECORDS)
    assert {m.qos for m in messages} == {1}
    first = messages[0].json()
    assert (first["kind"], first["device_id"], first["app"]) == ("record", DEVICE, "posture")
    assert "wait in the outbox" not in result.stdout
    assert (offline.payload, offline.retain) == (b"offline", True)


def test_an_unreachable_broker_leaves_the_messages_in_the_outbox(
    vigil: VigilRunner, shared_data: Path, tmp_path: Path
) -> None:
    port = free_port()
    database, config = tmp_path / "vigil.db", mqtt_config(tmp_path, f"mqtt://127.0.0.1:{port}")
    frames = 30
    result = vigil(
        "run", "posture", "--source", shared_data / CLIP, "--config", config,
        "--mqtt", f"mqtt://127.0.0.1:{port}", "--device-id", DEVICE,
        "--database", sqlite_url(database), "--max-frames", frames,
        "--start-time", "2026-11-21T09:00:00",
    )  # fmt: skip
    assert result.status == 0, result.stderr
    assert "Traceback" not in result.stderr
    records = db_records(database, DEVICE)
    assert len(records) == math.ceil(frames / records[0]["fps"])
    events = len(records) + len(db_events(database, "state"))
    assert f"{events} network messages wait in the outbox for the next run" in result.stdout

    waiting = vigil("outbox", "--config", config)
    assert re.search(rf"^mqtt: {events} pending\b", waiting.stdout, re.M), waiting.stdout

    with (
        mosquitto(port, directory=tmp_path / "broker") as broker,
        mqtt_subscriber(broker, RECORDS) as watcher,
    ):
        later = vigil(
            "run", "posture", "--source", shared_data / CLIP, "--config", config,
            "--mqtt", broker.url, "--device-id", DEVICE, "--database", sqlite_url(database),
            "--max-frames", 10, "--start-time", "2026-11-21T10:00:00",
        )  # fmt: skip
        stored = [r["ts"] for r in db_records(database, DEVICE)]
        assert watcher.wait_for_count(len(stored), timeout=10, topic=RECORDS)
    assert later.status == 0, later.stderr
    assert "wait in the outbox" not in later.stdout
    assert [json.loads(m.payload)["timestamp"] for m in watcher.on(RECORDS)] == stored
