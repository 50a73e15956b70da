"""Notifications through Apprise: phone push (ntfy, Pushover, Gotify), chat, e-mail, ...

Reminder events carry ``title`` and ``message`` in their data; other events get a readable
line made from their kind, app, device and time. Any failure is retried by the outbox: a
notification service that is down now may be up in a minute. Each configured URL gets its own
transport and queue (``notify:ntfy``, ``notify:mailto``, ...), so one service that is down
neither holds up the others nor makes them repeat.
"""

from __future__ import annotations

import json
import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from vigil.errors import ConfigError, SinkError
from vigil.events import iso_time
from vigil.redact import redact_url
from vigil.sinks.base import OutboxMessage
from vigil.sinks.config import NotifyConfig
from vigil.sinks.outbox import deliver_in_order


def notification_text(payload: bytes) -> tuple[str, str]:
    """Return (title, body) of a notification for an event given as JSON."""
    try:
        event = json.loads(payload)
    except (UnicodeDecodeError, ValueError):
        return "Vigil", payload.decode("utf-8", errors="replace")
    if not isinstance(event, dict):
        return "Vigil", str(event)
    kind = str(event.get("kind", "event"))
    app = str(event.get("app", "vigil"))
    title = _text(event.get("title")) or f"Vigil {app}: {kind}"
    body = _text(event.get("message")) or _describe(event, app, kind)
    return title, body


def sink_names(urls: Sequence[str]) -> list[str]:
    """Name the sink of each URL by its service: ``notify:ntfy``, ``notify:ntfy-2``, ..."""
    seen: Counter[str] = Counter()
    names = []
    for url in urls:
        service = urlsplit(url).scheme or "url"
        seen[service] += 1
        names.append(f"notify:{service}" + (f"-{seen[service]}" if seen[service] > 1 else ""))
    return names


def _text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


def _describe(event: dict[str, Any], app: str, kind: str) -> str:
    device = event.get("device_id", "a device")
    stamp = event.get("timestamp")
    when = f" at {iso_time(float(stamp))}" if isinstance(stamp, int | float) else ""
    return f"{kind} from {app} on {device}{when}"


class NotifyTransport:
    """Deliver outbox messages as notifications to one or more Apprise URLs.

    Args:
        urls: Apprise URLs such as ``ntfy://ntfy.sh/my-topic`` or ``json://host/path``.
        name: The sink name of this transport in the outbox.
        timeout_seconds: Timeout of one request to a notification service.

    Raises:
        ConfigError: no URL, or a URL that Apprise does not understand (password hidden).

    """

    def __init__(
        self, urls: Sequence[str], *, name: str = "notify", timeout_seconds: float = 10.0
    ) -> None:
        if not urls:
            raise ConfigError("notify needs at least one Apprise URL, e.g. ntfy://ntfy.sh/topic")
        self.name = name
        self.urls = list(urls)
        self._apprise = _build_apprise(self.urls, timeout_seconds)

    @classmethod
    def one_per_url(cls, config: NotifyConfig) -> list[NotifyTransport]:
        """Build one transport per URL of the ``notify`` section, named ``notify:<service>``.

        Separate transports keep services apart: one that is down is retried alone, and the
        others do not get a duplicate at every retry.
        """
        names = sink_names(config.urls)
        return [
            cls([url], name=name, timeout_seconds=config.timeout_seconds)
            for name, url in zip(names, config.urls, strict=True)
        ]

    def open(self) -> None:
        """Nothing to open: each notification makes its own request."""

    def send(self, messages: list[OutboxMessage]) -> int:
        """Notify for ``messages`` one by one, in order; return how many went out."""
        return deliver_in_order(messages, self._notify)

    def close(self) -> None:
        """Nothing to close."""

    def _notify(self, message: OutboxMessage) -> None:
        title, body = notification_text(message.payload)
        try:
            result = self._apprise.notify(title=title, body=body)
        except Exception as exc:  # Apprise plugins can raise anything; the outbox retries
            raise SinkError(f"notification failed: {type(exc).__name__}: {exc}") from None
        if not result:  # the URL may hold tokens: name the service, not the URL
            service = urlsplit(self.urls[0]).scheme if len(self.urls) == 1 else "services"
            raise SinkError(
                f"the {service} notification was not accepted; the 'apprise' log says why"
            )


def _build_apprise(urls: Sequence[str], timeout_seconds: float) -> Any:
    import apprise

    with warnings.catch_warnings():
        # Apprise's e-mail plugin imports the deprecated imghdr module while loading plugins.
        warnings.filterwarnings("ignore", "'imghdr' is deprecated", DeprecationWarning)
        asset = apprise.AppriseAsset(storage_mode="memory")
        notifier = apprise.Apprise(asset=asset)
        for url in urls:
            if not notifier.add(_with_timeouts(url, timeout_seconds)):
                raise ConfigError(
                    f"notify URL {redact_url(url)!r} is not understood by Apprise; see "
                    "https://github.com/caronc/apprise/wiki for the URL of each service"
                )
    return notifier


def _with_timeouts(url: str, timeout_seconds: float) -> str:
    """Add Apprise's connect (``cto``) and read (``rto``) timeouts unless the URL sets them."""
    if "cto=" in url or "rto=" in url:
        return url
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}cto={timeout_seconds:g}&rto={timeout_seconds:g}"


__all__ = ["NotifyTransport", "notification_text"]
