"""Who is asking, and whether they may: the access rules of the hub's API.

==================================  =========================================================
request                             acts as
==================================  =========================================================
auth off (loopback, the default)    an admin; nobody logs in
``Authorization: Bearer <token>``   the token's device: may ingest and stream for that device
``vigil_session`` cookie            the logged-in user: ``viewer`` reads, ``admin`` also changes
==================================  =========================================================

A request with a session that changes something (POST, PUT, PATCH, DELETE) must also send the
``vigil_csrf`` cookie's value in the ``X-CSRF-Token`` header (double submit; the value is also
checked against the session's own CSRF hash). Routes declare what they need with the
dependencies :func:`viewer`, :func:`admin` and :func:`device_writer`; pages use
:func:`optional_principal` to decide between showing themselves and a login form.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

from fastapi import Request

from vigil.hub.accounts import Role, Session, same_secret, sha256_hex
from vigil.hub.settings import HubSettings, is_loopback

if TYPE_CHECKING:
    from vigil.hub.service import Hub

SESSION_COOKIE = "vigil_session"
CSRF_COOKIE = "vigil_csrf"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_TRACKED_CLIENTS = 10_000


class AccessDenied(Exception):
    """A request without the right to do what it asks: 401 (who are you?) or 403 (not you)."""

    def __init__(self, status: Literal[401, 403], code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True, slots=True)
class Principal:
    """Who a request acts as.

    Attributes:
        kind: ``local`` (auth is off), ``user`` (a session) or ``device`` (a device token).
        role: ``admin`` or ``viewer`` for people; None for a device.
        user: The user's name, for sessions.
        device_id: The token's device, for devices.
        session: The session, for sessions.
    """

    kind: Literal["local", "user", "device"]
    role: Role | None = None
    user: str | None = None
    device_id: str | None = None
    session: Session | None = None

    @property
    def is_admin(self) -> bool:
        """Whether it may change things."""
        return self.role == "admin"

    def may_write_for(self, device_id: str) -> bool:
        """Whether it may ingest and stream for ``device_id``."""
        return self.is_admin or (self.kind == "device" and self.device_id == device_id)

    def require_device(self, device_id: str) -> None:
        """Refuse (403) unless it may ingest and stream for ``device_id``."""
        if self.may_write_for(device_id):
            return
        if self.kind == "device":
            raise AccessDenied(
                403, "wrong_device", f"this token belongs to another device, not {device_id!r}"
            )
        raise AccessDenied(
            403, "forbidden", "only an admin or the device's own token may send its data"
        )


LOCAL_ADMIN = Principal(kind="local", role="admin")


def hub_of(request: Request) -> Hub:
    """Return the hub an app serves."""
    hub: Hub = request.app.state.hub
    return hub


def resolve_principal(request: Request) -> Principal | None:
    """Who the request acts as, or None when it carries no credentials.

    Raises:
        AccessDenied: the credentials it carries are not valid (401), or a state-changing
            request with a session lacks the right CSRF token (403).
    """
    hub = hub_of(request)
    if not hub.settings.auth_required:
        check_local_request(request, hub.settings)
        return LOCAL_ADMIN
    authorization = request.headers.get("authorization")
    if authorization is not None:
        return _token_principal(hub, authorization)
    secret = request.cookies.get(SESSION_COOKIE)
    if secret is None:
        return None
    session = hub.accounts.session(secret)
    if session is None:
        raise AccessDenied(401, "session_expired", "your session has ended; log in again")
    if request.method not in SAFE_METHODS:
        _check_csrf(request, session)
    user = session.user
    return Principal(kind="user", role=user.role, user=user.name, session=session)


def check_local_request(request: Request, settings: HubSettings) -> None:
    """Refuse what a hub without login must not answer: other host names, other sites' pages.

    Without login, anyone who reaches the hub acts as an admin. A web page elsewhere can make
    the browser send requests to 127.0.0.1 (cross-site requests) or to a name of its own that
    points at 127.0.0.1 (DNS rebinding); the ``Host`` and ``Origin`` headers give both away.

    Raises:
        AccessDenied: 403 for a request addressed to another name, or a change asked for by a
            page of another site.
    """
    host = _host_name(request.headers.get("host", ""))
    if not _local(host, settings):
        raise AccessDenied(
            403,
            "forbidden_host",
            f"without login this hub only answers requests for localhost or 127.0.0.1, not "
            f"{host[:80]!r} (vigil serve --auth, or allowed_hosts)",
        )
    origin = request.headers.get("origin")
    if origin and request.method not in SAFE_METHODS and not _local(_origin_host(origin), settings):
        raise AccessDenied(403, "cross_site", "a page of another site may not change this hub")


def _host_name(host: str) -> str:
    try:
        return (urlsplit(f"//{host}").hostname or "").lower()
    except ValueError:
        return ""


def _origin_host(origin: str) -> str:
    try:
        return urlsplit(origin).hostname or ""
    except ValueError:
        return ""


def _local(name: str, settings: HubSettings) -> bool:
    return is_loopback(name) or name.lower() in settings.allowed_hosts


def _token_principal(hub: Hub, authorization: str) -> Principal:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AccessDenied(
            401, "bad_credentials", "send a device token as 'Authorization: Bearer <token>'"
        )
    device_id = hub.accounts.token_device(token.strip())
    if device_id is None:
        raise AccessDenied(
            401,
            "bad_token",
            "the device token is not valid (revoked or unknown); make one with: "
            "vigil hub token create DEVICE_ID",
        )
    return Principal(kind="device", device_id=device_id)


def _check_csrf(request: Request, session: Session) -> None:
    header = request.headers.get(CSRF_HEADER, "")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    if not header or not cookie:
        raise AccessDenied(
            403, "csrf", f"send the {CSRF_COOKIE} cookie's value in the {CSRF_HEADER} header"
        )
    if not same_secret(header, cookie) or not same_secret(sha256_hex(header), session.csrf_hash):
        raise AccessDenied(403, "csrf", f"the {CSRF_HEADER} header does not match this session")


def optional_principal(request: Request) -> Principal | None:
    """Dependency: who is asking, or None for a request without credentials."""
    return resolve_principal(request)


def authenticated(request: Request) -> Principal:
    """Dependency: anyone with valid credentials (a person or a device)."""
    principal = resolve_principal(request)
    if principal is None:
        raise AccessDenied(
            401,
            "login_required",
            "log in first (POST /api/login) or send a device token as 'Authorization: Bearer'",
        )
    return principal


def person(request: Request) -> Principal:
    """Dependency: a logged-in person (or anyone when auth is off); device tokens get 403."""
    principal = authenticated(request)
    if principal.kind == "device":
        raise AccessDenied(
            403, "forbidden", "a device token may only ingest and stream for its own device"
        )
    return principal


def viewer(request: Request) -> Principal:
    """Dependency: someone who may read everything (a viewer or an admin)."""
    return person(request)


def admin(request: Request) -> Principal:
    """Dependency: an admin."""
    principal = person(request)
    if not principal.is_admin:
        raise AccessDenied(403, "forbidden", "only an admin may do this; viewers can only read")
    return principal


def device_writer(request: Request) -> Principal:
    """Dependency: a device token or an admin; which device is checked by the route."""
    principal = authenticated(request)
    if principal.kind == "user" and not principal.is_admin:
        raise AccessDenied(403, "forbidden", "a viewer cannot send data; use a device token")
    return principal


class LoginGuard:
    """Counts failed logins per client address and refuses an address that fails too often.

    Args:
        allowed: Failures within ``window_seconds`` before the address is refused.
        window_seconds: How long a failure counts.
    """

    def __init__(self, allowed: int, window_seconds: float) -> None:
        self.allowed = allowed
        self.window_seconds = window_seconds
        self._failures: dict[str, deque[float]] = {}

    def blocked_for(self, client: str) -> float:
        """Seconds until ``client`` may try again; 0 when it may now."""
        failures = self._recent(client)
        if len(failures) < self.allowed:
            return 0.0
        return max(0.0, failures[0] + self.window_seconds - time.monotonic())

    def failed(self, client: str) -> None:
        """Count a failed login of ``client``."""
        if client not in self._failures and len(self._failures) >= MAX_TRACKED_CLIENTS:
            self._forget_quiet_clients()
        self._failures.setdefault(client, deque(maxlen=self.allowed)).append(time.monotonic())

    def succeeded(self, client: str) -> None:
        """Forget the failures of ``client``."""
        self._failures.pop(client, None)

    def _recent(self, client: str) -> deque[float]:
        failures = self._failures.get(client, deque())
        cutoff = time.monotonic() - self.window_seconds
        while failures and failures[0] < cutoff:
            failures.popleft()
        return failures

    def _forget_quiet_clients(self) -> None:
        for client in list(self._failures):
            if not self._recent(client):
                del self._failures[client]
