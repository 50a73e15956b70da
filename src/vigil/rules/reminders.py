"""Sitting and hunching timers that decide when to remind someone to move.

Pure state machines driven by frame timestamps: a recorded hour of video is judged like a live
hour, and tests run hours of frames in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field

from vigil.config import ConfigModel

Reason = Literal["sitting", "hunching"]


class RemindersConfig(ConfigModel):
    """When to send a reminder, and how not to nag."""

    sitting_minutes: float = Field(
        30.0, gt=0, le=24 * 60, description="Remind after sitting this long without a real break."
    )
    hunching_minutes: float = Field(
        5.0,
        gt=0,
        le=24 * 60,
        description="Remind after hunching this long without straightening up.",
    )
    break_seconds: float = Field(
        60.0,
        ge=0,
        le=3600,
        description="Standing up or leaving for less than this does not end a sitting spell "
        "(hysteresis: a brief stand does not reset the clock).",
    )
    straighten_seconds: float = Field(
        10.0,
        ge=0,
        le=3600,
        description="Sitting straight for less than this does not end a hunching spell.",
    )
    cooldown_minutes: float = Field(
        10.0,
        ge=0,
        le=24 * 60,
        description="After a reminder, wait this long before the next one of the same kind.",
    )


@dataclass(frozen=True, slots=True)
class Reminder:
    """A reminder that is due.

    Attributes:
        reason: ``sitting`` or ``hunching``.
        timestamp: Frame time when it became due.
        sitting_seconds: Length of the current sitting spell.
        hunched_seconds: Time spent hunched during that spell.
        hunch_streak_seconds: Length of the current hunching spell.
    """

    reason: Reason
    timestamp: float
    sitting_seconds: float
    hunched_seconds: float
    hunch_streak_seconds: float

    @property
    def title(self) -> str:
        """A short title for a notification."""
        return "Time to stand up" if self.reason == "sitting" else "Straighten up"

    @property
    def message(self) -> str:
        """One friendly sentence saying how long they sat and hunched."""
        sat = format_duration(self.sitting_seconds)
        hunched = format_duration(self.hunched_seconds)
        if self.reason == "sitting":
            return (
                f"You have been sitting for {sat} ({hunched} of it hunched). Stand up and stretch."
            )
        streak = format_duration(self.hunch_streak_seconds)
        return (
            f"You have been hunched for {streak} (sitting for {sat}, {hunched} of it hunched). "
            "Sit back and straighten up."
        )

    def as_dict(self) -> dict[str, object]:
        """Return the reminder as event data."""
        return {
            "reason": self.reason,
            "sitting_seconds": round(self.sitting_seconds, 1),
            "hunched_seconds": round(self.hunched_seconds, 1),
            "hunch_streak_seconds": round(self.hunch_streak_seconds, 1),
            "title": self.title,
            "message": self.message,
        }


def format_duration(seconds: float) -> str:
    """Format seconds as ``1 h 05 min``, ``12 min`` or ``40 s``."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


class _Spell:
    """A stretch of time in one condition that survives interruptions shorter than ``grace``."""

    def __init__(self, grace_seconds: float) -> None:
        self.grace_seconds = grace_seconds
        self.started: float | None = None
        self._interrupted: float | None = None

    def update(self, timestamp: float, active: bool | None) -> None:
        """Advance to ``timestamp``; ``active`` None means "cannot tell" and changes nothing."""
        if active is None:
            return
        if active:
            if self.started is None:
                self.started = timestamp
            self._interrupted = None
        elif self.started is not None:
            if self._interrupted is None:
                self._interrupted = timestamp
            if timestamp - self._interrupted >= self.grace_seconds:
                self.started = None
                self._interrupted = None

    def length(self, timestamp: float) -> float:
        """Seconds since the spell started (0 when there is none)."""
        return 0.0 if self.started is None else max(0.0, timestamp - self.started)


class ReminderTimer:
    """Tracks sitting and hunching spells and says when a reminder is due.

    Feed it every frame's smoothed state with :meth:`update`; it returns the reminders due at that
    moment (at most one per reason, respecting the cooldown).
    """

    def __init__(self, config: RemindersConfig) -> None:
        self.config = config
        self._sitting = _Spell(config.break_seconds)
        self._hunching = _Spell(config.straighten_seconds)
        self._hunched_seconds = 0.0
        self._last_timestamp: float | None = None
        self._was_hunched = False
        self._last_sent: dict[Reason, float] = {}

    def update(
        self, timestamp: float, person: bool, state: str, hunched: bool | None
    ) -> list[Reminder]:
        """Advance the timers to ``timestamp``.

        Args:
            timestamp: Frame time, Unix seconds; earlier than the previous one is treated as equal.
            person: Whether someone is in the frame.
            state: ``sitting``, ``standing`` or ``unknown``.
            hunched: Whether they are hunched; None when it could not be judged.
        """
        previous = self._last_timestamp
        timestamp = timestamp if previous is None else max(timestamp, previous)
        self._last_timestamp = timestamp
        was_sitting = self._sitting.started is not None
        self._sitting.update(timestamp, _sitting_now(person, state))
        if self._sitting.started is None:
            self._hunched_seconds = 0.0
            self._last_sent.pop("sitting", None)
        elif was_sitting and previous is not None and self._was_hunched:
            self._hunched_seconds += timestamp - previous  # the interval since a hunched frame
        self._was_hunched = bool(hunched and person)
        self._hunching.update(timestamp, hunched if person else False)
        if self._hunching.started is None:
            self._last_sent.pop("hunching", None)
        return self._due(timestamp)

    @property
    def sitting_seconds(self) -> float:
        """Length of the current sitting spell at the last update."""
        return self._sitting.length(self._last_timestamp or 0.0)

    @property
    def hunched_seconds(self) -> float:
        """Time hunched during the current sitting spell."""
        return self._hunched_seconds

    @property
    def hunch_streak_seconds(self) -> float:
        """Length of the current hunching spell at the last update."""
        return self._hunching.length(self._last_timestamp or 0.0)

    def _due(self, timestamp: float) -> list[Reminder]:
        due: list[Reminder] = []
        limits: dict[Reason, tuple[float, float]] = {
            "sitting": (self.sitting_seconds, self.config.sitting_minutes * 60),
            "hunching": (self.hunch_streak_seconds, self.config.hunching_minutes * 60),
        }
        for reason, (length, limit) in limits.items():
            last = self._last_sent.get(reason)
            cooled = last is None or timestamp - last >= self.config.cooldown_minutes * 60
            if length >= limit and cooled:
                self._last_sent[reason] = timestamp
                due.append(self._reminder(reason, timestamp))
        return due

    def _reminder(self, reason: Reason, timestamp: float) -> Reminder:
        return Reminder(
            reason=reason,
            timestamp=timestamp,
            sitting_seconds=self.sitting_seconds,
            hunched_seconds=self.hunched_seconds,
            hunch_streak_seconds=self.hunch_streak_seconds,
        )


def _sitting_now(person: bool, state: str) -> bool | None:
    """Sitting: True; standing or away: False; present but unclear: None (keeps the clock)."""
    if not person:
        return False
    if state == "unknown":
        return None
    return state == "sitting"
