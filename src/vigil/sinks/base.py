"""Sinks: where events go. One verb, ``publish(event)``.

Local sinks (the records database, rolled files, JSON lines) write directly. Network sinks
(MQTT, webhooks, notifications, S3 uploads) never talk to the network from the pipeline thread:
their ``publish`` puts the message into the durable :class:`~vigil.sinks.outbox.Outbox`, and a
:class:`~vigil.sinks.outbox.Dispatcher` thread per transport delivers it, in order, with retries.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from vigil.events import Event


@runtime_checkable
class Sink(Protocol):
    """Something that takes events."""

    def publish(self, event: Event) -> None:
        """Accept one event. Must not block on the network."""

    def close(self) -> None:
        """Flush what was accepted and release resources."""


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One message waiting in the outbox for one transport.

    Attributes:
        id: Position in the outbox; increasing, so delivery order is ``id`` order per sink.
        sink: The transport's name, e.g. ``"mqtt"`` or ``"webhook:alerts"``.
        topic: Where the transport should send it (an MQTT topic, an object key, an event kind).
        payload: The bytes to deliver (JSON for events).
        created: When it was put in the outbox, Unix seconds.
        attempts: How many deliveries failed so far.
    """

    id: int
    sink: str
    topic: str
    payload: bytes
    created: float
    attempts: int = 0


class Transport(Protocol):
    """Delivers outbox messages over one network connection. Driven by a Dispatcher thread."""

    name: str

    def send(self, messages: list[OutboxMessage]) -> int:
        """Deliver ``messages`` in order; return how many from the front were delivered.

        Raises:
            SinkError: the destination is unreachable now; the dispatcher retries with backoff.
            PermanentDeliveryError: the first undelivered message can never be delivered; the
                dispatcher moves it to the dead-letter table and goes on.
        """

    def close(self) -> None:
        """Close the connection."""


class MemorySink:
    """A sink that keeps events in a list: for tests and for embedding Vigil in other code."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.closed = False

    def publish(self, event: Event) -> None:
        """Append ``event`` to :attr:`events`."""
        self.events.append(event)

    def close(self) -> None:
        """Mark the sink closed."""
        self.closed = True

    def of_kind(self, kind: str) -> list[Event]:
        """Return the events of one kind, in order."""
        return [e for e in self.events if e.kind == kind]
