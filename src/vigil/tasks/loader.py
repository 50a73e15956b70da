"""Load any model file as a task model, with a spec merged from the file, a sidecar and the caller.

The spec a model runs with is built in layers, later ones winning field by field:

1. the defaults of its decoder (e.g. YOLO: letterbox with grey 114, pixels / 255);
2. what the file carries (:func:`vigil.models.inspect.inspect_model`: labels, normalisation,
   Ultralytics metadata, a task guessed from the output shapes);
3. a sidecar ``<file>.vigil.yaml`` next to the file, holding ModelSpec fields;
4. the fields the caller set explicitly in ``spec``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from vigil.config.base import describe_validation_error
from vigil.errors import ConfigError, ModelError
from vigil.models.inspect import InspectedModel, guess_decoder, inspect_tensor_model
from vigil.models.spec import DECODERS, ModelSpec, Task
from vigil.runtimes import TensorModel, load_tensor_model
from vigil.tasks import classify, detect, embed, pose
from vigil.tasks.base import FileTaskModel, TaskModel

MEDIAPIPE = "mediapipe"
"""The model name that loads MediaPipe BlazePose, which ships inside the ``mediapipe`` wheel."""

SIDECAR_SUFFIX = ".vigil.yaml"

_TASK_MODELS: dict[Task, type[FileTaskModel[Any]]] = {
    "classify": classify.ClassifyModel,
    "detect": detect.DetectModel,
    "pose": pose.PoseModel,
    "embed": embed.EmbedModel,
}
_DECODER_DEFAULTS: dict[str, dict[str, Any]] = {
    **classify.DECODER_DEFAULTS,
    **detect.DECODER_DEFAULTS,
    **pose.DECODER_DEFAULTS,
    **embed.DECODER_DEFAULTS,
}


def load_model(
    path: str | Path,
    spec: ModelSpec | None = None,
    *,
    threads: int = 2,
    providers: list[str] | None = None,
) -> TaskModel:
    """Load a model file and return the task model its spec calls for.

    Args:
        path: A ``.onnx`` file (ONNX Runtime), a ``.tflite`` file (LiteRT), or ``mediapipe``
            for MediaPipe BlazePose.
        spec: What the model does and how to run it; the fields set here win over the sidecar
            ``<path>.vigil.yaml`` and over what the file carries. None: all from the file.
        threads: Inference threads.
        providers: ONNX Runtime execution providers in order of preference (``cuda``,
            ``openvino``, ``tensorrt``, ``cpu``); CPU is always the last resort.

    Returns:
        A :class:`~vigil.tasks.ClassifyModel`, :class:`~vigil.tasks.DetectModel`,
        :class:`~vigil.tasks.PoseModel` or :class:`~vigil.tasks.EmbedModel` (or MediaPipe's
        pose model); a :class:`~vigil.tasks.probe.ProbeModel` when the spec names a
        ``backbone`` (the file is a head that reads the backbone's vectors).

    Raises:
        ModelError: the file is missing or not a model, its task cannot be told (pass a spec
            with the task), or its outputs do not fit the spec.
        ConfigError: the sidecar or the merged spec is invalid.
        DependencyError: the runtime the file needs is not installed.
    """
    if str(path) == MEDIAPIPE or (spec is not None and spec.decoder == MEDIAPIPE):
        return load_mediapipe(spec)
    tensor_model = load_tensor_model(path, threads=threads, providers=providers)
    try:
        sidecar = read_sidecar(sidecar_path(path))
        resolved = resolve_spec(inspect_tensor_model(tensor_model), sidecar, spec)
        if resolved.backbone is not None:
            from vigil.tasks.probe import load_probe

            return load_probe(tensor_model, resolved, threads=threads, providers=providers)
        return build_task_model(tensor_model, resolved)
    except BaseException:
        tensor_model.close()
        raise


def load_mediapipe(spec: ModelSpec | None = None) -> TaskModel:
    """Load MediaPipe BlazePose for unrelated images (no tracking between calls).

    The spec's ``score_threshold``, when set, is the person detection threshold (default 0.5).
    """
    from vigil.runtimes.mediapipe import MediaPipePose

    defaults = _DECODER_DEFAULTS[MEDIAPIPE]
    threshold = defaults["score_threshold"]
    if spec is not None and "score_threshold" in spec.model_fields_set:
        threshold = spec.score_threshold
    return MediaPipePose(video=False, min_detection_confidence=threshold)


def build_task_model(tensor_model: TensorModel, spec: ModelSpec) -> FileTaskModel[Any]:
    """Wrap a loaded tensor model in the task model of a resolved spec.

    Raises:
        ModelError: the model's inputs or outputs do not fit the spec.
    """
    if spec.decoder == MEDIAPIPE:
        raise ModelError(
            f"{tensor_model.path} is a model file; the mediapipe decoder only runs MediaPipe's "
            "own pose model (load it by the name 'mediapipe')"
        )
    return _TASK_MODELS[spec.task](tensor_model, spec)


def sidecar_path(path: str | Path) -> Path:
    """Return where the sidecar spec of a model file lives: ``<file>.vigil.yaml``."""
    return Path(f"{path}{SIDECAR_SUFFIX}")


@dataclass(frozen=True)
class Sidecar:
    """A sidecar spec file: its fields and its YAML tree (for line numbers in errors)."""

    path: Path
    data: dict[str, Any] = field(default_factory=dict)
    root: yaml.Node | None = None


def read_sidecar(path: Path) -> Sidecar | None:
    """Read a sidecar spec (a YAML mapping of ModelSpec fields); None if there is none.

    Raises:
        ConfigError: the file cannot be read or is not a YAML mapping.
    """
    if not path.is_file():
        return None
    try:
        text = path.read_text(encoding="utf-8")
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read model spec {path}: {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{line}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if data is None:
        return Sidecar(path)
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a model spec must be a mapping of fields (task, labels, ...)")
    return Sidecar(path, data, root)


def resolve_spec(
    inspected: InspectedModel, sidecar: Sidecar | None = None, spec: ModelSpec | None = None
) -> ModelSpec:
    """Merge decoder defaults, the file's hints, a sidecar and explicit spec fields.

    Raises:
        ModelError: no task is known, or no decoder of the task fits the outputs.
        ConfigError: the merged spec is invalid (naming the sidecar's line where it is wrong).
    """
    explicit = spec.model_dump(exclude_unset=True) if spec else {}
    given = _merge(sidecar.data if sidecar else {}, explicit)
    merged = _merge(inspected.spec_hints(), given)
    task = merged.get("task")
    if task is None:
        raise ModelError(
            f"cannot tell what {inspected.path} does from its outputs "
            f"{_shapes(inspected)}: pass --task (one of {', '.join(DECODERS)}) or a spec "
            "with its task"
        )
    decoder = _decoder(inspected, merged, task)
    final = _merge(_DECODER_DEFAULTS.get(decoder, {}), merged, {"decoder": decoder})
    try:
        return ModelSpec.model_validate(final)
    except ValidationError as exc:
        field_name = exc.errors()[0]["loc"][0] if exc.errors()[0]["loc"] else None
        if sidecar is not None and field_name in sidecar.data and field_name not in explicit:
            message = describe_validation_error(exc, ModelSpec, sidecar.root, str(sidecar.path))
        else:
            message = describe_validation_error(
                exc, ModelSpec, None, f"the spec of {inspected.path}"
            )
        raise ConfigError(message) from None


def _decoder(inspected: InspectedModel, merged: dict[str, Any], task: Any) -> str:
    decoder = merged.get("decoder", "auto")
    if decoder != "auto" or task not in DECODERS:
        return str(decoder)  # an unknown task or decoder is reported by the spec's validation
    labels = merged.get("labels")
    classes = len(labels) + int(merged.get("label_offset", 0)) if labels else None
    found = guess_decoder(task, inspected.outputs, classes)
    if found is None:
        raise ModelError(
            f"the outputs {_shapes(inspected)} of {inspected.path} fit no {task} decoder "
            f"({', '.join(DECODERS[task])}): check the task, or set the spec's decoder"
        )
    return found


def _merge(*layers: dict[str, Any]) -> dict[str, Any]:
    """Merge mappings left to right; nested mappings merge field by field."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = _merge(merged[key], value)
            else:
                merged[key] = value
    return merged


def _shapes(inspected: InspectedModel) -> str:
    return ", ".join(
        "(" + ", ".join("?" if d is None else str(d) for d in o.shape) + ")"
        for o in inspected.outputs
    )
