"""The dashboard's pages over plain HTTP: what each serves, its headers, assets and redirects."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from tests.hub.conftest import RunningHub

PAGES = ["/", "/live/desk-1", "/posture/desk-1", "/events", "/models", "/login"]
APP_PAGES = PAGES[:-1]
WEB = Path(__file__).resolve().parents[2] / "src" / "vigil" / "hub" / "web"
STATIC = WEB / "static"
UPLOT_VERSION = "1.6.32"


class Links(HTMLParser):
    """Every ``src`` and ``href`` of a page, and its inline scripts and styles."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        self.urls += [v for k, v in attrs if k in ("src", "href") and v is not None]
        if tag == "script" and "src" not in values:
            self.inline.append("script")
        if "style" in values or any(k.startswith("on") for k in values):
            self.inline.append(f"{tag} attribute")
        if tag == "style":
            self.inline.append("style")


def links_of(html: str) -> Links:
    parser = Links()
    parser.feed(html)
    return parser


@pytest.mark.parametrize("path", PAGES)
def test_a_page_is_html_with_strict_headers(hub: RunningHub, path: str) -> None:
    response = hub.client(follow_redirects=True).get("/login" if path == "/login" else path)
    if path == "/login":  # without auth there is nothing to log in to
        assert response.url.path == "/"
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    policy = response.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "script-src 'self'" in policy
    assert "'unsafe-inline'" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["cache-control"] == "no-store"
    assert links_of(response.text).inline == []  # the policy would block them


@pytest.mark.parametrize("path", APP_PAGES)
def test_every_asset_a_page_names_is_served_by_the_hub(hub: RunningHub, path: str) -> None:
    client = hub.client()
    links = links_of(client.get(path).text)
    assets = [url for url in links.urls if url.startswith("/static/")]
    assert "/static/vigil.js" in assets and "/static/vigil.css" in assets
    assert all(url.startswith("/") and not url.startswith("//") for url in links.urls), links.urls
    for asset in assets:
        response = client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 100, asset


def test_the_posture_page_loads_the_vendored_chart_library(hub: RunningHub) -> None:
    client = hub.client()
    links = links_of(client.get("/posture/desk-1").text)
    assert "/static/vendor/uplot/uPlot.iife.min.js" in links.urls
    script = client.get("/static/vendor/uplot/uPlot.iife.min.js")
    assert script.headers["content-type"].startswith("text/javascript")
    assert f"(v{UPLOT_VERSION})" in script.text[:200]
    assert UPLOT_VERSION in (STATIC / "vendor" / "uplot" / "README.md").read_text()
    assert "MIT License" in (STATIC / "vendor" / "uplot" / "LICENSE").read_text()


def test_nothing_is_loaded_from_another_site() -> None:
    own = [p for p in STATIC.rglob("*") if p.is_file() and "vendor" not in p.parts]
    own += list((WEB / "templates").glob("*.html"))
    for path in own:
        text = path.read_text()
        addresses = re.findall(r"(?:https?:)?//[\w.-]+\.[a-z]{2,}[^\s\"')]*", text)
        assert [a for a in addresses if "www.w3.org/2000/svg" not in a] == [], path.name


@pytest.mark.parametrize(
    "path", ["/static/../pages.py", "/static/%2e%2e/pages.py", "/static/", "/static/nothing.js"]
)
def test_static_files_stay_in_their_folder(hub: RunningHub, path: str) -> None:
    response = hub.client().get(path)
    assert response.status_code == 404
    assert "import" not in response.text


@pytest.mark.parametrize("kind", ["live", "posture"])
def test_a_device_id_no_device_can_have_is_not_found(hub: RunningHub, kind: str) -> None:
    response = hub.client().get(f'/{kind}/"><img src=x onerror=alert(1)>')
    assert response.status_code == 404
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert "<img src=x" not in response.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in response.text
    assert "device ids are 1 to 64 letters" in response.text


@pytest.mark.parametrize("kind", ["live", "posture"])
def test_links_between_device_pages(hub: RunningHub, kind: str) -> None:
    body = hub.client().get(f"/{kind}/cam.2_b-1").text
    assert 'data-device-id="cam.2_b-1"' in body
    other = "posture" if kind == "live" else "live"
    assert f'href="/{other}/cam.2_b-1"' in body


def test_without_auth_every_page_is_an_admins(hub: RunningHub) -> None:
    body = hub.client().get("/models").text
    assert 'data-auth="off"' in body and 'data-role="admin"' in body
    assert 'id="logout"' not in body


# With login required


@pytest.mark.parametrize("path", APP_PAGES)
def test_without_a_session_a_page_sends_to_the_login(secure_hub: RunningHub, path: str) -> None:
    response = secure_hub.client().get(f"{path}?period=7d")
    assert response.status_code == 303
    target = httpx.URL(response.headers["location"])
    assert target.path == "/login"
    assert target.params["next"] == f"{path}?period=7d"


@pytest.mark.parametrize(
    "credentials",
    [
        {"cookies": {"vigil_session": "x" * 43}},  # unknown or expired
        {"cookies": {"vigil_session": "short"}},
        {"headers": {"Authorization": "Bearer vigil_0123456789ab_not-a-real-secret-at-all"}},
    ],
)
def test_bad_credentials_send_to_the_login(secure_hub: RunningHub, credentials: dict) -> None:
    response = secure_hub.client(**credentials).get("/")
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


def test_a_device_token_does_not_open_pages(secure_hub: RunningHub) -> None:
    device = secure_hub.client(token=secure_hub.token("desk-1"))
    assert device.get("/posture/desk-1").status_code == 303


def test_a_session_opens_the_pages(secure_hub: RunningHub) -> None:
    viewer = secure_hub.session("viewer")
    for path in APP_PAGES:
        response = viewer.get(path)
        assert response.status_code == 200, path
        assert 'data-auth="on"' in response.text and 'data-role="viewer"' in response.text
        assert 'id="logout"' in response.text
    assert "Promoting a version needs an admin." in viewer.get("/models").text
    admin = secure_hub.session("admin")
    assert "Promoting a version needs an admin." not in admin.get("/models").text


def test_the_login_page_with_a_session_goes_on(secure_hub: RunningHub) -> None:
    viewer = secure_hub.session("viewer")
    response = viewer.get("/login", params={"next": "/events?kind=reminder"})
    assert response.status_code == 303
    assert response.headers["location"] == "/events?kind=reminder"


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("/posture/desk-1?period=7d", "/posture/desk-1?period=7d"),
        ("//example.com/x", "/"),
        ("/\\example.com", "/"),
        ("https://example.com/", "/"),
        ("javascript:alert(1)", "/"),
        ('/"><script>x</script>', "/&#34;&gt;&lt;script&gt;x&lt;/script&gt;"),
    ],
)
def test_the_login_page_only_returns_to_the_hub(
    secure_hub: RunningHub, given: str, kept: str
) -> None:
    response = secure_hub.client().get("/login", params={"next": given})
    assert response.status_code == 200
    assert f'data-next="{kept}"' in response.text
