"""The hub's web application: the REST API, and the pages when they are installed.

``create_app(settings)`` builds the FastAPI application; ``vigil serve`` runs it with uvicorn.
The API is described in ``docs/hub-api.md`` and by the OpenAPI schema at ``/openapi.json``.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from vigil.hub.api.errors import SMALL_BODY_BYTES, BodyLimits, add_error_handlers
from vigil.hub.api.routes import api_router
from vigil.hub.api.schemas import IngestRequest, LoginRequest, PromoteRequest
from vigil.hub.service import Hub
from vigil.hub.settings import HubSettings
from vigil.serve.app import CatchAllMiddleware

log = logging.getLogger(__name__)

WEB_MODULE = "vigil.hub.web"
"""The module of the web pages; its ``router`` is included when it exists."""

REQUEST_MODELS: tuple[type[BaseModel], ...] = (IngestRequest, LoginRequest, PromoteRequest)
"""Bodies the routes read themselves (after checking access); their schemas are added."""


def create_app(settings: HubSettings | None = None) -> FastAPI:
    """Build the hub: the API under ``/api``, the pages when installed; nothing is opened yet.

    The database opens when the app starts (or on the first request); the state lives on
    ``app.state.hub`` (:class:`~vigil.hub.service.Hub`).
    """
    from vigil import __version__

    hub = Hub(settings or HubSettings())
    app = FastAPI(
        title="Vigil hub",
        summary="Devices, live streams, posture records and models of your own cameras.",
        version=__version__,
        lifespan=_lifespan(hub),
        docs_url="/api/docs",
        redoc_url=None,
    )
    app.state.hub = hub
    app.include_router(api_router(), prefix="/api")
    web = web_router()
    if web is not None:
        app.include_router(web)
    add_error_handlers(app)
    app.add_middleware(
        BodyLimits,
        limits={
            "/api/ingest": hub.settings.max_ingest_bytes,
            "/api/streams/": hub.settings.max_frame_bytes,
        },
        default=SMALL_BODY_BYTES,
    )
    app.add_middleware(CatchAllMiddleware)
    app.openapi = _openapi_with(app, REQUEST_MODELS)  # type: ignore[method-assign]
    return app


def web_router() -> APIRouter | None:
    """Return the web pages' router, or None while the pages are not installed."""
    if importlib.util.find_spec(WEB_MODULE) is None:
        return None
    router = getattr(importlib.import_module(WEB_MODULE), "router", None)
    return router if isinstance(router, APIRouter) else None


def _lifespan(hub: Hub) -> Callable[[FastAPI], Any]:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        hub.streams.attach(asyncio.get_running_loop())
        await run_in_threadpool(hub.open)
        hub.start_catching_up()
        try:
            yield
        finally:
            await hub.streams.stop()
            await run_in_threadpool(hub.close)

    return lifespan


def _openapi_with(
    app: FastAPI, models: tuple[type[BaseModel], ...]
) -> Callable[[], dict[str, Any]]:
    """Return the OpenAPI schema, with the schemas of the bodies routes read themselves."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                routes=app.routes,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                definition = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(definition.pop("$defs", {}))
                components[model.__name__] = definition
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi
