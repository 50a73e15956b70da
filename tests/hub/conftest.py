"""A real hub for tests: ``create_app`` served by uvicorn in a thread on a free loopback port.

Fixtures
--------
``hub``
    A running hub over a fresh SQLite database in ``tmp_path``, without login (loopback).
``secure_hub``
    The same with login required (``auth=True``), as on any non-loopback address.
``hub_factory``
    Starts more hubs, each a context manager: ``hub_factory(database_url=None, *, auth=False,
    **settings)``. ``database_url`` may be a PostgreSQL URL (see ``tests/postgres.py``) or the
    database of a pipeline under test; ``settings`` are :class:`vigil.hub.HubSettings` fields
    (``tz="UTC"``, ``max_frame_mb=0.5``, ...). The hub stops (live streams ended, uvicorn
    shut down, database released) when the block or the test ends.

What a :class:`RunningHub` gives::

    def test_something(secure_hub: RunningHub) -> None:
        admin = secure_hub.session("admin")          # httpx.Client, logged in, CSRF header set
        viewer = secure_hub.session("viewer")
        token = secure_hub.token("desk-1")           # a device token for desk-1
        device = secure_hub.client(token=token)      # httpx.Client sending it as Bearer
        device.post("/api/ingest", json={...})
        anonymous = secure_hub.client()
        password = secure_hub.add_user("ada", role="viewer")   # make users directly
        ada = secure_hub.login("ada", password)
        secure_hub.records.add_posture_records([...])           # write as a local pipeline would
        secure_hub.url                                # http://127.0.0.1:PORT

Every client made here is closed when the hub stops. Users and tokens are written straight
into the hub's database (no HTTP), so they work before the first request and with auth on.
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

pytest.importorskip("fastapi", reason="the hub needs the 'hub' extra")
pytest.importorskip("argon2", reason="the hub needs the 'hub' extra")

from tests.services import LOOPBACK, wait_until
from vigil.hub import HubSettings, create_app
from vigil.hub.accounts import Accounts
from vigil.hub.auth import CSRF_COOKIE, CSRF_HEADER
from vigil.hub.db import HubDatabase
from vigil.storage.records import RecordStore

START_TIMEOUT_SECONDS = 15.0
STOP_TIMEOUT_SECONDS = 10.0
CLIENT_TIMEOUT_SECONDS = 30.0


@dataclass
class RunningHub:
    """A hub served on loopback, and helpers to reach it as anyone.

    Attributes:
        url: ``http://127.0.0.1:PORT``.
        app: The FastAPI application (``app.state.hub`` is its :class:`vigil.hub.service.Hub`).
        settings: The hub's settings.
        database_url: The records database the hub uses.
        accounts: Users and tokens of that database, used directly.
    """

    url: str
    app: Any
    settings: HubSettings
    database_url: str
    accounts: Accounts
    _clients: list[httpx.Client] = field(default_factory=list)
    _records: RecordStore | None = None

    def client(self, token: str | None = None, **options: Any) -> httpx.Client:
        """An HTTP client for the hub; with ``token``, it sends ``Authorization: Bearer``."""
        headers = dict(options.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        options.setdefault("timeout", CLIENT_TIMEOUT_SECONDS)
        made = httpx.Client(base_url=self.url, headers=headers, **options)
        self._clients.append(made)
        return made

    def add_user(self, name: str, role: str = "viewer", password: str | None = None) -> str:
        """Add a user; return the password (a random one unless given)."""
        chosen = password or secrets.token_urlsafe(12)
        self.accounts.add_user(name, chosen, role)
        return chosen

    def token(self, device_id: str) -> str:
        """Make a device token for ``device_id`` and return its secret."""
        return self.accounts.create_token(device_id).secret

    def login(self, name: str, password: str) -> httpx.Client:
        """A client logged in as ``name``, sending the CSRF header on every request."""
        made = self.client()
        response = made.post("/api/login", json={"username": name, "password": password})
        assert response.status_code == 200, response.text
        made.headers[CSRF_HEADER] = made.cookies[CSRF_COOKIE]
        return made

    def session(self, role: str = "admin") -> httpx.Client:
        """A client logged in as a new user with ``role``."""
        name = f"{role}-{secrets.token_hex(3)}"
        return self.login(name, self.add_user(name, role))

    @property
    def records(self) -> RecordStore:
        """The records database, to write records and events as a local pipeline does."""
        if self._records is None:
            self._records = RecordStore(self.database_url)
        return self._records

    def close_clients(self) -> None:
        """Close every client made here."""
        for made in self._clients:
            made.close()
        self._clients.clear()
        if self._records is not None:
            self._records.close()
            self._records = None


HubFactory = Callable[..., contextlib.AbstractContextManager[RunningHub]]
"""``hub_factory(database_url=None, *, auth=False, **settings)``: start a hub in a block."""


@contextlib.contextmanager
def running_hub(
    database_url: str | None, folder: Path, *, auth: bool = False, **settings: Any
) -> Iterator[RunningHub]:
    """Serve a hub on a free loopback port until the block ends."""
    import uvicorn

    from vigil.cli.predict import bind

    url = database_url or f"sqlite:///{folder / 'vigil.db'}"
    folder.mkdir(parents=True, exist_ok=True)
    settings.setdefault("snapshot_store", str(folder / "snapshots"))
    settings.setdefault("registry_url", f"sqlite:///{folder / 'registry.db'}")
    settings.setdefault("model_store", str(folder / "models"))
    chosen = HubSettings(database_url=url, auth=auth, **settings)
    database = HubDatabase(url).open()  # the tables exist before the first user is added
    app = create_app(chosen)
    listener = bind(LOOPBACK, 0)
    port = listener.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    running = RunningHub(
        url=f"http://{LOOPBACK}:{port}",
        app=app,
        settings=chosen,
        database_url=url,
        accounts=Accounts(database, chosen.session_hours),
    )
    try:
        if not wait_until(lambda: server.started or not thread.is_alive(), START_TIMEOUT_SECONDS):
            raise RuntimeError("the hub did not start")
        if not server.started:
            raise RuntimeError("the hub stopped while starting; see the log above")
        yield running
    finally:
        running.close_clients()
        app.state.hub.streams.stop_soon()
        server.should_exit = True
        thread.join(STOP_TIMEOUT_SECONDS)
        listener.close()
        database.close()


@pytest.fixture
def hub_factory(tmp_path: Path) -> HubFactory:
    """Start hubs: ``with hub_factory(database_url=None, auth=False, **settings) as hub:``."""
    count = 0

    def start(
        database_url: str | None = None, *, auth: bool = False, **settings: Any
    ) -> contextlib.AbstractContextManager[RunningHub]:
        nonlocal count
        count += 1
        return running_hub(database_url, tmp_path / f"hub-{count}", auth=auth, **settings)

    return start


@pytest.fixture
def hub(hub_factory: HubFactory) -> Iterator[RunningHub]:
    """A running hub without login, over a fresh SQLite database."""
    with hub_factory() as started:
        yield started


@pytest.fixture
def secure_hub(hub_factory: HubFactory) -> Iterator[RunningHub]:
    """A running hub that requires a login or a device token on every API request."""
    with hub_factory(auth=True) as started:
        yield started


# Posture records of a few days, as a pipeline writes them.

SPELLS = (
    # (activity, shortest, longest seconds, weight)
    ("sitting", 120, 2400, 3.0),
    ("pause", 3, 59, 4.0),  # a short stand or look-away: does not end a sitting streak
    ("standing", 60, 900, 2.0),
    ("away", 60, 1800, 1.5),
    ("unknown", 1, 40, 1.5),
)


def posture_days(
    device_id: str, start: float, days: int, seed: int = 0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Per-second posture records of ``days`` working days from ``start``, and reminder events.

    The records have gaps (the camera off), short pauses inside sitting streaks, hunched
    spells, away and unknown seconds, a few seconds recorded twice and a few timestamps that
    do not start on a whole second. Reminder events are dicts for ``RecordStore.add_events``
    (``vigil.events.Event`` fields).
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    records: list[dict[str, Any]] = []
    reminders: list[dict[str, Any]] = []
    weights = np.array([spell[3] for spell in SPELLS])
    for day in range(days):
        now = start + day * 86_400 + 7 * 3600 + int(rng.integers(0, 3 * 3600))
        end = now + int(rng.integers(6, 12)) * 3600
        sitting_for = 0
        while now < end:
            name, shortest, longest, _ = SPELLS[rng.choice(len(SPELLS), p=weights / weights.sum())]
            length = int(rng.integers(shortest, longest + 1))
            hunch_from = int(rng.integers(0, max(1, length))) if rng.random() < 0.5 else length
            for offset in range(length):
                second = now + offset
                records.append(_record(device_id, second, name, offset >= hunch_from, rng))
            if name == "sitting":
                sitting_for += length
                if sitting_for >= 1800:
                    reminders.append(_reminder(device_id, now + length - 1, "sitting"))
                    sitting_for = 0
                if hunch_from < length and length - hunch_from >= 300:
                    reminders.append(_reminder(device_id, now + hunch_from + 300, "hunching"))
            elif name in ("standing", "away"):
                sitting_for = 0
            now += length
            if rng.random() < 0.08:
                now += int(rng.integers(1, 1200))  # no records: the camera was off
    twice = rng.choice(len(records), size=min(25, len(records)), replace=False)
    records += [dict(records[int(i)]) for i in twice]
    for i in rng.choice(len(records), size=min(40, len(records)), replace=False):
        records[int(i)]["ts"] += 0.25 if records[int(i)]["ts"] == int(records[int(i)]["ts"]) else 0
    return records, reminders


def _record(device_id: str, second: float, name: str, hunched: bool, rng: Any) -> dict[str, Any]:
    present = name != "away"
    state = {"sitting": "sitting", "standing": "standing", "pause": "standing"}.get(name, "unknown")
    return {
        "device_id": device_id,
        "ts": float(second),
        "person_present": present,
        "state": state if present else "unknown",
        "hunched": present and hunched,
        "side": "left" if present else None,
        "torso_angle": float(rng.normal(10, 5)) if present else None,
        "neck_angle": None,
        "thigh_angle": None,
        "knee_angle": None,
        "confidence": 0.9 if present else None,
        "fps": 5.0,
        "sitting_seconds": None,
        "hunched_seconds": None,
    }


def _reminder(device_id: str, ts: float, reason: str) -> dict[str, Any]:
    return {
        "kind": "reminder",
        "app": "posture",
        "device_id": device_id,
        "timestamp": float(ts),
        "data": {"reason": reason, "title": "Time to stand up", "message": "test"},
    }


def as_events(reminders: list[dict[str, Any]]) -> list[Any]:
    """The reminder dicts of :func:`posture_days` as :class:`vigil.events.Event` objects."""
    from vigil.events import Event

    return [Event(**reminder) for reminder in reminders]
