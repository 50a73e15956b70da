"""The roll-ups equal a direct computation from the raw records.

Days of records with gaps, short pauses, duplicates and reminders reach the hub three ways (the
records database directly, as a local pipeline writes them; ``POST /api/ingest``; a late batch
of older records), with queries in between so the roll-ups catch up piece by piece. Every
answer must then equal :func:`vigil.report.summary.summarize_posture` over the same raw
records, in several time zones and for periods that start and end inside quarter hours and
inside sitting streaks.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from tests.hub.conftest import RunningHub, as_events, posture_days, running_hub
from tests.postgres import postgres_server
from vigil.hub.rollups import Streaks, merge_streaks
from vigil.report.summary import PostureSummary, longest_sitting_streak, summarize_posture

DEVICE = "desk-1"
START = datetime(2026, 3, 27, tzinfo=UTC).timestamp()  # Europe moves its clocks on 29 March
DAYS = 2
ZONES = ("UTC", "Europe/Berlin", "Asia/Kolkata")


def load_in_parts(hub: RunningHub, records: list[dict[str, Any]], reminders: list[Any]) -> None:
    """Write the records in three parts, letting the roll-ups catch up after each."""
    order = sorted(range(len(records)), key=lambda i: records[i]["ts"])
    ordered = [records[i] for i in order]
    first, second = len(ordered) * 2 // 5, len(ordered) * 4 // 5
    late = ordered[first // 2 : first]  # older seconds, after newer ones
    again = ordered[:300]  # seconds rolled up already
    hub.records.add_posture_records(ordered[: first // 2])
    hub.records.add_events(as_events(reminders[: len(reminders) // 2]))
    catch_up(hub)
    ingest(hub, ordered[first:second])
    catch_up(hub)
    hub.records.add_posture_records(ordered[second:] + late + again)
    hub.records.add_events(as_events(reminders[len(reminders) // 2 :]))


def catch_up(hub: RunningHub) -> None:
    response = hub.client().get("/api/posture/summary", params={"device_id": DEVICE})
    assert response.status_code == 200, response.text


def ingest(hub: RunningHub, records: list[dict[str, Any]]) -> None:
    client = hub.client()
    for start in range(0, len(records), 2000):
        events = [
            {
                "id": f"r-{start + i}",
                "kind": "record",
                "app": "posture",
                "device_id": DEVICE,
                "timestamp": row["ts"],
                **{k: v for k, v in row.items() if k not in ("device_id", "ts")},
            }
            for i, row in enumerate(records[start : start + 2000])
        ]
        response = client.post("/api/ingest", json={"device_id": DEVICE, "events": events})
        assert response.status_code == 200, response.text


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[RunningHub, Any]]:
    """A hub holding four days of records, and the same records read back raw."""
    records, reminders = posture_days(DEVICE, START, DAYS, seed=7)
    with running_hub(None, tmp_path_factory.mktemp("rollups")) as hub:
        load_in_parts(hub, records, reminders)
        raw = (hub.records.posture_records(DEVICE), hub.records.events(DEVICE, kind="reminder"))
        yield hub, raw


def periods(raw_records: list[dict[str, Any]]) -> dict[str, tuple[float, float]]:
    first = float(np.floor(min(r["ts"] for r in raw_records)))
    last = float(np.floor(max(r["ts"] for r in raw_records))) + 1
    middle = START + 86_400 + 11 * 3600 + 7 * 60 + 13
    return {
        "everything": (first, last),
        "inside quarter hours": (middle, middle + 26 * 3600 + 7),
        "fractional ends": (middle + 0.5, middle + 2 * 86_400 + 0.75),
        "twenty minutes": (middle + 600, middle + 1800),
        "before the data": (first - 86_400, first - 1),
    }


PERIOD_NAMES = ("everything", "inside quarter hours", "fractional ends", "twenty minutes")


def expected(raw: Any, span: tuple[float, float], zone: str) -> PostureSummary:
    records, reminders = raw
    return summarize_posture(records, reminders, since=span[0], until=span[1], tz=ZoneInfo(zone))


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("name", PERIOD_NAMES)
def test_the_summary_equals_the_report_summary(
    loaded: tuple[RunningHub, Any], name: str, zone: str
) -> None:
    hub, raw = loaded
    span = periods(raw[0])[name]
    want = expected(raw, span, zone)
    params = {"device_id": DEVICE, "since": span[0], "until": span[1], "tz": zone}
    got = hub.client().get("/api/posture/summary", params=params).json()
    totals = got["totals"]
    assert totals["records"] == want.observed_seconds > 0
    assert totals["sitting_seconds"] == want.sitting_seconds
    assert totals["standing_seconds"] == want.standing_seconds
    assert totals["unknown_seconds"] == want.unknown_seconds
    assert totals["away_seconds"] == want.away_seconds
    assert totals["hunched_seconds"] == want.hunched_seconds
    assert totals["hunched_sitting_seconds"] == want.hunched_sitting_seconds
    assert totals["hunched_share"] == pytest.approx(want.hunched_share)
    assert totals["no_data_seconds"] == pytest.approx(want.no_data_seconds)
    streak = want.longest_streak
    assert streak is not None
    assert got["longest_streak"] == {
        "start": streak.start,
        "end": streak.end,
        "seconds": streak.duration,
        "sitting_seconds": streak.sitting_seconds,
    }
    assert got["reminders"]["by_reason"] == want.reminder_counts
    assert got["reminders"]["total"] == len(want.reminders)
    assert [day_of(b) for b in got["daily"]] == days_of(want)
    assert [hour_of_day(h) for h in got["hourly"]] == hours_of_day(want, zone)


def day_of(bucket: dict[str, Any]) -> tuple[float, ...]:
    names = ("start", "end", "sitting_seconds", "standing_seconds", "unknown_seconds")
    return (*(bucket[n] for n in names), bucket["away_seconds"], bucket["hunched_seconds"])


def days_of(summary: PostureSummary) -> list[tuple[float, ...]]:
    daily = summary.daily
    return [
        (
            daily.starts[i],
            daily.ends[i],
            daily.sitting[i],
            daily.standing[i],
            daily.unknown[i],
            daily.away[i],
            daily.hunched[i],
        )
        for i in range(len(daily))
    ]


def hour_of_day(row: dict[str, Any]) -> tuple[int, float, float, float]:
    return row["hour"], row["sitting_seconds"], row["hunched_seconds"], row["reminders"]


def hours_of_day(summary: PostureSummary, zone: str) -> list[tuple[int, float, float, float]]:
    hourly = summary.hourly
    local = [datetime.fromtimestamp(s, ZoneInfo(zone)).hour for s in hourly.starts]
    sitting, hunched = np.zeros(24), np.zeros(24)
    np.add.at(sitting, local, hourly.sitting)
    np.add.at(hunched, local, hourly.hunched)
    reminders = Counter(
        datetime.fromtimestamp(r.ts, ZoneInfo(zone)).hour for r in summary.reminders
    )
    return [(h, sitting[h], hunched[h], reminders[h]) for h in range(24)]


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Asia/Kolkata"])
@pytest.mark.parametrize("bucket", ["minute", "hour", "day", "week"])
def test_every_page_of_buckets_adds_up_to_the_report(
    loaded: tuple[RunningHub, Any], bucket: str, zone: str
) -> None:
    hub, raw = loaded
    span = periods(raw[0])["inside quarter hours" if bucket == "minute" else "everything"]
    got = all_pages(hub, span, bucket, zone, limit=97)
    want = expected(raw, span, zone)
    assert sum(b["records"] for b in got) == want.observed_seconds
    assert sum(b["hunched_sitting_seconds"] for b in got) == want.hunched_sitting_seconds
    assert sum(b["reminders"] for b in got) == len(want.reminders)
    assert [b["start"] for b in got] == sorted({b["start"] for b in got})
    if bucket in ("hour", "day"):
        buckets = want.hourly if bucket == "hour" else want.daily
        with_data = buckets.sitting + buckets.standing + buckets.unknown + buckets.away > 0
        assert [b["start"] for b in got if b["records"]] == list(buckets.starts[with_data])
        assert [b["sitting_seconds"] for b in got if b["records"]] == list(
            buckets.sitting[with_data]
        )
        assert [b["away_seconds"] for b in got if b["records"]] == list(buckets.away[with_data])


def all_pages(
    hub: RunningHub, span: tuple[float, float], bucket: str, zone: str, limit: int
) -> list[dict[str, Any]]:
    client = hub.client()
    params: dict[str, Any] = {
        "device_id": DEVICE,
        "since": span[0],
        "until": span[1],
        "bucket": bucket,
        "tz": zone,
        "limit": limit,
    }
    items: list[dict[str, Any]] = []
    for _ in range(1000):
        page = client.get("/api/records", params=params).json()
        assert len(page["items"]) <= limit
        items += page["items"]
        if page["next_cursor"] is None:
            return items
        params["cursor"] = page["next_cursor"]
    raise AssertionError("the pages never ended")


def test_a_period_without_records_is_empty(loaded: tuple[RunningHub, Any]) -> None:
    hub, raw = loaded
    span = periods(raw[0])["before the data"]
    params = {"device_id": DEVICE, "since": span[0], "until": span[1], "tz": "UTC"}
    got = hub.client().get("/api/posture/summary", params=params).json()
    assert got["totals"]["records"] == 0
    assert got["totals"]["hunched_share"] is None
    assert got["longest_streak"] is None
    assert got["reminders"] == {"total": 0, "by_reason": {}}
    assert all_pages(hub, span, "hour", "UTC", 100) == []


def test_seconds_recorded_twice_count_once(hub: RunningHub) -> None:
    """A pipeline on the same machine writes its records and also sends them to the hub."""
    records, _ = posture_days(DEVICE, START, 1, seed=3)
    hub.records.add_posture_records(records)
    catch_up(hub)
    ingest(hub, records)  # the same seconds again, through the API
    hub.records.add_posture_records(records[:500])  # and again, straight into the database
    span = (START, START + 86_400)
    params = {"device_id": DEVICE, "since": span[0], "until": span[1], "tz": "UTC"}
    got = hub.client().get("/api/posture/summary", params=params).json()
    want = summarize_posture(records, since=span[0], until=span[1], tz=UTC)
    assert got["totals"]["records"] == want.observed_seconds
    assert got["totals"]["sitting_seconds"] == want.sitting_seconds
    assert got["longest_streak"]["sitting_seconds"] == want.longest_streak.sitting_seconds  # type: ignore[union-attr]


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("break_seconds", [0.0, 5.0, 60.0])
def test_merging_streaks_in_any_order_gives_the_streaks_of_all_seconds(
    seed: int, break_seconds: float
) -> None:
    rng = np.random.default_rng(seed)
    gaps = rng.choice([1, 1, 1, 2, 3, 30, 59, 60, 61, 200], size=400)
    seconds = np.cumsum(gaps).astype(np.float64)
    parts = np.array_split(rng.permutation(seconds), int(rng.integers(1, 8)))
    streaks = Streaks(np.empty(0), np.empty(0), np.empty(0))
    for part in parts:
        streaks = merge_streaks(streaks, np.sort(part), break_seconds)
    longest = longest_sitting_streak(seconds, break_seconds)
    assert longest is not None
    best = int(np.argmax(streaks.ends - streaks.starts))
    assert (streaks.starts[best], streaks.ends[best], streaks.sitting[best]) == (
        longest.start,
        longest.end,
        longest.sitting_seconds,
    )
    assert streaks.sitting.sum() == len(seconds)
    pauses = streaks.starts[1:] - streaks.ends[:-1]
    assert np.all((pauses > 0) & (pauses >= break_seconds))


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_server() as server:
        yield server.url


def test_postgresql_roll_ups_equal_the_report(postgres_url: str, tmp_path: Path) -> None:
    records, reminders = posture_days(DEVICE, START, 1, seed=11)
    with running_hub(postgres_url, tmp_path / "pg") as hub:
        load_in_parts(hub, records, reminders)
        raw = (hub.records.posture_records(DEVICE), hub.records.events(DEVICE, kind="reminder"))
        first, last = periods(raw[0])["everything"]
        for span in ((first, last), (first + 11_233.0, first + 30_007.5)):
            want = expected(raw, span, "Europe/Berlin")
            params = {"device_id": DEVICE, "since": span[0], "until": span[1]}
            got = (
                hub.client()
                .get("/api/posture/summary", params={**params, "tz": "Europe/Berlin"})
                .json()
            )
            assert got["totals"]["records"] == want.observed_seconds
            assert got["totals"]["sitting_seconds"] == want.sitting_seconds
            assert got["totals"]["hunched_seconds"] == want.hunched_seconds
            assert got["longest_streak"]["end"] == want.longest_streak.end  # type: ignore[union-attr]
            assert got["reminders"]["by_reason"] == want.reminder_counts
            assert [day_of(b) for b in got["daily"]] == days_of(want)
            page = hub.client().get("/api/records", params={**params, "limit": 7}).json()
            assert [r["ts"] for r in page["items"]] == [
                r["ts"] for r in raw[0] if r["ts"] >= span[0]
            ][:7]


def test_postgresql_records_committed_out_of_order_are_rolled(
    postgres_url: str, tmp_path: Path
) -> None:
    """A transaction that took an id early but commits late is rolled when it commits."""
    import sqlalchemy as sa

    from vigil.storage.records import posture_records

    with running_hub(postgres_url, tmp_path / "gap") as hub:
        engine = sa.create_engine(postgres_url)
        row = {**_one_record(START), "device_id": "late-1"}
        try:
            with engine.connect() as slow:
                slow_transaction = slow.begin()
                slow.execute(sa.insert(posture_records), [row])  # takes an id, not committed
                hub.records.add_posture_records([{**row, "ts": START + 1}])  # a later id
                params = {"device_id": "late-1", "since": START, "until": START + 60}
                first = hub.client().get("/api/posture/summary", params=params).json()
                assert first["totals"]["records"] == 1
                slow_transaction.commit()
            second = hub.client().get("/api/posture/summary", params=params).json()
            assert second["totals"]["records"] == 2
            assert second["longest_streak"]["sitting_seconds"] == 2
        finally:
            engine.dispose()


def _one_record(ts: float) -> dict[str, Any]:
    return {
        "ts": ts,
        "person_present": True,
        "state": "sitting",
        "hunched": False,
        "fps": 5.0,
    }
