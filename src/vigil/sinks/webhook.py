"""POST events as JSON to HTTP endpoints (chat hooks, home automation, your own service).

A 2xx answer delivers the message. Timeouts, connection errors, 408, 425, 429 and 5xx are
retried by the outbox; any other answer (400, 401, 404, ...) will not change on retry, so the
message goes to the dead letters. Each request carries ``X-Vigil-Message-Id`` so that a receiver
can drop the rare duplicate that at-least-once delivery allows.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from vigil import __version__
from vigil.errors import ConfigError, PermanentDeliveryError, SinkError
from vigil.sinks.base import OutboxMessage
from vigil.sinks.config import WebhookConfig, check_http_url
from vigil.sinks.outbox import deliver_in_order

if TYPE_CHECKING:
    import httpx

_RETRIED_STATUSES = frozenset({408, 425, 429})
_SHOWN_BODY_CHARS = 200


def endpoint_label(url: str) -> str:
    """Return ``scheme://host[:port]`` of ``url``: enough to recognise it, no secret path."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def check_status(status: int, reason: str, body: str, what: str) -> None:
    """Accept a 2xx answer; raise SinkError for one worth retrying, else PermanentDeliveryError."""
    if 200 <= status < 300:
        return
    detail = f"{what} answered HTTP {status} {reason}".rstrip()
    if body.strip():
        detail += f": {body.strip()[:_SHOWN_BODY_CHARS]}"
    if status in _RETRIED_STATUSES or status >= 500:
        raise SinkError(detail)
    raise PermanentDeliveryError(detail)


class WebhookTransport:
    """Deliver outbox messages as HTTP POST requests with a JSON body.

    Args:
        url: The http:// or https:// endpoint.
        name: The sink name of this transport in the outbox, e.g. ``"webhook:alerts"``.
        headers: Extra request headers (an Authorization token, for example).
        timeout_seconds: Timeout of one request.

    Raises:
        ConfigError: the URL is not an http(s) URL with a host.

    """

    def __init__(
        self,
        url: str,
        *,
        name: str = "webhook",
        headers: Mapping[str, str] | None = None,
        timeout_seconds: float = 10.0,
    ) -> None:
        try:
            self.url = check_http_url(url)
        except ValueError as exc:
            raise ConfigError(f"webhook {name}: {exc}") from None
        self.name = name
        self.label = endpoint_label(url)
        self.headers = {
            "Content-Type": "application/json",
            "User-Agent": f"vigil/{__version__}",
            **(headers or {}),
        }
        self.timeout_seconds = timeout_seconds
        self._client: httpx.Client | None = None

    @classmethod
    def from_config(cls, config: WebhookConfig) -> WebhookTransport:
        """Build a transport from one entry of the ``webhooks`` config section."""
        return cls(
            config.url,
            name=f"webhook:{config.name}",
            headers=config.headers,
            timeout_seconds=config.timeout_seconds,
        )

    def open(self) -> None:
        """Create the HTTP client (no request is made)."""
        if self._client is None:
            import httpx

            self._client = httpx.Client(timeout=self.timeout_seconds, headers=self.headers)

    def send(self, messages: list[OutboxMessage]) -> int:
        """POST ``messages`` one by one, in order; return how many were accepted."""
        return deliver_in_order(messages, self._post)

    def close(self) -> None:
        """Close the HTTP client and its connections."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _post(self, message: OutboxMessage) -> None:
        import httpx

        if self._client is None:
            raise SinkError(f"webhook {self.name} is not open; call open() first")
        headers = {"X-Vigil-Message-Id": str(message.id), "X-Vigil-Topic": message.topic}
        try:
            response = self._client.post(self.url, content=message.payload, headers=headers)
        except httpx.HTTPError as exc:
            reason = f"{type(exc).__name__} {exc}".strip()
            raise SinkError(f"{self.label} unreachable: {reason}") from None
        check_status(response.status_code, response.reason_phrase, response.text, self.label)


__all__ = ["WebhookTransport", "check_status", "endpoint_label"]
