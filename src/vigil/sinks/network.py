"""All network sinks of an app, built from one config section and run over one outbox.

::

    sinks = NetworkSinks(config.sinks, device_id="desk-1")
    sinks.start()                      # open the outbox, connect, start one thread per transport
    for sink in sinks.sinks:           # OutboxSinks: publish() only writes to disk
        sink.publish(event)
    sinks.enqueue_upload(csv_path, "desk-1/2026-11-20.csv")
    sinks.close(grace_seconds=5)       # deliver what it can, leave the rest for the next start
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from types import TracebackType
from typing import Protocol, Self

from vigil.errors import ConfigError
from vigil.sinks.base import Sink, Transport
from vigil.sinks.config import NetworkSinksConfig, OutboxConfig
from vigil.sinks.hub import HubTransport
from vigil.sinks.mqtt import MqttTransport
from vigil.sinks.notify import NotifyTransport
from vigil.sinks.outbox import Dispatcher, Outbox, OutboxSink, SinkStats
from vigil.sinks.s3 import S3Transport, enqueue_upload
from vigil.sinks.webhook import WebhookTransport

log = logging.getLogger(__name__)

_JOIN_SLACK_SECONDS = 1.0


class OpenableTransport(Transport, Protocol):
    """A transport whose connection is made in an explicit step."""

    def open(self) -> None:
        """Make the connection or client; never fail because the destination is down."""


class NetworkSinks:
    """The MQTT, webhook, notification, hub and upload sinks of one device, over one outbox.

    The constructor only builds objects (a bad notification URL raises ConfigError here);
    :meth:`start` opens the outbox file and the connections and starts the delivery threads.

    Args:
        config: The network sink sections of the app config.
        device_id: This device; names its MQTT availability topic.

    Attributes:
        outbox: The durable queue shared by every sink.
        sinks: One :class:`OutboxSink` per event transport (MQTT, each webhook, notify, the
            hub), each with the event kinds of its section.

    """

    def __init__(self, config: NetworkSinksConfig, device_id: str) -> None:
        self.config = config
        self.device_id = device_id
        self.outbox = Outbox(config.outbox.path, max_messages=config.outbox.max_messages)
        self.sinks: list[Sink] = []
        self._transports: list[OpenableTransport] = []
        self._upload: S3Transport | None = None
        self._build_event_sinks()
        if config.upload is not None:
            self._upload = S3Transport.from_config(config.upload)
            self._transports.append(self._upload)
        self._dispatchers = [self._dispatcher(t) for t in self._transports]
        self._started = False

    @property
    def transports(self) -> list[OpenableTransport]:
        """The transports, one delivery thread each."""
        return list(self._transports)

    def start(self) -> Self:
        """Open the outbox and the connections, then start delivering.

        Raises:
            StorageError: the outbox file cannot be opened.
            ConfigError: a transport's files (TLS certificates) cannot be loaded.
            DependencyError: an optional package (boto3 for uploads) is missing.

        """
        if self._started:
            return self
        self.outbox.open()
        opened: list[OpenableTransport] = []
        try:
            for transport in self._transports:
                transport.open()
                opened.append(transport)
        except BaseException:
            _close_all(opened)
            self.outbox.close()
            raise
        for dispatcher in self._dispatchers:
            dispatcher.start()
        self._started = True
        return self

    def enqueue_upload(self, path: str | Path, key: str) -> int:
        """Queue the upload of a local file to object ``key`` (under the configured prefix).

        Raises:
            ConfigError: uploads are not configured.
            StorageError: ``path`` is not a file.

        """
        if self._upload is None:
            raise ConfigError("uploads are off: add an 'upload' section with at least a bucket")
        return enqueue_upload(self.outbox, path, key, sink=self._upload.name)

    def stats(self) -> list[SinkStats]:
        """Return the queue state of every sink (pending, oldest age, drops, dead letters)."""
        return self.outbox.stats()

    @property
    def uploads(self) -> bool:
        """Whether an upload section is configured."""
        return self._upload is not None

    def close(self, grace_seconds: float = 5.0) -> int:
        """Deliver pending messages for up to ``grace_seconds``, then stop and disconnect.

        What is not delivered stays in the outbox file; the next :meth:`start` delivers it.

        Returns:
            How many messages of this device's sinks are still waiting in the outbox.
        """
        if not self._started:
            return 0
        for dispatcher in self._dispatchers:
            dispatcher.request_stop(grace_seconds)
        deadline = time.monotonic() + grace_seconds + _JOIN_SLACK_SECONDS
        for dispatcher in self._dispatchers:
            if not dispatcher.join(max(0.0, deadline - time.monotonic())):
                log.warning(
                    "%s: still delivering at shutdown; the rest stays queued", dispatcher.sink
                )
        _close_all(self._transports)
        names = {t.name for t in self._transports}
        pending = sum(s.pending for s in self.outbox.stats() if s.sink in names)
        self.outbox.close()
        self._started = False
        return pending

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _build_event_sinks(self) -> None:
        config = self.config
        if config.mqtt is not None:
            mqtt = MqttTransport.from_config(config.mqtt, self.device_id)
            sink = OutboxSink(
                self.outbox, mqtt.name, topic_for=mqtt.topic_for, kinds=config.mqtt.kinds
            )
            self._add(mqtt, sink)
        for hook in config.webhooks:
            webhook = WebhookTransport.from_config(hook)
            self._add(webhook, OutboxSink(self.outbox, webhook.name, kinds=hook.kinds))
        if config.notify is not None:
            for notify in NotifyTransport.one_per_url(config.notify):
                self._add(notify, OutboxSink(self.outbox, notify.name, kinds=config.notify.kinds))
        if config.hub is not None:
            hub = HubTransport.from_config(config.hub, self.device_id)
            self._add(hub, OutboxSink(self.outbox, hub.name, kinds=config.hub.kinds))

    def _add(self, transport: OpenableTransport, sink: OutboxSink) -> None:
        self._transports.append(transport)
        self.sinks.append(sink)

    def _dispatcher(self, transport: OpenableTransport) -> Dispatcher:
        settings = self.config.outbox
        dispatcher = Dispatcher(
            self.outbox,
            transport,
            batch_size=(
                transport.batch_size if isinstance(transport, HubTransport) else settings.batch_size
            ),
            retry_initial_seconds=settings.retry_initial_seconds,
            retry_max_seconds=settings.retry_max_seconds,
            ttl_seconds=settings.ttl_seconds,
        )
        if isinstance(transport, MqttTransport):
            transport.on_ready = dispatcher.retry_now
        return dispatcher


def outbox_status(config: OutboxConfig) -> list[str]:
    """Lines describing what waits in the outbox, one per sink, for ``vigil outbox``."""
    outbox = Outbox(config.path, max_messages=config.max_messages)
    outbox.open()
    try:
        stats = outbox.stats()
    finally:
        outbox.close()
    if not stats:
        return ["the outbox is empty"]
    return [_describe(s) for s in stats]


def _describe(stats: SinkStats) -> str:
    age = (
        "" if stats.oldest_age_seconds is None else f", oldest {stats.oldest_age_seconds:.0f} s old"
    )
    return (
        f"{stats.sink}: {stats.pending} pending{age}; dropped {stats.expired} expired and "
        f"{stats.overflowed} over the limit; {stats.dead} dead letters"
    )


def _close_all(transports: list[OpenableTransport]) -> None:
    for transport in transports:
        try:
            transport.close()
        except Exception as exc:  # closing must go on for the others
            log.warning("%s: error while closing: %s", transport.name, exc)


__all__ = ["NetworkSinks", "OpenableTransport", "outbox_status"]
