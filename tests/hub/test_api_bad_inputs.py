"""Every bad input gets a 4xx with a JSON body and one clear line: malformed JSON, wrong types,
huge bodies, unknown ids, path tricks in ids and file names, bad cursors and periods."""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import Iterator
from typing import Any

import cv2
import numpy as np
import pytest

from tests.hub.conftest import RunningHub, running_hub
from tests.services import LOOPBACK

DEVICE = "desk-1"
START = 1_774_569_600.0
MB = 1024 * 1024


def jpeg() -> bytes:
    ok, encoded = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))
    assert ok
    return bytes(encoded.tobytes())


def event(**changes: Any) -> dict[str, Any]:
    base = {
        "id": "m-1",
        "kind": "record",
        "app": "posture",
        "device_id": DEVICE,
        "timestamp": START,
        "person_present": True,
        "state": "sitting",
        "hunched": False,
        "fps": 5.0,
    }
    return {k: v for k, v in (base | changes).items() if v is not ...}


def body(*events: dict[str, Any], **top: Any) -> bytes:
    return json.dumps({"device_id": DEVICE, "events": list(events), **top}).encode()


JSON = {"content-type": "application/json"}


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    with running_hub(None, tmp_path_factory.mktemp("bad")) as hub:
        hub.records.add_posture_records(
            [
                {
                    "device_id": DEVICE,
                    "ts": START,
                    "person_present": True,
                    "state": "sitting",
                    "hunched": False,
                    "fps": 5.0,
                }
            ]
        )
        yield hub


# (name, method, path, request options, status, words the message must hold)
CASES: list[tuple[str, str, str, dict[str, Any], int, str]] = [
    (
        "ingest: cut-off JSON",
        "POST",
        "/api/ingest",
        {"content": b'{"device_id": ', "headers": JSON},
        400,
        "not valid JSON",
    ),
    (
        "ingest: empty body",
        "POST",
        "/api/ingest",
        {"content": b"", "headers": JSON},
        400,
        "not valid JSON",
    ),
    (
        "ingest: NaN",
        "POST",
        "/api/ingest",
        {"content": body(event()).replace(b"1774569600.0", b"NaN"), "headers": JSON},
        400,
        "not valid JSON",
    ),
    (
        "ingest: text body",
        "POST",
        "/api/ingest",
        {"content": b"hello", "headers": {"content-type": "text/plain"}},
        415,
        "application/json",
    ),
    (
        "ingest: no content type",
        "POST",
        "/api/ingest",
        {"content": body(event())},
        415,
        "application/json",
    ),
    (
        "ingest: a list",
        "POST",
        "/api/ingest",
        {"content": b"[1, 2]", "headers": JSON},
        422,
        "object",
    ),
    (
        "ingest: no events",
        "POST",
        "/api/ingest",
        {"content": b'{"device_id": "desk-1"}', "headers": JSON},
        422,
        "events: required",
    ),
    (
        "ingest: events not a list",
        "POST",
        "/api/ingest",
        {"content": b'{"device_id": "desk-1", "events": 3}', "headers": JSON},
        422,
        "events",
    ),
    (
        "ingest: unknown field",
        "POST",
        "/api/ingest",
        {"content": body(event(), extra=1), "headers": JSON},
        422,
        "extra",
    ),
    (
        "ingest: time as text",
        "POST",
        "/api/ingest",
        {"content": body(event(timestamp="yesterday")), "headers": JSON},
        422,
        "events.0.timestamp",
    ),
    (
        "ingest: negative time",
        "POST",
        "/api/ingest",
        {"content": body(event(timestamp=-5)), "headers": JSON},
        422,
        "events.0.timestamp",
    ),
    (
        "ingest: time in year 5000",
        "POST",
        "/api/ingest",
        {"content": body(event(timestamp=9.5e10)), "headers": JSON},
        422,
        "events.0.timestamp",
    ),
    (
        "ingest: no message id",
        "POST",
        "/api/ingest",
        {"content": body(event(id=...)), "headers": JSON},
        422,
        "events.0.id: required",
    ),
    (
        "ingest: message id with spaces",
        "POST",
        "/api/ingest",
        {"content": body(event(id="a b")), "headers": JSON},
        422,
        "events.0.id",
    ),
    (
        "ingest: kind with a slash",
        "POST",
        "/api/ingest",
        {"content": body(event(kind="../record")), "headers": JSON},
        422,
        "event kind",
    ),
    (
        "ingest: path in the device id",
        "POST",
        "/api/ingest",
        {"content": json.dumps({"device_id": "../etc", "events": []}).encode(), "headers": JSON},
        422,
        "device id",
    ),
    (
        "ingest: another device's event",
        "POST",
        "/api/ingest",
        {"content": body(event(device_id="cam-2")), "headers": JSON},
        422,
        "not the batch's device",
    ),
    (
        "ingest: unknown state",
        "POST",
        "/api/ingest",
        {"content": body(event(state="lying")), "headers": JSON},
        422,
        "events.0.state",
    ),
    (
        "ingest: record without fps",
        "POST",
        "/api/ingest",
        {"content": body(event(fps=...)), "headers": JSON},
        422,
        "events.0.fps",
    ),
    (
        "ingest: an infinite angle",
        "POST",
        "/api/ingest",
        {"content": body(event(torso_angle=1.5)).replace(b"1.5", b"1e999"), "headers": JSON},
        422,
        "events.0.torso_angle: Input should be a finite number",
    ),
    (
        "ingest: hunched as text",
        "POST",
        "/api/ingest",
        {"content": body(event(hunched="very")), "headers": JSON},
        422,
        "events.0.hunched",
    ),
    (
        "ingest: snapshot not base64",
        "POST",
        "/api/ingest",
        {"content": body(event(kind="reminder", snapshot="%%%")), "headers": JSON},
        422,
        "base64",
    ),
    (
        "ingest: snapshot not a JPEG",
        "POST",
        "/api/ingest",
        {
            "content": body(
                event(kind="reminder", snapshot=base64.b64encode(b"GIF89a...").decode())
            ),
            "headers": JSON,
        },
        422,
        "not a JPEG",
    ),
    (
        "ingest: snapshot a number",
        "POST",
        "/api/ingest",
        {"content": body(event(kind="reminder", snapshot=5)), "headers": JSON},
        422,
        "base64",
    ),
    (
        "ingest: too many events",
        "POST",
        "/api/ingest",
        {"content": body(*[event(id=f"m{i}") for i in range(5001)]), "headers": JSON},
        422,
        "at most 5,000",
    ),
    (
        "ingest: over 8 MB",
        "POST",
        "/api/ingest",
        {"content": b" " * (8 * MB + 1), "headers": JSON},
        413,
        "at most 8,388,608 bytes",
    ),
    (
        "frame: not a JPEG",
        "POST",
        f"/api/streams/{DEVICE}",
        {"content": b"GIF89a", "headers": {"content-type": "image/jpeg"}},
        422,
        "not a JPEG",
    ),
    (
        "frame: PNG type",
        "POST",
        f"/api/streams/{DEVICE}",
        {"content": jpeg(), "headers": {"content-type": "image/png"}},
        415,
        "image/jpeg",
    ),
    (
        "frame: over 2 MB",
        "POST",
        f"/api/streams/{DEVICE}",
        {"content": b"\xff\xd8\xff" + b"0" * (2 * MB), "headers": {"content-type": "image/jpeg"}},
        413,
        "at most 2,097,152 bytes",
    ),
    (
        "frame: dots for a device",
        "POST",
        "/api/streams/%2e%2e",
        {"content": jpeg(), "headers": {"content-type": "image/jpeg"}},
        422,
        "device id",
    ),
    ("device: dots", "GET", "/api/devices/%2e%2e", {}, 422, "device id"),
    ("device: encoded slash", "GET", "/api/devices/..%2F..%2Fetc", {}, 404, "Not Found"),
    ("device: unknown", "GET", "/api/devices/nobody", {}, 404, "no device 'nobody'"),
    ("device: too long", "GET", f"/api/devices/{'a' * 65}", {}, 422, "device id"),
    ("tokens: unknown device", "GET", "/api/devices/nobody/tokens", {}, 404, "no device"),
    ("token: unknown", "DELETE", "/api/tokens/0123456789ab", {}, 404, "no token"),
    ("token: dots", "DELETE", "/api/tokens/%2e%2e", {}, 422, "token id"),
    ("snapshot: unknown", "GET", f"/api/snapshots/{'a' * 64}.jpg", {}, 404, "no snapshot"),
    ("snapshot: dots", "GET", "/api/snapshots/%2e%2e.jpg", {}, 422, "sha256"),
    (
        "snapshot: escaping name",
        "GET",
        "/api/snapshots/..%2f..%2fetc%2fpasswd.jpg",
        {},
        404,
        "Not Found",
    ),
    ("model: dots", "GET", "/api/models/%2e%2e/1/download", {}, 422, "model name"),
    ("model: version zero", "GET", "/api/models/tiny/0/download", {}, 422, "version"),
    ("model: version as text", "GET", "/api/models/tiny/abc/download", {}, 422, "version"),
    ("model: unknown", "GET", "/api/models/nothing/1/download", {}, 404, "nothing"),
    (
        "promote: unknown model",
        "POST",
        "/api/models/nothing/promote",
        {"json": {"version": 1, "stage": "production"}},
        404,
        "nothing",
    ),
    (
        "promote: odd stage",
        "POST",
        "/api/models/nothing/promote",
        {"json": {"version": 1, "stage": "Prod!"}},
        422,
        "stage",
    ),
    (
        "promote: version as text",
        "POST",
        "/api/models/nothing/promote",
        {"json": {"version": "one", "stage": "production"}},
        422,
        "version",
    ),
    (
        "promote: cut-off JSON",
        "POST",
        "/api/models/nothing/promote",
        {"content": b"{", "headers": JSON},
        400,
        "not valid JSON",
    ),
    (
        "login: cut-off JSON",
        "POST",
        "/api/login",
        {"content": b"{", "headers": JSON},
        400,
        "not valid JSON",
    ),
    (
        "login: no password",
        "POST",
        "/api/login",
        {"json": {"username": "ada"}},
        422,
        "password: required",
    ),
    (
        "login: form",
        "POST",
        "/api/login",
        {"data": {"username": "ada", "password": "x"}},
        415,
        "application/json",
    ),
    (
        "login: over 64 KB",
        "POST",
        "/api/login",
        {"json": {"username": "ada", "password": "x" * 70_000}},
        413,
        "at most 65,536 bytes",
    ),
    ("records: no device", "GET", "/api/records", {}, 422, "device_id: required"),
    (
        "records: dots for a device",
        "GET",
        "/api/records",
        {"params": {"device_id": "../x"}},
        422,
        "device id",
    ),
    (
        "records: since as text",
        "GET",
        "/api/records",
        {"params": {"device_id": DEVICE, "since": "monday"}},
        422,
        "since",
    ),
    (
        "records: since after until",
        "GET",
        "/api/records",
        {"params": {"device_id": DEVICE, "since": 10, "until": 5}},
        400,
        "must be after since",
    ),
    (
        "records: twenty years",
        "GET",
        "/api/records",
        {"params": {"device_id": DEVICE, "since": 0, "until": 20 * 365 * 86_400}},
        400,
        "ten years",
    ),
    (
        "records: a year bucket",
        "GET",
        "/api/records",
        {"params": {"device_id": DEVICE, "bucket": "year"}},
        422,
        "bucket",
    ),
    (
        "records: unknown zone",
        "GET",
        "/api/records",
        {"params": {"device_id": DEVICE, "bucket": "hour", "tz": "Mars/Olympus"}},
        422,
        "unknown time zone",
    ),
    (
        "records: zone as a path",
        "GET",
        "/api/records",
        {"params": {"device_id": DEVICE, "bucket": "day", "tz": "../../etc/passwd"}},
        422,
        "unknown time zone",
    ),
    (
        "records: limit 0",
        "GET",
        "/api/records",
        {"params": {"device_id": DEVICE, "limit": 0}},
        422,
        "limit",
    ),
    (
        "records: limit 1001",
        "GET",
        "/api/records",
        {"params": {"device_id": DEVICE, "limit": 1001}},
        422,
        "limit",
    ),
    (
        "records: odd cursor",
        "GET",
        "/api/records",
        {"params": {"device_id": DEVICE, "cursor": "!!"}},
        422,
        "cursor",
    ),
    (
        "records: made-up cursor",
        "GET",
        "/api/records",
        {"params": {"device_id": DEVICE, "cursor": "abc"}},
        400,
        "cursor",
    ),
    (
        "summary: unknown zone",
        "GET",
        "/api/posture/summary",
        {"params": {"device_id": DEVICE, "tz": "Nowhere"}},
        422,
        "unknown time zone",
    ),
    (
        "csv: since after until",
        "GET",
        "/api/records.csv",
        {"params": {"device_id": DEVICE, "since": 10, "until": 5}},
        400,
        "must be after since",
    ),
    (
        "events: odd kind",
        "GET",
        "/api/events",
        {"params": {"kind": "Reminder!"}},
        422,
        "event kind",
    ),
    ("unknown endpoint", "GET", "/api/nothing", {}, 404, "Not Found"),
    ("wrong method", "PUT", "/api/devices", {}, 405, "Method Not Allowed"),
]


@pytest.mark.parametrize(
    ("method", "path", "options", "status", "words"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_bad_input_gets_a_clear_4xx(
    served: RunningHub, *, method: str, path: str, options: dict[str, Any], status: int, words: str
) -> None:
    response = served.client().request(method, path, **options)
    assert response.status_code == status, response.text
    answer = response.json()
    assert set(answer) == {"error", "message"}
    assert words in answer["message"], answer["message"]
    assert "\n" not in answer["message"]
    assert "Traceback" not in response.text


def test_a_cursor_from_another_query_is_refused(served: RunningHub) -> None:
    client = served.client()
    served.records.add_posture_records(
        [
            {
                "device_id": DEVICE,
                "ts": START + i,
                "person_present": True,
                "state": "sitting",
                "hunched": False,
                "fps": 5.0,
            }
            for i in range(1, 5)
        ]
    )
    page = client.get(
        "/api/records",
        params={"device_id": DEVICE, "since": START, "until": START + 10, "limit": 2},
    ).json()
    assert page["next_cursor"] is not None
    hours = {"device_id": DEVICE, "since": START, "until": START + 10, "bucket": "hour"}
    response = client.get("/api/records", params={**hours, "cursor": page["next_cursor"]})
    assert response.status_code == 400
    assert response.json()["error"] == "bad_cursor"


def test_a_chunked_body_over_the_limit_is_cut_off(served: RunningHub) -> None:
    sent = 0

    def chunks() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(40):
            sent += MB
            yield b" " * MB

    response = served.client().post("/api/ingest", content=chunks(), headers=JSON)
    assert response.status_code == 413
    assert "at most 8,388,608 bytes" in response.json()["message"]


def test_a_raw_path_with_dots_finds_nothing(served: RunningHub) -> None:
    port = int(served.url.rsplit(":", 1)[1])
    with socket.create_connection((LOOPBACK, port), timeout=10) as sock:
        sock.sendall(
            b"GET /api/devices/../../etc/passwd HTTP/1.1\r\n"
            b"Host: 127.0.0.1\r\nConnection: close\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, content = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 404")
    assert json.loads(content)["error"] == "not_found"


def test_nothing_of_a_refused_batch_is_stored(served: RunningHub) -> None:
    good = event(id="fine-1", timestamp=START + 100)
    bad = event(id="bad-1", timestamp=START + 101, state="lying")
    response = served.client().post("/api/ingest", content=body(good, bad), headers=JSON)
    assert response.status_code == 422
    assert "events.1.state" in response.json()["message"]
    stored = served.records.posture_records(DEVICE, since=START + 100, until=START + 102)
    assert stored == []
