"""Helpers of the model tests: tiny model files and a loopback file server with scripted faults."""

from __future__ import annotations

import contextlib
import hashlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

STALL_LIMIT_SECONDS = 5.0


def write_model(path: Path, content: bytes | None = None) -> Path:
    """Write a small stand-in model file (the registry stores bytes; it never runs them)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content if content is not None else b"ONNX" + path.name.encode() * 64)
    return path


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@dataclass
class Route:
    """How the server answers one path."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    cut_after: int | None = None
    """Announce the whole length, send this many bytes, then close the connection."""
    redirect: str | None = None
    """Answer 302 with this Location (and ``headers``)."""
    stall: bool = False
    """Send the headers, then nothing (until the server stops, at most a few seconds)."""


@dataclass(frozen=True)
class Seen:
    path: str
    headers: dict[str, str]


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients that hang up mid-answer are part of the tests, not errors to print."""


class FileServer:
    """A threaded HTTP/1.1 server on loopback that serves scripted routes and records requests."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Seen] = []
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._httpd = _QuietServer(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def serve(self, path: str, route: Route) -> str:
        """Answer ``path`` with ``route``; return its full URL."""
        self.routes[path] = route
        return self.url + path

    def requested(self, path: str) -> list[Seen]:
        with self._lock:
            return [seen for seen in self.requests if seen.path.split("?")[0] == path]

    def record(self, seen: Seen) -> None:
        with self._lock:
            self.requests.append(seen)

    def start(self) -> FileServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def do_GET(self) -> None:
        owner: FileServer = self.server.owner  # type: ignore[attr-defined]
        owner.record(Seen(self.path, {k.lower(): v for k, v in self.headers.items()}))
        route = owner.routes.get(self.path.split("?")[0])
        with contextlib.suppress(OSError):
            if route is None:
                self._answer(404, b"not found", {})
            elif route.redirect is not None:
                self._answer(302, b"", {"Location": route.redirect, **route.headers})
            elif route.stall:
                self._stall(route, owner)
            elif route.cut_after is not None:
                self._cut(route)
            else:
                self._answer(route.status, route.body, route.headers)

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _stall(self, route: Route, owner: FileServer) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        self.wfile.flush()
        owner.stopping.wait(STALL_LIMIT_SECONDS)
        self.close_connection = True

    def _cut(self, route: Route) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(route.body)))
        self.end_headers()
        self.wfile.write(route.body[: route.cut_after])
        self.wfile.flush()
        self.close_connection = True
        self.connection.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def file_server() -> Iterator[FileServer]:
    server = FileServer().start()
    try:
        yield server
    finally:
        server.stop()


def write_catalogue(path: Path, *entries: dict[str, Any]) -> Path:
    """Write a catalogue YAML file with these entries."""
    path.write_text(yaml.safe_dump({"models": list(entries)}, sort_keys=False))
    return path


def catalogue_entry(name: str, url: str, data: bytes | None, **more: Any) -> dict[str, Any]:
    """A catalogue entry for ``data`` served at ``url`` (sha256 None when ``data`` is None)."""
    entry: dict[str, Any] = {
        "name": name,
        "description": f"{name} for tests",
        "url": url,
        "sha256": sha256(data) if data is not None else None,
        "licence": "Apache-2.0",
        "spec": {"task": "pose", "decoder": "movenet", "keypoint_schema": "coco-17"},
    }
    if data is not None:
        entry["size"] = len(data)
    entry.update(more)
    return entry
