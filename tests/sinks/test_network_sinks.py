"""The network sinks config and NetworkSinks: every sink at once over one outbox."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from tests.services import Mosquitto, MotoS3, http_capture_server, mqtt_subscriber, wait_until
from tests.sinks.support import make_event, reminder, sinks_config
from vigil.config import load_config
from vigil.errors import ConfigError
from vigil.sinks.config import NetworkSinksConfig
from vigil.sinks.network import NetworkSinks

FULL_CONFIG = """\
mqtt:
  url: mqtt://vigil:${MQTT_PASSWORD}@broker.local:1884
  topic_prefix: home/vigil
  kinds: [record, reminder]
  tls: {insecure: false}
webhooks:
  - name: alerts
    url: https://example.com/hook
    headers: {Authorization: Bearer abc}
  - name: everything
    url: http://nas.local:8080/vigil
    kinds: null
notify:
  urls: ["ntfy://ntfy.sh/my-desk"]
upload:
  bucket: vigil-records
  prefix: desk-1/
  access_key_id: AKIA
  secret_access_key: shh
outbox:
  max_messages: 5000
  ttl_hours: 24
"""


def test_a_full_config_file_loads_with_defaults_filled_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MQTT_PASSWORD", "pw")
    path = tmp_path / "sinks.yaml"
    path.write_text(FULL_CONFIG)

    config = load_config(NetworkSinksConfig, path)

    assert config.mqtt is not None
    assert config.mqtt.url == "mqtt://vigil:pw@broker.local:1884"
    assert (config.mqtt.qos, config.mqtt.topic_prefix) == (1, "home/vigil")
    assert [w.kinds for w in config.webhooks] == [["reminder"], None]
    assert config.notify is not None
    assert config.notify.kinds == ["reminder"]
    assert config.upload is not None
    assert config.upload.secret_access_key is not None
    assert "shh" not in repr(config.upload)
    assert config.outbox.ttl_seconds == 24 * 3600
    assert (config.outbox.retry_initial_seconds, config.outbox.retry_max_seconds) == (1.0, 60.0)


def test_an_empty_config_turns_every_network_sink_off(tmp_path: Path) -> None:
    config = NetworkSinksConfig()
    sinks = NetworkSinks(config, device_id="desk-1")
    assert (sinks.sinks, sinks.transports) == ([], [])
    assert config.outbox.max_messages == 100_000
    assert config.outbox.ttl_hours == 168


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ("mqtt:\n  url: mqtt://b\n  qos: 3\n", r"line 3: 'mqtt.qos'"),
        (
            "mqtt:\n  url: mqtt://b\n  topic_prefx: x\n",
            r"unknown field 'mqtt.topic_prefx'; did you",
        ),
        ("mqtt:\n  url: mqtt://b\n  topic_prefix: a/#\n", r"'mqtt.topic_prefix'"),
        ("webhooks:\n  - {name: a, url: 'ftp://x.org/hook'}\n", r"'webhooks.0.url'.*http"),
        ("webhooks:\n  - {name: 'bad name', url: 'http://x'}\n", r"'webhooks.0.name'"),
        (
            "webhooks:\n  - {name: a, url: 'http://x'}\n  - {name: a, url: 'http://y'}\n",
            "webhook names must be unique; repeated: a",
        ),
        ("upload:\n  bucket: ab\n", r"'upload.bucket'"),
        ("upload:\n  bucket: abc\n  access_key_id: k\n", "access_key_id and secret_access_key"),
        ("outbox:\n  max_messages: 0\n", r"'outbox.max_messages'"),
        ("outbox:\n  ttl_hours: 0\n", r"'outbox.ttl_hours'"),
        (
            "outbox:\n  retry_initial_seconds: 10\n  retry_max_seconds: 5\n",
            "retry_max_seconds must be at least retry_initial_seconds",
        ),
        ("notify:\n  urls: [ntfy://x]\n  kinds: ['']\n", "event kinds must be non-empty"),
        ("mqtt:\n  url: mqtt://b\n  tls: {cert_file: c.pem}\n", "cert_file and key_file together"),
    ],
)
def test_bad_sections_are_config_errors_that_name_the_field(
    tmp_path: Path, yaml_text: str, message: str
) -> None:
    path = tmp_path / "sinks.yaml"
    path.write_text(yaml_text)
    with pytest.raises(ConfigError, match=message):
        load_config(NetworkSinksConfig, path)


def test_building_touches_nothing_and_start_uses_the_state_folder(vigil_home: Path) -> None:
    config = NetworkSinksConfig.model_validate(
        {"webhooks": [{"name": "a", "url": "http://127.0.0.1:9/hook"}]}
    )
    sinks = NetworkSinks(config, device_id="desk-1")
    assert not (vigil_home / "outbox.db").exists()
    sinks.close()  # closing what never started is fine

    sinks.start()
    try:
        assert sinks.start() is sinks  # starting twice is harmless
        assert sinks.outbox.path == vigil_home / "outbox.db"
        assert (vigil_home / "outbox.db").is_file()
    finally:
        sinks.close(grace_seconds=0)
    assert not sinks.outbox.is_open


def test_every_sink_gets_its_kinds_over_one_outbox(
    tmp_path: Path, broker: Mosquitto, s3: MotoS3
) -> None:
    prefix = f"all{uuid.uuid4().hex[:8]}"
    bucket = f"all-{uuid.uuid4().hex[:8]}"
    client = s3.client()
    client.create_bucket(Bucket=bucket)
    client.close()
    clip = tmp_path / "clip.csv"
    clip.write_text("a,b\n1,2\n")
    with http_capture_server() as web, mqtt_subscriber(broker, f"{prefix}/#") as subscriber:
        config = sinks_config(
            tmp_path,
            mqtt={"url": broker.url, "topic_prefix": prefix, "kinds": ["record"]},
            webhooks=[{"name": "alerts", "url": f"{web.url}/alerts"}],
            notify={"urls": [f"json://127.0.0.1:{web.port}/notify"]},
            upload={
                "bucket": bucket,
                "endpoint_url": s3.endpoint_url,
                "access_key_id": s3.access_key_id,
                "secret_access_key": s3.secret_access_key,
                "region": s3.region,
            },
        )
        with NetworkSinks(config, device_id="desk-1") as sinks:
            assert [t.name for t in sinks.transports] == [
                "mqtt",
                "webhook:alerts",
                "notify:json",
                "s3",
            ]
            for sink in sinks.sinks:
                sink.publish(make_event(1))
                sink.publish(reminder(2))
            sinks.enqueue_upload(clip, "clips/clip.csv")
            assert wait_until(lambda: sinks.outbox.pending() == 0, timeout=10)
            assert subscriber.wait_for_count(1, timeout=5, topic=f"{prefix}/desk-1/posture/record")
            requests = web.wait_for_requests(2, timeout=5)

    assert sorted(r.path for r in requests) == ["/alerts", "/notify"]
    assert {r.json().get("n", r.json().get("message")) for r in requests} == {
        2,
        "You have been sitting for 32 minutes.",
    }
    assert [
        m.topic.rsplit("/", 1)[1] for m in subscriber.on() if "availability" not in m.topic
    ] == ["record"]
    client = s3.client()
    body = client.get_object(Bucket=bucket, Key="clips/clip.csv")["Body"].read()
    client.close()
    assert body == b"a,b\n1,2\n"
