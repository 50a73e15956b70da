"""The HTML posture report, written from a real SQLite records database."""

import base64
import re
import struct
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from vigil.errors import ConfigError, DependencyError, StorageError
from vigil.events import Event
from vigil.report import PostureReport, format_duration, write_posture_report
from vigil.storage import RecordStore

TZ = timezone(timedelta(hours=1), "CET")
DAY = datetime(2026, 11, 19, tzinfo=TZ).timestamp()
DEVICE = "desk-1"
HOUR = 3600

# (start hour, minutes, state, present, hunched): a working day between nights away.
PLAN = [
    (0.0, 8 * 60, "unknown", False, False),
    (8.0, 60, "sitting", True, False),
    (9.0, 40 / 60, "standing", True, False),  # shorter than a minute: the streak goes on
    (9.0 + 40 / 3600, 67 - 40 / 60, "sitting", True, True),
    (10.0 + 7 / 60, 53, "standing", True, False),
    (11.0, 60, "unknown", True, False),
    # 12:00 to 13:00 no record
    (13.0, 90, "sitting", True, False),
    (14.5, 3.5 * 60, "standing", True, False),
    (18.0, 6 * 60, "unknown", False, False),
]
LONGEST_STREAK = "2 h 07 min"  # 08:00 to 10:07 across 40 s of standing
REMINDERS = [
    (9.5, "sitting", "Time to stand", "You sat for 90 minutes: <b>stand</b> & stretch"),
    (9.75, "hunching", "Sit up", "Hunched for 10 minutes"),
    (14.5, "sitting", "Time to stand", "You sat for 90 minutes"),
]


def day_records(device: str) -> list[dict[str, Any]]:
    rows = []
    for hour, minutes, state, present, hunched in PLAN:
        start = round(DAY + hour * HOUR)
        rows.extend(
            {
                "device_id": device,
                "ts": float(start + i),
                "person_present": present,
                "state": state,
                "hunched": hunched,
                "fps": 15.0,
                "confidence": 0.9,
            }
            for i in range(round(minutes * 60))
        )
    return rows


def reminder_events(device: str) -> list[Event]:
    return [
        Event(
            "reminder",
            "posture",
            device,
            DAY + hour * HOUR,
            {
                "reason": reason,
                "title": title,
                "message": message,
                "sitting_seconds": 5400,
                "hunched_seconds": 600,
            },
        )
        for hour, reason, title, message in REMINDERS
    ]


def filled_store(path: Path, device: str = DEVICE, *, minutes: int | None = None) -> RecordStore:
    """Return a store with the day's reminders and its records (only the first ``minutes``
    of the working day when given)."""
    store = RecordStore(f"sqlite:///{path}")
    rows = day_records(device)
    if minutes is not None:
        rows = [row for row in rows if DAY + 8 * HOUR <= row["ts"] < DAY + 8 * HOUR + minutes * 60]
    store.add_posture_records(rows)
    store.add_events(reminder_events(device))
    return store


@pytest.fixture(scope="module")
def day_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RecordStore]:
    store = filled_store(tmp_path_factory.mktemp("records") / "vigil.db")
    yield store
    store.close()


@pytest.fixture(scope="module")
def day_report(
    day_store: RecordStore, tmp_path_factory: pytest.TempPathFactory
) -> tuple[PostureReport, str]:
    out = tmp_path_factory.mktemp("posture-report") / "out" / "report.html"
    report = write_posture_report(day_store, out, since=DAY, until=DAY + 24 * HOUR, tz=TZ)
    return report, Path(report).read_text(encoding="utf-8")


def embedded_pngs(html: str) -> list[bytes]:
    return [
        base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    ]


def png_size(png: bytes) -> tuple[int, int]:
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    return width, height


def card_value(html: str, label: str) -> str:
    match = re.search(rf'<div class="label">{label}</div><div class="value">([^<]*)</div>', html)
    assert match is not None, f"no card {label!r}"
    return match.group(1)


def test_the_report_is_one_self_contained_file(day_report: tuple[PostureReport, str]) -> None:
    report, html = day_report
    assert report.path.name == "report.html"
    assert report.path.parent.name == "out"
    assert html.startswith("<!doctype html>")
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", html, re.IGNORECASE)
    assert not re.search(r"url\(\s*['\"]?(https?:)?//", html)
    assert "<script" not in html
    assert "<link" not in html
    assert not list(report.path.parent.glob(".*partial"))


def test_the_report_names_the_device_and_period(day_report: tuple[PostureReport, str]) -> None:
    report, html = day_report
    assert report.device_id == DEVICE
    assert report.warning is None
    assert not report.empty
    assert f"<strong>{DEVICE}</strong>" in html
    assert "2026-11-19 00:00 CET to 2026-11-20 00:00 CET" in html


def test_the_charts_are_embedded(day_report: tuple[PostureReport, str]) -> None:
    _, html = day_report
    pngs = embedded_pngs(html)
    assert len(pngs) == 3  # timeline, hourly, hunched; no per-day chart for one day
    for png in pngs:
        width, height = png_size(png)
        assert width >= 1000
        assert height >= 200
        assert len(png) > 10_000
    assert [key for key in re.findall(r'<section class="chart" id="(\w+)"', html)] == [
        "timeline",
        "hourly",
        "hunched",
    ]


def test_the_headline_numbers(day_report: tuple[PostureReport, str]) -> None:
    report, html = day_report
    assert card_value(html, "Time sitting") == "3 h 36 min"  # 60 + 66:20 + 90 minutes
    assert card_value(html, "Time standing") == "4 h 24 min"  # 0:40 + 53 + 210 minutes
    assert card_value(html, "Hunched") == "31%"  # 66:20 of 216:20 minutes
    assert card_value(html, "Longest sitting streak") == LONGEST_STREAK
    assert "2026-11-19 08:00 to 10:07 CET" in html
    assert card_value(html, "Reminders sent") == "3"
    assert "1 hunching, 2 sitting" in html
    assert report.summary.no_data_seconds == HOUR


def test_the_reminders_are_listed_and_escaped(day_report: tuple[PostureReport, str]) -> None:
    _, html = day_report
    rows = re.findall(r"<tr><td class=\"time\">([^<]+)</td>", html)
    assert rows == ["2026-11-19 09:30:00 CET", "2026-11-19 09:45:00 CET", "2026-11-19 14:30:00 CET"]
    assert "You sat for 90 minutes: &lt;b&gt;stand&lt;/b&gt; &amp; stretch" in html
    assert "<b>stand</b>" not in html


def test_a_period_over_a_day_gets_per_day_bars(day_store: RecordStore, tmp_path: Path) -> None:
    report = write_posture_report(
        day_store, tmp_path / "week.html", since=DAY - 6 * 86_400, until=DAY + 86_400, tz=TZ
    )
    html = report.path.read_text(encoding="utf-8")
    assert 'id="daily"' in html
    assert len(embedded_pngs(html)) == 4
    assert len(report.summary.daily) == 7


def test_device_ids_are_escaped(tmp_path: Path) -> None:
    device = "<script>alert('x')</script>"
    store = filled_store(tmp_path / "vigil.db", device, minutes=10)
    report = write_posture_report(
        store, tmp_path / "r.html", device_id=device, since=DAY, until=DAY + 86_400, tz=TZ
    )
    html = report.path.read_text(encoding="utf-8")
    assert "<script" not in html
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in html
    assert card_value(html, "Reminders sent") == "3"


def test_an_empty_period_says_so(day_store: RecordStore, tmp_path: Path) -> None:
    since, until = DAY + 2 * 86_400, DAY + 3 * 86_400
    report = write_posture_report(
        day_store, tmp_path / "empty.html", device_id=DEVICE, since=since, until=until, tz=TZ
    )
    html = report.path.read_text(encoding="utf-8")
    expected = (
        f"no posture records for {DEVICE} between 2026-11-21 00:00 CET and 2026-11-22 00:00 CET"
    )
    assert report.empty
    assert report.warning == expected
    assert f"N{expected[1:]}." in html
    assert embedded_pngs(html) == []
    assert "No reminders were sent in this period." in html


def test_an_empty_database_names_no_device(tmp_path: Path) -> None:
    store = RecordStore(f"sqlite:///{tmp_path / 'vigil.db'}")
    report = write_posture_report(store, tmp_path / "r.html", since=DAY, until=DAY + 60, tz=TZ)
    assert report.device_id is None
    assert report.warning is not None
    assert report.warning.startswith("no posture records for any device between")


def test_the_only_device_is_chosen_and_several_need_a_choice(tmp_path: Path) -> None:
    store = filled_store(tmp_path / "vigil.db", minutes=10)
    report = write_posture_report(store, tmp_path / "r.html", since=DAY, until=DAY + 86_400, tz=TZ)
    assert report.device_id == DEVICE
    store.add_posture_records(day_records("desk-2")[:10])
    with pytest.raises(ConfigError, match=r"2 devices .*\(desk-1, desk-2\).*--device"):
        write_posture_report(store, tmp_path / "r.html", since=DAY, until=DAY + 86_400, tz=TZ)


def test_a_period_that_ends_before_it_starts_is_refused(tmp_path: Path) -> None:
    store = RecordStore(f"sqlite:///{tmp_path / 'vigil.db'}")
    with pytest.raises(ConfigError, match="must be earlier than --until"):
        write_posture_report(store, tmp_path / "r.html", since=DAY, until=DAY - 1, tz=TZ)
    assert not (tmp_path / "r.html").exists()


@pytest.mark.parametrize("where", ["a-file/report.html", "a-folder"])
def test_an_unwritable_path_is_a_storage_error(tmp_path: Path, where: str) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "a-folder").mkdir()
    store = RecordStore(f"sqlite:///{tmp_path / 'vigil.db'}")
    with pytest.raises(StorageError, match="choose another --out") as caught:
        write_posture_report(store, tmp_path / where, since=DAY, until=DAY + 60, tz=TZ)
    assert "\n" not in str(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_missing_matplotlib_is_a_dependency_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = filled_store(tmp_path / "vigil.db", minutes=10)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(DependencyError, match=r"pip install 'vigil\[report\]'"):
        write_posture_report(store, tmp_path / "r.html", since=DAY, until=DAY + 86_400, tz=TZ)


def test_the_report_is_usable_as_a_path(day_report: tuple[PostureReport, str]) -> None:
    report, _ = day_report
    assert Path(report) == report.path
    assert str(report) == str(report.path)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0 s"),
        (45.4, "45 s"),
        (59.6, "1 min"),
        (720, "12 min"),
        (3599, "1 h 00 min"),
        (7620, "2 h 07 min"),
        (36 * 3600, "36 h 00 min"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text
