"""Events: what rules emit and sinks publish."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    """Something a pipeline reports: a per-second record, a reminder, a state change.

    Attributes:
        kind: What the event is, e.g. ``"record"``, ``"reminder"``, ``"state"``. Sinks route on it.
        app: The app that produced it, e.g. ``"posture"``.
        device_id: The device (camera) it is about.
        timestamp: When it happened, seconds since the Unix epoch (frame time, not wall time).
        data: The payload: plain JSON-serialisable values only.
    """

    kind: str
    app: str
    device_id: str
    timestamp: float
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the event as one flat JSON-ready dictionary."""
        return {
            "kind": self.kind,
            "app": self.app,
            "device_id": self.device_id,
            "timestamp": self.timestamp,
            "time": iso_time(self.timestamp),
            **self.data,
        }

    def to_json(self) -> str:
        """Return the event as compact JSON."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False)


def iso_time(timestamp: float) -> str:
    """Format seconds since the epoch as an ISO 8601 UTC string with milliseconds."""
    return datetime.fromtimestamp(timestamp, tz=UTC).isoformat(timespec="milliseconds")
