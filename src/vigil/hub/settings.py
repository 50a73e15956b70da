"""Settings of the hub: where it listens, where it keeps things, who must log in, its limits."""

from __future__ import annotations

import ipaddress
import re
from datetime import tzinfo
from typing import Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from vigil.config import ConfigModel

MEGABYTE = 1024 * 1024

LOCAL_HOST_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
"""Host names that always mean this machine's loopback interface."""

HOST_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62}\.?)*[A-Za-z0-9]?$")
"""A DNS host name (letters, digits, hyphens, dots)."""

ZONE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+){0,2}$")
"""The shape of an IANA time zone name (no dots, so no path tricks)."""


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (127.0.0.0/8, ::1) or ``localhost``.

    Any other address, host name or wildcard (``0.0.0.0``, ``::``) can be reached from other
    machines.
    """
    name = host.strip().strip("[]").lower()
    if name in LOCAL_HOST_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class HubSettings(ConfigModel):
    """How ``vigil serve`` listens, where the hub keeps its data, and what it accepts."""

    host: str = Field(
        "127.0.0.1",
        min_length=1,
        max_length=253,
        description="Address to listen on. On loopback (the default) nobody logs in; any other "
        "address, e.g. 0.0.0.0, requires a login or a device token on every request.",
    )
    port: int = Field(8600, ge=1, le=65535, description="TCP port to listen on.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the records database the hub shares with pipelines; "
        "empty means the embedded SQLite database in VIGIL_HOME.",
    )
    snapshot_store: str | None = Field(
        None,
        description="Where snapshot images go: a folder or s3://bucket/prefix; empty means "
        "VIGIL_HOME/hub/snapshots.",
    )
    registry_url: str | None = Field(
        None,
        description="Database of the model registry; empty means VIGIL_REGISTRY_URL, else the "
        "embedded SQLite database in VIGIL_HOME.",
    )
    model_store: str | None = Field(
        None,
        description="Where model files are kept (a folder or s3://bucket/prefix); empty means "
        "VIGIL_MODEL_STORE, else VIGIL_HOME/models.",
    )
    auth: bool | None = Field(
        None,
        description="Require a login or device token. Empty: required unless the hub listens "
        "on loopback only. It cannot be switched off on any other address.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        max_length=64,
        description="Host names, besides localhost and loopback addresses, that a hub without "
        "login answers (e.g. a name a local proxy forwards). Requests addressed to any other "
        "name are refused, so a web page cannot reach the hub through a name of its own.",
    )
    tz: str | None = Field(
        None,
        max_length=64,
        description="IANA time zone of hours and days (e.g. Europe/Berlin); empty means the "
        "system's local zone.",
    )
    session_hours: float = Field(
        168.0, gt=0, le=8760, description="A login session ends this many hours after login."
    )
    login_failure_delay_seconds: float = Field(
        1.0, ge=0, le=10, description="Every failed login is answered after this pause."
    )
    login_failures_allowed: int = Field(
        10,
        ge=1,
        le=10_000,
        description="Failed logins from one address within login_window_seconds before further "
        "attempts from it are refused (429) until the window has passed.",
    )
    login_window_seconds: float = Field(
        600.0, gt=0, le=86_400, description="The window in which failed logins are counted."
    )
    max_ingest_mb: float = Field(
        8.0, gt=0, le=256, description="Largest POST /api/ingest body in MiB; longer ones get 413."
    )
    max_ingest_events: int = Field(
        5000, ge=1, le=100_000, description="Most events in one POST /api/ingest batch."
    )
    max_frame_mb: float = Field(
        2.0, gt=0, le=64, description="Largest live frame (one JPEG) in MiB; larger ones get 413."
    )
    max_live_streams: int = Field(
        256, ge=1, le=100_000, description="Most devices whose latest live frame is kept."
    )
    online_seconds: float = Field(
        30.0, gt=0, le=86_400, description="A device seen within this many seconds is online."
    )
    live_frame_seconds: float = Field(
        5.0, gt=0, le=3600, description="A live frame older than this is no longer shown."
    )
    break_seconds: float = Field(
        60.0,
        ge=0,
        le=86_400,
        description="A pause in sitting shorter than this does not end a sitting streak.",
    )
    message_id_days: float = Field(
        8.0,
        gt=0,
        le=3650,
        description="How long the ids of ingested messages are kept to recognise a retried "
        "batch; longer than a pipeline's outbox keeps undelivered messages.",
    )
    rollup_chunk_records: int = Field(
        200_000,
        ge=1000,
        le=10_000_000,
        description="Records read per step while the hour roll-ups catch up with new records.",
    )

    @field_validator("allowed_hosts")
    @classmethod
    def _host_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not HOST_NAME.match(name):
                raise ValueError(f"{name[:80]!r} is not a host name")
        return [name.lower() for name in names]

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value is not None:
            zone_named(value)
        return value

    @model_validator(mode="after")
    def _auth_off_only_on_loopback(self) -> Self:
        if self.auth is False and not is_loopback(self.host):
            raise ValueError(
                f"login cannot be switched off on {self.host}, which other machines can reach; "
                "listen on 127.0.0.1 or leave auth on"
            )
        return self

    @property
    def loopback(self) -> bool:
        """Whether the hub listens on loopback only."""
        return is_loopback(self.host)

    @property
    def auth_required(self) -> bool:
        """Whether requests need a session or a device token."""
        return self.auth if self.auth is not None else not self.loopback

    @property
    def max_ingest_bytes(self) -> int:
        """The ingest body limit in bytes."""
        return int(self.max_ingest_mb * MEGABYTE)

    @property
    def max_frame_bytes(self) -> int:
        """The live frame limit in bytes."""
        return int(self.max_frame_mb * MEGABYTE)

    @property
    def zone(self) -> tzinfo:
        """The time zone of hours and days."""
        if self.tz is None:
            from vigil.report.timeparse import local_zone

            return local_zone()
        return zone_named(self.tz)


def zone_named(name: str) -> ZoneInfo:
    """Return the IANA time zone ``name`` (e.g. ``Europe/Berlin``).

    Raises:
        ValueError: there is no such zone.
    """
    try:
        if not ZONE_NAME.match(name):
            raise ValueError(name)
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as Europe/Berlin or UTC"
        ) from None
