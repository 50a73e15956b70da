"""The dashboard's pages: server-rendered shells whose scripts read the hub's API.

Each page is a Jinja2 template (autoescaped) plus a small script under ``/static``; the
scripts fetch everything they show from ``/api/`` and insert it as text. Pages carry a
Content-Security-Policy that allows scripts, styles and images from the hub itself only, so
nothing is loaded from another site and injected markup cannot run. When the hub requires a
login, a page requested without a session redirects to ``/login``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from jinja2 import Environment, FileSystemLoader, select_autoescape

from vigil import __version__
from vigil.hub.accounts import DEVICE_ID
from vigil.hub.auth import AccessDenied, hub_of, resolve_principal

HERE = Path(__file__).parent
STATIC_DIR = HERE / "static"
TEMPLATES_DIR = HERE / "templates"

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "img-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
DEVICE_PAGES = ("live", "posture")
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


@dataclass(frozen=True, slots=True)
class PageUser:
    """Who a page is shown to.

    Attributes:
        auth: Whether the hub requires a login.
        name: The logged-in user's name; None when auth is off.
        role: ``admin`` or ``viewer``.
    """

    auth: bool
    name: str | None
    role: str


_environment = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)

router = APIRouter(include_in_schema=False)
router.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def render(template: str, page: str, user: PageUser, **values: Any) -> HTMLResponse:
    """Render ``template`` as a page with the dashboard's security headers."""
    html = _environment.get_template(template).render(
        page=page, user=user, version=__version__, **values
    )
    return HTMLResponse(html, headers=PAGE_HEADERS)


def show(request: Request, page: str, **values: Any) -> Response:
    """Render the page ``page`` for whoever asks, or send them to the login first."""
    user = page_user(request)
    if user is None:
        return login_redirect(request)
    return render(f"{page}.html", page, user, **values)


def show_device(request: Request, page: str, device_id: str) -> Response:
    """Render a device's page (``live`` or ``posture``), linking to its other one."""
    user = page_user(request)
    if user is None:
        return login_redirect(request)
    if not DEVICE_ID.match(device_id):
        return missing_device(device_id, user)
    links = {f"{kind}_url": device_path(kind, device_id) for kind in DEVICE_PAGES}
    return render(f"{page}.html", page, user, device_id=device_id, **links)


def device_path(kind: str, device_id: str) -> str:
    """Return the path of a device's page, e.g. ``/live/desk-1``."""
    return f"/{kind}/{quote(device_id, safe='')}"


def missing_device(device_id: str, user: PageUser) -> HTMLResponse:
    """Answer 404 for an address whose device id no device can have."""
    message = (
        f"No device can be called {device_id[:80]!r}: device ids are 1 to 64 letters, digits, "
        "'.', '_' or '-'."
    )
    response = render("missing.html", "missing", user, message=message)
    response.status_code = 404
    return response


def login_redirect(request: Request) -> RedirectResponse:
    """Send a visitor without a session to the login page, remembering where they were."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?{urlencode({'next': target})}", status_code=303)


@router.get("/", response_class=HTMLResponse)
def overview_page(request: Request) -> Response:
    """List every device with its status and links to its live view and posture page."""
    return show(request, "overview")


@router.get("/live/{device_id}", response_class=HTMLResponse)
def live_page(request: Request, device_id: str) -> Response:
    """Show the device's annotated live stream."""
    return show_device(request, "live", device_id)


@router.get("/posture/{device_id}", response_class=HTMLResponse)
def posture_page(request: Request, device_id: str) -> Response:
    """Show headline numbers and charts of the device's posture over a chosen period."""
    return show_device(request, "posture", device_id)


@router.get("/events", response_class=HTMLResponse)
def events_page(request: Request) -> Response:
    """List reminders and state changes, filtered and a page at a time."""
    return show(request, "events")


@router.get("/models", response_class=HTMLResponse)
def models_page(request: Request) -> Response:
    """List the model registry; admins also get a promote control."""
    return show(request, "models")


@router.get("/login", response_class=HTMLResponse)
def login_page(
    request: Request, next_page: Annotated[str, Query(alias="next", max_length=2048)] = "/"
) -> Response:
    """Show the login form, or go straight on when there is nothing to log in to."""
    target = safe_next(next_page)
    user = page_user(request)
    if user is not None and (not user.auth or user.name is not None):
        return RedirectResponse(target, status_code=303)
    anonymous = PageUser(auth=True, name=None, role="")
    return render("login.html", "login", anonymous, next=target)


def safe_next(target: str) -> str:
    """Return ``target`` when it is a path on this hub, else ``/`` (no open redirects)."""
    if target.startswith("/") and not target.startswith(("//", "/\\")):
        return target
    return "/"


def page_user(request: Request) -> PageUser | None:
    """Return who is looking at a page, or None when a login is needed first.

    Without auth everyone is an admin. A missing, expired or unknown session, and a device
    token (which may only send data), all lead to the login page.
    """
    try:
        principal = resolve_principal(request)
    except AccessDenied:
        return None
    if principal is None or principal.kind == "device" or principal.role is None:
        return None
    auth = hub_of(request).settings.auth_required
    return PageUser(auth=auth, name=principal.user, role=principal.role)
