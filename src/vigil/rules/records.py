"""Per-second posture records: many frames in, one record out per second of frame time."""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vigil.rules.posture import PostureReading


@dataclass
class _Second:
    start: int
    frames: int = 0
    present: int = 0
    states: Counter[str] = field(default_factory=Counter)
    sides: Counter[str] = field(default_factory=Counter)
    hunched_votes: list[bool] = field(default_factory=list)
    angles: dict[str, list[float]] = field(
        default_factory=lambda: {"torso": [], "neck": [], "thigh": [], "knee": []}
    )
    confidences: list[float] = field(default_factory=list)
    sitting_seconds: float = 0.0
    hunched_seconds: float = 0.0


class SecondAggregator:
    """Rolls the frames of each second of frame time into one record.

    :meth:`add` returns the finished record of the previous second when a frame of a new second
    arrives; :meth:`flush` returns the record of the second in progress (at shutdown). Seconds
    without frames produce no record.
    """

    def __init__(self, device_id: str) -> None:
        self.device_id = device_id
        self._current: _Second | None = None

    def add(
        self,
        timestamp: float,
        reading: PostureReading,
        sitting_seconds: float = 0.0,
        hunched_seconds: float = 0.0,
    ) -> dict[str, Any] | None:
        """Add one frame's reading; return the previous second's record when it just ended."""
        second = math.floor(timestamp)
        finished = None
        if self._current is not None and second != self._current.start:
            finished = self.flush()
        if self._current is None:
            self._current = _Second(start=second)
        _accumulate(self._current, reading, sitting_seconds, hunched_seconds)
        return finished

    def flush(self) -> dict[str, Any] | None:
        """Return the record of the second in progress, if any, and start afresh."""
        current, self._current = self._current, None
        return None if current is None else self._record(current)

    def _record(self, second: _Second) -> dict[str, Any]:
        present = second.present * 2 > second.frames
        votes = second.hunched_votes
        return {
            "device_id": self.device_id,
            "ts": float(second.start),
            "person_present": present,
            "state": _majority(second.states) if present else "unknown",
            "hunched": present and bool(votes) and sum(votes) * 2 > len(votes),
            "side": _majority(second.sides) if second.sides else None,
            **{f"{name}_angle": _mean(values) for name, values in second.angles.items()},
            "confidence": _mean(second.confidences, digits=3),
            "fps": float(second.frames),
            "sitting_seconds": round(second.sitting_seconds, 1),
            "hunched_seconds": round(second.hunched_seconds, 1),
        }


def _accumulate(second: _Second, reading: PostureReading, sitting: float, hunched: float) -> None:
    second.frames += 1
    second.sitting_seconds = sitting
    second.hunched_seconds = hunched
    if not reading.person:
        return
    second.present += 1
    second.states[reading.state] += 1
    if reading.side is not None:
        second.sides[reading.side] += 1
    if reading.hunch_judged:
        second.hunched_votes.append(reading.hunched)
    for name, value in reading.angles.as_dict().items():
        if value is not None:
            second.angles[name].append(value)
    second.confidences.append(reading.confidence)


def _majority(counts: Counter[str]) -> str:
    return counts.most_common(1)[0][0]


def _mean(values: list[float], digits: int = 1) -> float | None:
    return round(float(np.mean(values)), digits) if values else None
