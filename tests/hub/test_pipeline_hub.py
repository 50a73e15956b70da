"""``vigil run posture --hub URL --token T`` against a real hub, on a real clip of people.

The pipeline runs as its own process, as on a device; the hub runs in this process
(``tests/hub/conftest.py``) or, where it must stop and start again on the same port, as a
``vigil serve`` process. What the hub got is read through its API and compared with the
records database that the same run wrote locally.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import httpx
import numpy as np
import pytest

from tests.cli import CliResult, VigilRunner
from tests.e2e.support import (
    CLIP,
    VigilProcess,
    db_events,
    db_records,
    sqlite_url,
    vigil_command,
    write_yaml,
)
from tests.services import LOOPBACK, free_port, port_open, wait_until
from vigil.storage.records import POSTURE_FIELDS

if TYPE_CHECKING:
    from tests.hub.conftest import RunningHub

pytestmark = [pytest.mark.slow, pytest.mark.timeout(150)]

DEVICE = "hub-cam"
FRAMES = 300
"""30 s of the clip: people walk in, stand, sit and leave; about 8 s of processing."""
RUN_SECONDS = 120.0
WAIT = 30.0
REMINDERS = {"sitting_minutes": 0.02, "hunching_minutes": 0.02, "cooldown_minutes": 0.1}
"""Reminders within seconds, so that a short clip makes some."""


@pytest.fixture
def clip(shared_data: Path) -> Path:
    return shared_data / CLIP


def run_config(tmp_path: Path, hub: dict[str, Any] | None = None) -> Path:
    """A config with its own outbox, quick retries and reminders within seconds."""
    outbox = {
        "path": str(tmp_path / "outbox.db"),
        "retry_initial_seconds": 0.1,
        "retry_max_seconds": 0.5,
        "shutdown_grace_seconds": 30,
    }
    sinks: dict[str, Any] = {"outbox": outbox} | ({"hub": hub} if hub else {})
    config = {"records": {"roll_seconds": 0}, "reminders": REMINDERS, "sinks": sinks}
    return write_yaml(tmp_path / "vigil.yaml", config)


def start_run(
    tmp_path: Path, clip: Path, *options: object, token: str | None = None
) -> VigilProcess:
    """Start ``vigil run posture`` on the clip as a device would, its token in the environment."""
    args: list[object] = ["run", "posture", "--source", clip, "--device-id", DEVICE]
    args += ["--database", sqlite_url(tmp_path / "local.db"), *options]
    env = dict(os.environ, VIGIL_HOME=str(tmp_path / "device-home"))
    env.pop("VIGIL_HUB_TOKEN", None)
    if token is not None:
        env["VIGIL_HUB_TOKEN"] = token
    return VigilProcess(args, tmp_path / "run", env)


def hub_records(viewer: httpx.Client, local: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every per-second record the hub has of the device around the local records' times."""
    params: dict[str, Any] = {
        "device_id": DEVICE,
        "since": math.floor(local[0]["ts"]) - 3600,
        "until": math.ceil(local[-1]["ts"]) + 3600,
        "limit": 1000,
    }
    items: list[dict[str, Any]] = []
    while True:
        response = viewer.get("/api/records", params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        params["cursor"] = page["next_cursor"]


def hub_events(viewer: httpx.Client, kind: str, around: list[dict[str, Any]]) -> list[Any]:
    params = {
        "device_id": DEVICE,
        "kind": kind,
        "since": math.floor(around[0]["ts"]) - 3600,
        "until": math.ceil(around[-1]["ts"]) + 3600,
        "limit": 1000,
    }
    response = viewer.get("/api/events", params=params)
    assert response.status_code == 200, response.text
    return [(e["ts"], e["data"]) for e in response.json()["items"]]


def fields(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records without their row ids, which each database numbers its own way."""
    return [{name: record[name] for name in POSTURE_FIELDS} for record in records]


class FramePoller:
    """Fetches the device's live frame ten times a second from another thread."""

    def __init__(self, viewer: httpx.Client) -> None:
        self.viewer = viewer
        self.frames: list[bytes] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self) -> FramePoller:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _poll(self) -> None:
        while not self._stop.wait(0.1):
            with contextlib.suppress(httpx.HTTPError):
                response = self.viewer.get(f"/api/streams/{DEVICE}/latest.jpg")
                if response.status_code == 200:
                    self.frames.append(response.content)


def finished(run: VigilProcess) -> CliResult:
    result = run.wait(RUN_SECONDS)
    assert result.status == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result


# --- a run reports everything -----------------------------------------------------------


def test_a_run_sends_its_records_events_and_live_frames_to_the_hub(
    secure_hub: RunningHub, tmp_path: Path, clip: Path
) -> None:
    token = secure_hub.token(DEVICE)
    viewer = secure_hub.session("viewer")
    config = run_config(tmp_path)
    run = start_run(
        tmp_path, clip, "--config", config, "--max-frames", FRAMES,
        "--hub", secure_hub.url, "--token", token,
    )  # fmt: skip
    with FramePoller(secure_hub.session("viewer")) as live:
        result = finished(run)
    local = db_records(tmp_path / "local.db", DEVICE)

    assert f"processed {FRAMES} frames" in result.stdout
    assert "wait in the outbox" not in result.stdout
    assert token not in result.stdout + result.stderr
    assert fields(hub_records(viewer, local)) == fields(local)
    for kind in ("state", "reminder"):
        stored = [(e["ts"], e["data"]) for e in db_events(tmp_path / "local.db", kind)]
        assert stored, f"the run made no {kind} events"
        assert hub_events(viewer, kind, local) == stored

    device = viewer.get(f"/api/devices/{DEVICE}").json()
    assert (device["id"], device["app"], device["fps"]) == (DEVICE, "posture", local[-1]["fps"])
    assert device["last_seen"] > time.time() - 60

    distinct = list(dict.fromkeys(live.frames))
    assert len(distinct) >= 2, f"{len(live.frames)} live frames polled, {len(distinct)} distinct"
    image = cv2.imdecode(np.frombuffer(distinct[-1], np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (432, 768, 3)  # the clip's size: under stream_max_side, not scaled


def test_a_revoked_token_is_reported_once_and_its_messages_dead_lettered(
    secure_hub: RunningHub, tmp_path: Path, clip: Path, vigil: VigilRunner
) -> None:
    made = secure_hub.accounts.create_token(DEVICE)
    secure_hub.accounts.revoke_token(made.id)
    config = run_config(tmp_path)
    run = start_run(
        tmp_path, clip, "--config", config, "--max-frames", 50,
        "--hub", secure_hub.url, "--token", made.secret,
    )  # fmt: skip
    result = finished(run)
    local = db_records(tmp_path / "local.db", DEVICE)
    sent = len(local) + len(db_events(tmp_path / "local.db", "state"))
    sent += len(db_events(tmp_path / "local.db", "reminder"))

    warnings = [line for line in result.stderr.splitlines() if line.startswith("vigil: warning:")]
    assert len(warnings) == 1, result.stderr
    assert f"refused the device token of {DEVICE!r} (HTTP 401)" in warnings[0]
    assert f"vigil hub token create {DEVICE}" in warnings[0]
    assert made.secret not in result.stdout + result.stderr
    assert local, "the run itself must go on and keep its records"

    shown = vigil("outbox", "--config", config)
    assert shown.status == 0, shown.stderr
    assert f"hub:{DEVICE}: 0 pending" in shown.stdout
    assert f"; {sent} dead letters" in shown.stdout
    viewer = secure_hub.session("viewer")
    assert hub_records(viewer, local) == []


# --- a hub that restarts mid-run --------------------------------------------------------


@dataclass
class HubProcess:
    """``vigil serve`` on a fixed port, stopped and started again like a restarted service."""

    port: int
    database: Path
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        command = vigil_command(
            "serve", "--port", self.port, "--database", sqlite_url(self.database)
        )
        env = dict(os.environ, VIGIL_HOME=str(self.folder / "home"))
        with (self.folder / "hub.log").open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=log, env=env)
        started = wait_until(lambda: port_open(self.port) or self.process.poll() is not None, 30)
        assert started and self.process.poll() is None, self.log()

    def stop(self) -> None:
        if self.process is None:
            return
        process, self.process = self.process, None
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        assert wait_until(lambda: not port_open(self.port), 5)

    def log(self) -> str:
        return (self.folder / "hub.log").read_text(errors="replace")


@pytest.fixture
def hub_process(tmp_path: Path) -> Iterator[HubProcess]:
    folder = tmp_path / "hub"
    folder.mkdir()
    hub = HubProcess(free_port(), folder / "hub.db", folder)
    hub.start()
    try:
        yield hub
    finally:
        hub.stop()


def count_on_hub(viewer: httpx.Client) -> int:
    since, until = time.time() - 3600, time.time() + 3600
    params = {"device_id": DEVICE, "since": since, "until": until, "limit": 1000}
    with contextlib.suppress(httpx.HTTPError):
        response = viewer.get("/api/records", params=params)
        if response.status_code == 200:
            return len(response.json()["items"])
    return 0


def test_every_record_arrives_once_across_a_hub_restart(
    hub_process: HubProcess, tmp_path: Path, clip: Path
) -> None:
    token = "vgt_any-token-on-a-loopback-hub"
    config = run_config(
        tmp_path, hub={"url": "http://unused.invalid:1", "token": "${VIGIL_HUB_TOKEN}"}
    )
    run = start_run(
        tmp_path, clip, "--config", config, "--max-frames", 600, "--hub", hub_process.url,
        token=token,
    )  # fmt: skip
    viewer = httpx.Client(base_url=hub_process.url, timeout=10)
    local_db = tmp_path / "local.db"
    try:
        assert wait_until(lambda: count_on_hub(viewer) >= 3, timeout=60), run.stderr()
        hub_process.stop()
        down_from = len(db_records(local_db, DEVICE))
        assert wait_until(lambda: len(db_records(local_db, DEVICE)) >= down_from + 5, WAIT)
        assert run.running, "the run ended while the hub was down: make it longer"
        hub_process.start()
        result = finished(run)
        local = db_records(local_db, DEVICE)
        on_hub = hub_records(viewer, local)
        states = hub_events(viewer, "state", local)
    finally:
        viewer.close()

    assert "wait in the outbox" not in result.stdout
    assert len(local) > down_from + 5
    assert fields(on_hub) == fields(local)
    assert states == [(e["ts"], e["data"]) for e in db_events(local_db, "state")]
    assert f"hub:{DEVICE}: cannot deliver now" in result.stderr
