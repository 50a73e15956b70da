"""Every endpoint of the hub's API, with real HTTP requests against a hub served on loopback."""

from __future__ import annotations

import base64
import csv
import io
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import pytest

from tests.hub.conftest import HubFactory, RunningHub, as_events, posture_days
from tests.services import LOOPBACK, number_image

DEVICE = "desk-1"
START = 1_774_569_600.0  # 2026-03-27 00:00 UTC


def jpeg(number: int, size: tuple[int, int] = (160, 120)) -> bytes:
    ok, encoded = cv2.imencode(".jpg", number_image(number, *size))
    assert ok
    return bytes(encoded.tobytes())


def record_event(
    message_id: str, ts: float, state: str = "sitting", **extra: Any
) -> dict[str, Any]:
    return {
        "id": message_id,
        "kind": "record",
        "app": "posture",
        "device_id": extra.pop("device_id", DEVICE),
        "timestamp": ts,
        "time": "ignored",
        "person_present": True,
        "state": state,
        "hunched": False,
        "side": "left",
        "torso_angle": 12.5,
        "neck_angle": 20.0,
        "thigh_angle": 5.0,
        "knee_angle": 95.0,
        "confidence": 0.9,
        "fps": 7.5,
        "sitting_seconds": 10.0,
        "hunched_seconds": 0.0,
        **extra,
    }


def ingest(client: httpx.Client, events: list[dict[str, Any]], device: str = DEVICE) -> Any:
    response = client.post("/api/ingest", json={"device_id": device, "events": events})
    assert response.status_code == 200, response.text
    return response.json()


def test_health_says_the_version(hub: RunningHub) -> None:
    from vigil import __version__

    assert hub.client().get("/api/health").json() == {"ok": True, "version": __version__}


def test_me_on_loopback_is_an_admin_without_login(hub: RunningHub) -> None:
    assert hub.client().get("/api/me").json() == {
        "user": None,
        "role": "admin",
        "auth": False,
        "expires": None,
    }


def test_a_retried_batch_stores_nothing_twice(hub: RunningHub) -> None:
    client = hub.client()
    batch = [record_event(f"m-{i}", START + i) for i in range(50)]
    state = {"id": "s-1", "kind": "state", "app": "posture", "device_id": DEVICE}
    batch.append({**state, "timestamp": START + 3, "state": "sitting", "previous": "standing"})
    assert ingest(client, batch) == {"accepted": 51, "duplicates": 0}
    assert ingest(client, batch) == {"accepted": 0, "duplicates": 51}
    overlapping = batch[40:] + [record_event(f"m-{i}", START + i) for i in range(50, 60)]
    assert ingest(client, overlapping) == {"accepted": 10, "duplicates": 11}
    records = hub.records.posture_records(DEVICE)
    assert [r["ts"] for r in records] == [START + i for i in range(60)]
    assert records[0] | {"id": 0} == {
        "id": 0,
        "device_id": DEVICE,
        "ts": START,
        "person_present": True,
        "state": "sitting",
        "hunched": False,
        "side": "left",
        "torso_angle": 12.5,
        "neck_angle": 20.0,
        "thigh_angle": 5.0,
        "knee_angle": 95.0,
        "confidence": 0.9,
        "fps": 7.5,
        "sitting_seconds": 10.0,
        "hunched_seconds": 0.0,
    }
    states = hub.records.events(DEVICE, kind="state")
    assert [(e["ts"], e["data"]) for e in states] == [
        (START + 3, {"state": "sitting", "previous": "standing"})
    ]


def test_a_record_for_a_second_already_recorded_is_a_duplicate(hub: RunningHub) -> None:
    hub.records.add_posture_records([{"device_id": DEVICE, **_plain_record(START)}])
    assert ingest(hub.client(), [record_event("x-1", START), record_event("x-2", START + 1)]) == {
        "accepted": 1,
        "duplicates": 1,
    }


def _plain_record(ts: float) -> dict[str, Any]:
    return {"ts": ts, "person_present": True, "state": "sitting", "hunched": False, "fps": 5.0}


def test_concurrent_retries_of_one_batch_store_it_once(hub: RunningHub) -> None:
    batch = [record_event(f"c-{i}", START + i) for i in range(300)]
    answers: list[Any] = []

    def send() -> None:
        with httpx.Client(base_url=hub.url, timeout=30) as client:
            answers.append(client.post("/api/ingest", json={"device_id": DEVICE, "events": batch}))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(a.json()["accepted"] for a in answers) == [0, 0, 0, 300]
    assert len(hub.records.posture_records(DEVICE)) == 300


def test_ingest_updates_the_device_and_its_alerts(hub: RunningHub) -> None:
    client = hub.client()
    now = time.time()
    reminder = {
        "id": "rem-1",
        "kind": "reminder",
        "app": "posture",
        "device_id": DEVICE,
        "timestamp": now,
        "reason": "sitting",
        "title": "Stand up",
        "message": "You sat for 30 min",
    }
    ingest(
        client, [record_event("a", now - 2, fps=4.0), record_event("b", now - 1, fps=6.0), reminder]
    )
    device = client.get(f"/api/devices/{DEVICE}").json()
    assert device["status"] == "online"
    assert device["fps"] == 6.0
    assert device["app"] == "posture"
    assert device["alerts_today"] == 1
    assert device["streaming"] is False
    assert now - 1 <= device["last_seen"] <= time.time()


def test_devices_written_locally_appear_and_pages_cover_them_all(hub: RunningHub) -> None:
    names = [f"cam-{i}" for i in range(7)]
    hub.records.add_posture_records([{"device_id": n, **_plain_record(START)} for n in names])
    client = hub.client()
    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 3}
    while True:
        page = client.get("/api/devices", params=params).json()
        assert len(page["items"]) <= 3
        seen += page["items"]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert [d["id"] for d in seen] == names
    assert {(d["status"], d["last_seen"], d["fps"], d["app"]) for d in seen} == {
        ("offline", START, 5.0, "posture")
    }
    assert client.get("/api/devices/cam-3").json()["id"] == "cam-3"
    assert client.get("/api/devices/cam-99").status_code == 404


def test_tokens_are_created_listed_without_secrets_and_revoked(hub: RunningHub) -> None:
    client = hub.client()
    made = client.post("/api/devices/new-cam/tokens")
    assert made.status_code == 201
    token = made.json()
    assert token["device_id"] == "new-cam"
    assert token["token"].startswith(f"vigil_{token['token_id']}_")
    listed = client.get("/api/devices/new-cam/tokens").json()["items"]
    assert [t["token_id"] for t in listed] == [token["token_id"]]
    assert token["token"].split("_")[-1] not in str(listed)
    assert listed[0]["revoked"] is None
    revoked = client.delete(f"/api/tokens/{token['token_id']}").json()
    assert revoked["revoked"] is not None
    assert client.get("/api/devices/new-cam/tokens").json()["items"][0]["revoked"] is not None
    assert client.get("/api/devices/new-cam").json()["id"] == "new-cam"  # made with its token


def test_tokens_page_by_page(hub: RunningHub) -> None:
    client = hub.client()
    made = [client.post("/api/devices/cam/tokens").json()["token_id"] for _ in range(5)]
    first = client.get("/api/devices/cam/tokens", params={"limit": 2}).json()
    second = client.get(
        "/api/devices/cam/tokens", params={"limit": 10, "cursor": first["next_cursor"]}
    ).json()
    assert [t["token_id"] for t in first["items"] + second["items"]] == made
    assert second["next_cursor"] is None


def test_raw_records_page_by_page_and_filtered(hub: RunningHub) -> None:
    hub.records.add_posture_records(
        [{"device_id": DEVICE, **_plain_record(START + i)} for i in range(250)]
        + [{"device_id": "other", **_plain_record(START + i)} for i in range(10)]
    )
    client = hub.client()
    params: dict[str, Any] = {
        "device_id": DEVICE,
        "since": START + 10,
        "until": START + 240,
        "limit": 100,
    }
    stamps: list[float] = []
    while True:
        page = client.get("/api/records", params=params).json()
        assert page["bucket"] == "second"
        stamps += [r["ts"] for r in page["items"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]
    assert stamps == [START + i for i in range(10, 240)]


def test_downloads_hold_the_same_rows_as_the_json(hub: RunningHub) -> None:
    pyarrow_parquet = pytest.importorskip("pyarrow.parquet")
    records, reminders = posture_days(DEVICE, START, 1, seed=5)
    hub.records.add_posture_records(records[:12_000])
    hub.records.add_events(as_events(reminders))
    client = hub.client()
    span = {"device_id": DEVICE, "since": START, "until": START + 86_400}
    raw = client.get("/api/records.csv", params=span)
    assert raw.headers["content-type"].startswith("text/csv")
    assert raw.headers["content-disposition"] == 'attachment; filename="posture-desk-1-second.csv"'
    rows = list(csv.DictReader(io.StringIO(raw.text)))
    stored = hub.records.posture_records(DEVICE)
    assert len(rows) == len(stored) == 12_000
    assert [float(r["ts"]) for r in rows] == [r["ts"] for r in stored]
    assert rows[5]["state"] == stored[5]["state"]
    parquet = client.get("/api/records.parquet", params=span)
    table = pyarrow_parquet.read_table(io.BytesIO(parquet.content))
    assert table.column("ts").to_pylist() == [r["ts"] for r in stored]
    assert table.column("hunched").to_pylist() == [r["hunched"] for r in stored]
    hours = {**span, "bucket": "hour", "tz": "UTC"}
    json_hours = client.get("/api/records", params=hours).json()["items"]
    csv_hours = list(csv.DictReader(io.StringIO(client.get("/api/records.csv", params=hours).text)))
    assert [float(r["sitting_seconds"]) for r in csv_hours] == [
        h["sitting_seconds"] for h in json_hours
    ]
    parquet_hours = pyarrow_parquet.read_table(
        io.BytesIO(client.get("/api/records.parquet", params=hours).content)
    )
    assert parquet_hours.column("records").to_pylist() == [h["records"] for h in json_hours]
    assert sum(h["records"] for h in json_hours) == len({int(r["ts"]) for r in stored})


def test_the_summary_has_every_series(hub: RunningHub) -> None:
    records, reminders = posture_days(DEVICE, START, 1, seed=9)
    hub.records.add_posture_records(records)
    hub.records.add_events(as_events(reminders))
    params = {"device_id": DEVICE, "since": START, "until": START + 9 * 86_400, "tz": "UTC"}
    got = hub.client().get("/api/posture/summary", params=params).json()
    assert got["tz"] == "UTC"
    assert got["break_seconds"] == 60.0
    assert [h["hour"] for h in got["hourly"]] == list(range(24))
    assert [d["start"] for d in got["daily"]] == [START + day * 86_400 for day in range(9)]
    assert got["weekly"][0]["start"] == START  # clipped to the period (a Friday)
    assert got["weekly"][1]["start"] == START + 3 * 86_400  # the next Monday
    assert got["reminders"]["total"] == len(reminders) > 0
    assert sum(d["records"] for d in got["daily"]) == got["totals"]["records"]
    assert sum(w["sitting_seconds"] for w in got["weekly"]) == got["totals"]["sitting_seconds"]


def test_events_are_filtered_paged_and_carry_their_snapshot(hub: RunningHub) -> None:
    client = hub.client()
    image = jpeg(7)
    with_snapshot = {
        "id": "e-snap",
        "kind": "reminder",
        "app": "posture",
        "device_id": DEVICE,
        "timestamp": START + 5,
        "reason": "hunching",
        "snapshot": base64.b64encode(image).decode(),
    }
    states = [
        {
            "id": f"e-{i}",
            "kind": "state",
            "app": "posture",
            "device_id": DEVICE,
            "timestamp": START + i,
        }
        for i in range(4)
    ]
    ingest(client, [*states, with_snapshot])
    period = {"since": START, "until": START + 60}
    reminders = client.get("/api/events", params={**period, "kind": "reminder"}).json()["items"]
    assert len(reminders) == 1
    snapshot_url = reminders[0]["snapshot_url"]
    digest = reminders[0]["data"]["snapshot"]
    assert snapshot_url == f"/api/snapshots/{digest}.jpg"
    served = client.get(snapshot_url)
    assert served.headers["content-type"] == "image/jpeg"
    assert served.content == image
    first = client.get("/api/events", params={**period, "device_id": DEVICE, "limit": 3}).json()
    rest = client.get(
        "/api/events", params={**period, "device_id": DEVICE, "cursor": first["next_cursor"]}
    ).json()
    assert [e["ts"] for e in first["items"] + rest["items"]] == [START + i for i in (0, 1, 2, 3, 5)]
    newest = {**period, "device_id": DEVICE, "order": "desc", "limit": 2}
    first = client.get("/api/events", params=newest).json()
    rest = client.get("/api/events", params={**newest, "cursor": first["next_cursor"]}).json()
    assert [e["ts"] for e in first["items"] + rest["items"]] == [START + i for i in (5, 3, 2, 1)]
    assert client.get("/api/events", params={**period, "order": "newest"}).status_code == 422
    assert client.get("/api/events", params={**period, "device_id": "other"}).json()["items"] == []
    assert client.get(f"/api/snapshots/{'0' * 64}.jpg").status_code == 404


def test_live_frames_latest_and_staleness(hub_factory: HubFactory) -> None:
    with hub_factory(live_frame_seconds=0.5) as hub:
        client = hub.client()
        assert client.get(f"/api/streams/{DEVICE}/latest.jpg").status_code == 404
        posted = client.post(
            f"/api/streams/{DEVICE}", content=jpeg(1), headers={"content-type": "image/jpeg"}
        )
        assert posted.json() == {"device_id": DEVICE, "bytes": len(jpeg(1)), "viewers": 0}
        latest = client.get(f"/api/streams/{DEVICE}/latest.jpg")
        assert latest.headers["content-type"] == "image/jpeg"
        assert latest.content == jpeg(1)
        assert client.get(f"/api/devices/{DEVICE}").status_code == 404  # frames alone add none
        hub.records.add_posture_records([{"device_id": DEVICE, **_plain_record(START)}])
        assert client.get(f"/api/devices/{DEVICE}").json()["streaming"] is True
        time.sleep(0.6)
        assert client.get(f"/api/streams/{DEVICE}/latest.jpg").status_code == 404
        assert client.get(f"/api/devices/{DEVICE}").json()["streaming"] is False


class MjpegReader:
    """Reads the parts of an MJPEG stream from a raw socket, as a browser would."""

    def __init__(self, hub: RunningHub, device: str) -> None:
        port = int(hub.url.rsplit(":", 1)[1])
        self.sock = socket.create_connection((LOOPBACK, port), timeout=10)
        request = f"GET /api/streams/{device}/mjpeg HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        self.sock.sendall(request.encode())
        self.buffer = b""

    def frames(self, count: int) -> Iterator[bytes]:
        for _ in range(count):
            yield self._next_part()

    def _next_part(self) -> bytes:
        head_end = self._until(b"\r\n\r\n", after=b"--vigilframe\r\n")
        head = self.buffer[:head_end].decode()
        length = int(head.split("Content-Length: ")[1].split("\r\n")[0])
        self.buffer = self.buffer[head_end + 4 :]
        while len(self.buffer) < length + 2:
            self._receive()
        body, self.buffer = self.buffer[:length], self.buffer[length + 2 :]
        return body

    def _until(self, marker: bytes, after: bytes) -> int:
        while after not in self.buffer or marker not in self.buffer[self.buffer.index(after) :]:
            self._receive()
        self.buffer = self.buffer[self.buffer.index(after) + len(after) :]
        return self.buffer.index(marker)

    def _receive(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the stream ended")
        self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


def noise_jpeg(seed: int) -> bytes:
    """A 640x480 JPEG of noise: about 250 KB, so that socket buffers fill after a few."""
    image = np.random.default_rng(seed).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    ok, encoded = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return bytes(encoded.tobytes())


def test_mjpeg_viewers_get_the_newest_frames_and_a_stalled_one_blocks_nobody(
    hub: RunningHub,
) -> None:
    hub.records.add_posture_records([{"device_id": DEVICE, **_plain_record(START)}])
    frames = [noise_jpeg(i) for i in range(60)]
    number_of = {frame: number for number, frame in enumerate(frames)}
    client = hub.client()
    viewers = [MjpegReader(hub, DEVICE) for _ in range(3)]
    stalled = MjpegReader(hub, DEVICE)  # reads nothing until every frame is posted
    seen: dict[int, list[int]] = {}

    def watch(index: int) -> None:
        seen[index] = numbers_until_last(viewers[index], number_of, len(frames) - 1)

    watchers = [threading.Thread(target=watch, args=(i,)) for i in range(len(viewers))]
    try:
        assert wait_for_viewers(client, 4)
        for watcher in watchers:
            watcher.start()
        started = time.monotonic()
        for frame in frames:
            response = client.post(
                f"/api/streams/{DEVICE}", content=frame, headers={"content-type": "image/jpeg"}
            )
            assert response.status_code == 200
        assert time.monotonic() - started < 10.0
        for watcher in watchers:
            watcher.join(20)
        late = numbers_until_last(stalled, number_of, len(frames) - 1)
    finally:
        for viewer in (*viewers, stalled):
            viewer.close()
    assert len(seen) == len(viewers)
    for numbers in [*seen.values(), late]:
        assert numbers == sorted(set(numbers))  # in order, none twice
        assert numbers[-1] == len(frames) - 1  # and the newest in the end
    assert len(late) < len(frames)  # the stalled viewer skipped frames instead of queueing them


def numbers_until_last(viewer: MjpegReader, number_of: dict[bytes, int], last: int) -> list[int]:
    numbers: list[int] = []
    for part in viewer.frames(500):
        if part in number_of:
            numbers.append(number_of[part])
        if numbers and numbers[-1] == last:
            return numbers
    raise AssertionError(f"the viewer never got frame {last}: {numbers}")


def wait_for_viewers(client: httpx.Client, count: int) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        response = client.post(
            f"/api/streams/{DEVICE}", content=jpeg(999), headers={"content-type": "image/jpeg"}
        )
        if response.json()["viewers"] >= count:
            return True
        time.sleep(0.05)
    return False


def test_live_frames_are_kept_for_a_bounded_number_of_devices(hub_factory: HubFactory) -> None:
    with hub_factory(max_live_streams=2) as hub:
        client = hub.client()
        headers = {"content-type": "image/jpeg"}
        for device in ("cam-1", "cam-2"):
            assert client.post(
                f"/api/streams/{device}", content=jpeg(1), headers=headers
            ).is_success
        refused = client.post("/api/streams/cam-3", content=jpeg(1), headers=headers)
        assert refused.status_code == 429
        assert "at most 2 devices" in refused.json()["message"]
        assert client.post("/api/streams/cam-1", content=jpeg(2), headers=headers).is_success


def test_mjpeg_of_an_unknown_device_is_404(hub: RunningHub) -> None:
    assert hub.client().get("/api/streams/nobody/mjpeg").status_code == 404


def test_models_are_listed_promoted_and_downloaded(hub: RunningHub, tmp_path: Path) -> None:
    from vigil.models.api import Models

    content = b"not really onnx, but bytes all the same" * 10
    model_file = tmp_path / "pose.onnx"
    model_file.write_bytes(content)
    with Models(hub.settings.registry_url, hub.settings.model_store) as models:
        models.register(model_file, "desk-pose", task="pose", tags={"site": "desk"})
        models.register(model_file, "desk-pose", task="pose", metrics={"map": 0.5})
        models.register(model_file, "barn-detect", task="detect")
    client = hub.client()
    listed = client.get("/api/models").json()["items"]
    assert [(m["name"], m["version"]) for m in listed] == [
        ("barn-detect", 1),
        ("desk-pose", 1),
        ("desk-pose", 2),
    ]
    first = listed[1]
    assert (first["task"], first["format"], first["size"]) == ("pose", "onnx", len(content))
    assert first["tags"] == {"site": "desk"}
    assert listed[2]["metrics"] == {"map": 0.5}
    assert listed[2]["latest"] is True
    only = client.get("/api/models", params={"name": "desk-pose", "limit": 1}).json()
    assert len(only["items"]) == 1
    assert only["next_cursor"] is not None
    promoted = client.post(
        "/api/models/desk-pose/promote", json={"version": 1, "stage": "production"}
    )
    assert promoted.status_code == 200, promoted.text
    assert promoted.json()["stages"] == ["production"]
    assert client.get("/api/models", params={"task": "detect"}).json()["items"][0]["name"] == (
        "barn-detect"
    )
    download = client.get("/api/models/desk-pose/2/download")
    assert download.content == content
    assert download.headers["content-disposition"] == 'attachment; filename="desk-pose-2.onnx"'
    assert client.get("/api/models/desk-pose/9/download").status_code == 404
    missing = client.post("/api/models/nothing/promote", json={"version": 1, "stage": "staging"})
    assert missing.status_code == 404


def test_the_openapi_schema_is_valid(hub: RunningHub) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    schema = hub.client().get("/openapi.json").json()
    validator.validate(schema)
    api = {path for path in schema["paths"] if path.startswith("/api/")}
    assert api == {
        "/api/health",
        "/api/login",
        "/api/logout",
        "/api/me",
        "/api/devices",
        "/api/devices/{device_id}",
        "/api/devices/{device_id}/tokens",
        "/api/tokens/{token_id}",
        "/api/ingest",
        "/api/streams/{device_id}",
        "/api/streams/{device_id}/latest.jpg",
        "/api/streams/{device_id}/mjpeg",
        "/api/records",
        "/api/records.csv",
        "/api/records.parquet",
        "/api/posture/summary",
        "/api/events",
        "/api/snapshots/{sha256}.jpg",
        "/api/models",
        "/api/models/{name}/promote",
        "/api/models/{name}/{version}/download",
    }
    ingest_body = schema["paths"]["/api/ingest"]["post"]["requestBody"]["content"]
    assert ingest_body["application/json"]["schema"] == {
        "$ref": "#/components/schemas/IngestRequest"
    }
    assert "IngestEvent" in schema["components"]["schemas"]
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            if path.startswith("/api/"):
                assert operation["operationId"], (method, path)
                assert "200" in operation["responses"] or "201" in operation["responses"]
