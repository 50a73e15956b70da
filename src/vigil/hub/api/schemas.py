"""The typed shapes of what the hub's API receives and answers (its OpenAPI components)."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from vigil.hub.accounts import DEVICE_ID

DEVICE_ID_PATTERN = DEVICE_ID.pattern
KIND_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
MESSAGE_ID_PATTERN = r"^[!-~]{1,128}$"
LATEST_TIMESTAMP = 32_503_680_000.0
"""Year 3000: no later time is accepted."""


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Timestamp = Annotated[
    float,
    Field(ge=0, le=LATEST_TIMESTAMP, description="Unix seconds."),
    AfterValidator(_finite),
]


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: str = Field(description="A short machine-readable reason, e.g. not_found.")
    message: str = Field(description="What went wrong and what to do about it, on one line.")


class Health(BaseModel):
    """The answer of ``GET /api/health``."""

    ok: bool = Field(description="True while the hub answers.")
    version: str = Field(description="Vigil's version.")


class LoginRequest(BaseModel):
    """The body of ``POST /api/login``."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=1, max_length=64, description="The user's name.")
    password: str = Field(min_length=1, max_length=1024, description="The user's password.")


class Me(BaseModel):
    """Who is making the request."""

    user: str | None = Field(description="The logged-in user; null without login.")
    role: Literal["admin", "viewer"] = Field(description="What they may do.")
    auth: bool = Field(description="Whether the hub requires a login.")
    expires: float | None = Field(description="When the session ends, Unix seconds.")


class LoggedOut(BaseModel):
    """The answer of ``POST /api/logout``."""

    ok: bool


class Device(BaseModel):
    """A device (camera) the hub knows."""

    id: str = Field(description="The device id.")
    name: str = Field(description="Its display name.")
    status: Literal["online", "offline"] = Field(description="online: seen in the last 30 s.")
    last_seen: float | None = Field(description="Last ingest or record, Unix seconds.")
    fps: float | None = Field(description="Frames per second of its latest record.")
    app: str | None = Field(description="The app it runs, e.g. posture.")
    alerts_today: int = Field(description="Reminders since local midnight.")
    streaming: bool = Field(description="Whether a live frame arrived in the last 5 s.")


class DevicePage(BaseModel):
    """A page of devices."""

    items: list[Device]
    next_cursor: str | None = Field(
        description="Pass as cursor for the next page; null at the end."
    )


class NewToken(BaseModel):
    """A device token, shown once."""

    token_id: str = Field(description="The token's public id (for listing and revoking).")
    token: str = Field(description="The secret to send as 'Authorization: Bearer <token>'.")
    device_id: str


class Token(BaseModel):
    """A device token as listed: never its secret."""

    token_id: str
    device_id: str
    created: float
    last_used: float | None
    revoked: float | None


class TokenPage(BaseModel):
    """A page of tokens."""

    items: list[Token]
    next_cursor: str | None


class IngestEvent(BaseModel):
    """One event as a pipeline sends it: ``Event.to_dict()`` plus the sender's message id.

    Every field besides these is the event's data (e.g. a record's ``state``, ``hunched``,
    ``fps``; a reminder's ``reason``).
    """

    model_config = ConfigDict(extra="allow")

    id: str = Field(
        pattern=MESSAGE_ID_PATTERN,
        description="The sender's unique message id; a retried message with the same id is "
        "stored once.",
    )
    kind: str = Field(pattern=KIND_PATTERN, description="record, reminder, state, ...")
    app: str = Field(pattern=KIND_PATTERN, description="The app that produced it, e.g. posture.")
    device_id: str = Field(pattern=DEVICE_ID_PATTERN, description="Must be the batch's device.")
    timestamp: Timestamp
    time: str | None = Field(None, max_length=64, description="The timestamp as ISO 8601 text.")


class IngestRequest(BaseModel):
    """The body of ``POST /api/ingest``."""

    model_config = ConfigDict(extra="forbid")

    device_id: str = Field(pattern=DEVICE_ID_PATTERN, description="The sending device.")
    events: list[IngestEvent] = Field(max_length=100_000, description="At most 5,000 events.")


class IngestResult(BaseModel):
    """The answer of ``POST /api/ingest``."""

    accepted: int = Field(description="Events stored now.")
    duplicates: int = Field(description="Events stored before (same message id or same record).")


class PostureRecordData(BaseModel):
    """The data of a posture ``record`` event (one second)."""

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    person_present: bool
    state: Literal["sitting", "standing", "unknown"]
    hunched: bool
    side: str | None = Field(None, max_length=8)
    torso_angle: float | None = None
    neck_angle: float | None = None
    thigh_angle: float | None = None
    knee_angle: float | None = None
    confidence: float | None = None
    fps: float = Field(ge=0, le=10_000)
    sitting_seconds: float | None = None
    hunched_seconds: float | None = None


class FrameAccepted(BaseModel):
    """The answer of ``POST /api/streams/{device_id}``."""

    device_id: str
    bytes: int
    viewers: int = Field(description="Viewers watching the stream now.")


class PostureRecord(BaseModel):
    """One per-second posture record."""

    id: int
    device_id: str
    ts: float = Field(description="Start of the second, Unix seconds.")
    person_present: bool
    state: str = Field(description="sitting, standing or unknown.")
    hunched: bool
    side: str | None
    torso_angle: float | None
    neck_angle: float | None
    thigh_angle: float | None
    knee_angle: float | None
    confidence: float | None
    fps: float
    sitting_seconds: float | None
    hunched_seconds: float | None


class Aggregate(BaseModel):
    """Seconds per state over a bucket of time (one minute, hour, day or week)."""

    start: float = Field(description="Start of the bucket (clipped to the period), Unix seconds.")
    end: float = Field(description="End of the bucket (clipped to the period), Unix seconds.")
    records: int = Field(description="Seconds with a record.")
    sitting_seconds: float
    standing_seconds: float
    unknown_seconds: float = Field(description="A person in view whose posture was unclear.")
    away_seconds: float = Field(description="Recorded seconds without a person.")
    hunched_seconds: float = Field(description="Hunched, in any posture.")
    hunched_sitting_seconds: float = Field(description="Hunched while sitting.")
    reminders: int


class RecordPage(BaseModel):
    """Raw records (``bucket=second``) or aggregates of one device."""

    bucket: Literal["second", "minute", "hour", "day", "week"]
    items: list[PostureRecord] | list[Aggregate] = Field(
        description="Records for bucket=second, else aggregates of the buckets that hold data."
    )
    next_cursor: str | None = Field(
        description="Pass as cursor for the next page; null at the end."
    )


class Totals(BaseModel):
    """What a period adds up to, in seconds."""

    records: int = Field(description="Seconds with a record.")
    sitting_seconds: float
    standing_seconds: float
    unknown_seconds: float
    away_seconds: float
    hunched_seconds: float = Field(description="Hunched, in any posture.")
    hunched_sitting_seconds: float
    hunched_share: float | None = Field(
        description="Share (0-1) of sitting time spent hunched; null without sitting."
    )
    no_data_seconds: float = Field(description="Seconds of the period without a record.")


class Streak(BaseModel):
    """The longest sitting streak: pauses shorter than the break length do not end it."""

    start: float
    end: float
    seconds: float = Field(description="From start to end, short pauses included.")
    sitting_seconds: float = Field(description="Seconds actually sitting within it.")


class Reminders(BaseModel):
    """Reminders of the period."""

    total: int
    by_reason: dict[str, int]


class HourOfDay(BaseModel):
    """One local hour of the day, summed over every day of the period."""

    hour: int = Field(ge=0, le=23)
    records: int
    sitting_seconds: float
    standing_seconds: float
    unknown_seconds: float
    away_seconds: float
    hunched_seconds: float
    hunched_sitting_seconds: float
    reminders: int


class PostureSummary(BaseModel):
    """The posture of one device over a period."""

    device_id: str
    since: float
    until: float
    tz: str = Field(description="The zone of hours, days and weeks.")
    break_seconds: float = Field(description="The shortest pause that ends a sitting streak.")
    totals: Totals
    longest_streak: Streak | None
    reminders: Reminders
    hourly: list[HourOfDay] = Field(description="Hour of day 0-23, local time.")
    daily: list[Aggregate] = Field(description="Each local day of the period.")
    weekly: list[Aggregate] = Field(description="Each local week (from Monday) of the period.")


class StoredEvent(BaseModel):
    """An event in the records database."""

    id: int
    device_id: str
    app: str
    kind: str
    ts: float
    data: dict[str, Any]
    snapshot_url: str | None = Field(description="Where its snapshot image is, if it has one.")


class EventPage(BaseModel):
    """A page of events."""

    items: list[StoredEvent]
    next_cursor: str | None


class ModelEntry(BaseModel):
    """One registered model version."""

    name: str
    version: int
    task: str
    format: str
    size: int
    sha256: str
    tags: dict[str, str]
    metrics: dict[str, Any]
    stages: list[str] = Field(description="Stage aliases that point at this version.")
    latest: bool
    created: float = Field(description="Unix seconds.")
    description: str | None


class ModelPage(BaseModel):
    """A page of model versions."""

    items: list[ModelEntry]
    next_cursor: str | None


class PromoteRequest(BaseModel):
    """The body of ``POST /api/models/{name}/promote``."""

    model_config = ConfigDict(extra="forbid")

    version: int = Field(ge=1, le=2**31 - 1, description="The version to point the stage at.")
    stage: str = Field(
        pattern=r"^[a-z][a-z0-9_-]{0,31}$", description="e.g. production or staging."
    )
