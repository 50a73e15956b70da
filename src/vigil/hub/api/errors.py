"""Errors as JSON, and request bodies bounded while they stream in.

Every failure of the API answers ``{"error": "<code>", "message": "<one line>"}``: 400 bad
JSON or cursor, 401 no or bad credentials, 403 not allowed, 404 unknown id, 409 conflict,
413 body too large, 415 wrong content type, 422 invalid fields, 429 too many attempts, 503 the
database or store cannot be reached, 501 an optional package is not installed. A 500 means a
bug and is logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any, TypeVar

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.errors import ConfigError, DependencyError, StorageError, VigilError
from vigil.hub.accounts import AccountError
from vigil.hub.api.schemas import ErrorResponse
from vigil.hub.auth import AccessDenied
from vigil.hub.ingest import BadBatch
from vigil.hub.streams import StreamsFull
from vigil.serve.app import error_response

log = logging.getLogger(__name__)

ModelT = TypeVar("ModelT", bound=BaseModel)

SMALL_BODY_BYTES = 64 * 1024
"""Largest body of the requests that only carry a few fields (login, promote)."""

PATTERN_HINTS = {
    "device_id": "a device id is 1 to 64 letters, digits, '.', '_' or '-', starting with a "
    "letter or digit",
    "name": "a model name is 1 to 64 letters, digits, '-' and '_', starting with a letter or digit",
    "sha256": "a snapshot is named by its sha256: 64 lowercase hexadecimal digits",
    "token_id": "a token id is 12 lowercase hexadecimal digits",
    "stage": "a stage is up to 32 lowercase letters, digits, '-' and '_', e.g. production",
    "kind": "an event kind is a lowercase word, e.g. record or reminder",
}


class ApiError(VigilError):
    """A request the API refuses, with its status and a machine-readable code."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def not_found(what: str) -> ApiError:
    """Return a 404 for something that does not exist."""
    return ApiError(404, "not_found", what)


def add_error_handlers(app: FastAPI) -> None:
    """Answer every failure with the JSON error body."""

    async def api_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, ApiError | AccessDenied | AccountError)
        return error_response(exc.status, exc.code, str(exc))

    async def http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), exc.headers)

    async def invalid(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        return describe_invalid(exc.errors())

    async def vigil_error(_request: Request, exc: Exception) -> Response:
        status, code = _status_of(exc)
        if status >= 500:
            log.warning("%s", exc)
        return error_response(status, code, str(exc))

    async def went_away(_request: Request, _exc: Exception) -> Response:
        return error_response(400, "client_disconnected", "the client went away")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(AccessDenied, api_error)
    app.add_exception_handler(AccountError, api_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(VigilError, vigil_error)
    app.add_exception_handler(ClientDisconnect, went_away)


HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


def _status_of(exc: Exception) -> tuple[int, str]:
    if isinstance(exc, BadBatch | ConfigError):
        return 422, "invalid"
    if isinstance(exc, StreamsFull):
        return 429, "too_many_streams"
    if isinstance(exc, StorageError):
        return 503, "storage_unavailable"
    if isinstance(exc, DependencyError):
        return 501, "not_installed"
    return 422, "invalid"


def describe_invalid(errors: Any) -> Response:
    """Answer the first of pydantic's errors as a 400 (bad JSON) or a 422 with one line."""
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        return error_response(400, "bad_json", "the body is not valid JSON")
    location = [str(part) for part in first.get("loc", ()) if part != "body"]
    where = ".".join(location)
    message = str(first.get("msg", "invalid request"))
    if first.get("type") == "string_pattern_mismatch" and location:
        message = PATTERN_HINTS.get(location[-1], message)
    if first.get("type") == "missing":
        message = "required"
    if first.get("type") in ("model_type", "dict_type") and not location:
        message = "the body must be a JSON object"
    return error_response(422, "invalid", f"{where}: {message}" if where else message)


def parse_json(request_body: bytes, content_type: str, model: type[ModelT]) -> ModelT:
    """Parse a JSON body into ``model``, refusing it with a 400, 415 or 422 and one line."""
    return validated(read_json(request_body, content_type), model)


def read_json(request_body: bytes, content_type: str) -> Any:
    """Parse a JSON body, refusing another content type (415) or malformed JSON (400)."""
    media_type = content_type.split(";", maxsplit=1)[0].strip().lower()
    if media_type != "application/json":
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send JSON with Content-Type: application/json (got {media_type or 'none'})",
        )
    try:
        return json.loads(request_body, parse_constant=_no_constants)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ApiError(400, "bad_json", "the body is not valid JSON") from None


def validated(document: Any, model: type[ModelT]) -> ModelT:
    """Check a parsed JSON document against ``model``, refusing it with a 422 and one line."""
    try:
        return model.model_validate(document)
    except ValidationError as exc:
        response = describe_invalid(exc.errors())
        body = json.loads(bytes(response.body))
        raise ApiError(response.status_code, body["error"], body["message"]) from None


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for these error statuses, all with the :class:`ErrorResponse` body."""
    return {
        status: {"model": ErrorResponse, "description": ERROR_DESCRIPTIONS[status]}
        for status in statuses
    }


ERROR_DESCRIPTIONS = {
    400: "Malformed JSON, a bad cursor or period.",
    401: "No credentials, or credentials that are not valid.",
    403: "Not allowed for this user or token, or a missing CSRF token.",
    404: "No such device, token, snapshot or model.",
    409: "It exists already.",
    413: "The body is larger than the hub takes.",
    415: "A content type the endpoint does not read.",
    422: "A field is missing or invalid.",
    429: "Too many attempts; try again later.",
    503: "The database or the file store cannot be reached.",
}


class BodyLimits:
    """Refuses request bodies over the limit of their endpoint, while they stream in (413).

    A declared ``Content-Length`` over the limit is refused before a byte is read; a chunked
    body is counted as it arrives and the request fails as soon as it passes the limit.

    Args:
        app: The application.
        limits: Path prefix -> largest body in bytes; the longest matching prefix wins.
        default: The limit of every other path.
    """

    def __init__(self, app: ASGIApp, limits: Mapping[str, int], default: int) -> None:
        self.app = app
        self.limits = sorted(limits.items(), key=lambda item: -len(item[0]))
        self.default = default

    def limit_for(self, path: str) -> int:
        """Return the body limit of ``path``."""
        return next(
            (limit for prefix, limit in self.limits if path.startswith(prefix)), self.default
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            response = error_response(413, "body_too_large", _too_large(declared, limit))
            await response(scope, receive, send)
            return
        await self.app(scope, _counting(receive, limit), send)


def _counting(receive: Receive, limit: int) -> Receive:
    received = 0

    async def counted() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise HTTPException(413, _too_large(None, limit))
        return message

    return counted


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


def _too_large(size: int | None, limit: int) -> str:
    said = f"{size:,} bytes" if size is not None else "longer than that"
    return f"the body is {said}; this endpoint takes at most {limit:,} bytes"
