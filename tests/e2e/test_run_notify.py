"""Reminders from ``vigil run posture --notify URL`` through Apprise to a local HTTP endpoint.

The photos of a person sitting are read one second apart; with timers of a few seconds the
sitting and hunching reminders fall due during the run. ``json://`` is Apprise's JSON webhook.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import pytest

from tests.cli import VigilRunner
from tests.e2e.support import PHOTOS, db_events, read_jsonl, sqlite_url, write_yaml
from tests.services import http_capture_server

REMINDER_MINUTES = 0.05
DELIVERY_TIMEOUT_SECONDS = 10.0


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_yaml(
        tmp_path / "vigil.yaml",
        {
            "reminders": {
                "sitting_minutes": REMINDER_MINUTES,
                "hunching_minutes": REMINDER_MINUTES,
                "cooldown_minutes": 10,
            },
            "sinks": {
                "outbox": {
                    "path": str(tmp_path / "outbox.db"),
                    "retry_initial_seconds": 0.1,
                    "retry_max_seconds": 0.5,
                }
            },
        },
    )


def expected_text(reminder: dict[str, Any]) -> str:
    """How a reminder's body states the sitting time and the hunched part of it."""
    data = reminder["data"]
    sat, hunched = f"{data['sitting_seconds']:.0f} s", f"{data['hunched_seconds']:.0f} s"
    if data["reason"] == "sitting":
        return f"sitting for {sat} ({hunched} of it hunched)"
    streak = f"{data['hunch_streak_seconds']:.0f} s"
    return f"hunched for {streak} (sitting for {sat}, {hunched} of it hunched)"


def test_reminders_arrive_saying_how_long_they_sat_and_hunched(
    vigil: VigilRunner, shared_data: Path, config: Path, tmp_path: Path
) -> None:
    database, jsonl = tmp_path / "vigil.db", tmp_path / "frames.jsonl"
    with http_capture_server() as endpoint:
        url = f"json://127.0.0.1:{endpoint.port}/vigil-hook"
        result = vigil(
            "run", "posture", "--source", shared_data / PHOTOS, "--config", config,
            "--notify", url, "--database", sqlite_url(database), "--jsonl", jsonl,
        )  # fmt: skip
        reminders = db_events(database, "reminder")
        requests = endpoint.wait_for_requests(len(reminders), DELIVERY_TIMEOUT_SECONDS)
    assert result.status == 0, result.stderr
    assert {r["data"]["reason"] for r in reminders} == {"sitting", "hunching"}
    assert f"{len(reminders)} reminder" in result.stdout
    assert "wait in the outbox" not in result.stdout
    assert len(requests) == len(reminders)
    frames = {line["timestamp"]: line for line in read_jsonl(jsonl)}
    for reminder, request in zip(reminders, requests, strict=True):
        assert (request.method, request.path) == ("POST", "/vigil-hook")
        body = request.json()
        assert body["title"] == reminder["data"]["title"]
        assert expected_text(reminder) in body["message"]
        sat = reminder["data"]["sitting_seconds"]
        assert sat >= REMINDER_MINUTES * 60
        frame = frames[math.floor(reminder["ts"] * 1000) / 1000]  # JSON lines keep whole ms
        assert (frame["sitting_seconds"], frame["hunched_seconds"]) == (
            sat,
            reminder["data"]["hunched_seconds"],
        )
    streak = next(r for r in reminders if r["data"]["reason"] == "hunching")["data"]
    assert streak["hunch_streak_seconds"] >= REMINDER_MINUTES * 60


def test_reminders_wait_in_the_outbox_while_the_endpoint_is_down(
    vigil: VigilRunner, shared_data: Path, config: Path, tmp_path: Path
) -> None:
    database = tmp_path / "vigil.db"
    with http_capture_server() as endpoint:
        url = f"json://127.0.0.1:{endpoint.port}/vigil-hook"
        endpoint.stop()
        down = vigil(
            "run", "posture", "--source", shared_data / PHOTOS, "--config", config,
            "--notify", url, "--database", sqlite_url(database),
        )  # fmt: skip
        reminders = db_events(database, "reminder")
        assert down.status == 0, down.stderr
        assert "Traceback" not in down.stderr
        assert {r["data"]["reason"] for r in reminders} == {"sitting", "hunching"}
        assert f"{len(reminders)} network messages wait in the outbox" in down.stdout

        waiting = vigil("outbox", "--config", config)
        assert waiting.status == 0, waiting.stderr
        assert re.search(rf"^notify:json: {len(reminders)} pending\b", waiting.stdout, re.M)

        endpoint.start()
        later = vigil(
            "run", "posture", "--source", shared_data / PHOTOS / "spr_recline.jpg",
            "--config", config, "--notify", url, "--database", sqlite_url(database),
        )  # fmt: skip
        requests = endpoint.wait_for_requests(len(reminders), DELIVERY_TIMEOUT_SECONDS)
    assert later.status == 0, later.stderr
    assert len(db_events(database, "reminder")) == len(reminders), "the later run reminded anew"
    assert "wait in the outbox" not in later.stdout
    assert [r.json()["title"] for r in requests] == [r["data"]["title"] for r in reminders]
    for reminder, request in zip(reminders, requests, strict=True):
        assert expected_text(reminder) in request.json()["message"]
    emptied = vigil("outbox", "--config", config)
    assert emptied.stdout.strip() == "the outbox is empty"
