"""Helpers of the dashboard's browser tests: pages that record their errors, and test data.

Records and events reach the hub the way a remote pipeline sends them, through
``POST /api/ingest``; the tests compute what the charts must show from the same lists.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[3]
ARTIFACTS = REPO / "test-artifacts" / "hub"
"""Screenshots of the pages, kept after the tests (the folder is git-ignored)."""

INGEST_BATCH = 5000
_message_ids = itertools.count(1)


@dataclass
class Browsing:
    """A browser context whose pages collect console errors and uncaught exceptions."""

    context: Any
    errors: list[str] = field(default_factory=list)

    def open(self, url: str) -> Any:
        """Open ``url`` in a new tab and wait until its document has loaded."""
        page = self.context.new_page()
        page.on("console", lambda message: self._console(page, message))
        page.on("pageerror", lambda error: self.errors.append(f"{page.url}: {error}"))
        page.goto(url)
        return page

    def _console(self, page: Any, message: Any) -> None:
        if message.type == "error":
            self.errors.append(f"{page.url}: {message.text}")

    def assert_clean(self, allowed: Iterable[str] = ()) -> None:
        """No script error, CSP violation or failed load, except messages holding ``allowed``."""
        unexpected = [e for e in self.errors if not any(part in e for part in allowed)]
        assert not unexpected, "\n".join(unexpected)


def screenshot(page: Any, name: str) -> Path:
    """Save the whole page as ``test-artifacts/hub/<name>.png``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def loaded(page: Any) -> None:
    """Wait until the page's script has shown what it fetched (``data-loaded="true"``)."""
    page.wait_for_selector("body[data-loaded='true']")


def record(device_id: str, ts: float, state: str, *, hunched: bool = False) -> dict[str, Any]:
    """A posture record event as a pipeline sends it; ``state`` may be ``away``."""
    present = state != "away"
    return {
        "id": f"m{next(_message_ids)}",
        "kind": "record",
        "app": "posture",
        "device_id": device_id,
        "timestamp": float(ts),
        "person_present": present,
        "state": state if present else "unknown",
        "hunched": present and hunched,
        "fps": 5.0,
    }


def spell(
    device_id: str, start: float, seconds: int, state: str, *, hunched_seconds: int = 0
) -> list[dict[str, Any]]:
    """``seconds`` records of one state from ``start``; the first ``hunched_seconds`` hunched."""
    return [
        record(device_id, start + i, state, hunched=i < hunched_seconds) for i in range(seconds)
    ]


def event(device_id: str, ts: float, kind: str, **data: Any) -> dict[str, Any]:
    """Any other event (a reminder, a state change) as a pipeline sends it."""
    return {
        "id": f"m{next(_message_ids)}",
        "kind": kind,
        "app": "posture",
        "device_id": device_id,
        "timestamp": float(ts),
        **data,
    }


def ingest(client: httpx.Client, device_id: str, events: list[dict[str, Any]]) -> int:
    """Send ``events`` in batches; return how many the hub accepted."""
    accepted = 0
    for start in range(0, len(events), INGEST_BATCH):
        batch = events[start : start + INGEST_BATCH]
        response = client.post("/api/ingest", json={"device_id": device_id, "events": batch})
        assert response.status_code == 200, response.text
        accepted += int(response.json()["accepted"])
    return accepted
