"""Model metadata: everything needed to run a model file, so nothing is hard-coded per file name.

A :class:`ModelSpec` travels with a model: stored in the registry with each version, written
next to a file as ``<file>.vigil.yaml``, or read from what the file itself carries (input
shape and type, quantisation, TFLite's embedded label files, ONNX metadata properties).
Values given explicitly win over what is read from the file.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from vigil.config import ConfigModel

Task = Literal["classify", "detect", "pose", "embed"]
TASKS: tuple[Task, ...] = ("classify", "detect", "pose", "embed")

DECODERS: dict[Task, tuple[str, ...]] = {
    "classify": ("scores",),
    "detect": ("ssd", "yolo", "boxes-scores"),
    "pose": ("movenet", "movenet-multipose", "yolo-pose", "rtmpose", "mediapipe"),
    "embed": ("vector",),
}
"""The output layouts each task understands; ``auto`` picks one from the output shapes."""


class Preprocess(ConfigModel):
    """How a frame becomes the model's input tensor."""

    resize: Literal["stretch", "letterbox", "crop"] = Field(
        "stretch",
        description="stretch: scale to the input size ignoring aspect; letterbox: keep aspect and "
        "pad; crop: keep aspect and cut the centre.",
    )
    pad_value: int = Field(0, ge=0, le=255, description="Grey level of letterbox padding.")
    interpolation: Literal["area", "linear"] = Field(
        "area",
        description="area: average pixels when shrinking (no aliasing; best for large frames), "
        "bilinear when enlarging; linear: always bilinear, as TensorFlow Lite's task library "
        "resizes (reproduces its published outputs).",
    )
    color: Literal["rgb", "bgr"] = Field("rgb", description="Channel order the model expects.")
    layout: Literal["auto", "nchw", "nhwc"] = Field(
        "auto", description="Tensor layout; auto reads it from the input shape."
    )
    mean: tuple[float, float, float] | None = Field(
        None,
        description="Per-channel value subtracted from 0..255 pixels. None with std None: feed "
        "raw pixels (the usual contract of quantised models, whose input quantisation maps them).",
    )
    std: tuple[float, float, float] | None = Field(
        None, description="Per-channel divisor after subtracting mean, e.g. 127.5 or 255."
    )
    input_size: tuple[int, int] | None = Field(
        None, description="(width, height) for models whose input size is dynamic."
    )

    @model_validator(mode="after")
    def _mean_with_std(self) -> Self:
        if (self.mean is None) != (self.std is None):
            raise ValueError("give preprocess mean and std together")
        if self.std is not None and any(s == 0 for s in self.std):
            raise ValueError("preprocess std must not be 0")
        return self


class ModelSpec(ConfigModel):
    """What a model does and how to run it."""

    task: Task = Field(description="classify, detect, pose or embed.")
    decoder: str = Field("auto", description="Output layout; auto reads it from the outputs.")
    preprocess: Preprocess = Field(default_factory=Preprocess, description="Input preparation.")
    labels: list[str] | None = Field(
        None, description="Class names in output order (classify, detect)."
    )
    label_offset: int = Field(
        0,
        ge=0,
        le=10,
        description="Outputs before the first label (1 when output 0 is background).",
    )
    keypoint_schema: Literal["coco-17", "mediapipe-33"] | None = Field(
        None, description="Keypoint layout of a pose model."
    )
    score_threshold: float = Field(0.25, ge=0, le=1, description="Drop results scored below this.")
    iou_threshold: float = Field(0.45, gt=0, le=1, description="Non-maximum suppression overlap.")
    class_agnostic_nms: bool = Field(
        False,
        description="Suppress overlapping boxes whatever their class; by default only boxes of "
        "the same class suppress each other.",
    )
    max_results: int = Field(100, ge=1, le=10_000, description="Most detections or people kept.")
    top_k: int = Field(5, ge=1, le=1000, description="Classes reported by a classifier.")
    softmax: Literal["auto", "yes", "no"] = Field(
        "auto",
        description="Apply softmax to classifier outputs; auto when they are not probabilities.",
    )
    backbone: str | None = Field(
        None,
        min_length=1,
        max_length=300,
        description="For a classifier head that takes features instead of images: the embed "
        "model it runs on, a registered version such as 'embedder:2' (or a model file). Images "
        "go through the backbone, with the backbone's input preparation, then through this "
        "file. None: the model takes images itself.",
    )

    @model_validator(mode="after")
    def _decoder_fits_task(self) -> Self:
        if self.decoder != "auto" and self.decoder not in DECODERS[self.task]:
            raise ValueError(
                f"decoder {self.decoder!r} does not fit task {self.task!r}; "
                f"use auto or one of {', '.join(DECODERS[self.task])}"
            )
        if self.backbone is not None and self.task != "classify":
            raise ValueError(
                f"only a classify head runs on a backbone; a {self.task} model takes images"
            )
        return self
