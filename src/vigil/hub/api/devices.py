"""``/api/devices``: the devices the hub knows, and their tokens."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Request

from vigil.hub import db
from vigil.hub.accounts import TokenInfo
from vigil.hub.api.errors import error_responses, not_found
from vigil.hub.api.params import (
    DEFAULT_LIMIT,
    Cursor,
    DevicePath,
    Limit,
    bad_cursor,
    decode_cursor,
    encode_cursor,
)
from vigil.hub.api.schemas import Device, DevicePage, NewToken, Token, TokenPage
from vigil.hub.auth import Principal, admin, hub_of, viewer
from vigil.hub.queries import reminders_since
from vigil.hub.service import Hub

router = APIRouter(tags=["devices"])

READ_ERRORS = error_responses(400, 401, 403, 404, 422, 503)
WRITE_ERRORS = error_responses(401, 403, 404, 413, 422, 503)


@router.get(
    "/devices", operation_id="list_devices", response_model=DevicePage, responses=READ_ERRORS
)
def list_devices(
    request: Request,
    _who: Annotated[Principal, Depends(viewer)],
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> DevicePage:
    """Every device: status, last seen, frame rate, app, reminders today, live stream."""
    hub = hub_of(request)
    after = decode_cursor(cursor)
    if after is not None and not isinstance(after, str):
        raise bad_cursor()
    hub.rollups.catch_up()  # devices that only wrote records locally appear through it
    query = sa.select(db.devices).order_by(db.devices.c.id).limit(limit + 1)
    if after is not None:
        query = query.where(db.devices.c.id > after)
    rows = hub.database.read("list devices", lambda c: c.execute(query).all())
    items = describe_devices(hub, [row._mapping for row in rows[:limit]])
    more = len(rows) > limit
    return DevicePage(items=items, next_cursor=encode_cursor(items[-1].id) if more else None)


@router.get(
    "/devices/{device_id}", operation_id="get_device", response_model=Device, responses=READ_ERRORS
)
def get_device(
    request: Request, device_id: DevicePath, _who: Annotated[Principal, Depends(viewer)]
) -> Device:
    """One device."""
    hub = hub_of(request)
    return describe_devices(hub, [device_row(hub, device_id)])[0]


@router.post(
    "/devices/{device_id}/tokens",
    operation_id="create_token",
    response_model=NewToken,
    status_code=201,
    responses=WRITE_ERRORS,
)
def create_token(
    request: Request, device_id: DevicePath, _who: Annotated[Principal, Depends(admin)]
) -> NewToken:
    """Make a token for the device (the device is added when new); the secret is shown once."""
    made = hub_of(request).accounts.create_token(device_id)
    return NewToken(token_id=made.id, token=made.secret, device_id=device_id)


@router.get(
    "/devices/{device_id}/tokens",
    operation_id="list_tokens",
    response_model=TokenPage,
    responses=READ_ERRORS,
)
def list_tokens(
    request: Request,
    device_id: DevicePath,
    _who: Annotated[Principal, Depends(admin)],
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> TokenPage:
    """Return the device's tokens: ids, created, last used, revoked; never the secrets."""
    hub = hub_of(request)
    device_row(hub, device_id)
    tokens = hub.accounts.tokens(device_id)
    start = decode_cursor(cursor) or 0
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        raise bad_cursor()
    page = tokens[start : start + limit]
    more = start + limit < len(tokens)
    return TokenPage(
        items=[token_model(info) for info in page],
        next_cursor=encode_cursor(start + limit) if more else None,
    )


@router.delete(
    "/tokens/{token_id}",
    operation_id="revoke_token",
    response_model=Token,
    responses=WRITE_ERRORS,
)
def revoke_token(
    request: Request,
    token_id: Annotated[str, Path(pattern=r"^[0-9a-f]{12}$", description="The token's id.")],
    _who: Annotated[Principal, Depends(admin)],
) -> Token:
    """Revoke a token: its device can no longer send with it."""
    return token_model(hub_of(request).accounts.revoke_token(token_id))


def token_model(info: TokenInfo) -> Token:
    """Return a token as the API lists it."""
    return Token(
        token_id=info.id,
        device_id=info.device_id,
        created=info.created,
        last_used=info.last_used,
        revoked=info.revoked,
    )


def device_row(hub: Hub, device_id: str) -> Any:
    """Return the device's row (after the roll-ups found the devices of new records).

    Raises:
        ApiError: the hub knows no such device (404).
    """
    hub.rollups.catch_up()
    query = sa.select(db.devices).where(db.devices.c.id == device_id)
    row = hub.database.read("look up a device", lambda c: c.execute(query).first())
    if row is None:
        raise not_found(f"there is no device {device_id!r}")
    return row._mapping


def describe_devices(hub: Hub, rows: list[Any]) -> list[Device]:
    """Devices as the API shows them, with their live status."""
    now = time.time()
    midnight = local_midnight(hub, now)
    alerts = reminders_since(hub.database, midnight) if rows else {}
    streaming = hub.streams.streaming()
    online = hub.settings.online_seconds
    return [
        Device(
            id=row["id"],
            name=row["name"],
            status="online" if row["last_seen"] and now - row["last_seen"] <= online else "offline",
            last_seen=row["last_seen"],
            fps=row["fps"],
            app=row["app"],
            alerts_today=alerts.get(row["id"], 0),
            streaming=row["id"] in streaming,
        )
        for row in rows
    ]


def local_midnight(hub: Hub, now: float) -> float:
    """Return the start of today in the hub's time zone."""
    zone = hub.zone
    today = datetime.fromtimestamp(now, zone).date()
    return datetime(today.year, today.month, today.day, tzinfo=zone).timestamp()
