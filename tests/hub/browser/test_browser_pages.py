"""The overview, events and models pages in a browser, over data sent to a real hub."""

from __future__ import annotations

import base64
import hashlib
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from tests.hub.browser.support import Browsing, event, ingest, loaded, record, screenshot, spell
from tests.hub.conftest import RunningHub
from vigil.models.api import Models

XSS = '<img src=x onerror="window.__xss = (window.__xss || 0) + 1">'
"""Markup that runs script if a page inserts data as HTML."""


def jpeg(colour: tuple[int, int, int], size: tuple[int, int] = (160, 120)) -> bytes:
    image = np.full((size[1], size[0], 3), colour, np.uint8)
    ok, encoded = cv2.imencode(".jpg", image)
    assert ok
    return bytes(encoded.tobytes())


def rename_device(hub: RunningHub, device_id: str, name: str) -> None:
    """Give a device a display name, straight in the hub's database."""
    path = hub.database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE hub_devices SET name = ? WHERE id = ?", (name, device_id))


def register_model(hub: RunningHub, folder: Path, name: str, **details: Any) -> None:
    """Add a version of ``name`` to the hub's registry (a stand-in file: it is never run)."""
    path = folder / f"{name}.onnx"
    path.write_bytes(b"ONNX" + name.encode() * 64)
    with Models(hub.settings.registry_url, hub.settings.model_store) as models:
        models.register(path, name, task="classify", **details)


def no_script_ran(page: Any) -> bool:
    return bool(page.evaluate("() => window.__xss === undefined"))


# Overview


def test_overview_shows_each_device(browsing: Browsing, hub: RunningHub) -> None:
    now = time.time()
    client = hub.client()
    reminder = event("desk-1", now - 60, "reminder", reason="sitting", message="Stand up")
    ingest(client, "desk-1", [*spell("desk-1", now - 30, 20, "sitting"), reminder])
    hub.records.add_posture_records(  # a camera that reported two days ago, locally
        [local_record("garage", now - 2 * 86_400 - 60 + i) for i in range(3)]
    )
    page = browsing.open(hub.url)
    page.wait_for_selector("[data-device-id='garage']")

    def field(device: str, name: str) -> str:
        return str(page.inner_text(f"[data-device-id='{device}'] [data-field='{name}']"))

    assert field("desk-1", "status") == "online"
    assert field("desk-1", "app") == "posture"
    assert field("desk-1", "fps") == "5.0"
    assert field("desk-1", "alerts_today") == ("1" if reminder_is_today(now - 60) else "0")
    assert re.fullmatch(r"just now|\d+ s ago", field("desk-1", "last_seen"))
    assert field("garage", "status") == "offline"
    assert field("garage", "last_seen") == "2 days ago"
    links = page.eval_on_selector_all(
        "[data-device-id='desk-1'] .links a", "links => links.map(a => a.getAttribute('href'))"
    )
    assert links == ["/live/desk-1", "/posture/desk-1"]
    screenshot(page, "overview")
    page.locator("[data-device-id='desk-1'] .links a", has_text="Posture").click()
    page.wait_for_url("**/posture/desk-1")
    browsing.assert_clean()


def local_record(device_id: str, ts: float) -> dict[str, Any]:
    """A record as a pipeline on the hub's machine writes it into the shared database."""
    angles = dict.fromkeys(("torso_angle", "neck_angle", "thigh_angle", "knee_angle"))
    return {
        "device_id": device_id,
        "ts": ts,
        "person_present": True,
        "state": "standing",
        "hunched": False,
        "side": "left",
        **angles,
        "confidence": 0.9,
        "fps": 4.0,
        "sitting_seconds": None,
        "hunched_seconds": None,
    }


def reminder_is_today(ts: float) -> bool:
    return time.localtime(ts).tm_yday == time.localtime().tm_yday


def test_overview_without_devices_says_how_to_add_one(browsing: Browsing, hub: RunningHub) -> None:
    page = browsing.open(hub.url)
    loaded(page)
    assert "No devices yet" in page.inner_text("#devices")
    browsing.assert_clean()


def test_the_overview_fits_a_phone(browsing: Browsing, hub: RunningHub) -> None:
    ingest(hub.client(), "desk-1", spell("desk-1", time.time() - 5, 3, "sitting"))
    page = browsing.open(hub.url)
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_selector("[data-device-id='desk-1']")
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    screenshot(page, "overview-phone")
    browsing.assert_clean()


# Events


def test_events_are_filtered_paged_and_show_snapshots(browsing: Browsing, hub: RunningHub) -> None:
    start = time.time() - 3600
    client = hub.client()
    reminders = [
        event("desk-1", start + i * 60, "reminder", reason="sitting", message=f"reminder {i}")
        for i in range(30)
    ]
    picture = base64.b64encode(jpeg((20, 120, 220))).decode()
    reminders[0]["snapshot"] = picture  # the oldest one has a snapshot
    states = [event("desk-1", start + 10, "state", state="standing", previous="sitting")]
    other = [event("garage", start + 20, "reminder", reason="hunching", message="garage one")]
    ingest(client, "desk-1", reminders + states)
    ingest(client, "garage", other)

    page = browsing.open(f"{hub.url}/events?kind=reminder&device_id=desk-1")
    loaded(page)
    rows = page.locator("#events tr")
    assert rows.count() == 25
    assert rows.first.get_attribute("data-kind") == "reminder"
    assert "reminder 0" in rows.first.inner_text()  # in time order
    thumbnail = page.locator("#events img.thumb")
    assert thumbnail.count() == 1
    page.wait_for_function("() => document.querySelector('#events img.thumb').naturalWidth > 0")
    assert page.evaluate("() => document.querySelector('#events img.thumb').naturalWidth") == 160
    screenshot(page, "events")

    page.click("#older")
    page.wait_for_function("() => document.querySelector('#page-number').textContent === 'Page 2'")
    loaded(page)
    assert rows.count() == 5
    assert "reminder 29" in rows.last.inner_text()
    assert page.is_disabled("#older") and page.is_enabled("#newer")
    page.click("#newer")
    page.wait_for_function("() => document.querySelector('#page-number').textContent === 'Page 1'")
    loaded(page)
    assert rows.count() == 25

    page.select_option("select[name='kind']", "state")
    page.select_option("select[name='device_id']", "")
    page.click("#filters button[type='submit']")
    page.wait_for_url("**/events?kind=state")
    loaded(page)
    assert rows.count() == 1
    assert rows.first.inner_text().split("\t")[3] == "sitting → standing"
    browsing.assert_clean()


def test_events_in_a_time_range(browsing: Browsing, hub: RunningHub) -> None:
    ingest(
        hub.client(),
        "desk-1",
        [
            event("desk-1", 1_793_000_000 + i * 3600, "reminder", reason="sitting", message=str(i))
            for i in range(5)
        ],
    )
    page = browsing.open(f"{hub.url}/events")
    loaded(page)
    since = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(1_793_000_000 + 3600))
    until = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(1_793_000_000 + 3 * 3600))
    page.fill("input[name='since']", since)
    page.fill("input[name='until']", until)
    page.click("#filters button[type='submit']")
    page.wait_for_url("**since=*")
    loaded(page)
    texts = page.locator("#events tr td:nth-child(4)").all_inner_texts()
    assert texts == ["1", "2"]
    browsing.assert_clean()


# Models


def test_an_admin_promotes_and_downloads_a_model(
    browsing: Browsing, hub: RunningHub, tmp_path: Path
) -> None:
    register_model(hub, tmp_path, "birds", tags={"site": "barn"}, metrics={"top1": 0.912345})
    register_model(hub, tmp_path, "birds")
    page = browsing.open(f"{hub.url}/models")
    loaded(page)
    row = page.locator("tr[data-model='birds:1']")
    assert "site: barn" in row.inner_text() and "top1 0.9123" in row.inner_text()
    assert row.locator("[data-field='stages'] .stage").count() == 0
    row.locator("input[name='stage']").fill("production")
    row.locator("button", has_text="Promote").click()
    page.wait_for_selector("tr[data-model='birds:1'] [data-field='stages'] .stage")
    assert row.locator("[data-field='stages']").inner_text() == "production"
    entries = hub.client().get("/api/models").json()["items"]
    assert [e["stages"] for e in entries] == [["production"], []]
    screenshot(page, "models")

    with page.expect_download() as download:
        row.locator("a", has_text="Download").click()
    data = Path(download.value.path()).read_bytes()
    assert hashlib.sha256(data).hexdigest() == entries[0]["sha256"]
    browsing.assert_clean()


def log_in(browsing: Browsing, hub: RunningHub, role: str, next_path: str = "/") -> Any:
    name = f"{role}-user"
    password = hub.add_user(name, role=role)
    page = browsing.open(f"{hub.url}{next_path}")
    page.wait_for_url("**/login?next=*")
    page.fill("input[name='username']", name)
    page.fill("input[name='password']", password)
    page.click("#login button[type='submit']")
    page.wait_for_url(f"{hub.url}{next_path}")
    return page


def test_a_viewer_cannot_promote(
    browsing: Browsing, secure_hub: RunningHub, tmp_path: Path
) -> None:
    register_model(secure_hub, tmp_path, "birds")
    page = log_in(browsing, secure_hub, "viewer", "/models")
    loaded(page)
    assert page.locator("tr[data-model='birds:1']").count() == 1
    assert page.locator("form.promote").count() == 0
    assert page.locator("button", has_text="Promote").count() == 0
    refused = page.evaluate(
        """() => vigil.api('/api/models/birds/promote',
                 {method: 'POST', body: {version: 1, stage: 'production'}})
              .then(() => 'accepted', error => error.status)"""
    )
    assert refused == 403
    assert secure_hub.session("admin").get("/api/models").json()["items"][0]["stages"] == []
    browsing.assert_clean(allowed=["status of 403"])


def test_an_admin_with_a_session_promotes(
    browsing: Browsing, secure_hub: RunningHub, tmp_path: Path
) -> None:
    register_model(secure_hub, tmp_path, "birds")
    page = log_in(browsing, secure_hub, "admin", "/models")
    loaded(page)
    assert page.inner_text("#whoami") == "admin-user (admin)"
    page.locator("tr[data-model='birds:1'] button", has_text="Promote").click()
    page.wait_for_selector("tr[data-model='birds:1'] [data-field='stages'] .stage")
    without_csrf = page.evaluate(
        """() => fetch('/api/models/birds/promote', {method: 'POST',
                 headers: {'Content-Type': 'application/json'},
                 body: JSON.stringify({version: 1, stage: 'staging'})}).then(r => r.status)"""
    )
    assert without_csrf == 403
    stages = secure_hub.session("admin").get("/api/models").json()["items"][0]["stages"]
    assert stages == ["production"]
    browsing.assert_clean(allowed=["status of 403"])


# Data shown as text


def test_data_from_the_api_cannot_run_script(
    browsing: Browsing, hub: RunningHub, tmp_path: Path
) -> None:
    now = time.time()
    ingest(
        hub.client(),
        "desk-1",
        [
            record("desk-1", now - 2, "sitting"),
            event("desk-1", now - 1, "reminder", reason="sitting", title=XSS, message=XSS),
            event("desk-1", now - 1, "state", state=XSS, previous=XSS),
        ],
    )
    rename_device(hub, "desk-1", XSS)
    register_model(hub, tmp_path, "birds", tags={"note": XSS}, metrics={XSS: 1})

    overview = browsing.open(hub.url)
    overview.wait_for_selector("[data-device-id='desk-1']")
    assert overview.inner_text("[data-device-id='desk-1'] h2") == XSS
    assert overview.locator("#devices img").count() == 0

    events = browsing.open(f"{hub.url}/events")
    loaded(events)
    assert events.locator("#events tr[data-kind='reminder'] strong").inner_text() == XSS
    assert events.locator("#events img").count() == 0
    assert XSS in events.locator("#events tr[data-kind='state']").inner_text()

    models = browsing.open(f"{hub.url}/models")
    loaded(models)
    assert f"note: {XSS}" in models.inner_text("tr[data-model='birds:1']")
    assert models.locator("#models img").count() == 0

    for page in (overview, events, models):
        assert no_script_ran(page)
    browsing.assert_clean()


@pytest.mark.parametrize("kind", ["live", "posture"])
def test_an_odd_device_id_in_the_address_stays_text(
    browsing: Browsing, hub: RunningHub, kind: str
) -> None:
    page = browsing.open(f"{hub.url}/{kind}/{XSS}")
    assert XSS in page.inner_text("#missing")
    assert page.locator("main img").count() == 0
    assert no_script_ran(page)
    browsing.assert_clean(allowed=["status of 404"])
