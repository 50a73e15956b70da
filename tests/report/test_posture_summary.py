"""The posture summary on hand-built records.

Records are written as strings, one character per second from ``T0``:
``S`` sitting, ``s`` sitting hunched, ``T`` standing, ``t`` standing hunched, ``U`` present but
posture unknown, ``A`` away (no person), ``.`` no record.
"""

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pytest

from vigil.errors import ConfigError
from vigil.report import Activity, summarize_posture

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC).timestamp()
PLUS_ONE = timezone(timedelta(hours=1), "CET")

_CODES = {
    "S": ("sitting", True, False),
    "s": ("sitting", True, True),
    "T": ("standing", True, False),
    "t": ("standing", True, True),
    "U": ("unknown", True, False),
    "A": ("unknown", False, False),
}


def record(ts: float, state: str = "sitting", present: bool = True, hunched: bool = False):
    return {
        "device_id": "desk",
        "ts": ts,
        "person_present": present,
        "state": state,
        "hunched": hunched,
        "fps": 15.0,
    }


def records(pattern: str, start: float = T0) -> list[dict[str, Any]]:
    return [record(start + i, *_CODES[c]) for i, c in enumerate(pattern) if c != "."]


def span(start: float, seconds: int, state: str = "sitting", **kw: Any) -> list[dict[str, Any]]:
    return [record(start + i, state, **kw) for i in range(seconds)]


def reminder(ts: float, reason: str = "sitting", **extra: Any) -> Mapping[str, Any]:
    data = {"reason": reason, "title": "Stand up", "message": "m", "sitting_seconds": 1800}
    return {
        "ts": ts,
        "kind": "reminder",
        "app": "posture",
        "device_id": "desk",
        "data": {**data, **extra},
    }


def test_totals_per_state() -> None:
    summary = summarize_posture(records("SSsTTtUUA..S"), since=T0, until=T0 + 20, tz=UTC)
    assert summary.period_seconds == 20
    assert summary.observed_seconds == 10
    assert summary.no_data_seconds == 10
    assert summary.present_seconds == 9
    assert summary.sitting_seconds == 4
    assert summary.standing_seconds == 3
    assert summary.unknown_seconds == 2
    assert summary.away_seconds == 1
    assert summary.hunched_seconds == 2
    assert summary.hunched_sitting_seconds == 1
    assert summary.hunched_share == pytest.approx(0.25)
    assert not summary.empty


def test_an_unexpected_state_counts_as_unknown_and_absence_wins_over_state() -> None:
    rows = [record(T0, "lying"), record(T0 + 1, "sitting", present=False, hunched=True)]
    summary = summarize_posture(rows, tz=UTC)
    assert (summary.unknown_seconds, summary.away_seconds, summary.sitting_seconds) == (1, 1, 0)
    assert summary.hunched_seconds == 0


@pytest.mark.parametrize(
    ("pattern", "start", "end", "sitting"),
    [
        ("SSS..SS", 0, 7, 5),  # a 2 s gap is shorter than the break
        ("SSTTSS", 0, 6, 4),  # so is 2 s of standing
        ("SSAASSS", 0, 7, 5),  # and 2 s away
        ("SS.U.SS", 0, 2, 2),  # a gap, unknown and a gap: 3 s ends it, ties go to the first
        ("SSS...SS", 0, 3, 3),  # a 3 s gap ends the streak
        ("SS.TT.SSS", 6, 9, 3),  # 4 s of gap and standing end it; the later streak is longer
        ("S..S...SSSSSSSS", 7, 15, 8),  # short pauses, a break, then a longer streak
        ("S..S..S..S...SSS", 0, 10, 4),  # the joined streak outlasts the solid one
        ("S", 0, 1, 1),
        ("..TTsS", 4, 6, 2),
    ],
)
def test_longest_streak_tolerates_short_pauses(
    pattern: str, start: int, end: int, sitting: int
) -> None:
    streak = summarize_posture(records(pattern), break_seconds=3, tz=UTC).longest_streak
    assert streak is not None
    assert (streak.start - T0, streak.end - T0, streak.sitting_seconds) == (start, end, sitting)
    assert streak.duration == end - start


@pytest.mark.parametrize(("pattern", "duration"), [("SSS", 3), ("SS.SSSS", 4), ("SSTSS", 2)])
def test_with_no_break_length_every_pause_ends_a_streak(pattern: str, duration: int) -> None:
    streak = summarize_posture(records(pattern), break_seconds=0, tz=UTC).longest_streak
    assert streak is not None
    assert streak.duration == duration


def test_a_negative_break_length_is_refused() -> None:
    with pytest.raises(ConfigError, match="break length must be 0 s or more"):
        summarize_posture(records("SS"), break_seconds=-1, tz=UTC)


@pytest.mark.parametrize("pattern", ["", "TTT", "UA.t", "AAAA"])
def test_no_sitting_means_no_streak(pattern: str) -> None:
    summary = summarize_posture(records(pattern), since=T0, until=T0 + 10, tz=UTC)
    assert summary.longest_streak is None
    assert summary.hunched_share is None


@pytest.mark.parametrize(("pause", "minutes"), [(59, 20 + 59 / 60 + 30), (60, 30)])
def test_default_break_is_one_minute(pause: int, minutes: float) -> None:
    rows = span(T0, 20 * 60) + span(T0 + 20 * 60 + pause, 30 * 60)
    streak = summarize_posture(rows, tz=UTC).longest_streak
    assert streak is not None
    assert streak.duration == pytest.approx(minutes * 60)


def test_records_outside_the_period_and_repeated_seconds_are_ignored() -> None:
    rows = [*records("SSSS", T0 - 2), record(T0 + 1.4, "standing"), *records("TT", T0 + 5)]
    summary = summarize_posture(rows, since=T0, until=T0 + 6, tz=UTC)
    assert summary.observed_seconds == 3  # T0, T0+1 (twice), T0+5
    assert summary.sitting_seconds == 2
    assert summary.standing_seconds == 1


def test_the_period_defaults_to_the_records() -> None:
    summary = summarize_posture(records("..S.TT"), tz=UTC)
    assert (summary.since, summary.until) == (T0 + 2, T0 + 6)
    assert summary.no_data_seconds == 1


def test_an_empty_period() -> None:
    summary = summarize_posture([], [], since=T0, until=T0 + 7200, tz=UTC)
    assert summary.empty
    assert summary.no_data_seconds == 7200
    assert len(summary.hourly) == 2
    np.testing.assert_array_equal(summary.hourly.no_data, [3600, 3600])
    assert len(summary.timeline) == 0
    assert summary.reminders == ()


def test_a_period_that_ends_before_it_starts_is_refused() -> None:
    with pytest.raises(ConfigError):
        summarize_posture([], since=T0, until=T0 - 1, tz=UTC)


def test_hour_and_day_buckets_cross_local_midnight() -> None:
    midnight = datetime(2026, 11, 21, tzinfo=PLUS_ONE).timestamp()
    rows = span(midnight - 1800, 1800, hunched=True) + span(midnight, 1200)
    rows += span(midnight + 1200, 600, "standing")
    summary = summarize_posture(rows, since=midnight - 2700, until=midnight + 2700, tz=PLUS_ONE)
    hourly = summary.hourly
    np.testing.assert_array_equal(hourly.starts, [midnight - 2700, midnight])
    np.testing.assert_array_equal(hourly.ends, [midnight, midnight + 2700])
    np.testing.assert_array_equal(hourly.sitting, [1800, 1200])
    np.testing.assert_array_equal(hourly.standing, [0, 600])
    np.testing.assert_array_equal(hourly.no_data, [900, 900])
    np.testing.assert_array_equal(hourly.hunched, [1800, 0])
    np.testing.assert_allclose(hourly.hunched_share, [1.0, 0.0])
    daily = summary.daily
    assert [datetime.fromtimestamp(t, PLUS_ONE).day for t in daily.starts] == [20, 21]
    np.testing.assert_array_equal(daily.sitting, [1800, 1200])
    np.testing.assert_array_equal(daily.present, [1800, 1800])


def test_hours_follow_the_zone_not_utc() -> None:
    kathmandu = timezone(timedelta(hours=5, minutes=45))
    rows = span(T0, 3600)  # 13:45 to 14:45 in Kathmandu
    summary = summarize_posture(rows, since=T0, until=T0 + 3600, tz=kathmandu)
    np.testing.assert_array_equal(summary.hourly.sitting, [900, 2700])
    assert datetime.fromtimestamp(summary.hourly.starts[1], kathmandu).minute == 0


def test_hunched_share_is_nan_for_hours_without_sitting() -> None:
    rows = span(T0, 60, "standing", hunched=True) + span(T0 + 3600, 60, hunched=True)
    share = summarize_posture(rows, since=T0, until=T0 + 7200, tz=UTC).hourly.hunched_share
    assert np.isnan(share[0])
    assert share[1] == 1.0


def berlin() -> ZoneInfo:
    try:
        return ZoneInfo("Europe/Berlin")
    except ZoneInfoNotFoundError:
        pytest.skip("no time zone database on this machine")


def test_the_night_clocks_go_back_has_25_hours() -> None:
    tz = berlin()
    since = datetime(2026, 10, 25, tzinfo=tz).timestamp()
    until = datetime(2026, 10, 26, tzinfo=tz).timestamp()
    summary = summarize_posture(span(since, 60), since=since, until=until, tz=tz)
    hours = [datetime.fromtimestamp(t, tz).hour for t in summary.hourly.starts]
    assert hours[:5] == [0, 1, 2, 2, 3]
    assert len(summary.hourly) == 25
    assert len(summary.daily) == 1
    assert summary.daily.ends[0] - summary.daily.starts[0] == 25 * 3600


def test_timeline_runs_split_on_state_and_gaps() -> None:
    runs = summarize_posture(records("SSs.TTAU"), tz=UTC).timeline
    np.testing.assert_array_equal(runs.starts - T0, [0, 4, 6, 7])
    np.testing.assert_array_equal(runs.ends - T0, [3, 6, 7, 8])
    assert list(runs.activities) == [
        Activity.SITTING,
        Activity.STANDING,
        Activity.AWAY,
        Activity.UNKNOWN,
    ]


def test_reminders_are_counted_by_reason_in_time_order() -> None:
    events = [
        reminder(T0 + 50, "hunching", message="Sit up", hunched_seconds=600),
        reminder(T0 + 10, message="Time to stand"),
        reminder(T0 + 30),
        {"ts": T0 + 20, "kind": "state", "app": "posture", "data": {"state": "sitting"}},
        {**reminder(T0 + 40), "app": "ppe"},
        reminder(T0 - 1),  # before the period
        reminder(T0 + 100),  # at its (exclusive) end
    ]
    summary = summarize_posture(records("S"), events, since=T0, until=T0 + 100, tz=UTC)
    assert [r.ts - T0 for r in summary.reminders] == [10, 30, 50]
    assert summary.reminder_counts == {"hunching": 1, "sitting": 2}
    first, last = summary.reminders[0], summary.reminders[-1]
    assert (first.title, first.message, first.sitting_seconds) == (
        "Stand up",
        "Time to stand",
        1800,
    )
    assert (last.reason, last.hunched_seconds, first.hunched_seconds) == ("hunching", 600, None)


def test_a_day_at_one_record_per_second_summarises_quickly() -> None:
    day = [
        record(T0 + i, "sitting" if i % 7 else "standing", hunched=i % 3 == 0)
        for i in range(86_400)
    ]
    summary = summarize_posture(day, since=T0, until=T0 + 86_400, tz=UTC)
    assert summary.standing_seconds == 86_400 // 7 + 1
    assert summary.longest_streak is not None
    assert summary.longest_streak.start == T0 + 1  # the first second is standing
    assert summary.longest_streak.duration == 86_399
    assert len(summary.hourly) == 24
