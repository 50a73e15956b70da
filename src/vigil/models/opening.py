"""Opening a model by reference: registry name, version, alias, file path, or ``mediapipe``.

One function, :func:`open_model`, turns what a user wrote into a runnable task model, the same
way for apps, ``vigil predict`` and ``vigil serve-model``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vigil.errors import ConfigError
from vigil.models.spec import ModelSpec, Task
from vigil.tasks.base import TaskModel


@dataclass
class OpenedModel:
    """A model ready to run, and which registered version it is (None for a plain file)."""

    model: TaskModel
    name: str
    version: int | None = None
    sha256: str | None = None


def open_model(
    ref: str,
    *,
    spec: ModelSpec | Path | None = None,
    task: Task | None = None,
    overrides: dict[str, Any] | None = None,
    threads: int = 2,
) -> OpenedModel:
    """Resolve ``ref``, settle its spec and load it with the right runtime.

    Args:
        ref: ``name`` (latest), ``name:3``, ``name@production``, a model file, or ``mediapipe``.
        spec: A spec (or spec YAML file) that replaces the registered one.
        task: The task the model must do; for a plain file without a spec, the task to run.
        overrides: Spec fields to replace, e.g. ``{"score_threshold": 0.5}``.
        threads: Threads the runtime may use.

    Raises:
        ModelError: unknown reference, missing file, or a model that cannot be loaded.
        ConfigError: an invalid spec file, or a registered model of another task than ``task``.
    """
    from vigil.tasks import load_model

    resolved = _resolve(ref)
    settled = _settle_spec(
        ref, resolved.spec if spec is None else _read_spec(spec), task, overrides or {}
    )
    model = load_model(resolved.path, settled, threads=threads)
    if settled is None and overrides:  # the task came from the file itself: override after loading
        model.spec = _with(model.spec, overrides)
    return OpenedModel(
        model=model,
        name=resolved.name or Path(resolved.path).name,
        version=resolved.version,
        sha256=resolved.sha256,
    )


def _resolve(ref: str) -> Any:
    from vigil.models.api import ResolvedModel, resolve
    from vigil.tasks import MEDIAPIPE

    if ref == MEDIAPIPE and not Path(ref).exists():
        return ResolvedModel(path=Path(MEDIAPIPE), spec=None, name=MEDIAPIPE)
    return resolve(ref)


def _read_spec(spec: ModelSpec | Path) -> ModelSpec:
    from vigil.config import load_config

    return spec if isinstance(spec, ModelSpec) else load_config(ModelSpec, spec)


def _settle_spec(
    ref: str, spec: ModelSpec | None, task: Task | None, overrides: dict[str, Any]
) -> ModelSpec | None:
    """Return the fields to load with; the loader puts them over the sidecar and the file."""
    if spec is not None and task is not None and spec.task != task:
        raise ConfigError(f"{ref} is a {spec.task} model, not a {task} model")
    if spec is None:
        return ModelSpec(task=task, **overrides) if task is not None else None
    return _with(spec, overrides) if overrides else spec


def _with(spec: ModelSpec, overrides: dict[str, Any]) -> ModelSpec:
    """Return ``spec`` with ``overrides`` set; set fields stay set, defaults stay defaults."""
    return ModelSpec.model_validate(spec.model_dump(exclude_unset=True) | overrides)
