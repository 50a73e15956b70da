"""The hub sink against a real HTTP server on loopback that plays the hub's ingest endpoint."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services import (
    CapturedRequest,
    CaptureServer,
    free_port,
    http_capture_server,
    wait_until,
)
from tests.sinks.support import make_event, reminder, sinks_config
from vigil.config import load_config
from vigil.errors import ConfigError, PermanentDeliveryError
from vigil.events import Event
from vigil.sinks.base import OutboxMessage
from vigil.sinks.config import HubConfig, NetworkSinksConfig
from vigil.sinks.hub import HubTransport, hub_endpoint
from vigil.sinks.network import NetworkSinks, outbox_status

DEVICE = "desk-1"
SINK = f"hub:{DEVICE}"
TOKEN = "vgt_s3cret-device-token"
WAIT = 5.0


class LogLines(logging.Handler):
    """Collects the messages of one logger, whatever the root logger's setup."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def at(self, level: int) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno == level]

    def text(self) -> str:
        return "\n".join(r.getMessage() for r in self.records)


@pytest.fixture
def logs() -> Iterator[LogLines]:
    """What the hub transport and the outbox dispatcher log."""
    handler = LogLines()
    loggers = [logging.getLogger(name) for name in ("vigil.sinks.hub", "vigil.sinks.outbox")]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    yield handler
    for logger, level in zip(loggers, levels, strict=True):
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def hub() -> Iterator[CaptureServer]:
    with http_capture_server() as running:
        yield running


def hub_sinks(tmp_path: Path, url: str, **hub: Any) -> NetworkSinks:
    outbox = hub.pop("outbox", {})
    settings = {"url": url, "token": TOKEN, "timeout_seconds": 2, **hub}
    return NetworkSinks(sinks_config(tmp_path, hub=settings, outbox=outbox), device_id=DEVICE)


def publish(sinks: NetworkSinks, *events: Event) -> None:
    [sink] = sinks.sinks
    for event in events:
        sink.publish(event)


def numbers(request: CapturedRequest) -> list[int]:
    return [event["n"] for event in request.json()["events"]]


def ids(request: CapturedRequest) -> list[Any]:
    return [event["id"] for event in request.json()["events"]]


def settle(sinks: NetworkSinks, dead: int = 0) -> None:
    """Wait until nothing is pending; check how many messages went to the dead letters."""
    assert wait_until(lambda: sinks.outbox.pending() == 0, timeout=WAIT), sinks.stats()
    assert len(sinks.outbox.dead_letters()) == dead


# --- delivery ---------------------------------------------------------------------------


def test_events_are_posted_in_one_batch_with_the_token_and_their_ids(
    tmp_path: Path, hub: CaptureServer
) -> None:
    sinks = hub_sinks(tmp_path, hub.url)
    sinks.outbox.open()
    publish(sinks, make_event(1), reminder(2), make_event(3, kind="state", state="sitting"))
    with sinks:
        [request] = hub.wait_for_requests(1, timeout=WAIT)
        settle(sinks)

    assert (request.method, request.path) == ("POST", "/api/ingest")
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert request.headers["content-type"] == "application/json"
    body = request.json()
    assert body["device_id"] == DEVICE
    expected = [make_event(1), reminder(2), make_event(3, kind="state", state="sitting")]
    assert [{k: v for k, v in e.items() if k != "id"} for e in body["events"]] == [
        e.to_dict() for e in expected
    ]
    assert len(set(ids(request))) == 3


def test_a_hub_address_with_a_path_prefix_keeps_it(tmp_path: Path, hub: CaptureServer) -> None:
    with hub_sinks(tmp_path, f"{hub.url}/vigil/") as sinks:
        publish(sinks, make_event(1))
        [request] = hub.wait_for_requests(1, timeout=WAIT)
    assert request.path == "/vigil/api/ingest"
    assert hub_endpoint("http://h:1/", "/api/x") == hub_endpoint("http://h:1", "api/x")


def test_batches_hold_at_most_batch_size_events_in_order(
    tmp_path: Path, hub: CaptureServer
) -> None:
    sinks = hub_sinks(tmp_path, hub.url, batch_size=3)
    sinks.outbox.open()
    publish(sinks, *(make_event(n) for n in range(7)))
    with sinks:
        requests = hub.wait_for_requests(3, timeout=WAIT)
        settle(sinks)
    assert [numbers(r) for r in requests] == [[0, 1, 2], [3, 4, 5], [6]]


def test_only_the_configured_kinds_are_sent(tmp_path: Path, hub: CaptureServer) -> None:
    with hub_sinks(tmp_path, hub.url, kinds=["reminder"]) as sinks:
        publish(sinks, make_event(1), reminder(2), make_event(3))
        [request] = hub.wait_for_requests(1, timeout=WAIT)
        settle(sinks)
    assert [e["kind"] for e in request.json()["events"]] == ["reminder"]


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 404, 301])
def test_a_busy_or_misaddressed_hub_is_retried_with_the_same_ids(
    tmp_path: Path, hub: CaptureServer, status: int
) -> None:
    hub.respond_with(status, status)
    sinks = hub_sinks(tmp_path, hub.url)
    sinks.outbox.open()
    publish(sinks, *(make_event(n) for n in range(3)))
    with sinks:
        requests = hub.wait_for_requests(3, timeout=WAIT)
        settle(sinks)
    assert [numbers(r) for r in requests] == [[0, 1, 2]] * 3
    assert ids(requests[0]) == ids(requests[1]) == ids(requests[2])


def test_every_message_has_its_own_id_across_batches(tmp_path: Path, hub: CaptureServer) -> None:
    with hub_sinks(tmp_path, hub.url, batch_size=2) as sinks:
        for n in range(5):
            publish(sinks, make_event(n))
        assert wait_until(lambda: sinks.outbox.pending() == 0, timeout=WAIT)
    sent = [event_id for request in hub.requests for event_id in ids(request)]
    assert len(sent) == len(set(sent)) == 5


def test_a_too_large_batch_is_split_until_the_hub_takes_it(
    tmp_path: Path, hub: CaptureServer
) -> None:
    hub.respond_with(413, 413)  # 8 events: too large; 4: too large; then 2 at a time
    sinks = hub_sinks(tmp_path, hub.url)
    sinks.outbox.open()
    publish(sinks, *(make_event(n) for n in range(8)))
    with sinks:
        requests = hub.wait_for_requests(6, timeout=WAIT)
        settle(sinks)
    assert [numbers(r) for r in requests] == [
        list(range(8)),
        [0, 1, 2, 3],
        [0, 1],
        [2, 3],
        [4, 5],
        [6, 7],
    ]


@pytest.mark.parametrize("status", [413, 400, 422])
def test_one_event_the_hub_cannot_take_is_dead_lettered_alone(
    tmp_path: Path, hub: CaptureServer, status: int
) -> None:
    hub.respond_with(status, status, status)  # 4 events, 2, then the first one alone
    sinks = hub_sinks(tmp_path, hub.url)
    sinks.outbox.open()
    publish(sinks, *(make_event(n) for n in range(4)))
    with sinks:
        requests = hub.wait_for_requests(4, timeout=WAIT)
        settle(sinks, dead=1)
        [letter] = sinks.outbox.dead_letters(SINK)
    assert [numbers(r) for r in requests] == [[0, 1, 2, 3], [0, 1], [0], [1, 2, 3]]
    assert b'"n":0' in letter.message.payload
    assert f"answered HTTP {status}" in letter.reason


def test_a_split_batch_delivers_what_went_before_a_failure(
    tmp_path: Path, hub: CaptureServer
) -> None:
    hub.respond_with(413, 200, 503)  # 4 too large; [0, 1] delivered; [2, 3] hub busy
    sinks = hub_sinks(tmp_path, hub.url)
    sinks.outbox.open()
    publish(sinks, *(make_event(n) for n in range(4)))
    with sinks:
        requests = hub.wait_for_requests(4, timeout=WAIT)
        settle(sinks)
    assert [numbers(r) for r in requests] == [[0, 1, 2, 3], [0, 1], [2, 3], [2, 3]]


@pytest.mark.parametrize("status", [401, 403])
def test_a_refused_token_dead_letters_everything_with_one_warning(
    tmp_path: Path, hub: CaptureServer, logs: LogLines, status: int
) -> None:
    hub.default_status = status
    with hub_sinks(tmp_path, hub.url) as sinks:
        for n in range(4):  # one request each: the run keeps going
            publish(sinks, make_event(n))
            assert wait_until(lambda: sinks.outbox.pending() == 0, timeout=WAIT)
        letters = sinks.outbox.dead_letters(SINK)
        hub.default_status = 200
        publish(sinks, reminder(9))
        settle(sinks, dead=4)

    assert [numbers(r) for r in hub.requests] == [[0], [1], [2], [3], [9]]
    assert [letter.message.payload.count(b'"n":') for letter in letters] == [1, 1, 1, 1]
    assert all("token is wrong or revoked" in letter.reason for letter in letters)
    [warning] = logs.at(logging.WARNING)
    assert warning.startswith(f"{SINK}: the hub at {hub.url} refused the device token of 'desk-1'")
    assert f"(HTTP {status})" in warning
    assert "vigil hub token create desk-1" in warning
    assert any("accepts the device token again" in line for line in logs.at(logging.INFO))
    assert TOKEN not in logs.text()
    assert all(TOKEN not in letter.reason for letter in letters)


def test_vigil_outbox_shows_the_refused_messages(
    tmp_path: Path, hub: CaptureServer, vigil_home: Path
) -> None:
    hub.default_status = 401
    with hub_sinks(tmp_path, hub.url) as sinks:
        publish(sinks, make_event(1), make_event(2))
        assert wait_until(lambda: len(sinks.outbox.dead_letters()) == 2, timeout=WAIT)
    [line] = outbox_status(sinks.config.outbox)
    assert line.startswith(f"{SINK}: 0 pending")
    assert line.endswith("; 2 dead letters")


def test_an_unreachable_hub_keeps_the_messages(tmp_path: Path, logs: LogLines) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    sinks = hub_sinks(tmp_path, url).start()
    try:
        publish(sinks, make_event(1), make_event(2))
        time.sleep(0.5)  # several failed attempts
        [stats] = sinks.stats()
    finally:
        sinks.close(grace_seconds=0.2)
    assert (stats.sink, stats.pending, stats.dead) == (SINK, 2, 0)
    [warning] = logs.at(logging.WARNING)
    assert f"the hub at {url} is unreachable" in warning
    assert TOKEN not in logs.text()


def test_messages_kept_while_the_hub_is_down_arrive_when_it_is_back(
    tmp_path: Path, hub: CaptureServer
) -> None:
    hub.stop()
    with hub_sinks(tmp_path, hub.url) as sinks:
        for n in range(3):
            publish(sinks, make_event(n))
        time.sleep(0.4)
        assert sinks.outbox.pending() == 3
        hub.start()
        requests = hub.wait_for_requests(1, timeout=WAIT)
        settle(sinks)
    assert [n for r in requests for n in numbers(r)] == [0, 1, 2]


def test_a_message_that_is_not_an_event_is_dead_lettered(
    tmp_path: Path, hub: CaptureServer
) -> None:
    sinks = hub_sinks(tmp_path, hub.url)
    sinks.outbox.open()
    publish(sinks, make_event(0))
    sinks.outbox.put(SINK, "record", b"not json")
    publish(sinks, make_event(2))
    with sinks:
        requests = hub.wait_for_requests(2, timeout=WAIT)
        settle(sinks, dead=1)
        [letter] = sinks.outbox.dead_letters(SINK)
    assert [numbers(r) for r in requests] == [[0], [2]]
    assert letter.message.payload == b"not json"


def test_a_refused_token_refuses_the_whole_batch(hub: CaptureServer) -> None:
    hub.default_status = 401
    transport = HubTransport(hub.url, TOKEN, DEVICE, timeout_seconds=2)
    transport.open()
    try:
        messages = [
            OutboxMessage(n, SINK, "record", make_event(n).to_json().encode(), 0.0) for n in (1, 2)
        ]
        with pytest.raises(PermanentDeliveryError, match="token is wrong or revoked") as refused:
            transport.send(messages)
        assert refused.value.whole_batch
    finally:
        transport.close()


def test_each_device_has_its_own_queue(tmp_path: Path, hub: CaptureServer) -> None:
    config = sinks_config(tmp_path, hub={"url": hub.url, "token": TOKEN})
    with NetworkSinks(config, "desk-1") as one, NetworkSinks(config, "desk-2") as two:
        assert [t.name for t in one.transports + two.transports] == ["hub:desk-1", "hub:desk-2"]
        one.sinks[0].publish(make_event(1, device="desk-1"))
        two.sinks[0].publish(make_event(2, device="desk-2"))
        hub.wait_for_requests(2, timeout=WAIT)
    bodies = sorted((r.json()["device_id"], numbers(r)) for r in hub.requests)
    assert bodies == [("desk-1", [1]), ("desk-2", [2])]


# --- config -----------------------------------------------------------------------------


def test_the_hub_section_loads_with_the_token_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIGIL_HUB_TOKEN", TOKEN)
    path = tmp_path / "sinks.yaml"
    path.write_text(
        "hub:\n  url: https://hub.example.com:8600\n  token: ${VIGIL_HUB_TOKEN}\n"
        "  kinds: [record, reminder]\n  stream_fps: 2\n"
    )
    config = load_config(NetworkSinksConfig, path)
    assert config.hub is not None
    assert config.hub.token.get_secret_value() == TOKEN
    assert TOKEN not in repr(config) + str(config.hub) + repr(config.hub.model_dump())
    assert (config.hub.kinds, config.hub.stream_fps) == (["record", "reminder"], 2.0)
    assert (config.hub.batch_size, config.hub.stream_quality, config.hub.stream_max_side) == (
        500,
        75,
        960,
    )
    transport = HubTransport.from_config(config.hub, DEVICE)
    assert TOKEN not in repr(transport) + repr(vars(transport).get("label"))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"url": "ftp://hub.local"}, r"'hub.url'.*not an http:// or https:// URL"),
        ({"url": "http://"}, r"'hub.url'"),
        ({"url": "http://hub.local:8600/?x=1"}, r"'hub.url'.*query or fragment"),
        ({"token": ""}, r"'hub.token'"),
        ({"batch_size": 0}, r"'hub.batch_size'"),
        ({"batch_size": 5001}, r"'hub.batch_size'"),
        ({"stream_fps": -1}, r"'hub.stream_fps'"),
        ({"stream_fps": 31}, r"'hub.stream_fps'"),
        ({"stream_quality": 5}, r"'hub.stream_quality'"),
        ({"stream_max_side": 32}, r"'hub.stream_max_side'"),
        ({"timeout_seconds": 0}, r"'hub.timeout_seconds'"),
        ({"kinds": [""]}, "event kinds must be non-empty"),
        ({"strem_fps": 1}, r"unknown field 'hub.strem_fps'; did you mean 'stream_fps'"),
    ],
)
def test_bad_hub_settings_are_config_errors_that_name_the_field(
    tmp_path: Path, fields: dict[str, Any], message: str
) -> None:
    import yaml

    section = {"url": "http://hub.local:8600", "token": TOKEN, **fields}
    path = tmp_path / "sinks.yaml"
    path.write_text(yaml.safe_dump({"hub": section}))
    with pytest.raises(ConfigError, match=message) as caught:
        load_config(NetworkSinksConfig, path)
    assert TOKEN not in str(caught.value)


def test_a_token_is_required() -> None:
    with pytest.raises(ValueError, match="token"):
        HubConfig.model_validate({"url": "http://hub.local:8600"})


def test_building_the_transport_refuses_a_bad_url() -> None:
    with pytest.raises(ConfigError, match="hub: 'mqtt://x' is not an http"):
        HubTransport("mqtt://x", TOKEN, DEVICE)


def test_message_ids_do_not_repeat_when_the_outbox_file_is_new(
    tmp_path: Path, hub: CaptureServer
) -> None:
    """A new outbox numbers its messages from 1 again; the hub must not take them for retries."""
    for name in ("first", "second"):
        config = sinks_config(tmp_path / name, hub={"url": hub.url, "token": TOKEN})
        with NetworkSinks(config, DEVICE) as sinks:
            publish(sinks, make_event(1))
            settle(sinks)
    first, second = (ids(request)[0] for request in hub.requests)
    assert first.split("@")[0] == second.split("@")[0] == "1"
    assert first != second
    assert all(re.fullmatch(r"[!-~]{1,128}", key) for key in (first, second))
