"""A real browser for the dashboard: Debian's Chromium driven by Playwright.

The tests skip, saying why, only when ``/usr/bin/chromium`` or the ``playwright`` package is
missing (``apt-get install chromium``; ``pip install playwright``, in the ``dev`` extra).
Playwright's own browser download is never used. One browser serves a test module; each test
gets a fresh context (no cookies) in UTC, and every page it opens records console errors and
uncaught exceptions, which :meth:`Browsing.assert_clean` checks.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.hub.browser.support import ARTIFACTS, Browsing

CHROMIUM = Path("/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
LAUNCH_TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium, launched once per test module."""
    if not CHROMIUM.exists():
        pytest.skip(f"the dashboard's browser tests need {CHROMIUM} (apt-get install chromium)")
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("the dashboard's browser tests need playwright (pip install -e '.[dev]')")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=LAUNCH_ARGS, timeout=LAUNCH_TIMEOUT_MS
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def browsing(browser: Any) -> Iterator[Browsing]:
    """A fresh browser context (UTC, English, laptop-sized) for one test."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(
        timezone_id="UTC", locale="en-GB", viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(15_000)
    try:
        yield Browsing(context)
    finally:
        context.close()
