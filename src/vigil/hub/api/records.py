"""``/api/records`` (JSON, CSV, Parquet), ``/api/posture/summary``, events and snapshots."""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterator
from datetime import tzinfo
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse, StreamingResponse

from vigil.errors import DependencyError
from vigil.hub.api.errors import ApiError, error_responses, not_found
from vigil.hub.api.params import (
    DEFAULT_LIMIT,
    Cursor,
    DeviceQuery,
    Limit,
    Moment,
    Period,
    ZoneName,
    encode_cursor,
    keyset_cursor,
    period,
    time_cursor,
    zone,
    zone_label,
)
from vigil.hub.api.schemas import (
    Aggregate,
    EventPage,
    HourOfDay,
    PostureRecord,
    PostureSummary,
    RecordPage,
    Reminders,
    StoredEvent,
    Streak,
    Totals,
)
from vigil.hub.auth import Principal, hub_of, viewer
from vigil.hub.queries import COUNT_NAMES, Page, Summary, bucket_row
from vigil.hub.service import Hub
from vigil.storage.records import POSTURE_FIELDS, events

router = APIRouter(tags=["records"])

BucketName = Literal["second", "minute", "hour", "day", "week"]
BucketQuery = Annotated[
    BucketName,
    Query(description="second: raw records; minute, hour, day, week: aggregates (local tz)."),
]
READ_ERRORS = error_responses(400, 401, 403, 404, 422, 503)
SHA256_PATH = r"^[0-9a-f]{64}$"
AGGREGATE_COLUMNS = tuple(Aggregate.model_fields)
RECORD_COLUMNS = ("id", *POSTURE_FIELDS)
DOWNLOAD_CHUNK = 10_000
_BINARY = {"type": "string", "format": "binary"}


@router.get(
    "/records", operation_id="list_records", response_model=RecordPage, responses=READ_ERRORS
)
def list_records(
    *,
    request: Request,
    device_id: DeviceQuery,
    _who: Annotated[Principal, Depends(viewer)],
    since: Moment = None,
    until: Moment = None,
    bucket: BucketQuery = "second",
    tz: ZoneName = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> RecordPage:
    """Raw per-second records, or aggregates per minute, hour, day or week, page by page."""
    hub = hub_of(request)
    span = period(since, until)
    if bucket == "second":
        page = hub.queries.record_page(
            device_id, span.since, span.until, limit, keyset_cursor(cursor)
        )
        items: list[Any] = [PostureRecord.model_validate(row) for row in page.items]
    else:
        start = _resume(span, time_cursor(cursor))
        page = hub.queries.bucket_page(
            device_id, start, span.until, bucket=bucket, tz=zone(request, tz), limit=limit
        )
        items = [Aggregate.model_validate(row) for row in page.items]
    return RecordPage(bucket=bucket, items=items, next_cursor=_cursor(page))


def _resume(span: Period, cursor: float | None) -> float:
    if cursor is None:
        return span.since
    if not span.since < cursor < span.until:
        raise ApiError(400, "bad_cursor", "the cursor does not belong to this query; start over")
    return cursor


def _cursor(page: Page) -> str | None:
    if page.next_cursor is None:
        return None
    value = list(page.next_cursor) if isinstance(page.next_cursor, tuple) else page.next_cursor
    return encode_cursor(value)


@router.get(
    "/records.csv",
    operation_id="download_records_csv",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}, "description": "CSV."},
        **READ_ERRORS,
    },
)
def download_csv(
    *,
    request: Request,
    device_id: DeviceQuery,
    _who: Annotated[Principal, Depends(viewer)],
    since: Moment = None,
    until: Moment = None,
    bucket: BucketQuery = "second",
    tz: ZoneName = None,
) -> StreamingResponse:
    """Return the records (or aggregates) of the period as one CSV file, streamed."""
    rows, columns = _download_rows(
        request, device_id, since=since, until=until, bucket=bucket, tz=tz
    )
    return StreamingResponse(
        _csv_chunks(rows, columns),
        media_type="text/csv",
        headers=_attachment(device_id, bucket, "csv"),
    )


@router.get(
    "/records.parquet",
    operation_id="download_records_parquet",
    response_class=StreamingResponse,
    responses={
        200: {
            "content": {"application/vnd.apache.parquet": {"schema": _BINARY}},
            "description": "Parquet.",
        },
        **READ_ERRORS,
    },
)
def download_parquet(
    *,
    request: Request,
    device_id: DeviceQuery,
    _who: Annotated[Principal, Depends(viewer)],
    since: Moment = None,
    until: Moment = None,
    bucket: BucketQuery = "second",
    tz: ZoneName = None,
) -> StreamingResponse:
    """Return the records (or aggregates) of the period as one Parquet file, streamed."""
    _require_pyarrow()
    rows, columns = _download_rows(
        request, device_id, since=since, until=until, bucket=bucket, tz=tz
    )
    return StreamingResponse(
        _parquet_chunks(rows, columns, bucket),
        media_type="application/vnd.apache.parquet",
        headers=_attachment(device_id, bucket, "parquet"),
    )


def _download_rows(
    request: Request,
    device_id: str,
    *,
    since: float | None,
    until: float | None,
    bucket: BucketName,
    tz: str | None,
) -> tuple[Iterator[list[dict[str, Any]]], tuple[str, ...]]:
    hub = hub_of(request)
    span = period(since, until)
    if bucket == "second":
        return hub.queries.iter_records(
            device_id, span.since, span.until, DOWNLOAD_CHUNK
        ), RECORD_COLUMNS
    zone_info = zone(request, tz)
    return _aggregate_chunks(hub, device_id, span, bucket, zone_info), AGGREGATE_COLUMNS


def _aggregate_chunks(
    hub: Hub, device_id: str, span: Period, bucket: BucketName, zone_info: tzinfo
) -> Iterator[list[dict[str, Any]]]:
    assert bucket != "second"
    start: float | None = span.since
    while start is not None:
        page = hub.queries.bucket_page(
            device_id, start, span.until, bucket=bucket, tz=zone_info, limit=DOWNLOAD_CHUNK
        )
        if page.items:
            yield page.items
        start = page.next_cursor if isinstance(page.next_cursor, float) else None


def _attachment(device_id: str, bucket: str, suffix: str) -> dict[str, str]:
    name = f"posture-{device_id}-{bucket}.{suffix}"  # the id pattern keeps this a plain name
    return {"Content-Disposition": f'attachment; filename="{name}"'}


def _csv_chunks(chunks: Iterator[list[dict[str, Any]]], columns: tuple[str, ...]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), extrasaction="ignore")
    writer.writeheader()
    for rows in chunks:
        writer.writerows(rows)
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


class _Drain(io.RawIOBase):
    """A write-only file whose bytes are taken out as they are written."""

    def __init__(self) -> None:
        super().__init__()
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        return len(chunk)

    def take(self) -> bytes:
        taken, self._parts = b"".join(self._parts), []
        return taken


def _parquet_chunks(
    chunks: Iterator[list[dict[str, Any]]], columns: tuple[str, ...], bucket: str
) -> Iterator[bytes]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = _parquet_schema(pa, columns, bucket)
    drain = _Drain()
    with pq.ParquetWriter(drain, schema) as writer:
        for rows in chunks:
            writer.write_table(pa.Table.from_pylist(rows, schema=schema))
            yield drain.take()
    yield drain.take()


def _parquet_schema(pa: Any, columns: tuple[str, ...], bucket: str) -> Any:
    if bucket != "second":
        kinds = {"records": pa.int64(), "reminders": pa.int64()}
        return pa.schema([(name, kinds.get(name, pa.float64())) for name in columns])
    kinds = {
        "id": pa.int64(),
        "device_id": pa.string(),
        "person_present": pa.bool_(),
        "state": pa.string(),
        "hunched": pa.bool_(),
        "side": pa.string(),
    }
    return pa.schema([(name, kinds.get(name, pa.float64())) for name in columns])


def _require_pyarrow() -> None:
    import importlib.util

    if importlib.util.find_spec("pyarrow") is None:
        raise DependencyError("pyarrow", "parquet", "Parquet downloads")


@router.get(
    "/posture/summary",
    operation_id="posture_summary",
    response_model=PostureSummary,
    responses=READ_ERRORS,
    tags=["posture"],
)
def posture_summary(
    request: Request,
    device_id: DeviceQuery,
    _who: Annotated[Principal, Depends(viewer)],
    since: Moment = None,
    until: Moment = None,
    tz: ZoneName = None,
) -> PostureSummary:
    """Totals, the longest sitting streak, reminders by reason, and hourly/daily/weekly series."""
    hub = hub_of(request)
    span = period(since, until)
    zone_info = zone(request, tz)
    summary = hub.queries.summary(device_id, span.since, span.until, zone_info)
    return _summary_model(device_id, span, zone_info, summary, hub.queries.break_seconds)


def _summary_model(
    device_id: str, span: Period, zone_info: tzinfo, summary: Summary, break_seconds: float
) -> PostureSummary:
    totals = bucket_row(span.since, span.until, summary.totals, 0)
    sitting = totals["sitting_seconds"]
    streak = summary.longest_streak
    hourly = [
        HourOfDay(
            hour=hour,
            **_without_bounds(
                bucket_row(0, 0, summary.hourly[hour], int(summary.hourly_reminders[hour]))
            ),
        )
        for hour in range(24)
    ]
    return PostureSummary(
        device_id=device_id,
        since=span.since,
        until=span.until,
        tz=zone_label(zone_info),
        break_seconds=break_seconds,
        totals=Totals(
            **{k: v for k, v in _without_bounds(totals).items() if k != "reminders"},
            hunched_share=totals["hunched_sitting_seconds"] / sitting if sitting else None,
            no_data_seconds=(span.until - span.since) - totals["records"],
        ),
        longest_streak=(
            Streak(
                start=streak.start,
                end=streak.end,
                seconds=streak.duration,
                sitting_seconds=streak.sitting_seconds,
            )
            if streak is not None
            else None
        ),
        reminders=Reminders(total=sum(summary.reminders.values()), by_reason=summary.reminders),
        hourly=hourly,
        daily=[Aggregate.model_validate(row) for row in summary.daily.rows()],
        weekly=[Aggregate.model_validate(row) for row in summary.weekly.rows()],
    )


def _without_bounds(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items() if k not in ("start", "end")}


@router.get("/events", operation_id="list_events", response_model=EventPage, responses=READ_ERRORS)
def list_events(
    *,
    request: Request,
    _who: Annotated[Principal, Depends(viewer)],
    device_id: Annotated[
        str | None,
        Query(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$", description="Only this device."),
    ] = None,
    kind: Annotated[
        str | None, Query(pattern=r"^[a-z][a-z0-9_]{0,31}$", description="Only this kind.")
    ] = None,
    since: Moment = None,
    until: Moment = None,
    order: Annotated[
        Literal["asc", "desc"],
        Query(description="asc: oldest first (default); desc: newest first."),
    ] = "asc",
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> EventPage:
    """Events (reminders, state changes, ...) in time order, with their snapshot's URL."""
    hub = hub_of(request)
    span = period(since, until)
    newest_first = order == "desc"
    query = _events_query(device_id, kind, span, keyset_cursor(cursor), newest_first=newest_first)
    query = query.limit(limit + 1)
    rows = hub.database.read("read events", lambda c: [dict(r._mapping) for r in c.execute(query)])
    more = len(rows) > limit
    items = [_stored_event(row) for row in rows[:limit]]
    next_cursor = encode_cursor([items[-1].ts, items[-1].id]) if more else None
    return EventPage(items=items, next_cursor=next_cursor)


def _events_query(
    device_id: str | None,
    kind: str | None,
    span: Period,
    after: tuple[float, int] | None,
    *,
    newest_first: bool = False,
) -> Any:
    """Select events of the period; ``after`` is the last (ts, id) of the previous page."""
    query = sa.select(events).where((events.c.ts >= span.since) & (events.c.ts < span.until))
    if newest_first:
        query = query.order_by(events.c.ts.desc(), events.c.id.desc())
    else:
        query = query.order_by(events.c.ts, events.c.id)
    if device_id is not None:
        query = query.where(events.c.device_id == device_id)
    if kind is not None:
        query = query.where(events.c.kind == kind)
    if after is not None:
        ts, event_id = after
        if newest_first:
            later = (events.c.ts < ts) | ((events.c.ts == ts) & (events.c.id < event_id))
        else:
            later = (events.c.ts > ts) | ((events.c.ts == ts) & (events.c.id > event_id))
        query = query.where(later)
    return query


def _stored_event(row: dict[str, Any]) -> StoredEvent:
    try:
        data = json.loads(row["data"])
    except ValueError:
        data = {"text": row["data"]}
    if not isinstance(data, dict):
        data = {"value": data}
    snapshot = data.get("snapshot")
    url = (
        f"/api/snapshots/{snapshot}.jpg"
        if isinstance(snapshot, str) and re.fullmatch(SHA256_PATH, snapshot)
        else None
    )
    return StoredEvent(
        id=row["id"],
        device_id=row["device_id"],
        app=row["app"],
        kind=row["kind"],
        ts=row["ts"],
        data=data,
        snapshot_url=url,
    )


@router.get(
    "/snapshots/{sha256}.jpg",
    operation_id="get_snapshot",
    response_class=FileResponse,
    responses={
        200: {"content": {"image/jpeg": {"schema": _BINARY}}, "description": "A JPEG."},
        **READ_ERRORS,
    },
    tags=["events"],
)
def get_snapshot(
    request: Request,
    sha256: Annotated[str, Path(pattern=SHA256_PATH, description="The image's sha256.")],
    _who: Annotated[Principal, Depends(viewer)],
) -> FileResponse:
    """Return a snapshot image of an event."""
    path = hub_of(request).snapshots.path(sha256)
    if path is None:
        raise not_found(f"there is no snapshot {sha256}")
    return FileResponse(
        path, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"}
    )


__all__ = ["COUNT_NAMES", "router"]
