"""Publish events to an MQTT broker with QoS 1, confirmed by the broker's PUBACK.

Topics: ``<prefix>/<device_id>/<app>/<kind>``, e.g. ``vigil/desk-1/posture/record`` for the
per-second records and ``vigil/desk-1/posture/reminder`` for reminders; the payload is the event
as JSON. ``<prefix>/<device_id>/availability`` holds a retained ``online`` while the device is
connected and ``offline`` after a clean close or, as the broker's last will, after a crash.

The client reconnects on its own. A message counts as delivered only when the broker has
acknowledged it, so the outbox keeps everything that a broker restart or a dead link lost.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from vigil.errors import ConfigError, PermanentDeliveryError, SinkError
from vigil.events import Event
from vigil.sinks.base import OutboxMessage
from vigil.sinks.config import MqttConfig, MqttTlsConfig, parse_broker_url

if TYPE_CHECKING:
    from paho.mqtt.client import Client, MQTTMessageInfo

log = logging.getLogger(__name__)

ONLINE = b"online"
OFFLINE = b"offline"
_CLOSE_WAIT_SECONDS = 2.0
_POLL_SECONDS = 0.1
_UNSAFE_IN_TOPIC = re.compile(r"[/+#\x00]")


def topic_segment(text: str) -> str:
    """Make ``text`` safe as one MQTT topic level (no ``/``, ``+``, ``#``; never empty)."""
    return _UNSAFE_IN_TOPIC.sub("_", text) or "_"


class MqttTransport:
    """Deliver outbox messages to an MQTT broker; one connection, reconnecting by itself.

    Args:
        url: ``mqtt://[user:password@]host[:port]`` or ``mqtts://...`` for TLS.
        device_id: This device; names the availability topic and the default client id.
        topic_prefix: First level of every topic.
        qos: 1 (default) or 2 give at-least-once delivery; 0 sends without confirmation.
        keepalive_seconds: Seconds between keep-alive pings.
        client_id: MQTT client id; default ``vigil-<device_id>-<random>``.
        publish_timeout_seconds: How long :meth:`send` waits for the broker's acknowledgements.
        reconnect_max_seconds: Longest pause between reconnection attempts.
        tls: CA, certificate and key files for ``mqtts://``.
        name: The sink name of this transport in the outbox.

    Raises:
        ConfigError: the URL is not a valid broker URL.

    """

    def __init__(
        self,
        url: str,
        *,
        device_id: str,
        topic_prefix: str = "vigil",
        qos: int = 1,
        keepalive_seconds: int = 60,
        client_id: str | None = None,
        publish_timeout_seconds: float = 10.0,
        reconnect_max_seconds: float = 30.0,
        tls: MqttTlsConfig | None = None,
        name: str = "mqtt",
    ) -> None:
        if qos not in (0, 1, 2):
            raise ConfigError(f"MQTT qos must be 0, 1 or 2, got {qos}")
        self.address = parse_broker_url(url)
        self.name = name
        self.device_id = device_id
        self.topic_prefix = topic_prefix.rstrip("/")
        self.qos = qos
        self.client_id = (
            client_id or f"vigil-{topic_segment(device_id)[:24]}-{secrets.token_hex(3)}"
        )
        self.on_ready: Callable[[], None] | None = None
        self._keepalive = keepalive_seconds
        self._publish_timeout = publish_timeout_seconds
        self._reconnect_max = max(1, round(reconnect_max_seconds))
        self._tls = tls or MqttTlsConfig()
        self._client: Client | None = None
        self._connected = threading.Event()
        self._closing = False
        self._refused = False
        self._in_flight: dict[int, MQTTMessageInfo] = {}

    @classmethod
    def from_config(cls, config: MqttConfig, device_id: str) -> MqttTransport:
        """Build a transport from the ``mqtt`` config section."""
        return cls(
            config.url,
            device_id=device_id,
            topic_prefix=config.topic_prefix,
            qos=config.qos,
            keepalive_seconds=config.keepalive_seconds,
            client_id=config.client_id,
            publish_timeout_seconds=config.publish_timeout_seconds,
            reconnect_max_seconds=config.reconnect_max_seconds,
            tls=config.tls,
        )

    @property
    def availability_topic(self) -> str:
        """The retained ``online``/``offline`` topic of this device."""
        return f"{self.topic_prefix}/{topic_segment(self.device_id)}/availability"

    @property
    def connected(self) -> bool:
        """Whether the broker has accepted the connection and it is still up."""
        return self._connected.is_set()

    def topic_for(self, event: Event) -> str:
        """Return ``<prefix>/<device_id>/<app>/<kind>`` for ``event``."""
        levels = (event.device_id, event.app, event.kind)
        return "/".join([self.topic_prefix, *(topic_segment(level) for level in levels)])

    def open(self) -> None:
        """Start connecting in the background; an unreachable broker is retried, never raised.

        Raises:
            ConfigError: the TLS files cannot be loaded.

        """
        if self._client is not None:
            return
        from paho.mqtt.client import Client
        from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

        client = Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv311,
            clean_session=True,
        )
        self._configure(client)
        client.connect_async(self.address.host, self.address.port, self._keepalive)
        client.loop_start()
        self._closing = False
        self._client = client

    def send(self, messages: list[OutboxMessage]) -> int:
        """Publish ``messages`` in order and return how many the broker acknowledged.

        Raises:
            SinkError: not connected, or no acknowledgement within the publish timeout.
            PermanentDeliveryError: the first message has an invalid topic or is too large.

        """
        client = self._client
        if not messages:
            return 0
        if client is None or not self._connected.is_set():
            raise SinkError(f"MQTT broker {self.address} is not connected; reconnecting")
        self._forget_before(messages[0].id)
        waiting = self._publish_all(client, messages)
        delivered = self._count_acknowledged(waiting)
        if delivered == 0:
            raise SinkError(
                f"MQTT broker {self.address} did not acknowledge within {self._publish_timeout:g} s"
            )
        return delivered

    def close(self) -> None:
        """Publish a retained ``offline``, disconnect cleanly and stop the network thread."""
        client = self._client
        if client is None:
            return
        self._closing = True
        if self._connected.is_set():
            info = client.publish(self.availability_topic, OFFLINE, qos=1, retain=True)
            with contextlib.suppress(RuntimeError, ValueError):
                info.wait_for_publish(_CLOSE_WAIT_SECONDS)
        client.disconnect()
        client.loop_stop()
        self._connected.clear()
        self._client = None
        self._in_flight.clear()

    def _configure(self, client: Client) -> None:
        if self.address.username is not None:
            client.username_pw_set(self.address.username, self.address.password)
        if self.address.tls:
            self._configure_tls(client)
        client.will_set(self.availability_topic, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=self._reconnect_max)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect

    def _configure_tls(self, client: Client) -> None:
        tls = self._tls
        try:
            client.tls_set(
                ca_certs=str(tls.ca_file) if tls.ca_file else None,
                certfile=str(tls.cert_file) if tls.cert_file else None,
                keyfile=str(tls.key_file) if tls.key_file else None,
            )
        except (OSError, ValueError) as exc:
            raise ConfigError(
                f"cannot load the MQTT TLS files ({exc}); check mqtt.tls ca_file, cert_file "
                "and key_file"
            ) from None
        client.tls_insecure_set(tls.insecure)

    def _on_connect(
        self, client: Client, _userdata: Any, _flags: Any, reason: Any, _properties: Any
    ) -> None:
        if reason.is_failure:
            level = logging.DEBUG if self._refused else logging.WARNING
            self._refused = True
            log.log(
                level,
                "MQTT broker %s refused the connection (%s); check the user and password in "
                "mqtt.url",
                self.address,
                reason,
            )
            return
        self._refused = False
        log.info("MQTT: connected to %s as %s", self.address, self.client_id)
        client.publish(self.availability_topic, ONLINE, qos=1, retain=True)
        self._connected.set()
        if self.on_ready is not None:
            self.on_ready()

    def _on_disconnect(
        self, _client: Client, _userdata: Any, _flags: Any, reason: Any, _properties: Any
    ) -> None:
        was_connected = self._connected.is_set()
        self._connected.clear()
        if was_connected and not self._closing:
            log.warning("MQTT: lost the connection to %s (%s); reconnecting", self.address, reason)

    def _forget_before(self, first_id: int) -> None:
        """Drop tracking of messages that left the outbox (delivered, dropped, dead-lettered)."""
        self._in_flight = {mid: info for mid, info in self._in_flight.items() if mid >= first_id}

    def _publish_all(
        self, client: Client, messages: list[OutboxMessage]
    ) -> list[tuple[int, MQTTMessageInfo]]:
        """Publish what is not already on its way; stop at the first message that cannot go."""
        waiting: list[tuple[int, MQTTMessageInfo]] = []
        for message in messages:
            info = self._in_flight.get(message.id)
            if info is None:
                try:
                    info = self._publish(client, message)
                except PermanentDeliveryError:
                    if not waiting:
                        raise
                    break
            if info is None:
                break
            waiting.append((message.id, info))
        return waiting

    def _publish(self, client: Client, message: OutboxMessage) -> MQTTMessageInfo | None:
        from paho.mqtt.client import MQTT_ERR_SUCCESS

        try:
            info = client.publish(message.topic, message.payload, qos=self.qos)
        except ValueError as exc:
            raise PermanentDeliveryError(
                f"MQTT cannot publish message {message.id} to topic {message.topic!r}: {exc}"
            ) from None
        if info.rc != MQTT_ERR_SUCCESS:
            return None  # the connection just dropped; the outbox retries later
        self._in_flight[message.id] = info
        return info

    def _count_acknowledged(self, waiting: list[tuple[int, MQTTMessageInfo]]) -> int:
        """Wait for acknowledgements in order; return how many from the front arrived."""
        deadline = time.monotonic() + self._publish_timeout
        delivered = 0
        for message_id, info in waiting:
            try:
                acknowledged = self._wait_for(info, deadline)
            except (RuntimeError, ValueError):  # lost for good inside the client: publish again
                self._in_flight.pop(message_id, None)
                break
            if not acknowledged:
                break
            self._in_flight.pop(message_id, None)
            delivered += 1
        return delivered

    def _wait_for(self, info: MQTTMessageInfo, deadline: float) -> bool:
        while not info.is_published():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._connected.is_set():
                return False
            info.wait_for_publish(min(remaining, _POLL_SECONDS))
        return True


__all__ = ["OFFLINE", "ONLINE", "MqttTransport", "topic_segment"]
