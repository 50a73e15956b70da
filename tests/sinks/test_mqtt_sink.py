"""MQTT publishing against a real mosquitto broker on loopback."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from tests.services import (
    Mosquitto,
    MqttCollector,
    free_port,
    mosquitto,
    mqtt_subscriber,
    self_signed_tls,
    wait_until,
)
from tests.sinks.support import make_event, reminder, sinks_config
from vigil.config import load_config
from vigil.errors import ConfigError
from vigil.sinks.config import MqttTlsConfig, NetworkSinksConfig, parse_broker_url
from vigil.sinks.mqtt import MqttTransport, topic_segment
from vigil.sinks.network import NetworkSinks
from vigil.sinks.outbox import Outbox


@pytest.fixture
def prefix() -> str:
    """A topic prefix of this test alone (retained messages stay on the shared broker)."""
    return f"t{uuid.uuid4().hex[:10]}"


def mqtt_sinks(tmp_path: Path, url: str, device: str = "desk-1", **mqtt: Any) -> NetworkSinks:
    settings = {"url": url, "reconnect_max_seconds": 1, "publish_timeout_seconds": 2, **mqtt}
    return NetworkSinks(sinks_config(tmp_path, mqtt=settings), device_id=device)


def first_occurrences(values: list[int]) -> list[int]:
    return list(dict.fromkeys(values))


def test_records_and_reminders_arrive_on_their_topics_with_qos_1(
    tmp_path: Path, broker: Mosquitto, prefix: str
) -> None:
    with (
        mqtt_subscriber(broker, f"{prefix}/#") as subscriber,
        mqtt_sinks(tmp_path, broker.url, topic_prefix=prefix) as sinks,
    ):
        [sink] = sinks.sinks
        for n in range(20):
            sink.publish(make_event(n))
        sink.publish(reminder(20))
        record_topic = f"{prefix}/desk-1/posture/record"
        assert subscriber.wait_for_count(20, timeout=10, topic=record_topic)
        assert subscriber.wait_for_count(1, timeout=5, topic=f"{prefix}/desk-1/posture/reminder")
        assert wait_until(lambda: sinks.outbox.pending() == 0, timeout=5)

    records = subscriber.on(record_topic)
    assert [m.json()["n"] for m in records] == list(range(20))
    assert {m.qos for m in records} == {1}
    assert records[3].json() == make_event(3).to_dict()
    [alert] = subscriber.on(f"{prefix}/desk-1/posture/reminder")
    assert alert.json()["title"] == "Time to stand up"
    assert alert.json()["message"] == "You have been sitting for 50 minutes."


def test_only_the_configured_kinds_are_published(
    tmp_path: Path, broker: Mosquitto, prefix: str
) -> None:
    with (
        mqtt_subscriber(broker, f"{prefix}/desk-1/posture/#") as subscriber,
        mqtt_sinks(tmp_path, broker.url, topic_prefix=prefix, kinds=["reminder"]) as sinks,
    ):
        sinks.sinks[0].publish(make_event(1))
        sinks.sinks[0].publish(reminder(2))
        assert subscriber.wait_for_count(1, timeout=5)
        assert sinks.outbox.pending() == 0

    assert [m.topic.rsplit("/", 1)[1] for m in subscriber.on()] == ["reminder"]


def test_availability_is_retained_online_then_offline_after_close(
    tmp_path: Path, broker: Mosquitto, prefix: str
) -> None:
    topic = f"{prefix}/cam-7/availability"
    sinks = mqtt_sinks(tmp_path, broker.url, device="cam-7", topic_prefix=prefix).start()
    try:
        transport = sinks.transports[0]
        assert isinstance(transport, MqttTransport)
        assert transport.availability_topic == topic
        assert wait_until(lambda: transport.connected, timeout=5)
        with mqtt_subscriber(broker, topic) as late_subscriber:  # joins after the fact
            assert late_subscriber.wait_for_count(1, timeout=5)
            [online] = late_subscriber.on()
    finally:
        sinks.close(grace_seconds=1)
    assert (online.payload, online.retain) == (b"online", True)

    with mqtt_subscriber(broker, topic) as after_close:
        assert after_close.wait_for_count(1, timeout=5)
        [offline] = after_close.on()
    assert (offline.payload, offline.retain) == (b"offline", True)


CRASHING_CLIENT = textwrap.dedent(
    """
    import sys, time
    from vigil.sinks.mqtt import MqttTransport
    transport = MqttTransport(sys.argv[1], device_id="crashy", topic_prefix=sys.argv[2])
    transport.open()
    deadline = time.monotonic() + 10
    while not transport.connected and time.monotonic() < deadline:
        time.sleep(0.02)
    print("connected" if transport.connected else "not connected", flush=True)
    time.sleep(60)
    """
)


def test_the_last_will_says_offline_when_the_process_is_killed(
    broker: Mosquitto, prefix: str
) -> None:
    topic = f"{prefix}/crashy/availability"
    with mqtt_subscriber(broker, topic) as subscriber:
        child = subprocess.Popen(
            [sys.executable, "-c", CRASHING_CLIENT, broker.url, prefix],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "connected"
            assert subscriber.wait_for_count(1, timeout=5)
            child.kill()  # SIGKILL: no clean disconnect, no "offline" from the client itself
            child.wait(5)
            assert subscriber.wait_for_count(2, timeout=5)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait(5)
            if child.stdout is not None:
                child.stdout.close()
    assert [(m.payload, m.retain) for m in subscriber.on()] == [
        (b"online", False),  # live delivery to an existing subscriber is not flagged retained
        (b"offline", False),
    ]


def test_nothing_is_lost_while_the_broker_is_down_and_order_holds(
    tmp_path: Path, prefix: str
) -> None:
    record_topic = f"{prefix}/desk-1/posture/record"
    with (
        mosquitto(directory=tmp_path / "broker", persistence=True) as broker,
        # a persistent session: the broker queues for it while it reconnects after the restart
        mqtt_subscriber(
            broker, f"{prefix}/#", client_id=f"{prefix}-sub", clean_session=False
        ) as subscriber,
    ):
        sinks = mqtt_sinks(tmp_path, broker.url, topic_prefix=prefix).start()
        try:
            held = publish_across_an_outage(sinks, broker, subscriber, record_topic)
            assert wait_until(lambda: sinks.outbox.pending() == 0, timeout=5)
        finally:
            sinks.close(grace_seconds=1)

    received = [m.json()["n"] for m in subscriber.on(record_topic)]
    assert held >= 15  # the outbox, not the client library, kept them during the outage
    assert first_occurrences(received) == list(range(40))


def publish_across_an_outage(
    sinks: NetworkSinks, broker: Mosquitto, subscriber: MqttCollector, topic: str
) -> int:
    """Publish 0-9, stop the broker for 3 s while publishing 10-29, restart, publish 30-39.

    Returns how many messages the outbox held just before the restart.
    """
    publish = sinks.sinks[0].publish
    for n in range(10):
        publish(make_event(n))
    assert subscriber.wait_for_count(10, timeout=10, topic=topic)
    broker.stop()  # stands for a long outage
    for n in range(10, 30):
        publish(make_event(n))
        time.sleep(0.15)
    held = sinks.outbox.pending("mqtt")
    broker.start()
    for n in range(30, 40):
        publish(make_event(n))
    everything = set(range(40))
    arrived = subscriber.wait_for(
        lambda messages: {m.json()["n"] for m in messages if m.topic == topic} >= everything,
        timeout=20,
    )
    assert arrived, f"only {len({m.payload for m in subscriber.on(topic)})} of 40 arrived"
    return held


def test_tls_with_the_brokers_ca_delivers(tmp_path: Path, prefix: str) -> None:
    files = self_signed_tls(tmp_path)
    with (
        mosquitto(directory=tmp_path / "broker", tls=files) as broker,
        mqtt_subscriber(broker, f"{prefix}/#") as subscriber,  # on the plain listener
        mqtt_sinks(
            tmp_path, broker.tls_url, topic_prefix=prefix, tls={"ca_file": str(files.ca_file)}
        ) as sinks,
    ):
        sinks.sinks[0].publish(make_event(7))
        assert subscriber.wait_for_count(1, timeout=10, topic=f"{prefix}/desk-1/posture/record")
    assert subscriber.on(f"{prefix}/desk-1/posture/record")[0].json()["n"] == 7


# paho-mqtt drops (without closing) the socket of a failed TLS handshake; Python closes it.
@pytest.mark.filterwarnings(
    "ignore:Exception ignored in. <ssl.SSLSocket:pytest.PytestUnraisableExceptionWarning"
)
def test_tls_with_an_untrusted_certificate_keeps_the_messages(tmp_path: Path) -> None:
    files = self_signed_tls(tmp_path)
    with mosquitto(directory=tmp_path / "broker", tls=files) as broker:
        sinks = mqtt_sinks(tmp_path, broker.tls_url).start()  # system CAs: not trusted
        try:
            sinks.sinks[0].publish(make_event(1))
            time.sleep(0.5)
            transport = sinks.transports[0]
            assert isinstance(transport, MqttTransport)
            assert not transport.connected
            assert sinks.outbox.pending("mqtt") == 1
        finally:
            sinks.close(grace_seconds=0.2)


@pytest.mark.parametrize(("password", "delivered"), [("s3cret", True), ("wrong", False)])
def test_broker_credentials_come_from_the_url(
    tmp_path: Path, prefix: str, caplog: pytest.LogCaptureFixture, password: str, delivered: bool
) -> None:
    users = {"vigil": "s3cret", "reader": "r"}
    with (
        mosquitto(directory=tmp_path / "broker", users=users) as broker,
        mqtt_subscriber(broker, f"{prefix}/#", username="reader", password="r") as subscriber,
    ):
        url = f"mqtt://vigil:{password}@127.0.0.1:{broker.port}"
        sinks = mqtt_sinks(tmp_path, url, topic_prefix=prefix).start()
        try:
            sinks.sinks[0].publish(make_event(1))
            arrived = subscriber.wait_for_count(
                1, timeout=5 if delivered else 1, topic=f"{prefix}/desk-1/posture/record"
            )
            pending = sinks.outbox.pending("mqtt")
        finally:
            sinks.close(grace_seconds=0.2)

    assert arrived is delivered
    assert pending == (0 if delivered else 1)
    refused = [r.getMessage() for r in caplog.records if "refused the connection" in r.getMessage()]
    assert bool(refused) is not delivered
    assert all("wrong" not in line and "s3cret" not in line for line in refused)


def test_a_message_counts_as_delivered_only_when_the_broker_acknowledged_it(
    tmp_path: Path, prefix: str
) -> None:
    topic = f"{prefix}/desk-1/posture/record"
    with (
        mosquitto(directory=tmp_path / "broker") as broker,
        mqtt_subscriber(broker, topic) as subscriber,
        mqtt_sinks(tmp_path, broker.url, topic_prefix=prefix, publish_timeout_seconds=0.3) as sinks,
    ):
        transport = sinks.transports[0]
        assert isinstance(transport, MqttTransport)
        assert wait_until(lambda: transport.connected, timeout=5)
        broker.pause()  # the connection stays up, but no PUBACK comes back
        try:
            for n in range(3):
                sinks.sinks[0].publish(make_event(n))
            time.sleep(1.0)  # several publish timeouts
            unacknowledged = sinks.outbox.pending("mqtt")
        finally:
            broker.resume()
        assert subscriber.wait_for_count(3, timeout=10)
        assert wait_until(lambda: sinks.outbox.pending() == 0, timeout=5)

    assert unacknowledged == 3
    assert first_occurrences([m.json()["n"] for m in subscriber.on()]) == [0, 1, 2]


def test_an_unreachable_broker_keeps_messages_in_the_outbox(tmp_path: Path) -> None:
    url = f"mqtt://127.0.0.1:{free_port()}"
    sinks = mqtt_sinks(tmp_path, url).start()
    for n in range(5):
        sinks.sinks[0].publish(make_event(n))  # never raises, never blocks
    time.sleep(0.5)
    assert sinks.outbox.pending("mqtt") == 5
    started = time.monotonic()
    sinks.close(grace_seconds=0.3)
    assert time.monotonic() - started < 3

    with Outbox(tmp_path / "outbox.db") as reopened:
        assert [m.payload for m in reopened.fetch("mqtt", 10)] == [
            make_event(n).to_json().encode() for n in range(5)
        ]


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://broker:1883", "must start with mqtt:// or mqtts://"),
        ("mqtt://", "has no host"),
        ("mqtt://broker:port", "port that is not a number"),
        ("mqtt://broker:0", "port 0"),
        ("mqtt://user:hunter2@broker:99999", "port that is not a number"),
        ("mqtt://broker:1883/topic", "must not have a path"),
    ],
)
def test_bad_broker_urls_are_config_errors_without_the_password(url: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as caught:
        MqttTransport(url, device_id="desk-1")
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("mqtt://broker", ("broker", 1883, False, None, None)),
        ("mqtts://broker", ("broker", 8883, True, None, None)),
        ("mqtt://me:p%40ss@10.0.0.2:1884", ("10.0.0.2", 1884, False, "me", "p@ss")),
        ("mqtts://me@broker:8884", ("broker", 8884, True, "me", None)),
    ],
)
def test_broker_urls_give_host_port_tls_and_login(url: str, expected: tuple[Any, ...]) -> None:
    address = parse_broker_url(url)
    assert (address.host, address.port, address.tls, address.username, address.password) == (
        expected
    )


def test_a_bad_broker_url_in_a_config_file_names_the_line(tmp_path: Path) -> None:
    path = tmp_path / "sinks.yaml"
    path.write_text("outbox:\n  batch_size: 10\nmqtt:\n  url: ftp://broker\n")
    with pytest.raises(ConfigError, match=r"line 4: 'mqtt.url'.*mqtt:// or mqtts://"):
        load_config(NetworkSinksConfig, path)


def test_missing_tls_files_are_a_config_error_at_open(tmp_path: Path) -> None:
    tls = MqttTlsConfig(ca_file=tmp_path / "missing-ca.pem")
    transport = MqttTransport(f"mqtts://127.0.0.1:{free_port()}", device_id="d", tls=tls)
    with pytest.raises(ConfigError, match="cannot load the MQTT TLS files"):
        transport.open()
    transport.close()


@pytest.mark.parametrize(
    ("device", "app", "kind", "topic"),
    [
        ("desk-1", "posture", "record", "vigil/desk-1/posture/record"),
        ("desk-1", "posture", "reminder", "vigil/desk-1/posture/reminder"),
        ("lab/cam+1", "ppe", "alert#2", "vigil/lab_cam_1/ppe/alert_2"),
        ("", "detect", "state", "vigil/_/detect/state"),
    ],
)
def test_event_topics_are_prefix_device_app_kind(
    device: str, app: str, kind: str, topic: str
) -> None:
    transport = MqttTransport("mqtt://broker", device_id="desk-1")
    event = make_event(1, kind=kind, app=app, device=device)
    assert transport.topic_for(event) == topic
    assert topic_segment("a/b") == "a_b"
