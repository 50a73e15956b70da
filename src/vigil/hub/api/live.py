"""``POST /api/ingest`` and the live streams under ``/api/streams``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from vigil.hub.api.devices import device_row
from vigil.hub.api.errors import ApiError, error_responses, not_found, read_json, validated
from vigil.hub.api.params import DevicePath
from vigil.hub.api.schemas import FrameAccepted, IngestRequest, IngestResult
from vigil.hub.auth import Principal, device_writer, hub_of, viewer
from vigil.hub.snapshots import is_jpeg
from vigil.hub.streams import BOUNDARY, multipart_part

router = APIRouter(tags=["ingest"])

_BINARY = {"type": "string", "format": "binary"}
INGEST_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/IngestRequest"}}},
}
FRAME_BODY = {
    "required": True,
    "description": "One JPEG image.",
    "content": {"image/jpeg": {"schema": _BINARY}},
}
JPEG_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/jpeg": {"schema": _BINARY}}, "description": "A JPEG."}
}
MJPEG_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {f"multipart/x-mixed-replace; boundary={BOUNDARY}": {"schema": _BINARY}},
        "description": "An endless stream of JPEG parts.",
    }
}


@router.post(
    "/ingest",
    operation_id="ingest",
    response_model=IngestResult,
    responses=error_responses(400, 401, 403, 413, 415, 422, 503),
    openapi_extra={"requestBody": INGEST_BODY},
)
async def ingest(
    request: Request, principal: Annotated[Principal, Depends(device_writer)]
) -> IngestResult:
    """Store a batch of a device's events; a retried batch (same message ids) stores nothing."""
    hub = hub_of(request)
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    limit = hub.settings.max_ingest_events
    batch = await run_in_threadpool(_parse_batch, body, content_type, limit)
    principal.require_device(batch.device_id)
    outcome = await run_in_threadpool(hub.ingest.store, batch)
    return IngestResult(accepted=outcome.accepted, duplicates=outcome.duplicates)


def _parse_batch(body: bytes, content_type: str, max_events: int) -> IngestRequest:
    document = read_json(body, content_type)
    events = document.get("events") if isinstance(document, dict) else None
    if isinstance(events, list) and len(events) > max_events:
        raise ApiError(
            422,
            "too_many_events",
            f"events: {len(events):,} events in one batch; send at most {max_events:,}",
        )
    return validated(document, IngestRequest)


@router.post(
    "/streams/{device_id}",
    operation_id="post_frame",
    response_model=FrameAccepted,
    responses=error_responses(400, 401, 403, 413, 415, 422, 429),
    openapi_extra={"requestBody": FRAME_BODY},
    tags=["streams"],
)
async def post_frame(
    request: Request,
    device_id: DevicePath,
    principal: Annotated[Principal, Depends(device_writer)],
) -> FrameAccepted:
    """Make one JPEG the device's live frame (only the newest is kept)."""
    principal.require_device(device_id)
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "image/jpeg":
        raise ApiError(
            415,
            "unsupported_media_type",
            f"send the frame as Content-Type: image/jpeg (got {media_type or 'none'})",
        )
    jpeg = await request.body()
    if not is_jpeg(jpeg):
        raise ApiError(422, "not_a_jpeg", "the body is not a JPEG image")
    streams = hub_of(request).streams
    await streams.publish(device_id, jpeg)
    return FrameAccepted(device_id=device_id, bytes=len(jpeg), viewers=streams.viewers(device_id))


@router.get(
    "/streams/{device_id}/latest.jpg",
    operation_id="latest_frame",
    response_class=Response,
    responses={**JPEG_ANSWER, **error_responses(401, 403, 404, 422)},
    tags=["streams"],
)
def latest_frame(
    request: Request, device_id: DevicePath, _who: Annotated[Principal, Depends(viewer)]
) -> Response:
    """Return the device's latest live frame (404 when none arrived in the last 5 s)."""
    frame = hub_of(request).streams.latest(device_id)
    if frame is None:
        raise not_found(f"device {device_id!r} has sent no live frame in the last seconds")
    return Response(frame.jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})


@router.get(
    "/streams/{device_id}/mjpeg",
    operation_id="mjpeg_stream",
    response_class=StreamingResponse,
    responses={**MJPEG_ANSWER, **error_responses(401, 403, 404, 422, 429, 503)},
    tags=["streams"],
)
async def mjpeg_stream(
    request: Request, device_id: DevicePath, _who: Annotated[Principal, Depends(viewer)]
) -> StreamingResponse:
    """Return the device's live frames as they arrive (``multipart/x-mixed-replace``)."""
    hub = hub_of(request)
    if hub.streams.latest(device_id) is None:
        await run_in_threadpool(device_row, hub, device_id)  # 404 for a device nobody knows
    return StreamingResponse(
        _parts(hub.streams.frames(device_id)),
        media_type=f"multipart/x-mixed-replace; boundary={BOUNDARY}",
        headers={"Cache-Control": "no-store"},
    )


async def _parts(frames: AsyncIterator[Any]) -> AsyncIterator[bytes]:
    async for frame in frames:
        yield multipart_part(frame)
