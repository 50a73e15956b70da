"""Logging in to a hub that other machines can reach: ``vigil serve --host 0.0.0.0``.

The hub listens on every address, so it requires a login; the browser reaches it through
127.0.0.1. Every page sends a visitor without a session to the login form and back.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.support import VigilProcess
from tests.hub.browser.support import Browsing, loaded, screenshot
from tests.services import free_port, port_open, wait_until
from vigil.hub.accounts import Accounts
from vigil.hub.db import HubDatabase

PASSWORD = "correct horse battery"
START_SECONDS = 30.0


class ServedHub:
    """``vigil serve`` running as its own process on all addresses."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.database_url = f"sqlite:///{folder / 'vigil.db'}"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        database = HubDatabase(self.database_url).open()
        try:
            accounts = Accounts(database)
            accounts.add_user("ada", PASSWORD, "admin")
            accounts.add_user("bob", PASSWORD, "viewer")
        finally:
            database.close()
        args = ["serve", "--host", "0.0.0.0", "--port", self.port, "--database", self.database_url]
        env = {**os.environ, "VIGIL_HOME": str(folder / "vigil-home")}
        self.process = VigilProcess(list(args), folder / "serve", env)

    def wait_started(self) -> None:
        started = wait_until(
            lambda: port_open(self.port) or not self.process.running, START_SECONDS, 0.1
        )
        assert started and self.process.running, self.process.stderr()


@pytest.fixture(scope="module")
def served_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedHub]:
    """One hub for the module: each test uses its own browser context, so its own session."""
    served = ServedHub(tmp_path_factory.mktemp("served-hub"))
    try:
        served.wait_started()
        yield served
        result = served.process.wait_after(signal.SIGTERM, 30)
        assert result.status == 0, result.stderr
        assert "login required" in result.stderr
    finally:
        served.process.stop()


def log_in(page: Any, name: str, password: str) -> None:
    page.fill("input[name='username']", name)
    page.fill("input[name='password']", password)
    page.click("#login button[type='submit']")


@pytest.mark.parametrize("path", ["/", "/live/desk-1", "/posture/desk-1", "/events", "/models"])
def test_every_page_asks_for_a_login(served_hub: ServedHub, path: str) -> None:
    response = httpx.get(served_hub.url + path, timeout=10)
    assert response.status_code == 303
    location = httpx.URL(response.headers["location"])
    assert location.path == "/login" and location.params["next"] == path
    assert httpx.get(f"{served_hub.url}/api/devices", timeout=10).status_code == 401


def test_log_in_use_and_log_out(browsing: Browsing, served_hub: ServedHub) -> None:
    page = browsing.open(f"{served_hub.url}/posture/desk-1?period=7d")
    page.wait_for_url("**/login?next=*")
    assert page.get_attribute("body", "data-next") == "/posture/desk-1?period=7d"
    assert page.locator("nav").count() == 0
    screenshot(page, "login")

    log_in(page, "ada", "not the password")
    page.wait_for_selector("#message .error")
    assert page.inner_text("#message") == "Wrong user name or password."
    assert page.input_value("input[name='password']") == ""

    log_in(page, "ada", PASSWORD)
    page.wait_for_url(f"{served_hub.url}/posture/desk-1?period=7d")
    loaded(page)
    assert page.inner_text("#whoami") == "ada (admin)"
    assert page.get_attribute("button[data-period='7d']", "aria-pressed") == "true"

    page.goto(f"{served_hub.url}/login")  # nothing to do there with a session
    page.wait_for_url(f"{served_hub.url}/")
    page.click("#logout")
    page.wait_for_url("**/login")
    page.goto(f"{served_hub.url}/models")
    page.wait_for_url("**/login?next=%2Fmodels")
    assert "vigil_session" not in {cookie["name"] for cookie in browsing.context.cookies()}
    browsing.assert_clean(allowed=["status of 401"])  # the wrong password


def test_a_viewer_sees_no_promote_control(browsing: Browsing, served_hub: ServedHub) -> None:
    page = browsing.open(f"{served_hub.url}/models")
    page.wait_for_url("**/login?next=*")
    log_in(page, "bob", PASSWORD)
    page.wait_for_url(f"{served_hub.url}/models")
    loaded(page)
    assert page.inner_text("#whoami") == "bob (viewer)"
    assert "Promoting a version needs an admin." in page.inner_text("main")
    assert page.locator("form.promote").count() == 0
    browsing.assert_clean()


def test_after_login_only_paths_on_the_hub_are_followed(
    browsing: Browsing, served_hub: ServedHub
) -> None:
    page = browsing.open(f"{served_hub.url}/login?next=//example.com/steal")
    assert page.get_attribute("body", "data-next") == "/"
    log_in(page, "bob", PASSWORD)
    page.wait_for_url(f"{served_hub.url}/")
    browsing.assert_clean()
