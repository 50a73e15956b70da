"""The posture tracker rule: keypoints in, per-second records, state changes and reminders out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from vigil.events import Event
from vigil.frame import Frame
from vigil.rules.posture import (
    PostureClassifier,
    PostureReading,
    PostureRulesConfig,
    PostureSmoother,
    read_posture,
)
from vigil.rules.records import SecondAggregator
from vigil.rules.reminders import RemindersConfig, ReminderTimer
from vigil.stages.base import FrameResults

APP = "posture"


@dataclass(frozen=True, slots=True)
class PostureStatus:
    """The tracker's view of one frame, put into ``results.extras["posture"]`` for outputs.

    Attributes:
        reading: The smoothed reading (what records and reminders use).
        raw: This frame's reading before smoothing.
        sitting_seconds: Length of the current sitting spell.
        hunched_seconds: Time hunched during that spell.
        hunch_streak_seconds: Length of the current hunching spell.
    """

    reading: PostureReading
    raw: PostureReading
    sitting_seconds: float
    hunched_seconds: float
    hunch_streak_seconds: float


class PostureTracker:
    """Judges each frame's posture and turns it into events.

    Emits ``record`` once per second of frame time, ``state`` when the smoothed state or hunching
    changes, and ``reminder`` when the sitting or hunching timer runs out.

    Args:
        device_id: Written into every event.
        rules: Posture thresholds.
        reminders: Timer settings.
        stills: Frames are unrelated photos: no smoothing across them.
        classifier: A learned classifier that decides state and hunching instead of the
            thresholds (loaded from ``rules.learned_classifier`` by the app); None: the thresholds.
    """

    def __init__(
        self,
        device_id: str,
        rules: PostureRulesConfig,
        reminders: RemindersConfig,
        stills: bool = False,
        classifier: PostureClassifier | None = None,
    ) -> None:
        self.device_id = device_id
        self.rules = rules
        self.classifier = classifier
        self._smoother = PostureSmoother(0.0 if stills else rules.smoothing_seconds)
        self._timer = ReminderTimer(reminders)
        self._seconds = SecondAggregator(device_id)
        self._last: tuple[bool, str, bool] | None = None

    def update(self, frame: Frame, results: FrameResults) -> list[Event]:
        """Take one frame's poses; return the events that are due."""
        ts = frame.timestamp
        raw = (
            read_posture(results.poses, self.rules, classifier=self.classifier)
            if results.poses is not None
            else PostureReading.absent()
        )
        reading = self._smoother.update(ts, raw)
        hunched = reading.hunched if reading.hunch_judged else None
        due = self._timer.update(ts, reading.person, reading.state, hunched)
        timer = self._timer
        results.extras[APP] = PostureStatus(
            reading, raw, timer.sitting_seconds, timer.hunched_seconds, timer.hunch_streak_seconds
        )
        events = []
        record = self._seconds.add(ts, reading, timer.sitting_seconds, timer.hunched_seconds)
        if record is not None:
            events.append(self._record_event(record))
        events.extend(self._state_change(ts, reading))
        events.extend(self._event("reminder", r.timestamp, r.as_dict()) for r in due)
        return events

    def flush(self) -> list[Event]:
        """Return the record of the second in progress."""
        record = self._seconds.flush()
        return [] if record is None else [self._record_event(record)]

    def _record_event(self, record: dict[str, Any]) -> Event:
        data = {k: v for k, v in record.items() if k not in ("device_id", "ts")}
        return self._event("record", float(record["ts"]), data)

    def _state_change(self, ts: float, reading: PostureReading) -> list[Event]:
        now = (reading.person, reading.state, reading.hunched)
        previous, self._last = self._last, now
        if previous is None or previous == now:
            return []
        data = {
            "person_present": reading.person,
            "state": reading.state,
            "hunched": reading.hunched,
            "previous": previous[1],
            "previously_hunched": previous[2],
        }
        return [self._event("state", ts, data)]

    def _event(self, kind: str, ts: float, data: dict[str, Any]) -> Event:
        return Event(kind=kind, app=APP, device_id=self.device_id, timestamp=ts, data=data)
