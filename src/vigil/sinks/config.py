"""Config sections of the network sinks: MQTT, webhooks, notifications, S3, a hub, the outbox.

An app config embeds :class:`NetworkSinksConfig` as one field; every section is off when absent::

    mqtt:
      url: mqtt://user:${MQTT_PASSWORD}@broker.local:1883
    webhooks:
      - {name: alerts, url: "https://example.com/hook"}
    notify:
      urls: ["ntfy://ntfy.sh/my-desk"]
    upload:
      bucket: vigil-records
    hub:
      {url: "http://hub.local:8600", token: "${VIGIL_HUB_TOKEN}"}
    outbox:
      max_messages: 100000
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Self
from urllib.parse import SplitResult, unquote, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator

from vigil.config import ConfigModel
from vigil.errors import ConfigError
from vigil.redact import redact_url

_MQTT_PORTS = {"mqtt": 1883, "mqtts": 8883}
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


@dataclass(frozen=True, slots=True)
class BrokerAddress:
    """Where an MQTT broker listens and how to log in, parsed from a broker URL."""

    host: str
    port: int
    tls: bool
    username: str | None = None
    password: str | None = None

    def __str__(self) -> str:
        scheme = "mqtts" if self.tls else "mqtt"
        return f"{scheme}://{self.host}:{self.port}"


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse ``mqtt://[user[:password]@]host[:port]`` or ``mqtts://...`` (TLS).

    Raises:
        ConfigError: the URL has another scheme, no host, or a bad port.

    """
    shown = redact_url(url)
    parts = urlsplit(url.strip())
    if parts.scheme not in _MQTT_PORTS:
        raise ConfigError(f"MQTT broker URL {shown!r} must start with mqtt:// or mqtts://")
    if not parts.hostname:
        raise ConfigError(f"MQTT broker URL {shown!r} has no host, e.g. mqtt://broker.local:1883")
    if parts.path not in ("", "/") or parts.query:
        raise ConfigError(f"MQTT broker URL {shown!r} must not have a path or query")
    return BrokerAddress(
        host=parts.hostname,
        port=_port_of(parts, shown) or _MQTT_PORTS[parts.scheme],
        tls=parts.scheme == "mqtts",
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
    )


def _port_of(parts: SplitResult, shown: str) -> int | None:
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"URL {shown!r} has a port that is not a number 1-65535") from None
    if port == 0:
        raise ConfigError(f"URL {shown!r} has port 0; use a port from 1 to 65535")
    return port


def check_http_url(url: str) -> str:
    """Return ``url`` if it is an absolute http(s) URL with a host; otherwise raise ValueError."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{redact_url(url)!r} is not an http:// or https:// URL with a host")
    return url


def check_hub_url(url: str) -> str:
    """Return ``url`` if it is the http(s) address of a hub: a host, no query or fragment.

    Raises:
        ValueError: any other value.

    """
    check_http_url(url)
    parts = urlsplit(url)
    if parts.query or parts.fragment:
        raise ValueError(
            f"{redact_url(url)!r} has a query or fragment; give the hub's address only, "
            "e.g. http://hub.local:8600"
        )
    return url


def _check_kinds(kinds: list[str] | None) -> list[str] | None:
    if kinds is not None and any(not kind.strip() for kind in kinds):
        raise ValueError("event kinds must be non-empty names such as 'record' or 'reminder'")
    return kinds


class MqttTlsConfig(ConfigModel):
    """TLS settings for an ``mqtts://`` broker."""

    ca_file: Path | None = Field(
        default=None,
        description="CA certificate (PEM) of the broker; None uses the system's trusted CAs.",
    )
    cert_file: Path | None = Field(
        default=None, description="Client certificate (PEM) for mutual TLS."
    )
    key_file: Path | None = Field(
        default=None, description="Private key (PEM) of the client certificate."
    )
    insecure: bool = Field(
        default=False,
        description="Skip checking the broker's host name against its certificate "
        "(only for brokers on a trusted network with self-signed certificates).",
    )

    @model_validator(mode="after")
    def _key_with_cert(self) -> Self:
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError("give cert_file and key_file together for a client certificate")
        return self


class MqttConfig(ConfigModel):
    """Publish events to an MQTT broker (QoS 1, at least once, through the outbox)."""

    url: str = Field(
        description="Broker URL: mqtt://[user:password@]host[:port] or mqtts://... for TLS.",
        min_length=8,
        max_length=2048,
    )
    topic_prefix: str = Field(
        default="vigil",
        description="First topic level; events go to <prefix>/<device_id>/<app>/<kind>.",
        min_length=1,
        max_length=128,
        pattern=r"^[^#+]+$",
    )
    qos: int = Field(
        default=1, ge=0, le=2, description="MQTT quality of service; 1 or 2: at least once."
    )
    keepalive_seconds: int = Field(
        default=60, ge=5, le=3600, description="Seconds between keep-alive pings to the broker."
    )
    client_id: str | None = Field(
        default=None,
        description="MQTT client id; None makes one from the device id.",
        max_length=128,
    )
    publish_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="How long to wait for the broker to acknowledge a batch.",
    )
    reconnect_max_seconds: float = Field(
        default=30.0, ge=1, le=3600, description="Longest pause between reconnection attempts."
    )
    tls: MqttTlsConfig = Field(
        default_factory=MqttTlsConfig, description="TLS files for mqtts:// brokers."
    )
    kinds: list[str] | None = Field(
        default=None,
        description="Event kinds to publish, e.g. [record, reminder]; None publishes all.",
    )

    @field_validator("url")
    @classmethod
    def _valid_broker_url(cls, url: str) -> str:
        try:
            parse_broker_url(url)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return url

    _valid_kinds = field_validator("kinds")(_check_kinds)


class WebhookConfig(ConfigModel):
    """POST events as JSON to an HTTP endpoint."""

    name: str = Field(
        description="Short unique name, used in logs and outbox statistics.",
        min_length=1,
        max_length=64,
        pattern=_NAME,
    )
    url: str = Field(description="http(s):// URL to POST to.", min_length=8, max_length=4096)
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra HTTP headers, e.g. an Authorization token."
    )
    timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="Timeout of one request."
    )
    kinds: list[str] | None = Field(
        default_factory=lambda: ["reminder"],
        description="Event kinds to send; None sends all (including one record per second).",
    )

    _valid_url = field_validator("url")(check_http_url)
    _valid_kinds = field_validator("kinds")(_check_kinds)


class NotifyConfig(ConfigModel):
    """Send notifications (phone, chat, e-mail) through Apprise URLs."""

    urls: list[str] = Field(
        default_factory=list,
        description="Apprise URLs, e.g. ntfy://ntfy.sh/topic or mailto://user:pass@example.com; "
        "empty turns notifications off.",
    )
    kinds: list[str] | None = Field(
        default_factory=lambda: ["reminder"], description="Event kinds that notify; None: all."
    )
    timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="Timeout of one notification service request."
    )

    _valid_kinds = field_validator("kinds")(_check_kinds)


class UploadConfig(ConfigModel):
    """Upload files (rolled CSV and Parquet records, clips) to an S3-compatible bucket."""

    bucket: str = Field(
        description="Bucket name.", min_length=3, max_length=63, pattern=r"^[a-z0-9][a-z0-9.-]+$"
    )
    prefix: str = Field(
        default="",
        description="Folder put before every object key, e.g. vigil or site-a/vigil.",
        max_length=512,
    )
    endpoint_url: str | None = Field(
        default=None, description="Endpoint of an S3-compatible store (MinIO, Ceph); None: AWS S3."
    )
    region: str | None = Field(
        default=None, description="Region name, e.g. eu-central-1.", max_length=64
    )
    access_key_id: str | None = Field(
        default=None,
        description="Access key; None uses the usual AWS sources (environment, profile).",
        max_length=256,
    )
    secret_access_key: SecretStr | None = Field(
        default=None, description="Secret key of access_key_id."
    )
    timeout_seconds: float = Field(
        default=60.0, gt=0, le=3600, description="Timeout of one request."
    )

    @field_validator("endpoint_url")
    @classmethod
    def _valid_endpoint(cls, url: str | None) -> str | None:
        return None if url is None else check_http_url(url)

    @model_validator(mode="after")
    def _keys_together(self) -> Self:
        if (self.access_key_id is None) != (self.secret_access_key is None):
            raise ValueError("give access_key_id and secret_access_key together")
        return self


class HubConfig(ConfigModel):
    """Report to a Vigil hub: records and events through the outbox, and a live stream."""

    url: str = Field(
        description="http(s):// address of the hub, e.g. http://hub.local:8600.",
        min_length=8,
        max_length=2048,
    )
    token: SecretStr = Field(
        description="Device token from 'vigil hub token create DEVICE_ID'; write it as "
        "${VIGIL_HUB_TOKEN} to read it from the environment.",
        min_length=1,
    )
    kinds: list[str] | None = Field(
        default=None,
        description="Event kinds to send, e.g. [record, reminder]; None sends all.",
    )
    timeout_seconds: float = Field(
        default=10.0, gt=0, le=300, description="Timeout of one request to the hub."
    )
    batch_size: int = Field(
        default=500,
        ge=1,
        le=5000,
        description="Most events per upload request (the hub takes at most 5000).",
    )
    stream_fps: float = Field(
        default=5.0,
        ge=0,
        le=30,
        description="Send the annotated frame to the hub's live view at most this many times "
        "a second; 0 turns the live stream off.",
    )
    stream_quality: int = Field(
        default=75, ge=10, le=100, description="JPEG quality of live frames."
    )
    stream_max_side: int = Field(
        default=960,
        ge=64,
        le=4096,
        description="Downscale live frames whose longer side exceeds this many pixels.",
    )

    _valid_url = field_validator("url")(check_hub_url)
    _valid_kinds = field_validator("kinds")(_check_kinds)


class OutboxConfig(ConfigModel):
    """The durable queue between the pipeline and every network sink."""

    path: Path | None = Field(
        default=None,
        description="SQLite file of the outbox; None: outbox.db in the Vigil state folder.",
    )
    max_messages: int = Field(
        default=100_000,
        ge=1,
        le=100_000_000,
        description="Most messages kept per sink; when full, the oldest are dropped.",
    )
    ttl_hours: float = Field(
        default=168.0,
        gt=0,
        le=24 * 366,
        description="Messages older than this are dropped undelivered.",
    )
    retry_initial_seconds: float = Field(
        default=1.0, ge=0.01, le=3600, description="First pause after a failed delivery."
    )
    retry_max_seconds: float = Field(
        default=60.0, ge=0.01, le=86_400, description="Longest pause between delivery attempts."
    )
    shutdown_grace_seconds: float = Field(
        default=5.0,
        ge=0,
        le=600,
        description="At the end of a run, keep delivering this long before leaving the rest "
        "queued for the next run.",
    )
    batch_size: int = Field(
        default=100, ge=1, le=10_000, description="Messages per delivery attempt."
    )

    @model_validator(mode="after")
    def _retry_bounds(self) -> Self:
        if self.retry_max_seconds < self.retry_initial_seconds:
            raise ValueError("retry_max_seconds must be at least retry_initial_seconds")
        return self

    @property
    def ttl_seconds(self) -> float:
        """The time-to-live in seconds."""
        return self.ttl_hours * 3600.0


class NetworkSinksConfig(ConfigModel):
    """Every network sink of an app, and the outbox they share."""

    mqtt: MqttConfig | None = Field(
        default=None, description="MQTT publishing; absent or null: off."
    )
    webhooks: list[WebhookConfig] = Field(
        default_factory=list, description="HTTP endpoints that receive events as JSON."
    )
    notify: NotifyConfig | None = Field(
        default=None, description="Apprise notifications; absent or null: off."
    )
    upload: UploadConfig | None = Field(
        default=None, description="S3-compatible uploads of files; absent or null: off."
    )
    hub: HubConfig | None = Field(
        default=None,
        description="Report records, events and a live stream to a Vigil hub; absent or null: off.",
    )
    outbox: OutboxConfig = Field(
        default_factory=OutboxConfig, description="The durable queue that every network sink uses."
    )

    @field_validator("webhooks")
    @classmethod
    def _unique_names(cls, webhooks: list[WebhookConfig]) -> list[WebhookConfig]:
        names = [hook.name for hook in webhooks]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"webhook names must be unique; repeated: {', '.join(repeated)}")
        return webhooks


__all__ = [
    "BrokerAddress",
    "HubConfig",
    "MqttConfig",
    "MqttTlsConfig",
    "NetworkSinksConfig",
    "NotifyConfig",
    "OutboxConfig",
    "UploadConfig",
    "WebhookConfig",
    "check_http_url",
    "check_hub_url",
    "parse_broker_url",
]
