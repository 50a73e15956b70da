"""``/api/models``: the registry's versions, promoting one to a stage, downloading a file."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from vigil.errors import ModelError
from vigil.hub.api.errors import ApiError, error_responses, not_found, parse_json
from vigil.hub.api.params import (
    DEFAULT_LIMIT,
    Cursor,
    Limit,
    bad_cursor,
    decode_cursor,
    encode_cursor,
)
from vigil.hub.api.schemas import ModelEntry, ModelPage, PromoteRequest
from vigil.hub.auth import Principal, admin, hub_of, viewer
from vigil.models.registry import NAME_PATTERN, ModelRef, ModelVersion
from vigil.models.spec import TASKS
from vigil.models.store import SUFFIX_PATTERN

router = APIRouter(tags=["models"])

ModelName = Annotated[str, Path(pattern=NAME_PATTERN.pattern, description="The model's name.")]
PROMOTE_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/PromoteRequest"}}},
}
_BINARY = {"type": "string", "format": "binary"}


@router.get(
    "/models",
    operation_id="list_models",
    response_model=ModelPage,
    responses=error_responses(400, 401, 403, 422, 503),
)
def list_models(
    request: Request,
    _who: Annotated[Principal, Depends(viewer)],
    name: Annotated[
        str | None, Query(pattern=NAME_PATTERN.pattern, description="Only this model.")
    ] = None,
    task: Annotated[
        str | None, Query(pattern=f"^({'|'.join(TASKS)})$", description="Only this task.")
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ModelPage:
    """List registered versions: name, version, task, format, size, sha256, tags, stages."""
    start = decode_cursor(cursor) or 0
    if not isinstance(start, int) or isinstance(start, bool) or start < 0:
        raise bad_cursor()
    with hub_of(request).models() as models:
        found = models.versions(name, task=task)
    found.sort(key=lambda v: (v.name, v.version))
    page = found[start : start + limit]
    more = start + limit < len(found)
    return ModelPage(
        items=[model_entry(v) for v in page],
        next_cursor=encode_cursor(start + limit) if more else None,
    )


@router.post(
    "/models/{name}/promote",
    operation_id="promote_model",
    response_model=ModelEntry,
    responses=error_responses(400, 401, 403, 404, 413, 415, 422, 503),
    openapi_extra={"requestBody": PROMOTE_BODY},
)
async def promote_model(
    request: Request, name: ModelName, _who: Annotated[Principal, Depends(admin)]
) -> ModelEntry:
    """Point a stage (e.g. production) of the model at one of its versions."""
    body = parse_json(await request.body(), request.headers.get("content-type", ""), PromoteRequest)
    hub = hub_of(request)

    def promote() -> ModelVersion:
        with hub.models() as models:
            try:
                return models.promote(ModelRef(name, body.version), body.stage)
            except ModelError as exc:
                raise not_found(str(exc)) from None

    return model_entry(await run_in_threadpool(promote))


@router.get(
    "/models/{name}/{version}/download",
    operation_id="download_model",
    response_class=FileResponse,
    responses={
        200: {
            "content": {"application/octet-stream": {"schema": _BINARY}},
            "description": "The file.",
        },
        **error_responses(401, 403, 404, 422, 503),
    },
)
def download_model(
    request: Request,
    name: ModelName,
    version: Annotated[int, Path(ge=1, le=2**31 - 1, description="The version.")],
    _who: Annotated[Principal, Depends(viewer)],
) -> FileResponse:
    """Return the model file of one version."""
    with hub_of(request).models() as models:
        try:
            found = models.get(ModelRef(name, version))
        except ModelError as exc:
            raise not_found(str(exc)) from None
    if found.path is None:
        raise ApiError(503, "storage_unavailable", "the model file is not on this machine")
    suffix = found.path.suffix if SUFFIX_PATTERN.match(found.path.suffix) else ""
    return FileResponse(
        found.path,
        media_type="application/octet-stream",
        filename=f"{name}-{version}{suffix}",
    )


def model_entry(version: ModelVersion) -> ModelEntry:
    """Return a registered version as the API lists it."""
    return ModelEntry(
        name=version.name,
        version=version.version,
        task=version.task,
        format=version.format,
        size=version.size,
        sha256=version.sha256,
        tags=dict(version.tags),
        metrics=dict(version.metrics),
        stages=list(version.aliases),
        latest=version.latest,
        created=version.created.timestamp(),
        description=version.description,
    )
