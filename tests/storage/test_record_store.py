"""The records database: the embedded SQLite store and a real PostgreSQL server, one interface."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import PostgresServer, postgres_server
from vigil.errors import ConfigError, StorageError
from vigil.events import Event
from vigil.storage.records import POSTURE_FIELDS, RecordStore

T0 = 1_790_000_000.0


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


def record(second: int, device: str = "desk-1", state: str = "sitting") -> dict[str, object]:
    return {
        "device_id": device,
        "ts": T0 + second,
        "person_present": state != "unknown",
        "state": state,
        "hunched": second % 3 == 0,
        "side": "left",
        "torso_angle": 12.5,
        "neck_angle": 20.0,
        "thigh_angle": 4.0,
        "knee_angle": 91.0,
        "confidence": 0.93,
        "fps": 10.0,
        "sitting_seconds": float(second),
        "hunched_seconds": 1.0,
    }


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RecordStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'records.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.url
    records = RecordStore(url)
    yield records
    records.close()


def test_records_round_trip_in_time_order(store: RecordStore) -> None:
    rows = [record(s) for s in (2, 0, 1)] + [record(0, device="desk-2", state="standing")]
    store.add_posture_records(rows)
    got = store.posture_records(device_id="desk-1")
    assert [r["ts"] for r in got] == [T0, T0 + 1, T0 + 2]
    assert {k: got[0][k] for k in POSTURE_FIELDS} == record(0)
    assert [r["state"] for r in store.posture_records(device_id="desk-2")] == ["standing"]
    assert len(store.posture_records(since=T0 + 1, until=T0 + 2)) == 1
    assert store.devices() == ["desk-1", "desk-2"]


def test_events_keep_their_data(store: RecordStore) -> None:
    reminder = Event(
        "reminder", "posture", "desk-1", T0 + 5, {"reason": "sitting", "sitting_seconds": 1800.0}
    )
    state = Event(
        "state", "posture", "desk-1", T0 + 1, {"state": "standing", "previous": "sitting"}
    )
    store.add_events([reminder, state])
    assert [e["kind"] for e in store.events(device_id="desk-1")] == ["state", "reminder"]
    only = store.events(kind="reminder")
    assert only[0]["data"] == {"reason": "sitting", "sitting_seconds": 1800.0}


def test_sqlite_runs_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "wal.db"
    store = RecordStore(f"sqlite:///{path}")
    store.add_posture_records([record(0)])
    store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_url_that_is_not_a_database_is_a_config_error() -> None:
    for url in ("not a url", "nodb://somewhere"):
        with pytest.raises(ConfigError, match=r"not a database URL.*postgresql"):
            RecordStore(url)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgresql+psycopg://nobody@127.0.0.1:1/none", "cannot create the tables in postgresql"),
        ("sqlite:////proc/forbidden/vigil.db", "cannot"),
    ],
)
def test_bad_databases_are_one_line_errors(url: str, message: str) -> None:
    with pytest.raises(StorageError, match=message) as caught:
        RecordStore(url)
    assert "\n" not in str(caught.value)


def test_passwords_are_not_shown_in_errors() -> None:
    with pytest.raises(StorageError) as caught:
        RecordStore("postgresql+psycopg://vigil:s3cret@127.0.0.1:1/vigil")
    assert "s3cret" not in str(caught.value) and "***" in str(caught.value)
