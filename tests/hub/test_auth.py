"""Who may do what on a hub that requires a login: every endpoint group against every kind of
caller, CSRF, session expiry and logout, failed logins, cookies."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest
import sqlalchemy as sa

from tests.hub.conftest import HubFactory, RunningHub, running_hub
from vigil.hub import db

DEVICE = "desk-1"
OTHER = "cam-2"
START = 1_774_569_600.0


def jpeg() -> bytes:
    ok, encoded = cv2.imencode(".jpg", np.full((24, 32, 3), 128, np.uint8))
    assert ok
    return bytes(encoded.tobytes())


def batch(device: str = DEVICE) -> dict[str, Any]:
    event = {
        "id": f"auth-{time.monotonic_ns()}",
        "kind": "state",
        "app": "posture",
        "device_id": device,
        "timestamp": START,
    }
    return {"device_id": device, "events": [event]}


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A hub with login required, a model, and a client for each kind of caller."""
    folder = tmp_path_factory.mktemp("auth")
    with running_hub(
        None, folder, auth=True, live_frame_seconds=3600, login_failure_delay_seconds=0.2
    ) as hub:
        _register_model(hub, folder)
        hub.records.add_posture_records([_record(START)])
        revoked = hub.accounts.create_token(DEVICE)
        hub.accounts.revoke_token(revoked.id)
        callers = {
            "anonymous": hub.client(),
            "viewer": hub.session("viewer"),
            "admin": hub.session("admin"),
            "device token": hub.client(token=hub.token(DEVICE)),
            "other device's token": hub.client(token=hub.token(OTHER)),
            "revoked token": hub.client(token=revoked.secret),
            "made-up token": hub.client(token="vigil_0123456789ab_" + "x" * 43),
        }
        yield {"hub": hub, "callers": callers}


def _register_model(hub: RunningHub, folder: Path) -> None:
    from vigil.models.api import Models

    model_file = folder / "tiny.onnx"
    model_file.write_bytes(b"model bytes" * 20)
    with Models(hub.settings.registry_url, hub.settings.model_store) as models:
        models.register(model_file, "tiny", task="classify")


def _record(ts: float) -> dict[str, Any]:
    return {
        "device_id": DEVICE,
        "ts": ts,
        "person_present": True,
        "state": "sitting",
        "hunched": False,
        "fps": 5.0,
    }


Call = Callable[[httpx.Client, RunningHub], httpx.Response]

READS: dict[str, Call] = {
    "list devices": lambda c, _h: c.get("/api/devices"),
    "one device": lambda c, _h: c.get(f"/api/devices/{DEVICE}"),
    "records": lambda c, _h: c.get("/api/records", params={"device_id": DEVICE}),
    "records as CSV": lambda c, _h: c.get("/api/records.csv", params={"device_id": DEVICE}),
    "posture summary": lambda c, _h: c.get("/api/posture/summary", params={"device_id": DEVICE}),
    "events": lambda c, _h: c.get("/api/events"),
    "models": lambda c, _h: c.get("/api/models"),
    "model download": lambda c, _h: c.get("/api/models/tiny/1/download"),
    "latest frame": lambda c, _h: c.get(f"/api/streams/{DEVICE}/latest.jpg"),
    "who am I": lambda c, _h: c.get("/api/me"),
}
ADMIN_ONLY: dict[str, Call] = {
    "list tokens": lambda c, _h: c.get(f"/api/devices/{DEVICE}/tokens"),
    "create a token": lambda c, _h: c.post(f"/api/devices/{DEVICE}/tokens"),
    "revoke a token": lambda c, h: c.delete(f"/api/tokens/{h.accounts.create_token(DEVICE).id}"),
    "promote a model": lambda c, _h: c.post(
        "/api/models/tiny/promote", json={"version": 1, "stage": "production"}
    ),
}
DEVICE_WRITES: dict[str, Call] = {
    "ingest": lambda c, _h: c.post("/api/ingest", json=batch()),
    "post a frame": lambda c, _h: c.post(
        f"/api/streams/{DEVICE}", content=jpeg(), headers={"content-type": "image/jpeg"}
    ),
}
OK, NO_LOGIN, FORBIDDEN = "ok", 401, 403

EXPECTED = {
    # caller: (reads, admin-only, device writes)
    "anonymous": (NO_LOGIN, NO_LOGIN, NO_LOGIN),
    "viewer": (OK, FORBIDDEN, FORBIDDEN),
    "admin": (OK, OK, OK),
    "device token": (FORBIDDEN, FORBIDDEN, OK),
    "other device's token": (FORBIDDEN, FORBIDDEN, FORBIDDEN),
    "revoked token": (NO_LOGIN, NO_LOGIN, NO_LOGIN),
    "made-up token": (NO_LOGIN, NO_LOGIN, NO_LOGIN),
}
CASES = [
    (caller, group, name, call, EXPECTED[caller][index])
    for caller in EXPECTED
    for index, (group, calls) in enumerate(
        (("read", READS), ("admin", ADMIN_ONLY), ("device", DEVICE_WRITES))
    )
    for name, call in calls.items()
]


@pytest.mark.parametrize(
    ("caller", "group", "name", "call", "expected"),
    CASES,
    ids=[f"{c[0]}-{c[2]}" for c in CASES],
)
def test_access_rules(
    secured: dict[str, Any], *, caller: str, group: str, name: str, call: Call, expected: Any
) -> None:
    hub: RunningHub = secured["hub"]
    admin = secured["callers"]["admin"]
    frame = admin.post(
        f"/api/streams/{DEVICE}", content=jpeg(), headers={"content-type": "image/jpeg"}
    )
    assert frame.status_code == 200  # so the latest frame exists for those who may see it
    response = call(secured["callers"][caller], hub)
    if expected == OK:
        assert response.status_code in (200, 201), (name, response.text)
        return
    assert response.status_code == expected, (name, response.text)
    body = response.json()
    assert set(body) == {"error", "message"}
    assert "\n" not in body["message"]
    if caller == "device token" and group == "read":
        assert "only ingest and stream" in body["message"]


@pytest.mark.parametrize("caller", list(EXPECTED))
def test_health_and_login_are_open_to_everyone(secured: dict[str, Any], caller: str) -> None:
    client = secured["callers"][caller]
    assert client.get("/api/health").json()["ok"] is True
    response = client.post("/api/login", json={"username": "nobody", "password": "wrong-pass"})
    assert response.status_code == 401
    assert response.json()["error"] == "bad_login"


def test_a_token_may_not_ingest_for_another_device(secured: dict[str, Any]) -> None:
    device = secured["callers"]["device token"]
    response = device.post("/api/ingest", json=batch(OTHER))
    assert response.status_code == 403
    assert response.json()["error"] == "wrong_device"
    frame = device.post(
        f"/api/streams/{OTHER}", content=jpeg(), headers={"content-type": "image/jpeg"}
    )
    assert frame.status_code == 403


def test_state_changes_with_a_session_need_the_csrf_header(secured: dict[str, Any]) -> None:
    hub: RunningHub = secured["hub"]
    admin = secured["callers"]["admin"]
    url = f"/api/devices/{DEVICE}/tokens"
    without = admin.post(url, headers={"X-CSRF-Token": ""})
    assert without.status_code == 403
    assert without.json()["error"] == "csrf"
    wrong = admin.post(url, headers={"X-CSRF-Token": "not-the-token"})
    assert wrong.status_code == 403
    other = hub.session("admin")  # its own CSRF value does not fit the first session
    crossed = admin.post(url, headers={"X-CSRF-Token": other.cookies["vigil_csrf"]})
    assert crossed.status_code == 403
    assert admin.post(url).status_code == 201  # with its own header
    assert admin.get(url, headers={"X-CSRF-Token": ""}).status_code == 200  # reads need none


def test_logout_ends_the_session(secured: dict[str, Any]) -> None:
    hub: RunningHub = secured["hub"]
    viewer = hub.session("viewer")
    old_cookie = viewer.cookies["vigil_session"]
    assert viewer.get("/api/me").json()["role"] == "viewer"
    logged_out = viewer.post("/api/logout")
    assert logged_out.json() == {"ok": True}
    assert "vigil_session" not in viewer.cookies
    replay = hub.client(cookies={"vigil_session": old_cookie})
    response = replay.get("/api/me")
    assert response.status_code == 401
    assert response.json()["error"] == "session_expired"


def test_an_expired_session_is_refused(secured: dict[str, Any]) -> None:
    hub: RunningHub = secured["hub"]
    viewer = hub.session("viewer")
    assert viewer.get("/api/devices").status_code == 200
    hub.accounts.database.write(
        "expire sessions",
        lambda c: c.execute(sa.update(db.sessions).values(expires=time.time() - 1)),
    )
    response = viewer.get("/api/devices")
    assert response.status_code == 401
    assert "log in again" in response.json()["message"]


def test_a_removed_user_is_logged_out(secured: dict[str, Any]) -> None:
    hub: RunningHub = secured["hub"]
    password = hub.add_user("short-lived", "viewer")
    client = hub.login("short-lived", password)
    hub.accounts.remove_user("short-lived")
    assert client.get("/api/devices").status_code == 401


def test_login_sets_strict_http_only_cookies_and_says_who(secured: dict[str, Any]) -> None:
    hub: RunningHub = secured["hub"]
    password = hub.add_user("ada", "admin")
    response = hub.client().post("/api/login", json={"username": "ada", "password": password})
    assert response.status_code == 200
    me = response.json()
    assert (me["user"], me["role"], me["auth"]) == ("ada", "admin", True)
    assert me["expires"] > time.time() + 3600
    cookies = {c.split("=", 1)[0]: c.lower() for c in response.headers.get_list("set-cookie")}
    assert "httponly" in cookies["vigil_session"]
    assert "samesite=strict" in cookies["vigil_session"]
    assert "path=/" in cookies["vigil_session"]
    assert "httponly" not in cookies["vigil_csrf"]  # the page reads it
    assert "secure" not in cookies["vigil_session"]  # plain HTTP on loopback
    assert password not in response.text


def test_a_failed_login_waits_and_says_nothing_about_which_part_was_wrong(
    secured: dict[str, Any],
) -> None:
    hub: RunningHub = secured["hub"]
    hub.add_user("bob", "viewer", password="the-right-one")
    client = hub.client()
    answers = []
    for name, password in (("bob", "the-wrong-one"), ("no-such-user", "the-right-one")):
        started = time.monotonic()
        response = client.post("/api/login", json={"username": name, "password": password})
        assert time.monotonic() - started >= 0.2
        answers.append((response.status_code, response.json()))
    assert answers[0] == answers[1]
    assert answers[0][0] == 401


def test_repeated_failed_logins_are_refused_for_a_while(hub_factory: HubFactory) -> None:
    with hub_factory(
        auth=True, login_failures_allowed=3, login_failure_delay_seconds=0, login_window_seconds=60
    ) as hub:
        password = hub.add_user("carol", "viewer")
        client = hub.client()
        for _ in range(3):
            wrong = client.post("/api/login", json={"username": "carol", "password": "nope-nope"})
            assert wrong.status_code == 401
        refused = client.post("/api/login", json={"username": "carol", "password": password})
        assert refused.status_code == 429
        assert "try again in" in refused.json()["message"]


@pytest.mark.parametrize(
    ("header", "error"),
    [
        ("Basic dXNlcjpwYXNz", "bad_credentials"),
        ("Bearer", "bad_credentials"),
        ("Bearer not-a-vigil-token", "bad_token"),
        ("Bearer vigil_zzzzzzzzzzzz_" + "a" * 40, "bad_token"),
    ],
)
def test_malformed_authorization_is_401(secured: dict[str, Any], header: str, error: str) -> None:
    hub: RunningHub = secured["hub"]
    response = hub.client(headers={"Authorization": header}).get("/api/devices")
    assert response.status_code == 401
    assert response.json()["error"] == error


def test_token_use_is_noted(secured: dict[str, Any]) -> None:
    hub: RunningHub = secured["hub"]
    made = hub.accounts.create_token("noted-cam")
    assert hub.accounts.tokens("noted-cam")[0].last_used is None
    device = hub.client(token=made.secret)
    assert device.post("/api/ingest", json=batch("noted-cam")).status_code == 200
    assert hub.accounts.tokens("noted-cam")[0].last_used is not None


@pytest.mark.parametrize(
    ("headers", "status", "error"),
    [
        ({"Host": "localhost"}, 200, None),
        ({"Host": "[::1]:8600"}, 200, None),
        ({"Host": "127.0.0.5"}, 200, None),
        ({"Host": "rebound.example:8600"}, 403, "forbidden_host"),
        ({"Host": "192.168.1.20"}, 403, "forbidden_host"),
    ],
)
def test_without_login_only_requests_for_this_machine_are_answered(
    hub: RunningHub, headers: dict[str, str], status: int, error: str | None
) -> None:
    """A page elsewhere cannot reach the hub through a name of its own (DNS rebinding)."""
    response = hub.client(headers=headers).get("/api/devices")
    assert response.status_code == status
    if error is not None:
        assert response.json()["error"] == error


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("http://127.0.0.1:8600", 201),
        ("http://localhost:3000", 201),
        ("https://attacker.example", 403),
        ("null", 403),
    ],
)
def test_without_login_other_sites_pages_cannot_change_anything(
    hub: RunningHub, origin: str, status: int
) -> None:
    client = hub.client(headers={"Origin": origin})
    assert client.post(f"/api/devices/{DEVICE}/tokens").status_code == status
    assert client.get("/api/devices").status_code == 200  # another site cannot read the answer


def test_allowed_hosts_answer_without_login(hub_factory: HubFactory) -> None:
    with hub_factory(allowed_hosts=["desk.local"]) as hub:
        assert hub.client(headers={"Host": "desk.local"}).get("/api/devices").status_code == 200
        assert hub.client(headers={"Host": "other.local"}).get("/api/devices").status_code == 403


@pytest.mark.parametrize(
    ("host", "auth", "required"),
    [
        ("127.0.0.1", None, False),
        ("127.8.9.10", None, False),
        ("::1", None, False),
        ("[::1]", None, False),
        ("localhost", None, False),
        ("127.0.0.1", True, True),
        ("0.0.0.0", None, True),
        ("::", None, True),
        ("192.168.1.20", None, True),
        ("hub.example", None, True),
        ("0.0.0.0", True, True),
    ],
)
def test_login_is_required_everywhere_but_loopback(
    host: str, auth: bool | None, required: bool
) -> None:
    from vigil.hub import HubSettings

    assert HubSettings(host=host, auth=auth).auth_required is required


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.20", "hub.example"])
def test_login_cannot_be_switched_off_off_loopback(host: str) -> None:
    from pydantic import ValidationError

    from vigil.hub import HubSettings

    with pytest.raises(ValidationError, match="login cannot be switched off"):
        HubSettings(host=host, auth=False)
