"""The local inference service: one model behind a small HTTP API, like a Custom Vision module.

=======================  ==================================================================
endpoint                 what it does
=======================  ==================================================================
``POST /predict``        runs the model on one image: raw bytes (``image/*`` or
                         ``application/octet-stream``), multipart form field ``image``, or
                         JSON ``{"image": "<base64>"}``
``GET /health``          ``ok`` while the model is loaded
``GET /metadata``        name, version, sha256, task, spec, what goes in and what comes out
``GET /metrics``         Prometheus text: requests by endpoint and status, latency
                         histogram, requests in flight, inference and decode times
=======================  ==================================================================

Bodies are counted while they arrive and refused (413) as soon as they pass the limit; image
sizes are read from the header before decoding. Every bad input gets a 4xx with a JSON body
``{"error": "<code>", "message": "<what to do>"}``; a 500 means a bug and is logged.
Inference runs on a worker thread, never on the event loop, one call at a time unless the model
says it is thread-safe.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from dataclasses import dataclass
from typing import Any

import numpy as np
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from vigil.serve.decode import FORMATS, RequestRejected, decode_image
from vigil.serve.metrics import MetricsMiddleware, ServiceMetrics
from vigil.serve.schema import (
    ERROR_RESPONSES,
    PREDICT_REQUEST_BODY,
    ErrorResponse,
    HealthResponse,
    MetadataResponse,
    ModelInfo,
    PredictResponse,
    ServeSettings,
)
from vigil.tasks.base import Prediction, TaskModel

log = logging.getLogger(__name__)

RAW_MEDIA_TYPES = frozenset({"application/octet-stream", ""})
"""Media types read as the encoded image itself, besides every ``image/*``."""

IMAGE_FIELD = "image"
"""The multipart form field and JSON key that carry the image."""

WARM_UP_SIZE = (640, 480)
"""(width, height) of the blank frame a model first runs on."""


@dataclass(frozen=True, slots=True)
class _Outcome:
    """What one inference produced, with its timings in seconds."""

    results: dict[str, Any]
    decode_seconds: float
    inference_seconds: float


class _Service:
    """The state behind the routes: the model, its lock, the limits and the metrics."""

    def __init__(self, model: TaskModel, settings: ServeSettings, info: ModelInfo) -> None:
        self.model = model
        self.settings = settings
        self.info = info
        self.metrics = ServiceMetrics()
        thread_safe = bool(getattr(model, "thread_safe", False))
        self._turn: AbstractContextManager[Any] = nullcontext() if thread_safe else threading.Lock()

    async def predict(self, request: Request) -> Response:
        started = time.perf_counter()
        body = await read_body(request, self.settings.max_body_bytes)
        image_bytes = await extract_image(request, body)
        received = time.perf_counter()
        outcome = await run_in_threadpool(self._decode_and_predict, image_bytes)
        finished = time.perf_counter()
        payload = {
            "model": {"name": self.info.name, "version": self.info.version, "task": self.task},
            "results": outcome.results,
            "timing_ms": {
                "read": _ms(received - started),
                "decode": _ms(outcome.decode_seconds),
                "inference": _ms(outcome.inference_seconds),
                "total": _ms(finished - started),
            },
        }
        return JSONResponse(payload)

    @property
    def task(self) -> str:
        return self.model.spec.task

    def _decode_and_predict(self, data: bytes) -> _Outcome:
        started = time.perf_counter()
        image = decode_image(data, self.settings.max_pixels)
        decoded = time.perf_counter()
        prediction = self._run_model(image)
        inferred = time.perf_counter()
        self.metrics.decode.observe(decoded - started)
        self.metrics.inference.observe(inferred - decoded)
        return _Outcome(prediction.to_dict(), decoded - started, inferred - decoded)

    def _run_model(self, image: np.ndarray) -> Prediction:
        with self._turn:  # one call at a time unless the model is thread-safe
            return self.model.predict(image)

    def health(self) -> HealthResponse:
        return HealthResponse(status="ok", model_loaded=True, model=self.info.name, task=self.task)

    def metadata(self) -> MetadataResponse:
        return MetadataResponse.describe(self.model, self.info, self.settings)

    def exposition(self) -> Response:
        from prometheus_client import CONTENT_TYPE_LATEST

        return Response(self.metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    def warm_up(self) -> None:
        """Run the model once, so the first request is not the slow one."""
        with self._turn:
            warm_up(self.model)


def warm_up(model: TaskModel) -> None:
    """Run ``model`` once on a blank frame: runtimes allocate and compile on their first run."""
    model.predict(np.zeros((WARM_UP_SIZE[1], WARM_UP_SIZE[0], 3), np.uint8))


def create_app(
    model: TaskModel, settings: ServeSettings | None = None, info: ModelInfo | None = None
) -> FastAPI:
    """Build the HTTP service around a loaded model; the caller keeps it and closes it.

    Args:
        model: The model to serve.
        settings: Body and image limits, warm-up; defaults when None.
        info: The model's name, version and checksum as the registry knows them; when None,
            the name is ``model`` and the version and checksum are unknown.
    """
    service = _Service(model, settings or ServeSettings(), info or ModelInfo(name="model"))
    app = FastAPI(
        title="Vigil model service",
        summary=f"Runs the {service.task} model {service.info.name!r} on images.",
        version=_package_version(),
        lifespan=_lifespan(service),
    )
    _add_routes(app, service)
    _add_error_handlers(app)
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=service.metrics)
    app.state.metrics = service.metrics
    return app


def _lifespan(service: _Service) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        if service.settings.warmup:
            await run_in_threadpool(service.warm_up)
        yield

    return lifespan


def _add_routes(app: FastAPI, service: _Service) -> None:
    app.add_api_route(
        "/predict",
        service.predict,
        operation_id="predict",
        methods=["POST"],
        response_model=PredictResponse,
        responses=ERROR_RESPONSES,
        summary="Run the model on one image",
        description="Send the image as the raw body (`Content-Type: image/jpeg`, `image/png`, "
        "... or `application/octet-stream`), as the multipart form field `image`, or as JSON "
        f'`{{"image": "<base64>"}}`. Formats: {", ".join(FORMATS)}.',
        openapi_extra={"requestBody": PREDICT_REQUEST_BODY},
        tags=["inference"],
    )
    app.add_api_route(
        "/health",
        service.health,
        operation_id="health",
        methods=["GET"],
        response_model=HealthResponse,
        summary="Whether the service is up with its model loaded",
        tags=["service"],
    )
    app.add_api_route(
        "/metadata",
        service.metadata,
        operation_id="metadata",
        methods=["GET"],
        response_model=MetadataResponse,
        summary="The served model: name, version, checksum, task, spec, inputs and outputs",
        tags=["service"],
    )
    app.add_api_route(
        "/metrics",
        service.exposition,
        operation_id="metrics",
        methods=["GET"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
        summary="Prometheus metrics",
        tags=["service"],
    )


async def read_body(request: Request, limit: int) -> bytes:
    """Read the whole body, refusing it (413) as soon as it is longer than ``limit`` bytes.

    A declared ``Content-Length`` over the limit is refused before a byte is read; a body sent
    in chunks is counted as it arrives, so nothing over the limit is ever held in memory.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    received = bytearray()
    try:
        async for chunk in request.stream():
            received += chunk
            if len(received) > limit:
                raise _too_large(None, limit)
    except ClientDisconnect:
        raise RequestRejected(400, "client_disconnected", "the client went away") from None
    return bytes(received)


def _too_large(size: int | None, limit: int) -> RequestRejected:
    said = f"{size:,} bytes" if size is not None else "longer than that"
    return RequestRejected(
        413,
        "body_too_large",
        f"the body is {said}; this service takes at most {limit:,} bytes "
        "(vigil serve-model --max-body-mb)",
    )


async def extract_image(request: Request, body: bytes) -> bytes:
    """Return the encoded image a body carries, whichever of the three forms it came in."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/json":
        return image_from_json(body)
    if media_type == "multipart/form-data":
        return await image_from_multipart(request, body)
    if media_type.startswith("image/") or media_type in RAW_MEDIA_TYPES:
        return body
    raise RequestRejected(
        415,
        "unsupported_media_type",
        f"cannot read a {media_type} body: send the image as image/* or "
        "application/octet-stream, as multipart/form-data field 'image', or as JSON "
        '{"image": "<base64>"}',
    )


def image_from_json(body: bytes) -> bytes:
    """Decode the base64 image of a JSON body ``{"image": "<base64>"}``.

    A ``data:image/...;base64,`` prefix and line breaks in the base64 text are accepted.
    """
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise RequestRejected(400, "bad_json", f"the body is not valid JSON: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get(IMAGE_FIELD), str):
        raise RequestRejected(
            422, "missing_field", 'a JSON body must be an object {"image": "<base64 text>"}'
        )
    unknown = sorted(set(document) - {IMAGE_FIELD})
    if unknown:
        raise RequestRejected(
            422, "unknown_field", f"unknown field {unknown[0]!r}: a JSON body has only 'image'"
        )
    text = document[IMAGE_FIELD]
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        raise RequestRejected(
            400, "bad_base64", "'image' is not valid base64 text (standard alphabet, padded)"
        ) from None


async def image_from_multipart(request: Request, body: bytes) -> bytes:
    """Return the file in the ``image`` field of a ``multipart/form-data`` body."""
    replayed = Request(request.scope, receive=_replay(body))
    try:
        form = await replayed.form(max_files=1, max_fields=16)
    except HTTPException as exc:
        raise RequestRejected(400, "bad_multipart", f"bad multipart body: {exc.detail}") from None
    try:
        field = form.get(IMAGE_FIELD)
        if field is None:
            names = ", ".join(sorted(form.keys())) or "none"
            raise RequestRejected(
                422,
                "missing_field",
                f"the multipart body has no field 'image' (fields: {names}); "
                "send the file as: curl -F image=@photo.jpg",
            )
        if isinstance(field, str):
            raise RequestRejected(
                422,
                "missing_field",
                "the multipart field 'image' is text, not a file: curl -F image=@photo.jpg",
            )
        return await field.read()
    finally:
        await form.close()


def _replay(body: bytes) -> Receive:
    """Return a receive channel that hands out a body already read, then a disconnect."""
    pending = [body]

    async def receive() -> Message:
        if pending:
            return {"type": "http.request", "body": pending.pop(), "more_body": False}
        return {"type": "http.disconnect"}

    return receive


def _add_error_handlers(app: FastAPI) -> None:
    async def rejected(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestRejected)
        return error_response(exc.status, exc.code, str(exc))

    async def http_error(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), exc.headers)

    async def invalid(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else str(exc)
        return error_response(422, "invalid_request", message)

    app.add_exception_handler(RequestRejected, rejected)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid)


_HTTP_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    413: "body_too_large",
    415: "unsupported_media_type",
}


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """Return the JSON error response every failure of the service gives."""
    body = ErrorResponse(error=code, message=message).model_dump()
    return JSONResponse(body, status_code=status, headers=headers)


class CatchAllMiddleware:
    """Turns an unexpected exception into a logged, clean 500; bad input never gets here."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call, answering 500 when the app fails before it answered."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_and_note_start(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_start)
        except Exception:
            log.exception("internal error while handling %s %s", scope["method"], scope["path"])
            if started:
                raise
            response = error_response(
                500, "internal_error", "the service failed on this request; see its log"
            )
            await response(scope, receive, send)


def _ms(seconds: float) -> float:
    return round(seconds * 1000, 3)


def _package_version() -> str:
    from vigil import __version__

    return __version__
