"""Settings of the inference service and the typed shapes of what it receives and answers.

The response models give the OpenAPI schema that client generators read; the request body of
``POST /predict`` is described by hand because it comes in three content types.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from vigil.config import ConfigModel
from vigil.models.spec import ModelSpec, Task
from vigil.serve.decode import FORMATS
from vigil.tasks.base import TaskModel

MEGABYTE = 1024 * 1024

IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/webp", "image/bmp", "image/gif")
"""The raw-body media types named in the schema (any ``image/*`` is read the same way)."""


class ServeSettings(ConfigModel):
    """How ``vigil serve-model`` listens and what it accepts."""

    host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Address to listen on; 0.0.0.0 accepts connections from other machines.",
    )
    port: int = Field(8080, ge=1, le=65535, description="TCP port to listen on.")
    max_body_mb: float = Field(
        10.0, gt=0, le=1024, description="Largest request body in MiB; longer ones get 413."
    )
    max_pixels: int = Field(
        40_000_000,
        ge=1,
        le=1_000_000_000,
        description="Largest image (width x height) decoded; larger ones get 413.",
    )
    threads: int = Field(2, ge=1, le=64, description="Threads the model's runtime may use.")
    warmup: bool = Field(
        True, description="Run the model once at start-up so the first request is not slower."
    )

    @property
    def max_body_bytes(self) -> int:
        """The body limit in bytes."""
        return int(self.max_body_mb * MEGABYTE)


class ModelInfo(BaseModel):
    """Who the served model is, as the registry knows it."""

    name: str = Field(description="Registry name, or the file name for a plain file.")
    version: int | None = Field(None, description="Registry version; null for a plain file.")
    sha256: str | None = Field(None, description="Checksum of the model file.")


class ModelRef(BaseModel):
    """The model that answered a request."""

    name: str = Field(description="Registry name, or the file name for a plain file.")
    version: int | None = Field(description="Registry version; null for a plain file.")
    task: Task = Field(description="classify, detect, pose or embed.")


class TimingMs(BaseModel):
    """Where the time of one request went, in milliseconds, measured inside the service."""

    read: float = Field(description="Receiving and unpacking the body.")
    decode: float = Field(description="Decoding the image.")
    inference: float = Field(description="The model's predict, including waiting for it.")
    total: float = Field(description="From the start of handling to the response body.")


class ClassResult(BaseModel):
    """One class of a classifier's answer."""

    label: str = Field(description="Class name; the class id as text where no name is known.")
    class_id: int = Field(description="Output index of the class.")
    score: float = Field(description="Score, usually a probability.")


class ClassifyResults(BaseModel):
    """A classifier's best classes, best first."""

    task: Literal["classify"]
    classes: list[ClassResult]


class DetectionResult(BaseModel):
    """One detected object; trackers may add fields (e.g. ``tracker_id``)."""

    model_config = ConfigDict(extra="allow")

    label: str = Field(description="Class name; the class id as text where no name is known.")
    class_id: int = Field(description="Class index as the model outputs it.")
    score: float = Field(description="Confidence in [0, 1].")
    box: list[float] = Field(
        min_length=4, max_length=4, description="x1, y1, x2, y2 in image pixels."
    )


class DetectResults(BaseModel):
    """The objects a detector found."""

    task: Literal["detect"]
    detections: list[DetectionResult]


class KeypointResult(BaseModel):
    """One joint of a person."""

    name: str = Field(description="Joint name, e.g. left_shoulder.")
    x: float = Field(description="Image pixels from the left.")
    y: float = Field(description="Image pixels from the top.")
    confidence: float = Field(description="Confidence in [0, 1].")


class PersonResult(BaseModel):
    """One person's pose."""

    score: float = Field(description="Person score in [0, 1].")
    box: list[float] = Field(
        min_length=4, max_length=4, description="x1, y1, x2, y2 in image pixels."
    )
    keypoints: list[KeypointResult]


class PoseResults(BaseModel):
    """The people a pose model found."""

    model_config = ConfigDict(populate_by_name=True)

    task: Literal["pose"]
    keypoint_schema: str = Field(
        alias="schema", description="Keypoint layout, e.g. coco-17 or mediapipe-33."
    )
    people: list[PersonResult]


class EmbedResults(BaseModel):
    """An embedder's feature vectors."""

    task: Literal["embed"]
    dim: int = Field(description="Length of each vector.")
    embeddings: list[list[float]]


Results = Annotated[
    ClassifyResults | DetectResults | PoseResults | EmbedResults, Field(discriminator="task")
]
"""The ``results`` of a prediction, as ``prediction.to_dict()`` gives them, one shape per task."""


class PredictResponse(BaseModel):
    """The answer of ``POST /predict``."""

    model: ModelRef
    results: Results = Field(
        description="The prediction, the same as ``prediction.to_dict()`` in Python and "
        "``vigil predict --json``."
    )
    timing_ms: TimingMs


class ErrorResponse(BaseModel):
    """The body of every error response."""

    error: str = Field(description="A short machine-readable reason, e.g. not_an_image.")
    message: str = Field(description="What went wrong and what to do about it.")


class HealthResponse(BaseModel):
    """The answer of ``GET /health``."""

    status: Literal["ok"] = Field(description="ok while the service answers.")
    model_loaded: bool = Field(description="Whether the model is loaded and ready.")
    model: str = Field(description="The served model's name.")
    task: Task = Field(description="The served model's task.")


class TensorInfo(BaseModel):
    """One input or output tensor of the model file."""

    name: str
    shape: list[int | None] = Field(description="Dimensions; null where dynamic.")
    dtype: str = Field(description="Element type, e.g. uint8 or float32.")


class RequestInfo(BaseModel):
    """What ``POST /predict`` accepts."""

    content_types: list[str] = Field(description="Body content types.")
    formats: list[str] = Field(description="Image formats.")
    max_body_bytes: int = Field(description="Largest body.")
    max_pixels: int = Field(description="Largest image, width x height.")


class MetadataResponse(BaseModel):
    """The answer of ``GET /metadata``."""

    name: str
    version: int | None
    sha256: str | None
    task: Task
    spec: ModelSpec = Field(description="How the model is run: pre-processing, decoder, labels.")
    inputs: list[TensorInfo] = Field(description="The model file's input tensors, where known.")
    outputs: list[TensorInfo] = Field(description="The model file's output tensors, where known.")
    request: RequestInfo

    @classmethod
    def describe(
        cls, model: TaskModel, info: ModelInfo, settings: ServeSettings
    ) -> MetadataResponse:
        """Describe a served model."""
        return cls(
            name=info.name,
            version=info.version,
            sha256=info.sha256,
            task=model.spec.task,
            spec=model.spec,
            inputs=tensor_infos(model, "inputs"),
            outputs=tensor_infos(model, "outputs"),
            request=RequestInfo(
                content_types=[
                    *IMAGE_MEDIA_TYPES,
                    "application/octet-stream",
                    "multipart/form-data",
                    "application/json",
                ],
                formats=list(FORMATS),
                max_body_bytes=settings.max_body_bytes,
                max_pixels=settings.max_pixels,
            ),
        )


def tensor_infos(model: TaskModel, which: Literal["inputs", "outputs"]) -> list[TensorInfo]:
    """Return the tensors a model exposes as ``inputs``/``outputs`` (runtime specs), if any."""
    tensors = getattr(model, which, None)
    if not isinstance(tensors, list | tuple):
        return []
    return [
        TensorInfo(
            name=str(getattr(tensor, "name", "")),
            shape=list(getattr(tensor, "shape", ())),
            dtype=str(getattr(tensor, "dtype", "")),
        )
        for tensor in tensors
    ]


_BINARY = {"type": "string", "format": "binary"}

PREDICT_REQUEST_BODY: dict[str, Any] = {
    "required": True,
    "description": "One image, in any of these forms.",
    "content": {
        **{media: {"schema": _BINARY} for media in IMAGE_MEDIA_TYPES},
        "application/octet-stream": {"schema": _BINARY},
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"image": {**_BINARY, "description": "The image file."}},
                "required": ["image"],
            },
            "encoding": {"image": {"contentType": ", ".join(IMAGE_MEDIA_TYPES)}},
        },
        "application/json": {
            "schema": {
                "type": "object",
                "properties": {
                    "image": {
                        "type": "string",
                        "format": "byte",
                        "contentEncoding": "base64",
                        "description": "The encoded image file as base64 text.",
                    }
                },
                "required": ["image"],
                "additionalProperties": False,
            }
        },
    },
}
"""The OpenAPI request body of ``POST /predict``: raw image, multipart form, or JSON."""


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _error("Empty body, malformed JSON or multipart, or bad base64."),
    413: _error("The body or the image is larger than the service takes."),
    415: _error("A content type the service does not read."),
    422: _error("Not an image, a truncated or damaged one, or a missing field."),
    500: _error("A bug in the service or the model; the service logs it."),
}
"""The error responses of ``POST /predict``, all with an :class:`ErrorResponse` body."""
