"""Report events to a Vigil hub: batches POSTed to ``/api/ingest`` with the device's token.

Every event carries its outbox message id as ``"id"`` (see :func:`message_key`), so a batch sent
again after a lost answer is stored once. How the hub's answers are treated:

========================  =====================================================================
2xx                       delivered
401, 403                  the token is wrong, revoked or not this device's: the whole batch goes
                          to the dead letters (retrying cannot help), with one warning a run
413                       the batch is too large: it is split in halves until the hub takes it
400, 409, 415, 422        an event the hub cannot take: the batch is split until that one event
                          is alone, which goes to the dead letters; the others are delivered
408, 429, 5xx, 3xx, 404   retried by the outbox, as are timeouts and connection errors (a 404 or
                          redirect means the URL is not the hub's: fix it and nothing is lost)
========================  =====================================================================
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from vigil import __version__
from vigil.errors import ConfigError, PermanentDeliveryError, SinkError
from vigil.sinks.base import OutboxMessage
from vigil.sinks.config import HubConfig, check_hub_url
from vigil.sinks.webhook import endpoint_label

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

INGEST_PATH = "/api/ingest"
_RETRIED_STATUSES = frozenset({404, 408, 425, 429})
_AUTH_STATUSES = frozenset({401, 403})
_TOO_LARGE = 413
_SHOWN_ANSWER_CHARS = 200


def hub_endpoint(url: str, path: str) -> str:
    """Join the hub's address (which may have a path prefix) and an API path."""
    return f"{url.rstrip('/')}/{path.lstrip('/')}"


def hub_sink_name(device_id: str) -> str:
    """Name the outbox sink of one device's hub messages: ``hub:<device_id>``.

    Each device has its own queue because its token may only send that device's events.
    """
    return f"hub:{device_id}"


def message_key(message: OutboxMessage) -> str:
    """Return the ``"id"`` by which the hub drops a message it already stored.

    The outbox id with the time the message was queued (``"17@1790000000.123456"``): the same
    for every retry of the message, and unlike the bare outbox id it does not repeat when the
    outbox file is replaced by a new one, whose ids start again from 1.
    """
    return f"{message.id}@{message.created:.6f}"


def answer_text(response: httpx.Response) -> str:
    """Return the hub's one-line explanation of an error answer (its JSON message, or the body)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    text = body.get("message") if isinstance(body, dict) else None
    shown = str(text) if text else response.text
    return " ".join(shown.split())[:_SHOWN_ANSWER_CHARS]


class _Oversized(SinkError):
    """The hub answered 413: the batch is larger than it takes."""


class _Rejected(SinkError):
    """The hub refused the content of the batch (400, 409, 415, 422)."""


class _Refused(SinkError):
    """The hub refused the device token (401, 403)."""


_Item = tuple[OutboxMessage, dict[str, Any]]


class HubTransport:
    """Deliver outbox messages (events as JSON) to a hub's ``POST /api/ingest`` in batches.

    Args:
        url: The hub's http(s) address, e.g. ``http://hub.local:8600``.
        token: The device token, sent as ``Authorization: Bearer <token>``; never logged.
        device_id: The device whose events these are.
        timeout_seconds: Timeout of one request.
        batch_size: Most events per request (the dispatcher's batch size).

    Raises:
        ConfigError: the URL is not an http(s) address with a host.

    """

    def __init__(
        self,
        url: str,
        token: str,
        device_id: str,
        *,
        timeout_seconds: float = 10.0,
        batch_size: int = 500,
    ) -> None:
        try:
            check_hub_url(url)
        except ValueError as exc:
            raise ConfigError(f"hub: {exc}") from None
        self.name = hub_sink_name(device_id)
        self.device_id = device_id
        self.label = endpoint_label(url)
        self.endpoint = hub_endpoint(url, INGEST_PATH)
        self.timeout_seconds = timeout_seconds
        self.batch_size = batch_size
        self._token = token
        self._client: httpx.Client | None = None
        self._token_refused = False

    @classmethod
    def from_config(cls, config: HubConfig, device_id: str) -> HubTransport:
        """Build the transport of the ``hub`` config section for one device."""
        return cls(
            config.url,
            config.token.get_secret_value(),
            device_id,
            timeout_seconds=config.timeout_seconds,
            batch_size=config.batch_size,
        )

    def open(self) -> None:
        """Create the HTTP client (no request is made)."""
        if self._client is None:
            import httpx

            headers = {
                "Authorization": f"Bearer {self._token}",
                "User-Agent": f"vigil/{__version__}",
            }
            self._client = httpx.Client(timeout=self.timeout_seconds, headers=headers)

    def close(self) -> None:
        """Close the HTTP client and its connections."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def send(self, messages: list[OutboxMessage]) -> int:
        """POST ``messages`` as one batch (or smaller ones, see the module); return how many went.

        Raises:
            SinkError: the hub is unreachable or busy; nothing of the batch was delivered.
            PermanentDeliveryError: the first message can never be delivered, or (the token is
                refused) none of the batch can.

        """
        items = _parse(messages)
        delivered, limit = 0, len(items)
        while delivered < len(items):
            chunk = items[delivered : delivered + limit]
            try:
                self._post(chunk)
            except (_Oversized, _Rejected) as exc:
                if len(chunk) > 1:
                    limit = (len(chunk) + 1) // 2
                    continue
                if delivered:
                    break
                raise PermanentDeliveryError(str(exc)) from None
            except _Refused as exc:
                if delivered:
                    break
                self._token_refused = True
                raise PermanentDeliveryError(str(exc), whole_batch=True) from None
            except SinkError:
                if delivered:
                    break
                raise
            delivered += len(chunk)
        return delivered

    def _post(self, chunk: Sequence[_Item]) -> None:
        import httpx

        if self._client is None:
            raise SinkError(f"{self.name} is not open; call open() first")
        events = [event | {"id": message_key(message)} for message, event in chunk]
        body = {"device_id": self.device_id, "events": events}
        try:
            response = self._client.post(self.endpoint, json=body)
        except httpx.HTTPError as exc:
            reason = f"{type(exc).__name__} {exc}".strip()
            raise SinkError(f"the hub at {self.label} is unreachable: {reason}") from None
        self._check(response)
        if self._token_refused:
            log.info("%s: the hub at %s accepts the device token again", self.name, self.label)
            self._token_refused = False

    def _check(self, response: httpx.Response) -> None:
        status = response.status_code
        if 200 <= status < 300:
            return
        detail = f"the hub at {self.label} answered HTTP {status}"
        answer = answer_text(response)
        detail += f": {answer}" if answer else ""
        if status in _AUTH_STATUSES:
            raise _Refused(
                f"the hub at {self.label} refused the device token of {self.device_id!r} "
                f"(HTTP {status}): the token is wrong or revoked; make a new one with "
                f"'vigil hub token create {self.device_id}'"
            )
        if status == _TOO_LARGE:
            raise _Oversized(detail)
        if status in _RETRIED_STATUSES or status >= 500 or status < 400:
            raise SinkError(detail)
        raise _Rejected(detail)


def _parse(messages: Sequence[OutboxMessage]) -> list[_Item]:
    """Decode the events of the batch, up to the first one that is not a JSON object.

    Raises:
        PermanentDeliveryError: the first message is not a JSON object.

    """
    items: list[_Item] = []
    for message in messages:
        try:
            event = json.loads(message.payload)
        except (UnicodeDecodeError, ValueError):
            event = None
        if not isinstance(event, dict):
            if items:
                break
            raise PermanentDeliveryError(
                f"message {message.id} is not an event (a JSON object): {message.payload[:80]!r}"
            )
        items.append((message, event))
    return items


__all__ = ["INGEST_PATH", "HubTransport", "answer_text", "hub_endpoint", "hub_sink_name"]
