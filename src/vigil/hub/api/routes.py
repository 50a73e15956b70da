"""Every endpoint of the hub's API in one router, mounted at ``/api``."""

from __future__ import annotations

from fastapi import APIRouter

from vigil.hub.api import devices, live, models, records, sessions


def api_router() -> APIRouter:
    """Return every endpoint of the API, to be mounted at ``/api``."""
    router = APIRouter()
    for group in (sessions, devices, live, records, models):
        router.include_router(group.router)
    return router
