"""Bad requests get a 4xx with a JSON error that says what to do; none of them reaches a 500."""

from __future__ import annotations

import base64
import logging
import socket
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the inference service needs the 'serve' extra")

from tests.serve.support import encode, scene

LIMIT = 1024 * 1024  # the classifier_service fixture takes 1 MiB bodies and 1 Mpx images
JPEG = encode(scene(), ".jpg")
PNG = encode(scene(), ".png")


def png_header(width: int, height: int) -> bytes:
    """The first bytes of a PNG that says it is ``width`` x ``height`` (a decompression bomb)."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return (
        b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk))
    )


def raw(body: bytes, media: str = "image/jpeg") -> dict[str, Any]:
    return {"content": body, "headers": {"content-type": media}}


def as_json(image: object, **more: object) -> dict[str, Any]:
    return {"json": {"image": image, **more}}


def form(**files: Any) -> dict[str, Any]:
    return {"files": files}


B64 = base64.b64encode(JPEG).decode()
TOO_MANY_PIXELS = encode(scene(1200, 900), ".png")  # 1.08 Mpx against a 1 Mpx limit
MULTIPART = "multipart/form-data"
URLENCODED = "application/x-www-form-urlencoded"  # what curl --data-binary sends by default
TEXT_FIELD = {"data": {"image": "abc"}, "files": {"other": ("x", b"1")}}
TWO_FILES = {"files": [("image", ("a.jpg", JPEG)), ("image", ("b.jpg", JPEG))]}

BAD = [
    ("empty body", raw(b""), 400, "empty_body"),
    ("empty octet-stream", raw(b"", "application/octet-stream"), 400, "empty_body"),
    ("text, not an image", raw(b"hello, this is not an image"), 422, "not_an_image"),
    ("random bytes", raw(bytes(range(256)) * 4), 422, "not_an_image"),
    ("JPEG cut in half", raw(JPEG[: len(JPEG) // 2]), 422, "truncated_image"),
    ("JPEG header only", raw(JPEG[:40]), 422, "truncated_image"),
    ("PNG cut in half", raw(PNG[: len(PNG) // 2], "image/png"), 422, "truncated_image"),
    ("PNG signature only", raw(PNG[:8], "image/png"), 422, "truncated_image"),
    ("JPEG without image data", raw(JPEG[:2] + b"\xff\xd9"), 422, "truncated_image"),
    ("a bomb of a PNG", raw(png_header(100_000, 100_000), "image/png"), 413, "image_too_large"),
    ("over the pixel limit", raw(TOO_MANY_PIXELS, "image/png"), 413, "image_too_large"),
    ("zero-size PNG", raw(png_header(0, 10), "image/png"), 422, "bad_image"),
    ("text/plain", raw(JPEG, "text/plain"), 415, "unsupported_media_type"),
    ("form-urlencoded", raw(b"image=abc", URLENCODED), 415, "unsupported_media_type"),
    ("malformed JSON", raw(b'{"image": ', "application/json"), 400, "bad_json"),
    ("JSON that is not UTF-8", raw(b"\xff\xfe{", "application/json"), 400, "bad_json"),
    ("JSON list", {"json": [1, 2]}, 422, "missing_field"),
    ("JSON without image", {"json": {"picture": B64}}, 422, "missing_field"),
    ("JSON image not text", as_json(42), 422, "missing_field"),
    ("JSON extra field", as_json(B64, threshold=0.5), 422, "unknown_field"),
    ("bad base64", as_json("not base64 at all!"), 400, "bad_base64"),
    ("unpadded base64", as_json(B64[:-1]), 400, "bad_base64"),
    ("base64 of text", as_json(base64.b64encode(b"hello").decode()), 422, "not_an_image"),
    ("empty base64", as_json(""), 400, "empty_body"),
    ("wrong multipart field", form(file=("a.jpg", JPEG, "image/jpeg")), 422, "missing_field"),
    ("multipart text field", TEXT_FIELD, 422, "missing_field"),
    ("multipart two files", TWO_FILES, 400, "bad_multipart"),
    ("multipart without boundary", raw(b"--x\r\n", MULTIPART), 400, "bad_multipart"),
    ("multipart of garbage", raw(b"garbage", f"{MULTIPART}; boundary=zz"), 400, "bad_multipart"),
    ("multipart empty file", form(image=("a.jpg", b"", "image/jpeg")), 400, "empty_body"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "request_args", "status", "code"), BAD, ids=[b[0] for b in BAD])
def test_bad_input_gets_a_clear_4xx(
    case: str, request_args: dict[str, Any], status: int, code: str, classifier_service: Any
) -> None:
    response = classifier_service.client.post("/predict", **request_args)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == code
    assert len(body["message"]) > 10 and "\n" not in body["message"]


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/predict", 405, "method_not_allowed"),
        ("POST", "/health", 405, "method_not_allowed"),
        ("GET", "/nothing/here", 404, "not_found"),
    ],
)
def test_wrong_route_or_method(
    method: str, path: str, status: int, code: str, classifier_service: Any
) -> None:
    response = classifier_service.client.request(method, path)
    assert response.status_code == status
    assert response.json()["error"] == code


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(
    classifier_service: Any,
) -> None:
    """Only the headers and a few bytes go out: the answer comes without the 100 MB."""
    with _connect(classifier_service) as connection:
        connection.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
            b"Content-Length: 100000000\r\n\r\n" + JPEG[:100]
        )
        head, body = _read_reply(connection)
    assert head.startswith(b"HTTP/1.1 413"), head
    assert b'"body_too_large"' in body and b"100,000,000 bytes" in body


def test_a_chunked_body_is_refused_as_soon_as_it_passes_the_limit(
    classifier_service: Any,
) -> None:
    """A chunked body has no length: the service counts it and answers at the limit, while
    the client still has more to send (it never ends the body here)."""
    chunk = b"\xff" * 65536
    with _connect(classifier_service) as connection:
        connection.sendall(
            b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: image/jpeg\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        for _ in range(2 * LIMIT // len(chunk)):
            connection.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        head, body = _read_reply(connection)
    assert head.startswith(b"HTTP/1.1 413"), head
    assert b'"body_too_large"' in body


def _connect(service: Any) -> socket.socket:
    host, port = service.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=5)


def _read_reply(connection: socket.socket) -> tuple[bytes, bytes]:
    """Read one response (headers and a JSON body); the socket's timeout bounds each read."""
    received = b""
    while not received.rstrip().endswith(b"}"):
        chunk = connection.recv(65536)
        if not chunk:
            break
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return head, body


def test_a_client_that_sends_too_much_anyway_gets_the_413(classifier_service: Any) -> None:
    """httpx sends the whole body before it reads: the rest is discarded, the answer stands."""

    def chunks() -> Iterator[bytes]:
        for _ in range(64):
            yield b"\xff" * 65536

    response = classifier_service.client.post(
        "/predict", content=chunks(), headers={"content-type": "image/jpeg"}
    )
    assert response.status_code == 413
    assert response.json()["error"] == "body_too_large"


def test_a_body_just_under_the_limit_is_read(classifier_service: Any) -> None:
    padded = JPEG + b"\0" * (LIMIT - len(JPEG))  # bytes after the end of a JPEG are ignored
    response = classifier_service.client.post("/predict", **raw(padded))
    assert response.status_code == 200, response.text


def test_bad_inputs_never_reached_the_catch_all(
    classifier_service: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Runs after the tests above on the same service: no 500 was counted, nothing logged."""
    caplog.set_level(logging.ERROR, logger="vigil.serve")
    for _, request_args, _, _ in BAD:
        classifier_service.client.post("/predict", **request_args)
    served = classifier_service.metric(
        "vigil_http_requests_total", endpoint="/predict", method="POST", status="422"
    )
    assert served >= 10
    for status in ("500", "502", "503"):
        assert (
            classifier_service.metric(
                "vigil_http_requests_total", endpoint="/predict", method="POST", status=status
            )
            == 0
        )
    assert not [r for r in caplog.records if "internal error" in r.getMessage()]
