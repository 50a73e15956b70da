"""``vigil hub user|token`` and ``vigil serve``: what they print, refuse, and how they stop."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.cli import VigilRunner
from tests.hub.conftest import HubFactory
from tests.services import LOOPBACK, free_port, port_open, wait_until
from vigil.paths import default_database_url

START_SECONDS = 20.0


def add_user(
    vigil: VigilRunner, monkeypatch: pytest.MonkeyPatch, name: str, password: str, role: str
) -> str:
    monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
    result = vigil("hub", "user", "add", name, "--role", role, "--password-stdin")
    assert result.status == 0, result.stderr
    return result.stdout


def test_a_user_added_from_the_command_line_can_log_in(
    vigil: VigilRunner, monkeypatch: pytest.MonkeyPatch, hub_factory: HubFactory
) -> None:
    assert add_user(vigil, monkeypatch, "ada", "correct horse", "admin") == "added admin ada\n"
    add_user(vigil, monkeypatch, "bob", "battery staple", "viewer")
    listed = vigil("hub", "user", "list").stdout.splitlines()
    assert [line.split("\t")[:2] for line in listed] == [["ada", "admin"], ["bob", "viewer"]]
    with hub_factory(default_database_url(), auth=True) as hub:
        client = hub.client()
        login = client.post("/api/login", json={"username": "ada", "password": "correct horse"})
        assert login.status_code == 200
        assert login.json()["role"] == "admin"
        assert vigil("hub", "user", "rm", "ada").stdout == "removed admin ada\n"
        assert client.get("/api/me").status_code == 401  # removing a user ends their sessions


@pytest.mark.parametrize(
    ("args", "stdin", "status", "message"),
    [
        (["ada"], "short\n", 2, "a password needs at least 8 characters"),
        (["ada"], "", 2, "standard input is empty"),
        (["../ada"], "long enough\n", 2, "cannot name a user"),
        (["ada", "--role", "root"], "long enough\n", 2, "'root' is not one of 'admin', 'viewer'"),
    ],
)
def test_user_add_refuses_with_one_line(
    vigil: VigilRunner,
    monkeypatch: pytest.MonkeyPatch,
    *,
    args: list[str],
    stdin: str,
    status: int,
    message: str,
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    result = vigil("hub", "user", "add", *args, "--password-stdin")
    assert result.status == status
    assert message in result.single_error()


def test_a_second_user_of_the_same_name_is_refused(
    vigil: VigilRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_user(vigil, monkeypatch, "ada", "correct horse", "admin")
    monkeypatch.setattr(sys, "stdin", io.StringIO("another one\n"))
    result = vigil("hub", "user", "add", "ada", "--password-stdin")
    assert result.status == 1
    assert result.single_error() == "there is already a user called ada"
    assert "no user called carl" in vigil("hub", "user", "rm", "carl").single_error()


def test_tokens_are_created_listed_and_revoked(vigil: VigilRunner, hub_factory: HubFactory) -> None:
    created = vigil("hub", "token", "create", "desk-1")
    assert created.status == 0
    token = created.stdout.strip()
    token_id = token.split("_")[1]
    assert f"token {token_id} for desk-1" in created.stderr
    listed = vigil("hub", "token", "list").stdout
    assert listed.startswith(f"{token_id}\tdesk-1\tcreated ")
    assert listed.rstrip().endswith("active")
    assert token.split("_")[2] not in listed
    with hub_factory(default_database_url(), auth=True) as hub:
        event = {
            "id": "1",
            "kind": "state",
            "app": "posture",
            "device_id": "desk-1",
            "timestamp": 1.0,
        }
        batch = {"device_id": "desk-1", "events": [event]}
        device = hub.client(token=token)
        assert device.post("/api/ingest", json=batch).status_code == 200
        revoked = vigil("hub", "token", "revoke", token_id)
        assert revoked.stdout == f"revoked token {token_id} of desk-1\n"
        assert device.post("/api/ingest", json=batch).status_code == 401
    assert "revoked 20" in vigil("hub", "token", "list", "--device", "desk-1").stdout
    assert vigil("hub", "token", "list", "--device", "other").stdout.startswith("no tokens")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["token", "revoke", "0123456789ab"], "there is no token '0123456789ab'"),
        (["token", "create", "../desk"], "is not a device id"),
        (["--database", "nonsense://x", "user", "list"], "not a database URL"),
    ],
)
def test_hub_commands_refuse_with_one_line(
    vigil: VigilRunner, args: list[str], message: str
) -> None:
    result = vigil("hub", *args)
    assert result.status == 2
    assert message in result.single_error()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "0.0.0.0"], "create one with: vigil hub user add NAME --role admin"),
        (["--host", "0.0.0.0", "--no-auth"], "--no-auth: login cannot be switched off on 0.0.0.0"),
        (["--tz", "Mars/Olympus"], "unknown time zone 'Mars/Olympus'"),
        (["--database", "nonsense://x"], "not a database URL"),
    ],
)
def test_serve_refuses_to_start_with_one_line(
    vigil: VigilRunner, args: list[str], message: str
) -> None:
    port = free_port()
    result = vigil("serve", "--port", port, *args)
    assert result.status == 2
    assert message in result.single_error()
    assert not port_open(port)


def test_serve_refuses_a_taken_port(vigil: VigilRunner) -> None:
    with socket.socket() as taken:
        taken.bind((LOOPBACK, 0))
        taken.listen()
        result = vigil("serve", "--port", taken.getsockname()[1])
    assert result.status == 2
    assert "cannot listen on 127.0.0.1" in result.single_error()


def start_serve(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], int]:
    port = free_port()
    with (tmp_path / "serve.log").open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "vigil.cli.main", "serve", "--port", str(port), *args],
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            env=os.environ.copy(),
        )
    if not wait_until(lambda: port_open(port) or process.poll() is not None, START_SECONDS):
        process.kill()
        pytest.fail("vigil serve did not start")
    return process, port


def stop(process: subprocess.Popen[str], sig: int) -> tuple[int, float]:
    started = time.monotonic()
    process.send_signal(sig)
    try:
        status = process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return status, time.monotonic() - started


def test_serve_on_loopback_needs_no_login_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    process, port = start_serve(tmp_path)
    try:
        url = f"http://{LOOPBACK}:{port}"
        with httpx.Client(base_url=url, timeout=10) as client:
            assert client.get("/api/devices").status_code == 200
            frame = b"\xff\xd8\xff" + b"\x00" * 100
            client.post(
                "/api/streams/desk-1", content=frame, headers={"content-type": "image/jpeg"}
            )
            with client.stream("GET", "/api/streams/desk-1/mjpeg") as stream:  # a viewer stays
                assert stream.status_code == 200
                status, seconds = stop(process, signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
    log = (tmp_path / "serve.log").read_text()
    assert status == 0, log
    assert seconds < 5.0
    assert f"hub on http://127.0.0.1:{port} (no login: loopback only" in log
    assert "hub stopped after" in log
    assert "Traceback" not in log


def test_serve_with_auth_says_login_is_required_and_stops_on_sigint(
    tmp_path: Path, vigil: VigilRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_user(vigil, monkeypatch, "root-user", "long enough", "admin")
    process, port = start_serve(tmp_path, "--auth")
    try:
        with httpx.Client(base_url=f"http://{LOOPBACK}:{port}", timeout=10) as client:
            assert client.get("/api/devices").status_code == 401
            assert client.get("/api/health").status_code == 200
        status, _ = stop(process, signal.SIGINT)
    finally:
        if process.poll() is None:
            process.kill()
    log = (tmp_path / "serve.log").read_text()
    assert status == 0, log
    assert "(login required: a session or a device token on every request)" in log
