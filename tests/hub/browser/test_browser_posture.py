"""The posture page in a browser: its charts and headline numbers show what was ingested.

Known per-second records go in through ``POST /api/ingest``; the test reads back the values
each chart plotted (``vigilCharts.shown``) and compares them with sums over the same records.
"""

from __future__ import annotations

import csv
import io
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from tests.hub.browser.support import Browsing, event, ingest, loaded, screenshot, spell
from tests.hub.conftest import RunningHub, running_hub

DEVICE = "desk-1"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> float:
    return datetime(year, month, day, hour, minute, tzinfo=UTC).timestamp()


# Monday 2 November 2026, the Tuesday after, and the Monday of the next week (UTC).
SPELLS = [
    # (start, seconds, state, hunched seconds)
    (utc(2026, 11, 2, 9, 0), 1800, "sitting", 600),
    (utc(2026, 11, 2, 9, 30), 600, "standing", 0),
    (utc(2026, 11, 2, 10, 0), 900, "away", 0),
    (utc(2026, 11, 2, 10, 15), 300, "unknown", 0),
    (utc(2026, 11, 3, 14, 0), 3600, "sitting", 900),
    (utc(2026, 11, 10, 9, 0), 1200, "standing", 0),
]
FIRST_DAY, LAST_DAY = "2026-11-02", "2026-11-10"
PERIOD_START, PERIOD_END = utc(2026, 11, 2), utc(2026, 11, 11)
ACTIVITIES = ("sitting", "standing", "unknown", "away")


def records() -> list[dict[str, Any]]:
    made: list[dict[str, Any]] = []
    for start, seconds, state, hunched in SPELLS:
        made += spell(DEVICE, start, seconds, state, hunched_seconds=hunched)
    return made


def reminders() -> list[dict[str, Any]]:
    return [
        event(DEVICE, utc(2026, 11, 2, 9, 29), "reminder", reason="sitting", message="Stand up"),
        event(DEVICE, utc(2026, 11, 3, 14, 5), "reminder", reason="hunching", message="Sit up"),
    ]


def expected_seconds(key: Any) -> dict[Any, dict[str, float]]:
    """Seconds per activity (and hunched while sitting) per bucket ``key(start)``."""
    sums: dict[Any, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for start, seconds, state, hunched in SPELLS:
        for second in range(seconds):
            bucket = sums[key(start + second)]
            bucket[state] += 1
            if state == "sitting" and second < hunched:
                bucket["hunched"] += 1
    return sums


def hour_of(ts: float) -> int:
    return datetime.fromtimestamp(ts, UTC).hour


def day_of(ts: float) -> float:
    moment = datetime.fromtimestamp(ts, UTC)
    return datetime(moment.year, moment.month, moment.day, tzinfo=UTC).timestamp()


def week_of(ts: float) -> float:
    return day_of(ts - datetime.fromtimestamp(ts, UTC).weekday() * 86_400)


def shown(page: Any, key: str) -> dict[str, Any]:
    return dict(page.evaluate("key => vigilCharts.shown[key]", key))


def by_key(chart: dict[str, Any], name: str) -> dict[Any, float | None]:
    return dict(zip(chart["keys"], chart["series"][name], strict=True))


def assert_stacked(
    chart: dict[str, Any], expected: dict[Any, dict[str, float]], unit: float
) -> None:
    for name in ACTIVITIES:
        plotted = by_key(chart, name)
        for key, value in plotted.items():
            assert value == pytest.approx(expected.get(key, {}).get(name, 0.0) / unit), (name, key)
    keys_with_data = {key for key, sums in expected.items() if any(sums.values())}
    assert keys_with_data <= set(chart["keys"])


@pytest.fixture(scope="module")
def posture_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    """One hub for the module, holding the records and reminders above (the tests only read)."""
    with running_hub(None, tmp_path_factory.mktemp("posture-hub")) as hub:
        client = hub.client()
        assert ingest(client, DEVICE, records() + reminders()) == len(records()) + 2
        yield hub


def open_period(browsing: Browsing, hub: RunningHub) -> Any:
    page = browsing.open(f"{hub.url}/posture/{DEVICE}?from={FIRST_DAY}&to={LAST_DAY}")
    loaded(page)
    return page


def test_hourly_chart_plots_the_ingested_minutes(
    browsing: Browsing, posture_hub: RunningHub
) -> None:
    page = open_period(browsing, posture_hub)
    chart = shown(page, "hourly")
    assert chart["unit"] == "min"
    expected = expected_seconds(hour_of)
    assert_stacked(chart, expected, 60.0)
    assert by_key(chart, "sitting")[9] == 30.0 and by_key(chart, "standing")[9] == 30.0
    assert by_key(chart, "sitting")[14] == 60.0 and by_key(chart, "away")[10] == 15.0
    hunched = by_key(shown(page, "hunched"), "hunched")
    assert hunched[9] == pytest.approx(100 * 600 / 1800)
    assert hunched[14] == pytest.approx(100 * 900 / 3600)
    assert int(page.get_attribute("#chart-hourly", "data-points")) == len(chart["keys"])
    screenshot(page, "posture")
    browsing.assert_clean()


def test_daily_and_weekly_charts_plot_the_ingested_hours(
    browsing: Browsing, posture_hub: RunningHub
) -> None:
    page = open_period(browsing, posture_hub)
    daily, weekly = shown(page, "daily"), shown(page, "weekly")
    assert daily["unit"] == "h" and weekly["unit"] == "h"
    assert_stacked(daily, expected_seconds(day_of), 3600.0)
    assert_stacked(weekly, expected_seconds(week_of), 3600.0)
    assert by_key(weekly, "sitting")[utc(2026, 11, 2)] == 1.5
    assert by_key(weekly, "standing")[utc(2026, 11, 9)] == pytest.approx(1200 / 3600)
    hunched_per_day = by_key(daily, "hunched")
    assert hunched_per_day[utc(2026, 11, 3)] == pytest.approx(25.0)
    assert hunched_per_day[utc(2026, 11, 10)] is None  # nobody sat: no share to show
    assert page.is_visible("#chart-daily canvas") and page.is_visible("#chart-weekly canvas")
    browsing.assert_clean()


def test_headline_numbers(browsing: Browsing, posture_hub: RunningHub) -> None:
    page = open_period(browsing, posture_hub)

    def card(kind: str) -> str:
        return str(page.inner_text(f"[data-card='{kind}'] .value"))

    values = page.eval_on_selector_all(
        ".card",
        "cards => cards.map(c => [c.querySelector('.label').textContent, "
        "c.querySelector('.value').textContent, c.querySelector('.detail').textContent])",
    )
    by_label = {label: (value, detail) for label, value, detail in values}
    assert by_label["Time sitting"][0] == "1 h 30 min"  # 1800 + 3600 s
    assert by_label["Time standing"][0] == "30 min"  # 600 + 1200 s
    assert by_label["Hunched"] == ("28%", "of sitting time (25 min)")  # 1500 of 5400 s
    assert by_label["Longest sitting streak"][0] == "1 h 00 min"
    assert by_label["Reminders"] == ("2", "1 hunching, 1 sitting")
    assert card("reminders") == "2"
    browsing.assert_clean()


def test_downloads_hold_the_period(browsing: Browsing, posture_hub: RunningHub) -> None:
    page = open_period(browsing, posture_hub)
    with page.expect_download() as csv_download:
        page.click("#download-csv")
    rows = list(csv.DictReader(io.StringIO(csv_download.value.path().read_text())))
    assert len(rows) == len(records())
    assert {float(row["ts"]) for row in rows} == {r["timestamp"] for r in records()}
    with page.expect_download() as parquet_download:
        page.click("#download-parquet")
    pyarrow = pytest.importorskip("pyarrow.parquet")
    table = pyarrow.read_table(parquet_download.value.path())
    assert table.num_rows == len(records())
    assert sorted(table.column("state").to_pylist()).count("sitting") == 5400
    browsing.assert_clean()


def test_period_picker(browsing: Browsing, posture_hub: RunningHub) -> None:
    now = time.time()
    ingest(posture_hub.client(), "desk-2", spell("desk-2", now - 5, 5, "sitting"))
    page = browsing.open(f"{posture_hub.url}/posture/desk-2")
    loaded(page)
    assert page.get_attribute("button[data-period='today']", "aria-pressed") == "true"
    assert page.inner_text("#period-text") == "Today"
    assert sum(shown(page, "hourly")["series"]["sitting"]) == pytest.approx(5 / 60)
    assert page.is_hidden("#section-daily") and page.is_hidden("#section-weekly")

    page.click("button[data-period='7d']")
    page.wait_for_url("**/posture/desk-2?period=7d")
    loaded(page)
    assert page.get_attribute("button[data-period='7d']", "aria-pressed") == "true"
    assert page.get_attribute("button[data-period='today']", "aria-pressed") == "false"
    assert page.is_visible("#section-daily") and page.is_hidden("#section-weekly")
    assert len(shown(page, "daily")["keys"]) == 7

    page.click("button[data-period='30d']")
    page.wait_for_url("**?period=30d")
    loaded(page)
    assert page.is_visible("#section-weekly")
    assert "/api/records.csv?device_id=desk-2&since=" in page.get_attribute("#download-csv", "href")

    page.click("button[data-period='custom']")
    page.fill("#custom input[name='from']", FIRST_DAY)
    page.fill("#custom input[name='to']", LAST_DAY)
    page.click("#custom button[type='submit']")
    page.wait_for_url(f"**?from={FIRST_DAY}&to={LAST_DAY}")
    loaded(page)
    assert page.inner_text("#period-text") == f"{FIRST_DAY} to {LAST_DAY}"
    assert page.inner_text("#message") == "No records of this device in this period."
    assert page.is_hidden("#section-hourly") and page.is_hidden("#section-weekly")

    page.go_back()  # the address holds the period, so history works
    page.wait_for_url("**?period=30d")
    page.wait_for_function("() => vigilCharts.shown.weekly !== undefined")
    assert page.get_attribute("button[data-period='30d']", "aria-pressed") == "true"
    browsing.assert_clean()


def test_a_first_day_after_the_last_is_refused(browsing: Browsing, posture_hub: RunningHub) -> None:
    page = browsing.open(f"{posture_hub.url}/posture/{DEVICE}")
    loaded(page)
    page.click("button[data-period='custom']")
    page.fill("#custom input[name='from']", LAST_DAY)
    page.fill("#custom input[name='to']", FIRST_DAY)
    page.click("#custom button[type='submit']")
    assert "first day on or before the last day" in page.inner_text("#message")
    assert "from=" not in page.url
    browsing.assert_clean()


def test_the_posture_page_fits_a_phone(browsing: Browsing, posture_hub: RunningHub) -> None:
    page = browsing.open("about:blank")
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{posture_hub.url}/posture/{DEVICE}?from={FIRST_DAY}&to={LAST_DAY}")
    loaded(page)
    overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0
    widths = page.eval_on_selector_all(".chart canvas", "all => all.map(c => c.clientWidth)")
    assert len(widths) == 4 and all(200 < width <= 390 for width in widths)
    screenshot(page, "posture-phone")
    browsing.assert_clean()
