"""Helpers of the sink tests: events, configs with fast retries, and a scripted transport."""

from __future__ import annotations

import threading
from collections import deque
from pathlib import Path
from typing import Any

from vigil.events import Event
from vigil.sinks.base import OutboxMessage
from vigil.sinks.config import NetworkSinksConfig

FAST_RETRY = {"retry_initial_seconds": 0.05, "retry_max_seconds": 0.2}


def make_event(
    number: int = 0, kind: str = "record", app: str = "posture", device: str = "desk-1", **data: Any
) -> Event:
    """An event whose ``n`` field says which one it is."""
    stamp = 1_790_000_000.0 + number
    return Event(kind=kind, app=app, device_id=device, timestamp=stamp, data={"n": number, **data})


def reminder(number: int = 0, **data: Any) -> Event:
    data.setdefault("title", "Time to stand up")
    data.setdefault("message", f"You have been sitting for {30 + number} minutes.")
    return make_event(number, kind="reminder", **data)


def sinks_config(tmp_path: Path, **sections: Any) -> NetworkSinksConfig:
    """A config with the outbox in ``tmp_path`` and fast retries, plus ``sections``."""
    outbox = {"path": str(tmp_path / "outbox.db"), **FAST_RETRY, **sections.pop("outbox", {})}
    return NetworkSinksConfig.model_validate({"outbox": outbox, **sections})


class ScriptedTransport:
    """A transport at the network edge: each send follows the next step of a script.

    A step is an exception to raise, an int (deliver that many from the front), or None
    (deliver all). Delivered messages are kept in ``delivered``; every call in ``calls``.
    """

    def __init__(self, name: str = "fake", steps: list[Any] | None = None) -> None:
        self.name = name
        self.steps: deque[Any] = deque(steps or [])
        self.calls: list[list[OutboxMessage]] = []
        self.delivered: list[OutboxMessage] = []
        self.closed = False
        self.changed = threading.Condition()

    def send(self, messages: list[OutboxMessage]) -> int:
        with self.changed:
            self.calls.append(list(messages))
            step = self.steps.popleft() if self.steps else None
            self.changed.notify_all()
            if isinstance(step, BaseException):
                raise step
            count = len(messages) if step is None else min(step, len(messages))
            self.delivered.extend(messages[:count])
            self.changed.notify_all()
            return count

    def close(self) -> None:
        self.closed = True

    def payloads(self) -> list[bytes]:
        with self.changed:
            return [m.payload for m in self.delivered]

    def wait_delivered(self, count: int, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: len(self.delivered) >= count, timeout)

    def wait_calls(self, count: int, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: len(self.calls) >= count, timeout)
