"""Time options of reports: ``--since 24h``, ``--until 2026-11-20T08:00``, and the local zone."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from vigil.errors import ConfigError

UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800}
"""Seconds per unit of a relative time such as ``90m``."""

ACCEPTED_FORMS = "30s, 90m, 24h, 7d, 2w (back from now), now, or 2026-11-20 / 2026-11-20T08:00"

_RELATIVE = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_LOCALTIME_FILE = "/etc/localtime"


def parse_since(
    text: str, now: float, *, tz: tzinfo | None = None, option: str = "--since"
) -> float:
    """Turn a report time option into Unix seconds; serves ``--since`` and ``--until`` alike.

    Args:
        text: A span back from ``now`` (``30s``, ``90m``, ``24h``, ``7d``, ``2w``), ``now``, or an
            ISO 8601 date or date-time (``2026-11-20``, ``2026-11-20T08:00``, ``...+01:00``).
        now: The current time in Unix seconds (passed in so results are reproducible).
        tz: The zone of ISO times written without an offset; the system's local zone by default.
        option: The option's name, used in the error message.

    Returns:
        The moment ``text`` names, in Unix seconds.

    Raises:
        ConfigError: ``text`` is none of the accepted forms.

    """
    cleaned = text.strip().lower()
    relative = _RELATIVE.fullmatch(cleaned)
    if relative:
        return now - float(relative.group(1)) * UNIT_SECONDS[relative.group(2)]
    if cleaned == "now":
        return now
    moment = _iso_moment(text.strip())
    if moment is None:
        raise ConfigError(f"{option} {text!r} is not a time: use {ACCEPTED_FORMS}")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz or local_zone())
    return moment.timestamp()


def _iso_moment(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def local_zone() -> tzinfo:
    """Return the system's local time zone, with its daylight-saving rules where they are known.

    ``TZ`` wins when it names a zone; otherwise ``/etc/localtime``; otherwise the current fixed
    offset (correct for times near now only).
    """
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    try:
        with open(_LOCALTIME_FILE, "rb") as handle:
            return ZoneInfo.from_file(handle, key="localtime")
    except (OSError, ValueError):
        pass
    return datetime.now().astimezone().tzinfo or UTC


def format_local(timestamp: float, tz: tzinfo, *, seconds: bool = False) -> str:
    """Format Unix seconds as local ``YYYY-MM-DD HH:MM`` with the zone's abbreviation."""
    moment = datetime.fromtimestamp(timestamp, tz)
    pattern = "%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M"
    zone = moment.tzname()
    return f"{moment.strftime(pattern)} {zone}" if zone else moment.strftime(pattern)


def check_period(since: float, until: float, *, allow_empty: bool = False) -> None:
    """Raise :class:`ConfigError` when ``until`` is before ``since`` (or equal, unless allowed)."""
    if until > since or (allow_empty and until == since):
        return
    zone = local_zone()
    raise ConfigError(
        f"the report period is empty: --since ({format_local(since, zone)}) must be earlier "
        f"than --until ({format_local(until, zone)})"
    )
