"""Webhooks against a real HTTP server on loopback."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services import CaptureServer, free_port, http_capture_server, wait_until
from tests.sinks.support import make_event, reminder, sinks_config
from vigil.errors import ConfigError, PermanentDeliveryError, SinkError
from vigil.sinks.network import NetworkSinks
from vigil.sinks.webhook import WebhookTransport, check_status, endpoint_label

SINK = "webhook:alerts"


@pytest.fixture
def server() -> Iterator[CaptureServer]:
    with http_capture_server() as running:
        yield running


def webhook_sinks(tmp_path: Path, url: str, **hook: Any) -> NetworkSinks:
    settings = {"name": "alerts", "url": url, "timeout_seconds": 2, **hook}
    return NetworkSinks(sinks_config(tmp_path, webhooks=[settings]), device_id="desk-1")


def test_reminders_are_posted_as_json_with_the_configured_headers(
    tmp_path: Path, server: CaptureServer
) -> None:
    headers = {"Authorization": "Bearer s3cret"}
    with webhook_sinks(tmp_path, f"{server.url}/hooks/vigil", headers=headers) as sinks:
        [sink] = sinks.sinks
        sink.publish(make_event(1))  # a record: not a default webhook kind
        sink.publish(reminder(2))
        [request] = server.wait_for_requests(1, timeout=5)
        assert wait_until(lambda: sinks.outbox.pending() == 0, timeout=5)
        time.sleep(0.2)

    assert len(server.requests) == 1
    assert (request.method, request.path) == ("POST", "/hooks/vigil")
    assert request.json() == reminder(2).to_dict()
    assert request.headers["content-type"] == "application/json"
    assert request.headers["authorization"] == "Bearer s3cret"
    assert request.headers["x-vigil-topic"] == "reminder"
    assert int(request.headers["x-vigil-message-id"]) > 0


def test_a_server_error_is_retried_until_it_answers_200(
    tmp_path: Path, server: CaptureServer
) -> None:
    server.respond_with(500, 503)
    with webhook_sinks(tmp_path, server.url, kinds=None) as sinks:
        for n in range(3):
            sinks.sinks[0].publish(make_event(n))
        requests = server.wait_for_requests(5, timeout=5)
        assert wait_until(lambda: sinks.outbox.pending() == 0, timeout=5)
        assert sinks.outbox.dead_letters() == []

    assert [r.json()["n"] for r in requests] == [0, 0, 0, 1, 2]


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
def test_a_refusal_is_dead_lettered_and_the_next_message_goes_on(
    tmp_path: Path, server: CaptureServer, status: int
) -> None:
    server.respond_with(status)
    with webhook_sinks(tmp_path, server.url) as sinks:
        sinks.sinks[0].publish(reminder(1))
        sinks.sinks[0].publish(reminder(2))
        requests = server.wait_for_requests(2, timeout=5)
        assert wait_until(lambda: sinks.outbox.pending() == 0, timeout=5)
        [letter] = sinks.outbox.dead_letters(SINK)

    assert [r.json()["n"] for r in requests] == [1, 2]
    assert letter.message.sink == SINK
    assert f"answered HTTP {status}" in letter.reason
    assert b'"n":1' in letter.message.payload


def test_an_unreachable_endpoint_keeps_the_messages(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    sinks = webhook_sinks(tmp_path, url).start()
    try:
        sinks.sinks[0].publish(reminder(1))
        time.sleep(0.5)  # several failed attempts
        [stats] = sinks.stats()
    finally:
        sinks.close(grace_seconds=0.2)
    assert (stats.sink, stats.pending, stats.dead) == (SINK, 1, 0)


def test_messages_kept_while_down_are_delivered_when_the_endpoint_is_back(
    tmp_path: Path, server: CaptureServer
) -> None:
    server.stop()
    with webhook_sinks(tmp_path, server.url) as sinks:
        for n in range(3):
            sinks.sinks[0].publish(reminder(n))
        time.sleep(0.4)
        assert sinks.outbox.pending() == 3
        server.start()
        requests = server.wait_for_requests(3, timeout=5)

    assert [r.json()["n"] for r in requests] == [0, 1, 2]


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, None),
        (204, None),
        (408, SinkError),
        (429, SinkError),
        (500, SinkError),
        (502, SinkError),
        (301, PermanentDeliveryError),
        (400, PermanentDeliveryError),
        (403, PermanentDeliveryError),
    ],
)
def test_status_codes_are_delivered_retried_or_refused(
    status: int, outcome: type[Exception] | None
) -> None:
    if outcome is None:
        check_status(status, "OK", "", "hook")
        return
    with pytest.raises(outcome, match=f"hook answered HTTP {status} Reason: details") as caught:
        check_status(status, "Reason", "details", "hook")
    assert type(caught.value) is outcome


@pytest.mark.parametrize("url", ["ftp://example.com/hook", "http://", "example.com/hook"])
def test_a_webhook_url_must_be_http(url: str) -> None:
    with pytest.raises(ConfigError, match="not an http:// or https:// URL"):
        WebhookTransport(url, name="webhook:bad")


def test_logs_name_the_endpoint_without_its_secret_path() -> None:
    assert endpoint_label("https://hooks.example.com/services/T0/B0/XYZ") == (
        "https://hooks.example.com"
    )
    assert endpoint_label("http://127.0.0.1:8123/api/webhook/abc") == "http://127.0.0.1:8123"
