"""Read what a model file carries, so a model runs without a hand-written spec where possible.

:func:`inspect_model` reports a file's inputs and outputs (names, shapes, types, quantisation),
the labels it embeds (TFLite files append a zip archive with ``labels.txt`` or ``labelmap.txt``;
Ultralytics ONNX exports keep ``names`` in their metadata), its metadata (ONNX
``metadata_props``; TFLite Metadata's name and input normalisation) and a task and output
layout (decoder) guessed from the output shapes. The ``*_outputs`` and ``*_layout`` functions
here are the one place that knows each decoder's output shapes.
"""

from __future__ import annotations

import ast
import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.errors import ModelError
from vigil.models.spec import Task
from vigil.runtimes import TensorModel, TensorSpec, load_tensor_model

BACKGROUND_PLACEHOLDER = "???"
"""First line of TensorFlow Object Detection label maps: the background class, never output."""

_ULTRALYTICS_TASKS: dict[str, Task] = {"detect": "detect", "pose": "pose", "classify": "classify"}
_YOLO_MIN_ANCHORS_PER_CHANNEL = 4
"""A guessed YOLO output has many more candidate boxes than values per box."""
_MULTIPOSE_MAX_PEOPLE = 10
_POSE_ROW = 56  # 4 box values + score + 17 keypoints x 3


@dataclass(frozen=True)
class InspectedModel:
    """What a model file says about itself.

    Attributes:
        path: The file.
        runtime: ``onnx`` or ``tflite``.
        inputs: Input tensors (name, shape with None for dynamic dimensions, dtype, quantisation).
        outputs: Output tensors.
        labels: Class names the file embeds, in output order; None if it embeds none.
        labels_from: Where the labels were found, e.g. ``labels.txt inside the file``.
        metadata: ONNX ``metadata_props``; TFLite metadata entry names (as keys, empty values).
        name: The model's own name (TFLite Metadata), if any.
        mean: Input normalisation the file declares (TFLite Metadata), per channel.
        std: The matching divisor.
        task: The task guessed from the metadata and output shapes; None if unclear.
        decoder: The output layout of that task that the outputs fit; None if none does.
    """

    path: str
    runtime: str
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    labels: tuple[str, ...] | None = None
    labels_from: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    name: str | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    task: Task | None = None
    decoder: str | None = None

    @property
    def ultralytics(self) -> bool:
        """Whether the file is an Ultralytics export (its metadata has names and stride)."""
        author = self.metadata.get("author", "")
        return author.startswith("Ultralytics") or {"names", "stride"} <= self.metadata.keys()

    def spec_hints(self) -> dict[str, Any]:
        """Return the spec values the file implies (values given explicitly win over these)."""
        hints: dict[str, Any] = {}
        if self.task is not None:
            hints["task"] = self.task
        if self.labels:
            hints["labels"] = list(self.labels)
        preprocess = self._preprocess_hints()
        if preprocess:
            hints["preprocess"] = preprocess
        return hints

    def _preprocess_hints(self) -> dict[str, Any]:
        hints: dict[str, Any] = {}
        image = self.inputs[0] if len(self.inputs) == 1 else None
        if image is None:
            return hints
        if self.mean is not None and self.std is not None and image.dtype.kind not in "iu":
            hints |= {"mean": self.mean, "std": self.std}  # quantised inputs take raw pixels
        if self.ultralytics:
            hints |= _ultralytics_preprocess(self.task)
            if not _fixed_size(image):
                hints |= _ultralytics_size(self.metadata)
        return hints

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form for ``vigil models inspect`` and the service."""
        return {
            "path": self.path,
            "runtime": self.runtime,
            "name": self.name,
            "task": self.task,
            "decoder": self.decoder,
            "inputs": [tensor_dict(t) for t in self.inputs],
            "outputs": [tensor_dict(t) for t in self.outputs],
            "labels": list(self.labels) if self.labels is not None else None,
            "labels_from": self.labels_from,
            "normalization": _normalization(self.mean, self.std),
            "metadata": dict(self.metadata),
        }


def _normalization(
    mean: tuple[float, ...] | None, std: tuple[float, ...] | None
) -> dict[str, list[float]] | None:
    if mean is None or std is None:
        return None
    return {"mean": list(mean), "std": list(std)}


def tensor_dict(tensor: TensorSpec) -> dict[str, Any]:
    """One tensor as JSON: name, shape (None for dynamic), dtype, quantisation."""
    quantization = (
        {"scale": tensor.scale, "zero_point": tensor.zero_point} if tensor.quantized else None
    )
    return {
        "name": tensor.name,
        "shape": list(tensor.shape),
        "dtype": str(tensor.dtype),
        "quantization": quantization,
    }


def inspect_model(path: str | Path) -> InspectedModel:
    """Load ``path`` with its runtime and report what it carries.

    Raises:
        ModelError: the file is missing or no runtime can load it.
    """
    model = load_tensor_model(path, threads=1)
    try:
        return inspect_tensor_model(model)
    finally:
        model.close()


def inspect_tensor_model(model: TensorModel) -> InspectedModel:
    """Report what a loaded model's file carries, reading the file for its extras."""
    path = Path(model.path)
    if path.suffix.lower() == ".tflite":
        return _with_guesses(_inspect_tflite(model, path))
    from vigil.runtimes.onnx import OnnxModel

    metadata = model.metadata if isinstance(model, OnnxModel) else {}
    labels = _names_from_metadata(metadata)
    return _with_guesses(
        InspectedModel(
            path=str(path),
            runtime="onnx",
            inputs=tuple(model.inputs),
            outputs=tuple(model.outputs),
            labels=labels,
            labels_from="ONNX metadata 'names'" if labels is not None else None,
            metadata=metadata,
        )
    )


def _inspect_tflite(model: TensorModel, path: Path) -> InspectedModel:
    from vigil.runtimes.tflite_metadata import read_tflite_metadata

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelError(f"cannot read model file {path}: {exc.strerror}") from None
    metadata = read_tflite_metadata(data)
    label_file, labels = _embedded_labels(data, metadata.label_files)
    return InspectedModel(
        path=str(path),
        runtime="tflite",
        inputs=tuple(model.inputs),
        outputs=tuple(model.outputs),
        labels=labels,
        labels_from=f"{label_file} inside the file" if label_file else None,
        metadata=dict.fromkeys(metadata.entries, ""),
        name=metadata.name,
        mean=_per_channel(metadata.mean),
        std=_per_channel(metadata.std),
    )


def _with_guesses(found: InspectedModel) -> InspectedModel:
    count = len(found.labels) if found.labels else None
    task = guess_task(found.outputs, found.metadata, found.labels is not None, found.name)
    decoder = guess_decoder(task, found.outputs, count) if task else None
    return InspectedModel(**{**found.__dict__, "task": task, "decoder": decoder})


# Labels


def parse_labels(text: str) -> list[str]:
    """Class names from a label file: one per line, trailing blank lines ignored.

    A first line ``???`` (the background entry of TensorFlow Object Detection label maps, which
    detectors do not output) is dropped so that class id ``i`` is line ``i``.
    """
    lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if lines and lines[0] == BACKGROUND_PLACEHOLDER:
        lines = lines[1:]
    return lines


def read_labels(path: str | Path) -> list[str]:
    """Read a label file (UTF-8, one class name per line, in output order).

    Raises:
        ModelError: the file cannot be read.
    """
    try:
        return parse_labels(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read label file {path}: {exc}") from None


def _embedded_labels(
    data: bytes, named: tuple[str, ...]
) -> tuple[str | None, tuple[str, ...] | None]:
    """Return the label file in the zip archive appended to a TFLite model, if there is one."""
    if not zipfile.is_zipfile(io.BytesIO(data)):
        return None, None
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.namelist()
            candidates = [n for n in named if n in members] or [
                n for n in members if "label" in n.lower() and n.lower().endswith(".txt")
            ]
            if not candidates:
                return None, None
            text = archive.read(candidates[0]).decode("utf-8")
    except (zipfile.BadZipFile, UnicodeDecodeError, KeyError):
        return None, None
    return candidates[0], tuple(parse_labels(text))


def _names_from_metadata(metadata: dict[str, str]) -> tuple[str, ...] | None:
    """Ultralytics writes ``names`` as a Python dict literal ``{0: 'person', ...}``."""
    text = metadata.get("names")
    if not text:
        return None
    try:
        names = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if isinstance(names, dict) and all(isinstance(k, int) for k in names):
        return tuple(str(names.get(i, i)) for i in range(max(names) + 1)) if names else None
    if isinstance(names, list | tuple):
        return tuple(str(n) for n in names)
    return None


# Ultralytics exports


def _ultralytics_preprocess(task: Task | None) -> dict[str, Any]:
    resize = "crop" if task == "classify" else "letterbox"
    return {"resize": resize, "pad_value": 114, "mean": (0.0, 0.0, 0.0), "std": (255.0,) * 3}


def _ultralytics_size(metadata: dict[str, str]) -> dict[str, Any]:
    try:
        size = ast.literal_eval(metadata.get("imgsz", ""))
    except (ValueError, SyntaxError):
        return {}
    if isinstance(size, list | tuple) and len(size) == 2 and all(isinstance(s, int) for s in size):
        return {"input_size": (size[1], size[0])}  # Ultralytics writes (height, width)
    return {}


def _fixed_size(tensor: TensorSpec) -> bool:
    return len(tensor.shape) == 4 and all(d is not None for d in tensor.shape[1:])


def _per_channel(values: tuple[float, ...] | None) -> tuple[float, float, float] | None:
    if not values:
        return None
    if len(values) == 1:
        return (values[0],) * 3
    if len(values) == 3:
        return (values[0], values[1], values[2])
    return None


# Output layouts


def guess_task(
    outputs: tuple[TensorSpec, ...] | list[TensorSpec],
    metadata: dict[str, str],
    has_labels: bool,
    name: str | None = None,
) -> Task | None:
    """Guess the task from the metadata, else from the output shapes; None if unclear.

    A single (1, N) output is a classifier when the file names its classes and an embedder when
    its name says so; otherwise it could be either and the task must be given.
    """
    declared = _ULTRALYTICS_TASKS.get(metadata.get("task", ""))
    if declared is not None:
        return declared
    for task in ("pose", "detect"):
        if guess_decoder(task, outputs) is not None:
            return task
    if len(outputs) != 1 or score_count(outputs[0]) is None:
        return None
    own_name = (name or "").lower()
    if has_labels or "classif" in own_name:
        return "classify"
    return "embed" if "embed" in own_name else None


def guess_decoder(
    task: Task, outputs: tuple[TensorSpec, ...] | list[TensorSpec], class_count: int | None = None
) -> str | None:
    """Return the output layout of ``task`` that ``outputs`` fit; None if none does.

    Args:
        task: The model's task.
        outputs: Its outputs.
        class_count: Number of classes when known (labels plus label offset).
    """
    if task == "classify":
        return "scores" if len(outputs) == 1 and score_count(outputs[0]) is not None else None
    if task == "embed":
        return "vector" if len(outputs) == 1 else None
    if task == "pose":
        return pose_decoder([o.shape for o in outputs])
    return _detect_decoder(outputs, class_count)


def _detect_decoder(
    outputs: tuple[TensorSpec, ...] | list[TensorSpec], class_count: int | None
) -> str | None:
    if ssd_outputs(outputs) is not None:
        return "ssd"
    if boxes_scores_outputs(outputs) is not None:
        return "boxes-scores"
    if len(outputs) == 1 and yolo_layout(outputs[0].shape, class_count, guess=True) is not None:
        return "yolo"
    return None


def score_count(output: TensorSpec) -> int | None:
    """Count the classes of a scores output, (1, ..., 1, C): 0 if C is dynamic, None if not one."""
    shape = output.shape
    if len(shape) < 2 or any(d not in (1, None) for d in shape[:-1]):
        return None
    return shape[-1] or 0


@dataclass(frozen=True)
class SsdOutputs:
    """Positions of the outputs of TFLite_Detection_PostProcess."""

    boxes: int
    classes: int
    scores: int
    count: int


def ssd_outputs(outputs: tuple[TensorSpec, ...] | list[TensorSpec]) -> SsdOutputs | None:
    """Find boxes (1, N, 4), classes (1, N), scores (1, N) and count (1,) among four outputs.

    Classes and scores come in that order unless their names say otherwise.
    """
    if len(outputs) != 4:
        return None
    boxes = [i for i, o in enumerate(outputs) if len(o.shape) == 3 and o.shape[2] == 4]
    count = [i for i, o in enumerate(outputs) if len(o.shape) <= 1]
    pairs = [i for i, o in enumerate(outputs) if len(o.shape) == 2]
    if len(boxes) != 1 or len(count) != 1 or len(pairs) != 2:
        return None
    classes, scores = pairs
    if "score" in outputs[classes].name.lower() or "class" in outputs[scores].name.lower():
        classes, scores = scores, classes
    return SsdOutputs(boxes[0], classes, scores, count[0])


def boxes_scores_outputs(
    outputs: tuple[TensorSpec, ...] | list[TensorSpec],
) -> tuple[int, int] | None:
    """Find ``dets`` (1, N, 5: x1, y1, x2, y2, score) and ``labels`` (1, N); their positions."""
    if len(outputs) != 2:
        return None
    dets = [i for i, o in enumerate(outputs) if len(o.shape) == 3 and o.shape[2] == 5]
    labels = [i for i, o in enumerate(outputs) if len(o.shape) == 2]
    if len(dets) != 1 or len(labels) != 1:
        return None
    return dets[0], labels[0]


@dataclass(frozen=True)
class YoloLayout:
    """How a YOLO output lays out its candidate boxes.

    Attributes:
        channels_first: (1, values, boxes) as Ultralytics v8/v11 export; else (1, boxes, values).
        objectness: Each box has an objectness score before its class scores (YOLOv5 style).
    """

    channels_first: bool
    objectness: bool


def yolo_layout(
    shape: tuple[int | None, ...], class_count: int | None = None, guess: bool = False
) -> YoloLayout | None:
    """Return the YOLO layout of an output of ``shape``; None if it is not one.

    With a known ``class_count``: (1, 4 + classes, N) is v8; (1, N, 5 + classes) is v5 with
    objectness and (1, N, 4 + classes) v8 transposed. Without, the shorter axis holds the values:
    first (v8, no objectness) or last (v5, objectness). Dynamic dimensions count as long.

    Args:
        shape: The output shape, (1, a, b).
        class_count: Classes, when the labels say.
        guess: Only accept outputs with many more boxes than values (when no spec says yolo).
    """
    if len(shape) != 3 or shape[0] not in (1, None):
        return None
    a, b = shape[1], shape[2]
    if class_count:
        return _yolo_layout_by_count(a, b, class_count)
    long = 1 << 30
    values, boxes = min(a or long, b or long), max(a or long, b or long)
    if values < 5 or values in (long, boxes):
        return None
    if guess and boxes < values * _YOLO_MIN_ANCHORS_PER_CHANNEL:
        return None
    channels_first = (a or long) < (b or long)
    return YoloLayout(channels_first=channels_first, objectness=not channels_first)


def _yolo_layout_by_count(a: int | None, b: int | None, classes: int) -> YoloLayout | None:
    """Channels first: v8 (4 + classes); channels last: v5 (5 + classes) or v8 transposed."""
    if a == classes + 4:
        return YoloLayout(channels_first=True, objectness=False)
    if b == classes + 5:
        return YoloLayout(channels_first=False, objectness=True)
    if b == classes + 4:
        return YoloLayout(channels_first=False, objectness=False)
    return None


def pose_decoder(shapes: list[tuple[int | None, ...]]) -> str | None:
    """Return the keypoint layout that outputs of these shapes fit; None if none does.

    movenet (1, 1, 17, 3); movenet-multipose (1, up to 10, 56); yolo-pose (1, 56, N) or
    (1, N, 56); rtmpose two SimCC outputs (1, K, W * ratio) and (1, K, H * ratio).
    """
    if len(shapes) == 1:
        shape = shapes[0]
        if len(shape) == 4 and shape[1:] == (1, 17, 3):
            return "movenet"
        if (
            len(shape) == 3
            and shape[2] == _POSE_ROW
            and shape[1] is not None
            and shape[1] <= _MULTIPOSE_MAX_PEOPLE
        ):
            return "movenet-multipose"
        if len(shape) == 3 and _POSE_ROW in shape[1:]:
            return "yolo-pose"
    if len(shapes) == 2 and all(len(s) == 3 and s[1] == shapes[0][1] for s in shapes):
        return "rtmpose"
    return None
