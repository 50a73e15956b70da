"""Real services on loopback for tests: MQTT broker, HTTP capture, S3 endpoint, MJPEG camera.

Each helper is a context manager that picks a free port (or takes one), starts the service,
waits until it accepts connections, and stops it on exit. Services can be stopped and started
again on the same port to simulate an outage::

    with mosquitto(directory=tmp_path) as broker, mqtt_subscriber(broker, "vigil/#") as sub:
        ...
        broker.stop(); ...; broker.start()
        assert sub.wait_for_count(10, timeout=5)
"""

from __future__ import annotations

import contextlib
import datetime
import importlib.util
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

LOOPBACK = "127.0.0.1"
MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")
START_TIMEOUT_SECONDS = 10.0


def free_port() -> int:
    """Return a TCP port on loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def port_open(port: int, host: str = LOOPBACK) -> bool:
    """Whether something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def wait_until(condition: Callable[[], bool], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``condition`` until it is true or ``timeout`` seconds passed; return its last value."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


@contextlib.contextmanager
def _directory(directory: Path | None) -> Iterator[Path]:
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        yield directory
        return
    with tempfile.TemporaryDirectory(prefix="vigil-service-") as made:
        yield Path(made)


class _Process:
    """A server subprocess whose output goes to a log file, started and stopped on one port."""

    def __init__(self, name: str, command: list[str], port: int, log_path: Path) -> None:
        self.name = name
        self.command = command
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        ready = wait_until(lambda: port_open(self.port) or not self.running, START_TIMEOUT_SECONDS)
        if not ready or not self.running:
            self.stop()
            output = self.log_path.read_text(errors="replace")[-2000:]
            raise RuntimeError(f"{self.name} did not start on port {self.port}:\n{output}")

    def signal(self, number: int) -> None:
        if self.process is not None:
            self.process.send_signal(number)

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)  # a paused server cannot stop
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)
        # the port must be free again before a restart on it
        wait_until(lambda: not port_open(self.port), 5.0)


@dataclass
class Mosquitto:
    """A running mosquitto broker on loopback."""

    port: int
    config_path: Path
    _server: _Process
    tls_port: int | None = None
    host: str = LOOPBACK

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    @property
    def tls_url(self) -> str:
        if self.tls_port is None:
            raise ValueError("this broker was started without tls=")
        return f"mqtts://{self.host}:{self.tls_port}"

    @property
    def running(self) -> bool:
        return self._server.running

    def start(self) -> None:
        """Start the broker (again) on the same port."""
        self._server.start()

    def stop(self) -> None:
        """Stop the broker gracefully (it saves its persistent sessions when enabled)."""
        self._server.stop()

    def pause(self) -> None:
        """Freeze the broker (SIGSTOP): connections stay open but nothing is acknowledged."""
        self._server.signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused broker go on (SIGCONT)."""
        self._server.signal(signal.SIGCONT)

    def log(self) -> str:
        return self._server.log_path.read_text(errors="replace")


def mosquitto_binary() -> str | None:
    """Return the mosquitto executable, or None when it is not installed."""
    found = shutil.which("mosquitto")
    if found:
        return found
    return next((p for p in MOSQUITTO_PATHS if os.access(p, os.X_OK)), None)


@dataclass(frozen=True)
class TlsFiles:
    """PEM files of a test certificate authority and a server certificate it signed."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def self_signed_tls(directory: Path, host: str = LOOPBACK) -> TlsFiles:
    """Write a fresh CA and a server certificate for ``host`` (and localhost) into ``directory``."""
    pytest.importorskip("cryptography", reason="making test certificates needs cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    def name(common: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

    def certificate(subject: str, key: Any, issuer: str, signer: Any, ca: bool) -> Any:
        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(name(subject))
            .issuer_name(name(issuer))
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if not ca:
            addresses = [x509.IPAddress(ipaddress.ip_address(host)), x509.DNSName("localhost")]
            builder = builder.add_extension(x509.SubjectAlternativeName(addresses), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key, server_key = (
        ec.generate_private_key(ec.SECP256R1()),
        ec.generate_private_key(ec.SECP256R1()),
    )
    ca = certificate("vigil test CA", ca_key, "vigil test CA", ca_key, ca=True)
    server = certificate(host, server_key, "vigil test CA", ca_key, ca=False)
    files = TlsFiles(directory / "ca.pem", directory / "server.pem", directory / "server.key")
    files.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    files.cert_file.write_bytes(server.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    )
    return files


@contextlib.contextmanager
def mosquitto(
    port: int | None = None,
    *,
    directory: Path | None = None,
    persistence: bool = False,
    users: dict[str, str] | None = None,
    tls: TlsFiles | None = None,
) -> Iterator[Mosquitto]:
    """Run mosquitto on loopback; skip the test when it is not installed.

    Args:
        port: The plain MQTT port; default a free one.
        directory: Where the config, log and persistence files go (use tmp_path).
        persistence: Keep persistent sessions and queued messages across a restart.
        users: Require these user names and passwords instead of allowing anonymous clients.
        tls: Also listen with TLS on ``broker.tls_port``, with these certificate files.
    """
    binary = mosquitto_binary()
    if binary is None:
        pytest.skip("mosquitto is not installed (apt-get install mosquitto)")
    port = port or free_port()
    tls_port = free_port() if tls is not None else None
    with _directory(directory) as folder:
        lines = _mosquitto_config(port, folder, persistence)
        if users:
            lines += ["allow_anonymous false", f"password_file {_password_file(folder, users)}"]
        else:
            lines += ["allow_anonymous true"]
        if tls is not None:
            lines += [
                f"listener {tls_port} {LOOPBACK}",
                f"cafile {tls.ca_file}",
                f"certfile {tls.cert_file}",
                f"keyfile {tls.key_file}",
            ]
        config = folder / f"mosquitto-{port}.conf"
        config.write_text("\n".join(lines) + "\n")
        server = _Process("mosquitto", [binary, "-c", str(config)], port, folder / "mosquitto.log")
        broker = Mosquitto(port=port, config_path=config, _server=server, tls_port=tls_port)
        broker.start()
        try:
            yield broker
        finally:
            broker.stop()


def _mosquitto_config(port: int, folder: Path, persistence: bool) -> list[str]:
    lines = [f"listener {port} {LOOPBACK}"]
    if os.geteuid() == 0:
        lines.append("user root")  # otherwise it drops to a user that cannot write the folder
    if persistence:
        lines += ["persistence true", f"persistence_location {folder}/", "autosave_interval 1"]
    return lines


def _password_file(folder: Path, users: dict[str, str]) -> Path:
    tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
    if not os.access(tool, os.X_OK):
        pytest.skip("mosquitto_passwd is not installed (it comes with mosquitto)")
    path = folder / "passwords"
    path.write_text("")
    for user, password in users.items():
        subprocess.run([tool, "-b", str(path), user, password], check=True, capture_output=True)
    return path


@dataclass(frozen=True)
class Received:
    """One MQTT message as a subscriber got it."""

    topic: str
    payload: bytes
    retain: bool
    qos: int

    def json(self) -> Any:
        return json.loads(self.payload)


class MqttCollector:
    """A paho subscriber that records every message; waits are bounded."""

    def __init__(
        self,
        host: str,
        port: int,
        topics: str | list[str],
        *,
        client_id: str = "",
        clean_session: bool = True,
        qos: int = 1,
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        from paho.mqtt.client import Client
        from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

        self.host, self.port = host, port
        self.topics = [topics] if isinstance(topics, str) else list(topics)
        self.qos = qos
        self.messages: list[Received] = []
        self._condition = threading.Condition()
        self._subscribed = threading.Event()
        self.client = Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=client_id,
            clean_session=clean_session,
            protocol=MQTTProtocolVersion.MQTTv311,
        )
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        if username is not None:
            self.client.username_pw_set(username, password)
        self.client.on_connect = self._on_connect
        self.client.on_subscribe = self._on_subscribe
        self.client.on_message = self._on_message

    def start(self, timeout: float = 5.0) -> MqttCollector:
        self.client.connect(self.host, self.port, keepalive=30)
        self.client.loop_start()
        if not self._subscribed.wait(timeout):
            self.stop()
            raise RuntimeError(f"no SUBACK from the broker on port {self.port}")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def wait_for(self, condition: Callable[[list[Received]], bool], timeout: float) -> bool:
        """Wait until ``condition(messages)`` holds; return whether it did in time."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while not condition(self.messages):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(remaining)
            return True

    def wait_for_count(self, count: int, timeout: float, topic: str | None = None) -> bool:
        return self.wait_for(lambda _: len(self.on(topic)) >= count, timeout)

    def on(self, topic: str | None = None) -> list[Received]:
        """Return the messages received on ``topic`` (all when None), in arrival order."""
        with self._condition:
            return [m for m in self.messages if topic is None or m.topic == topic]

    def _on_connect(self, client: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not reason.is_failure:
            client.subscribe([(topic, self.qos) for topic in self.topics])

    def _on_subscribe(self, _c: Any, _u: Any, _mid: Any, _codes: Any, _p: Any) -> None:
        self._subscribed.set()

    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        received = Received(
            message.topic, bytes(message.payload), bool(message.retain), message.qos
        )
        with self._condition:
            self.messages.append(received)
            self._condition.notify_all()


@contextlib.contextmanager
def mqtt_subscriber(
    broker: Mosquitto, topics: str | list[str], **options: Any
) -> Iterator[MqttCollector]:
    """Subscribe to ``topics`` on ``broker`` (QoS 1) and collect messages until exit."""
    collector = MqttCollector(broker.host, broker.port, topics, **options).start()
    try:
        yield collector
    finally:
        collector.stop()


@dataclass(frozen=True)
class CapturedRequest:
    """One request that the capture server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class CaptureServer:
    """A threaded HTTP server on loopback that records requests and answers chosen statuses."""

    port: int
    host: str = LOOPBACK
    default_status: int = 200
    requests: list[CapturedRequest] = field(default_factory=list)
    _statuses: deque[int] = field(default_factory=deque)
    _condition: threading.Condition = field(default_factory=threading.Condition)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def respond_with(self, *statuses: int) -> None:
        """Answer the next requests with these statuses, then with ``default_status``."""
        with self._condition:
            self._statuses.extend(statuses)

    def start(self) -> None:
        if self._server is not None:
            return
        server = ThreadingHTTPServer((self.host, self.port), _CaptureHandler)
        server.daemon_threads = True
        server.capture = self  # type: ignore[attr-defined]
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="capture-http"
        )
        self._thread.start()

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(5)

    def wait_for_requests(self, count: int, timeout: float) -> list[CapturedRequest]:
        """Wait until ``count`` requests arrived (bounded); return all received so far."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while len(self.requests) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._condition.wait(remaining)
            return list(self.requests)

    def record(self, request: CapturedRequest) -> int:
        with self._condition:
            self.requests.append(request)
            self._condition.notify_all()
            return self._statuses.popleft() if self._statuses else self.default_status


class _CaptureHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self._capture()

    def do_PUT(self) -> None:
        self._capture()

    def do_GET(self) -> None:
        self._capture()

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet."""

    def _capture(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        capture: CaptureServer = self.server.capture  # type: ignore[attr-defined]
        status = capture.record(CapturedRequest(self.command, self.path, headers, body))
        answer = json.dumps({"status": status}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)


@contextlib.contextmanager
def http_capture_server(port: int | None = None) -> Iterator[CaptureServer]:
    """Run a recording HTTP server on loopback; ``stop()``/``start()`` keep the port."""
    server = CaptureServer(port=port or free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class MotoS3:
    """A moto S3 server on loopback, with the credentials it accepts."""

    port: int
    _server: _Process
    access_key_id: str = "testing"
    secret_access_key: str = "testing"
    region: str = "us-east-1"

    @property
    def endpoint_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    def client(self) -> Any:
        """Return a boto3 S3 client for this server (the caller closes it)."""
        import boto3

        return boto3.session.Session(
            aws_access_key_id=self.access_key_id,
            aws_secret_access_key=self.secret_access_key,
            region_name=self.region,
        ).client("s3", endpoint_url=self.endpoint_url)


@contextlib.contextmanager
def moto_s3(port: int | None = None, *, directory: Path | None = None) -> Iterator[MotoS3]:
    """Run ``python -m moto.server`` on loopback as an S3-compatible endpoint."""
    if importlib.util.find_spec("moto") is None:
        pytest.skip("moto[server] is not installed (pip install 'moto[server]')")
    port = port or free_port()
    with _directory(directory) as folder:
        command = [sys.executable, "-m", "moto.server", "-H", LOOPBACK, "-p", str(port)]
        server = _Process("moto S3 server", command, port, folder / "moto.log")
        moto = MotoS3(port=port, _server=server)
        moto.start()
        try:
            yield moto
        finally:
            moto.stop()


# An MJPEG camera on loopback.

NUMBER_BITS = 12


def number_image(number: int, width: int = 160, height: int = 120) -> np.ndarray:
    """A BGR image whose vertical bands spell ``number`` in binary (white is 1): JPEG-proof."""
    image = np.zeros((height, width, 3), np.uint8)
    band = width // NUMBER_BITS
    for bit in range(NUMBER_BITS):
        if number >> bit & 1:
            image[:, bit * band : (bit + 1) * band] = 255
    return image


class _StreamServer(ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True
    owner: MjpegServer


class _StreamHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"
    timeout = 5.0  # a client that stops reading cannot hold the server forever
    server: _StreamServer

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        with contextlib.suppress(OSError):  # the client went away
            self._stream()

    def _stream(self) -> None:
        owner = self.server.owner
        owner.connections += 1
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=vigilframe")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        sent = 0
        while not owner.stopping.is_set():
            if owner.frames_per_connection is not None and sent >= owner.frames_per_connection:
                if owner.stall:
                    owner.stopping.wait(10.0)  # keep the connection open, send nothing
                return
            jpeg = owner.next_jpeg()
            head = (
                f"--vigilframe\r\nContent-Type: image/jpeg\r\nContent-Length: {len(jpeg)}\r\n\r\n"
            )
            self.wfile.write(head.encode() + jpeg + b"\r\n")
            sent += 1
            owner.stopping.wait(1.0 / owner.fps)


class MjpegServer:
    """Serves numbered JPEG frames as an HTTP MJPEG stream (multipart/x-mixed-replace).

    Numbers keep rising across connections, so a client that reconnects sees newer frames.
    After ``frames_per_connection`` frames a connection is closed, or with ``stall`` kept open
    silently, like a camera that froze.
    """

    def __init__(
        self,
        fps: float = 50.0,
        size: tuple[int, int] = (160, 120),
        frames_per_connection: int | None = None,
        stall: bool = False,
    ) -> None:
        self.fps = fps
        self.stall = stall
        self.size = size
        self.frames_per_connection = frames_per_connection
        self.stopping = threading.Event()
        self.connections = 0
        self._number = 0
        self._lock = threading.Lock()
        self._httpd = _StreamServer(("127.0.0.1", 0), _StreamHandler)
        self._httpd.owner = self
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._stopped = False

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def url(self, credentials: str = "") -> str:
        at = f"{credentials}@" if credentials else ""
        return f"http://{at}127.0.0.1:{self.port}/stream.mjpg"

    def start(self) -> MjpegServer:
        self._thread.start()
        return self

    def next_jpeg(self) -> bytes:
        with self._lock:
            number = self._number
            self._number += 1
        ok, jpeg = cv2.imencode(".jpg", number_image(number, *self.size))
        assert ok
        return bytes(jpeg.tobytes())

    def stop(self) -> None:
        """Stop accepting connections and end the open ones."""
        if self._stopped:
            return
        self._stopped = True
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@contextlib.contextmanager
def mjpeg_stream(**options: Any) -> Iterator[MjpegServer]:
    """Serve numbered frames as an MJPEG stream on a free loopback port until exit.

    ``options`` are those of :class:`MjpegServer`; ``stop()`` may be called earlier to make the
    camera disappear (connections end and new ones are refused).
    """
    server = MjpegServer(**options).start()
    try:
        yield server
    finally:
        server.stop()
