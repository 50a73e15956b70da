"""Parameters many endpoints share: ids in paths, periods, pages and their cursors."""

from __future__ import annotations

import base64
import binascii
import json
import math
import time
from dataclasses import dataclass
from datetime import tzinfo
from typing import Annotated, Any

from fastapi import Path, Query, Request

from vigil.hub.api.errors import ApiError
from vigil.hub.api.schemas import DEVICE_ID_PATTERN, LATEST_TIMESTAMP
from vigil.hub.auth import hub_of
from vigil.hub.settings import zone_named

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
DEFAULT_PERIOD_SECONDS = 86_400.0
MAX_PERIOD_SECONDS = 3661 * 86_400.0
"""The longest period a query may span: ten years."""

DevicePath = Annotated[
    str,
    Path(pattern=DEVICE_ID_PATTERN, description="The device id."),
]
DeviceQuery = Annotated[
    str,
    Query(pattern=DEVICE_ID_PATTERN, description="The device id."),
]
Limit = Annotated[
    int, Query(ge=1, le=MAX_LIMIT, description="Most items on one page (at most 1000).")
]
Cursor = Annotated[
    str | None,
    Query(
        max_length=512,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="Where to go on: the previous page's next_cursor.",
    ),
]
Moment = Annotated[
    float | None,
    Query(ge=0, le=LATEST_TIMESTAMP, description="Unix seconds."),
]
ZoneName = Annotated[
    str | None,
    Query(
        max_length=64,
        description="IANA time zone of hours, days and weeks, e.g. Europe/Berlin; default "
        "the hub's.",
    ),
]


@dataclass(frozen=True, slots=True)
class Period:
    """A period of time, ``[since, until)`` in Unix seconds."""

    since: float
    until: float


def period(since: float | None, until: float | None) -> Period:
    """Return the period a query asks about: by default the 24 hours up to now.

    Raises:
        ApiError: the end is not after the start, or the period is longer than ten years.
    """
    for name, value in (("since", since), ("until", until)):
        if value is not None and not math.isfinite(value):
            raise ApiError(422, "invalid", f"query.{name}: must be a finite number")
    end = until if until is not None else time.time()
    start = since if since is not None else end - DEFAULT_PERIOD_SECONDS
    if end <= start:
        raise ApiError(400, "bad_period", f"until ({end}) must be after since ({start})")
    if end - start > MAX_PERIOD_SECONDS:
        raise ApiError(400, "bad_period", "a period spans at most ten years; ask in parts")
    return Period(float(start), float(end))


def zone(request: Request, name: str | None) -> tzinfo:
    """Return the zone a query names, or the hub's.

    Raises:
        ApiError: there is no zone of that name.
    """
    if name is None:
        return hub_of(request).zone
    try:
        return zone_named(name)
    except ValueError as exc:
        raise ApiError(422, "invalid", f"query.tz: {exc}") from None


def zone_label(zone_info: tzinfo) -> str:
    """Return the name of a zone, as answers show it."""
    return str(getattr(zone_info, "key", None) or zone_info)


def encode_cursor(value: Any) -> str:
    """Make an opaque cursor of a JSON value."""
    text = json.dumps(value, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> Any:
    """Read back a cursor made by :func:`encode_cursor`; None when there is none.

    Raises:
        ApiError: it is not a cursor this API made (400).
    """
    if cursor is None:
        return None
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        return json.loads(text)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise ApiError(
            400, "bad_cursor", "the cursor is not one this API made; start over"
        ) from None


def bad_cursor() -> ApiError:
    """Return the error of a cursor that does not fit the query."""
    return ApiError(400, "bad_cursor", "the cursor does not belong to this query; start over")


def time_cursor(cursor: str | None) -> float | None:
    """Return a cursor that is one moment (aggregate pages)."""
    value = decode_cursor(cursor)
    if value is None:
        return None
    if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
        raise bad_cursor()
    return float(value)


def keyset_cursor(cursor: str | None) -> tuple[float, int] | None:
    """Return a cursor that is a (timestamp, id) pair (record and event pages)."""
    value = decode_cursor(cursor)
    if value is None:
        return None
    if (
        not isinstance(value, list)
        or len(value) != 2
        or not isinstance(value[0], int | float)
        or not isinstance(value[1], int)
        or isinstance(value[1], bool)
        or not math.isfinite(value[0])
    ):
        raise bad_cursor()
    return float(value[0]), int(value[1])
