"""Register, find, promote and remove models: the Python API behind ``vigil models``.

In the spirit of Azure ML's ``Model.register(...)`` / ``Model.list(...)``, on the user's own
machine::

    import vigil.models

    version = vigil.models.register("pose.onnx", "desk-pose", task="pose", tags={"site": "desk"})
    vigil.models.promote("desk-pose:1", "production")
    model = vigil.models.resolve("desk-pose@production")   # path, spec, name, version, sha256

The registry (names, versions, tags, aliases) is a database: ``VIGIL_REGISTRY_URL`` or SQLite in
``VIGIL_HOME/vigil.db``. The files are in a content-addressed store: ``VIGIL_MODEL_STORE`` (a
folder or ``s3://bucket/prefix``) or ``VIGIL_HOME/models``. Every function also takes
``registry=`` and ``store=`` to choose others.

Removing versions deletes the files no other version uses, at once. ``gc`` (``vigil models
gc``) sweeps what an interrupted run can leave behind: files no version uses that are older
than an hour, and stale temporary files.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from pydantic import ValidationError

from vigil.config import describe_validation_error, load_config
from vigil.errors import ConfigError, ModelError
from vigil.models.registry import (
    REGISTRY_ENV,
    ModelRef,
    ModelVersion,
    NewVersion,
    Registry,
    check_alias,
    check_json_object,
    check_name,
    check_tags,
    parse_ref,
)
from vigil.models.spec import TASKS, ModelSpec
from vigil.models.store import SUFFIX_PATTERN, Blob, BlobStore, open_store

if TYPE_CHECKING:
    from vigil.models.hub import PullResult

FORMATS = {
    ".onnx": "onnx",
    ".tflite": "tflite",
    ".pt": "pytorch",
    ".pth": "pytorch",
    ".torchscript": "pytorch",
    ".task": "mediapipe",
}
"""Model formats by file suffix; other suffixes are recorded as they are."""

SIDECAR_SUFFIX = ".vigil.yaml"
GC_GRACE_SECONDS = 3600.0
SpecLike = ModelSpec | str | Path
LabelsLike = Sequence[str] | str | Path
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True, slots=True)
class ResolvedModel:
    """A model ready to load: a local file and, for registered models, how to run it.

    Attributes:
        path: The model file on this machine.
        spec: How to run it; None for a plain file path (the task layer reads the file).
        name: The registered name, or None for a plain file path.
        version: The registered version, or None for a plain file path.
        sha256: The file's sha256, or None for a plain file path.
    """

    path: Path
    spec: ModelSpec | None
    name: str | None = None
    version: int | None = None
    sha256: str | None = None

    @property
    def ref(self) -> str:
        """``name:version`` for a registered model, else the path."""
        return f"{self.name}:{self.version}" if self.name else str(self.path)


@dataclass(frozen=True, slots=True)
class Removal:
    """What :meth:`Models.remove` removed."""

    versions: list[ModelVersion]
    freed: list[str] = field(default_factory=list)
    """The sha256 of each file deleted because no version uses it any more."""


@dataclass(frozen=True, slots=True)
class GcReport:
    """What :meth:`Models.gc` found (and removed unless it was a dry run)."""

    orphans: list[Blob]
    temporaries: int
    dry_run: bool

    @property
    def bytes(self) -> int:
        """The size of the orphaned files."""
        return sum(blob.size for blob in self.orphans)


def registry_url(url: str | Path | None = None) -> str:
    """Return the registry's database URL: ``url``, ``VIGIL_REGISTRY_URL``, or the default.

    A plain path means an SQLite file there.
    """
    chosen = str(url) if url is not None else os.environ.get(REGISTRY_ENV, "")
    if not chosen:
        from vigil.paths import default_database_url

        return default_database_url()
    if "://" not in chosen:
        return f"sqlite:///{Path(chosen).expanduser().resolve()}"
    return chosen


def read_labels(labels: LabelsLike) -> list[str]:
    """Return labels given as a list, or read from a text file with one label per line.

    Raises:
        ModelError: the file cannot be read or holds no labels.
    """
    if not isinstance(labels, str | Path):
        return [str(label) for label in labels]
    path = Path(labels).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelError(f"labels file not found: {path}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelError(f"cannot read labels file {path}: {exc}") from None
    lines = [line.strip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise ModelError(f"labels file {path} is empty: write one label per line")
    return lines


def model_format(path: Path) -> str:
    """Return the format of a model file from its suffix: ``onnx``, ``tflite``, ``pytorch``..."""
    suffix = path.suffix.lower()
    return FORMATS.get(suffix, suffix.lstrip(".") or "unknown")


def build_spec(
    source: Path,
    *,
    task: str | None = None,
    spec: SpecLike | None = None,
    labels: LabelsLike | None = None,
    sidecar: bool = True,
) -> ModelSpec:
    """Put together the spec of a model file from a spec, a task and labels.

    The spec is ``spec`` (a ModelSpec or a YAML file), else (with ``sidecar``) a
    ``<file>.vigil.yaml`` next to the file when there is one, else ``ModelSpec(task=task)``.
    ``labels`` replace the spec's.

    Raises:
        ConfigError: a spec file or the task is invalid.
        ModelError: there is neither a spec nor a task, or they disagree.
    """
    chosen = spec
    beside = source.with_name(source.name + SIDECAR_SUFFIX)
    if chosen is None and sidecar and beside.is_file():
        chosen = beside
    if isinstance(chosen, str | Path):
        chosen = load_config(ModelSpec, chosen)
    if chosen is None:
        chosen = _spec_for_task(task)
    elif task is not None and task != chosen.task:
        raise ModelError(f"the spec says task {chosen.task!r} but {task!r} was given")
    if labels is not None:
        chosen = _validated_spec(
            {**chosen.model_dump(exclude_unset=True), "labels": read_labels(labels)}
        )
    return chosen


def _spec_for_task(task: str | None) -> ModelSpec:
    if task is None:
        raise ModelError(
            f"say what the model does: give a task ({', '.join(TASKS)}) or a spec file"
        )
    if task not in TASKS:
        raise ConfigError(f"task must be one of {', '.join(TASKS)} (got {task!r})")
    return _validated_spec({"task": task})


def _validated_spec(data: dict[str, Any]) -> ModelSpec:
    try:
        return ModelSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, ModelSpec, None, "model spec")) from None


def _model_file(path: str | Path) -> Path:
    source = Path(path).expanduser()
    if not source.exists():
        raise ModelError(f"model file not found: {source}")
    if not source.is_file():
        raise ModelError(f"{source} is not a file")
    if source.stat().st_size == 0:
        raise ModelError(f"model file {source} is empty")
    return source


def _suffix(file_name: str) -> str:
    """Return the suffix runtimes choose a backend by (``.onnx``), or "" when there is none."""
    suffix = Path(file_name).suffix.lower()
    return suffix if SUFFIX_PATTERN.match(suffix) else ""


def _registry_ref(ref: str) -> ModelRef:
    parsed = parse_ref(ref)
    if parsed is None:
        raise ModelError(f"{ref!r} is not a model reference: use NAME, NAME:VERSION or NAME@STAGE")
    return parsed


class Models:
    """The registry and the file store together; every ``vigil models`` verb goes through it.

    Args:
        registry: Database URL or SQLite file of the registry; default ``VIGIL_REGISTRY_URL``
            or ``VIGIL_HOME/vigil.db``.
        store: Folder, ``s3://bucket/prefix`` or a store object; default ``VIGIL_MODEL_STORE``
            or ``VIGIL_HOME/models``.

    Nothing is opened until a verb needs it; :meth:`close` (or ``with``) releases it.
    """

    def __init__(
        self, registry: str | Path | None = None, store: str | Path | BlobStore | None = None
    ) -> None:
        self._registry_arg = registry
        self._store_arg = store
        self._registry: Registry | None = None
        self._store: BlobStore | None = store if isinstance(store, BlobStore) else None

    @property
    def registry(self) -> Registry:
        """The registry database (opened on first use)."""
        if self._registry is None:
            self._registry = Registry(registry_url(self._registry_arg))
        return self._registry

    @property
    def store(self) -> BlobStore:
        """The file store."""
        if self._store is None:
            location = self._store_arg if not isinstance(self._store_arg, BlobStore) else None
            self._store = open_store(location)
        return self._store

    def close(self) -> None:
        """Release the database connections."""
        if self._registry is not None:
            self._registry.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def register(
        self,
        path: str | Path,
        name: str,
        *,
        task: str | None = None,
        spec: SpecLike | None = None,
        labels: LabelsLike | None = None,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
        metrics: Mapping[str, Any] | None = None,
        lineage: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Store the file at ``path`` and register it as the next version of ``name``.

        Args:
            path: The model file.
            name: The model's name (letters, digits, ``-``, ``_``).
            task: classify, detect, pose or embed, when no spec is given.
            spec: A :class:`ModelSpec` or a YAML file of one.
            labels: Class names, or a text file with one per line (they go into the spec).
            tags: Free-form ``key: value`` labels of this version.
            description: What the model is (kept per name; a new one replaces the old).
            metrics: Evaluation results.
            lineage: What it came from: ``dataset``, ``parent``, ``command``, ``source``, ...

        Raises:
            ModelError: the file, name, tags, task or spec are not usable.
        """
        source = _model_file(path)
        check_name(name)
        check_tags(tags)
        check_json_object(metrics, "metrics")
        check_json_object(lineage, "lineage")
        full_spec = build_spec(source, task=task, spec=spec, labels=labels)
        blob = self.store.put(source)
        new = NewVersion(
            blob=blob,
            file_name=source.name,
            format=model_format(source),
            spec=full_spec,
            tags=tags,
            metrics=metrics,
            lineage=lineage,
            description=description,
        )
        return self.add_blob(name, new)

    def add_blob(self, name: str, new: NewVersion) -> ModelVersion:
        """Register a file already in the store as the next version of ``name``."""
        version = self.registry.add_version(name, new)
        return replace(version, path=self._cached(version))

    def versions(
        self,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        task: str | None = None,
    ) -> list[ModelVersion]:
        """Return registered versions, filtered by name, tags (all must match) and task.

        ``path`` is set where the file is on this machine (always, for a local store).
        """
        if task is not None and task not in TASKS:
            raise ConfigError(f"task must be one of {', '.join(TASKS)} (got {task!r})")
        found = self.registry.versions(name, tags=tags, task=task)
        return [replace(v, path=self._cached(v)) for v in found]

    def get(self, ref: str | ModelRef) -> ModelVersion:
        """Return the version ``ref`` names (``name``, ``name:3``, ``name@production``).

        The file is fetched from a remote store when needed, so ``path`` is always set.

        Raises:
            ModelError: the reference is unknown (with a suggestion) or malformed.
        """
        parsed = ref if isinstance(ref, ModelRef) else _registry_ref(ref)
        version = self.registry.find(parsed)
        return replace(version, path=self._fetched(version))

    def resolve(self, ref: str | Path) -> ResolvedModel:
        """Turn a model file path or a registry reference into a local file and its spec.

        An existing file wins over a registered name. Nothing is opened for a file path.

        Raises:
            ModelError: there is no such file and no such registered model.
        """
        text = str(ref)
        candidate = Path(text).expanduser()
        if candidate.is_file():
            return ResolvedModel(path=candidate.resolve(), spec=None)
        parsed = parse_ref(text)
        if parsed is None or candidate.exists():
            what = "is not a file" if candidate.exists() else "not found"
            raise ModelError(
                f"model {what}: {text} (give a model file, or a registered NAME, "
                "NAME:VERSION or NAME@STAGE)"
            )
        version = self.registry.find(parsed)
        return ResolvedModel(
            path=self._fetched(version),
            spec=version.spec,
            name=version.name,
            version=version.version,
            sha256=version.sha256,
        )

    def promote(self, ref: str | ModelRef, stage: str) -> ModelVersion:
        """Point the stage alias ``stage`` (e.g. ``production``) of the model at ``ref``.

        Raises:
            ModelError: the stage name is not valid or the reference is unknown.
        """
        check_alias(stage)
        parsed = ref if isinstance(ref, ModelRef) else _registry_ref(ref)
        version = self.registry.set_alias(parsed, stage)
        return replace(version, path=self._cached(version))

    def remove(self, ref: str | ModelRef, *, force: bool = False) -> Removal:
        """Remove a version (``name:3``, ``name@stage``) or a whole model (``name``).

        Files no remaining version uses are deleted from the store.

        Args:
            ref: What to remove.
            force: Also remove versions that a stage alias points at (and those aliases).

        Raises:
            ModelError: the reference is unknown, or an alias points at a version and not
                ``force``.
        """
        parsed = ref if isinstance(ref, ModelRef) else _registry_ref(ref)
        removed = self.registry.remove(parsed, force=force)
        freed = []
        for sha256 in dict.fromkeys(v.sha256 for v in removed):
            if not self.registry.is_referenced(sha256):
                self.store.remove(sha256)
                freed.append(sha256)
        return Removal(versions=removed, freed=freed)

    def gc(self, *, dry_run: bool = False, grace_seconds: float = GC_GRACE_SECONDS) -> GcReport:
        """Delete files no version uses and stale temporary files, older than ``grace_seconds``.

        The grace period keeps files that a registration running right now has stored but not
        yet recorded.
        """
        referenced = self.registry.referenced_hashes()
        cutoff = time.time() - grace_seconds
        orphans = [
            blob
            for blob in self.store.blobs()
            if blob.sha256 not in referenced and blob.modified <= cutoff
        ]
        temporaries = 0
        if not dry_run:
            for blob in orphans:
                self.store.remove(blob.sha256)
            temporaries = self.store.remove_stale_temporaries(grace_seconds)
        return GcReport(orphans=orphans, temporaries=temporaries, dry_run=dry_run)

    def _fetched(self, version: ModelVersion) -> Path:
        """Return the version's file on this machine, named with its format's suffix."""
        return self.store.path(version.sha256, suffix=_suffix(version.file_name))

    def _cached(self, version: ModelVersion) -> Path | None:
        return self.store.cached_path(version.sha256, _suffix(version.file_name))

    def pull(
        self,
        source: str,
        *,
        name: str | None = None,
        sha256: str | None = None,
        task: str | None = None,
        spec: SpecLike | None = None,
        catalogue: str | Path | None = None,
        progress: Progress | None = None,
    ) -> PullResult:
        """Download, verify and register a catalogue model or an ``hf://`` file.

        See :func:`vigil.models.hub.pull` for the arguments.
        """
        from vigil.models.hub import pull

        return pull(
            self,
            source,
            name=name,
            sha256=sha256,
            task=task,
            spec=spec,
            catalogue=catalogue,
            progress=progress,
        )


def register(
    path: str | Path,
    name: str,
    *,
    task: str | None = None,
    spec: SpecLike | None = None,
    labels: LabelsLike | None = None,
    tags: Mapping[str, str] | None = None,
    description: str | None = None,
    metrics: Mapping[str, Any] | None = None,
    lineage: Mapping[str, Any] | None = None,
    registry: str | Path | None = None,
    store: str | Path | None = None,
) -> ModelVersion:
    """Store a model file and register it as the next version of ``name``.

    See :meth:`Models.register` for the arguments.
    """
    with Models(registry, store) as models:
        return models.register(
            path,
            name,
            task=task,
            spec=spec,
            labels=labels,
            tags=tags,
            description=description,
            metrics=metrics,
            lineage=lineage,
        )


def list_versions(
    name: str | None = None,
    tags: Mapping[str, str] | None = None,
    task: str | None = None,
    *,
    registry: str | Path | None = None,
    store: str | Path | None = None,
) -> list[ModelVersion]:
    """Return registered versions, filtered by name, tags and task (``vigil.models.list``)."""
    with Models(registry, store) as models:
        return models.versions(name, tags=tags, task=task)


def get(
    ref: str, *, registry: str | Path | None = None, store: str | Path | None = None
) -> ModelVersion:
    """Return the version ``ref`` names, with its file on this machine."""
    with Models(registry, store) as models:
        return models.get(ref)


def resolve(
    ref: str | Path, *, registry: str | Path | None = None, store: str | Path | None = None
) -> ResolvedModel:
    """Turn a model file path or ``name``, ``name:3``, ``name@stage`` into a file and its spec."""
    with Models(registry, store) as models:
        return models.resolve(ref)


def promote(
    ref: str, stage: str, *, registry: str | Path | None = None, store: str | Path | None = None
) -> ModelVersion:
    """Point the stage alias ``stage`` of a model at the version ``ref`` names."""
    with Models(registry, store) as models:
        return models.promote(ref, stage)


def remove(
    ref: str,
    *,
    force: bool = False,
    registry: str | Path | None = None,
    store: str | Path | None = None,
) -> Removal:
    """Remove a version or a whole model; files no other version uses are deleted."""
    with Models(registry, store) as models:
        return models.remove(ref, force=force)


def pull(
    source: str,
    *,
    name: str | None = None,
    sha256: str | None = None,
    task: str | None = None,
    spec: SpecLike | None = None,
    catalogue: str | Path | None = None,
    progress: Progress | None = None,
    registry: str | Path | None = None,
    store: str | Path | None = None,
) -> ModelVersion:
    """Download, verify and register a catalogue model or an ``hf://`` file; return the version."""
    with Models(registry, store) as models:
        return models.pull(
            source,
            name=name,
            sha256=sha256,
            task=task,
            spec=spec,
            catalogue=catalogue,
            progress=progress,
        ).version


__all__ = [
    "GcReport",
    "Models",
    "Removal",
    "ResolvedModel",
    "build_spec",
    "get",
    "list_versions",
    "model_format",
    "promote",
    "pull",
    "read_labels",
    "register",
    "registry_url",
    "remove",
    "resolve",
]
