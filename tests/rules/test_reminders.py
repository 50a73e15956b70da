"""Sitting and hunching timers, driven by frame timestamps alone."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from vigil.rules.reminders import Reminder, RemindersConfig, ReminderTimer, format_duration

MIN = 60.0
T0 = 1_700_000_000.0

Script = Callable[[float], tuple[bool, str, bool | None]]


def run(
    script: Script, minutes: float, fps: float = 1.0, config: RemindersConfig | None = None
) -> list[Reminder]:
    """Feed ``script(t)`` (person, state, hunched) for ``minutes`` at ``fps``; collect reminders."""
    timer = ReminderTimer(config or RemindersConfig())
    due: list[Reminder] = []
    for i in range(round(minutes * 60 * fps)):
        t = i / fps
        person, state, hunched = script(t)
        due.extend(timer.update(T0 + t, person, state, hunched))
    return due


def at(reminders: list[Reminder], reason: str) -> list[float]:
    return [round((r.timestamp - T0) / MIN, 2) for r in reminders if r.reason == reason]


def sitting(t: float) -> tuple[bool, str, bool | None]:
    return True, "sitting", False


def test_sitting_reminder_after_thirty_minutes_then_every_cooldown() -> None:
    reminders = run(sitting, minutes=55)
    assert at(reminders, "sitting") == [30.0, 40.0, 50.0]
    assert at(reminders, "hunching") == []


def test_a_brief_stand_does_not_reset_the_clock() -> None:
    def script(t: float) -> tuple[bool, str, bool | None]:
        return True, "standing" if 15 * MIN <= t < 15 * MIN + 20 else "sitting", False

    assert at(run(script, minutes=31), "sitting") == [30.0]


def test_a_real_break_resets_the_clock() -> None:
    def script(t: float) -> tuple[bool, str, bool | None]:
        return True, "standing" if 15 * MIN <= t < 17 * MIN else "sitting", False

    assert at(run(script, minutes=50), "sitting") == [47.0]


def test_leaving_the_desk_is_a_break() -> None:
    def script(t: float) -> tuple[bool, str, bool | None]:
        away = 10 * MIN <= t < 13 * MIN
        return (not away), "unknown" if away else "sitting", None if away else False

    assert at(run(script, minutes=45), "sitting") == [43.0]


def test_unclear_frames_keep_the_clock_running() -> None:
    def script(t: float) -> tuple[bool, str, bool | None]:
        return True, "unknown" if 5 * MIN <= t < 20 * MIN else "sitting", None

    assert at(run(script, minutes=31), "sitting") == [30.0]


def test_hunching_reminder_with_hysteresis() -> None:
    def script(t: float) -> tuple[bool, str, bool | None]:
        straightened = 2 * MIN <= t < 2 * MIN + 5  # too short to count
        return True, "sitting", not straightened

    assert at(run(script, minutes=6), "hunching") == [5.0]


def test_straightening_up_long_enough_restarts_the_hunching_clock() -> None:
    def script(t: float) -> tuple[bool, str, bool | None]:
        return True, "sitting", not (2 * MIN <= t < 2 * MIN + 30)

    assert at(run(script, minutes=8), "hunching") == [7.5]


def test_the_reminder_says_how_long_they_sat_and_hunched() -> None:
    def script(t: float) -> tuple[bool, str, bool | None]:
        return True, "sitting", t >= 18 * MIN

    first = run(script, minutes=30.5)[-1]
    assert first.reason == "sitting"
    assert first.sitting_seconds == pytest.approx(30 * MIN)
    assert first.hunched_seconds == pytest.approx(12 * MIN)
    assert "30 min" in first.message and "12 min" in first.message
    assert first.as_dict()["title"] == "Time to stand up"


def test_timers_follow_timestamps_not_frame_counts() -> None:
    one_fps = at(run(sitting, minutes=45, fps=1.0), "sitting")
    sparse = at(run(sitting, minutes=45, fps=0.1), "sitting")
    dense = at(run(sitting, minutes=45, fps=5.0), "sitting")
    assert one_fps == sparse == dense == [30.0, 40.0]


def test_timestamps_going_backwards_do_not_crash_or_count_negative() -> None:
    timer = ReminderTimer(RemindersConfig(sitting_minutes=1))
    timer.update(T0 + 100, True, "sitting", False)
    timer.update(T0 + 50, True, "sitting", False)
    assert timer.sitting_seconds == 0.0


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (RemindersConfig(sitting_minutes=10, cooldown_minutes=5), [10.0, 15.0, 20.0]),
        (RemindersConfig(sitting_minutes=10, cooldown_minutes=0), None),
    ],
)
def test_cooldown_is_configurable(config: RemindersConfig, expected: list[float] | None) -> None:
    minutes = at(run(sitting, minutes=21, config=config), "sitting")
    if expected is None:  # no cooldown: due on every frame after the limit
        assert len(minutes) == (21 - 10) * 60 and minutes[0] == 10.0
    else:
        assert minutes == expected


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0 s"), (42.4, "42 s"), (60, "1 min"), (3599, "59 min"), (3900, "1 h 05 min")],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_config_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="greater than 0"):
        RemindersConfig(sitting_minutes=0)
