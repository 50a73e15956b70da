"""``/api/health``, ``/api/login``, ``/api/logout`` and ``/api/me``."""

from __future__ import annotations

import asyncio
import math
import time
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from vigil.hub.api.errors import ApiError, error_responses, parse_json
from vigil.hub.api.schemas import Health, LoggedOut, LoginRequest, Me
from vigil.hub.auth import CSRF_COOKIE, SESSION_COOKIE, Principal, hub_of, person

router = APIRouter(tags=["session"])

JSON_BODY = {"application/json": {"schema": {"$ref": "#/components/schemas/LoginRequest"}}}


@router.get("/health", operation_id="health", response_model=Health)
def health() -> Health:
    """Whether the hub answers (no login needed)."""
    from vigil import __version__

    return Health(ok=True, version=__version__)


@router.post(
    "/login",
    operation_id="login",
    response_model=Me,
    responses=error_responses(400, 401, 413, 415, 422, 429, 503),
    openapi_extra={"requestBody": {"required": True, "content": JSON_BODY}},
)
async def login(request: Request) -> Response:
    """Log in with a user name and password; sets the session and CSRF cookies."""
    hub = hub_of(request)
    client = request.client.host if request.client else "unknown"
    wait = hub.login_guard.blocked_for(client)
    if wait > 0:
        raise ApiError(
            429,
            "too_many_logins",
            f"too many failed logins from this address; try again in {math.ceil(wait)} s",
        )
    body = parse_json(await request.body(), request.headers.get("content-type", ""), LoginRequest)
    user = await run_in_threadpool(hub.accounts.authenticate, body.username, body.password)
    if user is None:
        hub.login_guard.failed(client)
        await asyncio.sleep(hub.settings.login_failure_delay_seconds)
        raise ApiError(401, "bad_login", "wrong user name or password")
    hub.login_guard.succeeded(client)
    secret, csrf = await run_in_threadpool(hub.accounts.start_session, user)
    seconds = hub.accounts.session_seconds
    me = Me(
        user=user.name,
        role=user.role,
        auth=hub.settings.auth_required,
        expires=time.time() + seconds,
    ).model_dump()
    response = JSONResponse(me)
    secure = request.url.scheme == "https"
    for name, value, http_only in ((SESSION_COOKIE, secret, True), (CSRF_COOKIE, csrf, False)):
        response.set_cookie(
            name,
            value,
            max_age=int(seconds),
            path="/",
            secure=secure,
            httponly=http_only,
            samesite="strict",
        )
    return response


@router.post(
    "/logout",
    operation_id="logout",
    response_model=LoggedOut,
    responses=error_responses(401, 403, 503),
)
def logout(request: Request, principal: Annotated[Principal, Depends(person)]) -> Response:
    """End this session and clear its cookies."""
    secret = request.cookies.get(SESSION_COOKIE)
    if principal.kind == "user" and secret is not None:
        hub_of(request).accounts.end_session(secret)
    response = JSONResponse(LoggedOut(ok=True).model_dump())
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        response.delete_cookie(name, path="/", samesite="strict")
    return response


@router.get("/me", operation_id="me", response_model=Me, responses=error_responses(401, 403, 503))
def me(request: Request, principal: Annotated[Principal, Depends(person)]) -> Me:
    """Who is logged in, their role, and whether the hub requires a login."""
    session = principal.session
    return Me(
        user=principal.user,
        role=principal.role or "viewer",
        auth=hub_of(request).settings.auth_required,
        expires=session.expires if session is not None else None,
    )
