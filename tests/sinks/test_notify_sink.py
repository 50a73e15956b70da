"""Apprise notifications delivered to a real HTTP server on loopback (json:// and form://)."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import parse_qs

import pytest

from tests.services import http_capture_server, wait_until
from tests.sinks.support import make_event, reminder, sinks_config
from vigil.errors import ConfigError
from vigil.sinks.config import NotifyConfig
from vigil.sinks.network import NetworkSinks
from vigil.sinks.notify import NotifyTransport, notification_text, sink_names

SAT_31 = "You have been sitting for 31 minutes."


def notify_sinks(tmp_path: Path, *urls: str, **section: object) -> NetworkSinks:
    config = sinks_config(tmp_path, notify={"urls": list(urls), "timeout_seconds": 2, **section})
    return NetworkSinks(config, device_id="desk-1")


def test_a_reminder_arrives_with_its_title_and_text(tmp_path: Path) -> None:
    with http_capture_server() as server:
        url = f"json://127.0.0.1:{server.port}/notify"
        with notify_sinks(tmp_path, url) as sinks:
            [sink] = sinks.sinks
            sink.publish(make_event(1))  # records do not notify by default
            sink.publish(reminder(2))
            [request] = server.wait_for_requests(1, timeout=5)
            assert wait_until(lambda: sinks.outbox.pending() == 0, timeout=5)
            time.sleep(0.2)
        assert len(server.requests) == 1

    assert (request.method, request.path) == ("POST", "/notify")
    body = request.json()
    assert body["title"] == "Time to stand up"
    assert body["message"] == "You have been sitting for 32 minutes."


def test_form_urls_post_the_same_text_as_a_form(tmp_path: Path) -> None:
    with http_capture_server() as server:
        url = f"form://127.0.0.1:{server.port}/hook"
        with notify_sinks(tmp_path, url) as sinks:
            sinks.sinks[0].publish(reminder(5, title="Neck check", message="Lift your chin."))
            [request] = server.wait_for_requests(1, timeout=5)

    form = parse_qs(request.body.decode())
    assert form["title"] == ["Neck check"]
    assert form["message"] == ["Lift your chin."]


def test_a_notification_service_that_is_down_gets_it_later(tmp_path: Path) -> None:
    with http_capture_server() as server:
        server.stop()
        url = f"json://127.0.0.1:{server.port}/notify"
        with notify_sinks(tmp_path, url) as sinks:
            sinks.sinks[0].publish(reminder(1))
            time.sleep(0.4)  # a few failed attempts
            assert sinks.outbox.pending() == 1
            server.start()
            [request] = server.wait_for_requests(1, timeout=5)
            assert wait_until(lambda: sinks.outbox.pending() == 0, timeout=5)

    assert request.json()["message"] == "You have been sitting for 31 minutes."


def test_each_url_has_its_own_queue_so_a_failing_one_does_not_repeat_the_others(
    tmp_path: Path,
) -> None:
    with http_capture_server() as good, http_capture_server() as bad:
        bad.respond_with(500, 500, 500)
        urls = (f"json://127.0.0.1:{good.port}/a", f"json://127.0.0.1:{bad.port}/b")
        with notify_sinks(tmp_path, *urls) as sinks:
            assert [s.name for s in sinks.sinks] == ["notify:json", "notify:json-2"]
            for sink in sinks.sinks:
                sink.publish(reminder(1))
            assert bad.wait_for_requests(4, timeout=5)
            assert wait_until(lambda: sinks.outbox.pending() == 0, timeout=5)

    assert len(good.requests) == 1
    assert len(bad.requests) == 4


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("notaservice://user:hunter2@host", "notaservice://user:***@host"),
        ("json://user:hunter2@", "json://user:***@"),
        ("just some words", "just some words"),
    ],
)
def test_a_url_apprise_cannot_parse_is_a_config_error_without_the_password(
    url: str, shown: str
) -> None:
    with pytest.raises(ConfigError, match="not understood by Apprise") as caught:
        NotifyTransport([url])
    assert repr(shown) in str(caught.value)
    assert "hunter2" not in str(caught.value)


def test_a_bad_url_fails_when_the_sinks_are_built(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="notaservice"):
        notify_sinks(tmp_path, "notaservice://x")
    assert not (tmp_path / "outbox.db").exists()


def test_notify_needs_a_url() -> None:
    with pytest.raises(ConfigError, match="at least one Apprise URL"):
        NotifyTransport([])
    assert NotifyTransport.one_per_url(NotifyConfig(urls=[])) == []


@pytest.mark.parametrize(
    ("payload", "title", "body"),
    [
        (reminder(1).to_json().encode(), "Time to stand up", SAT_31),
        (
            make_event(0, kind="state", app="ppe", device="gate-2").to_json().encode(),
            "Vigil ppe: state",
            "state from ppe on gate-2 at 2026-09-21T14:13:20.000+00:00",
        ),
        (
            b'{"kind": "reminder", "title": "", "message": null}',
            "Vigil vigil: reminder",
            "reminder from vigil on a device",
        ),
        (b"plain words", "Vigil", "plain words"),
        (b"[1, 2]", "Vigil", "[1, 2]"),
    ],
)
def test_notification_text_uses_the_event_or_a_readable_line(
    payload: bytes, title: str, body: str
) -> None:
    assert notification_text(payload) == (title, body)


def test_sink_names_follow_the_service() -> None:
    urls = ["ntfy://ntfy.sh/a", "mailto://u:p@example.com", "ntfy://ntfy.sh/b"]
    assert sink_names(urls) == ["notify:ntfy", "notify:mailto", "notify:ntfy-2"]
