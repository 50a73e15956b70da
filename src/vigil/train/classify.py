"""``train_classifier``: from labelled photos to a registered, evaluated, deployable classifier.

The steps, each kept in the run folder (``VIGIL_HOME/runs/<name>/<time>`` or ``out``)::

    data      load a folder / CSV / Label Studio export, check it, split it reproducibly
              (manifest.json), or use an existing manifest after checking its files
    train     probe: backbone vectors (cached) + class-weighted logistic regression -> head.onnx
              finetune: the PyTorch trainer of vigil.train.finetune -> model.onnx (+ int8)
    decide    two classes and a target: the threshold that reaches it on validation
    evaluate  the test split: metrics, curves, thresholds, mistakes
    report    report.html, one self-contained file
    register  the next version of ``name``, with metrics and lineage

The test split is used once, to evaluate; C, thresholds and the int8 choice are made on the
validation split.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

import numpy as np
from pydantic import Field, ValidationError, model_validator

from vigil.config import ConfigModel, describe_validation_error
from vigil.errors import ConfigError, ModelError, SourceError
from vigil.models.spec import ModelSpec
from vigil.train.report import DataSummary, Decision, QuantizationCheck

if TYPE_CHECKING:
    from vigil.data.manifest import Manifest, ManifestItem
    from vigil.models.api import Models
    from vigil.models.registry import ModelVersion
    from vigil.train.evaluate import Evaluation, OperatingPoint, Target
    from vigil.train.probe import Backbone, ProbeFit

log = logging.getLogger(__name__)

Method = Literal["probe", "finetune"]
Progress = Callable[[str, int, int], None]
"""Called with (what, done, total) while images are checked or embedded."""

MANIFEST_FILE = "manifest.json"
REPORT_FILE = "report.html"
RESULT_FILE = "result.json"
HEAD_FILE = "head.onnx"
INT8_FILE = "model.int8.onnx"
CALIBRATION_IMAGES = 64
"""Training images an int8 model is calibrated on."""
TIMED_IMAGES = 32
"""Validation images the fp32 and int8 models are timed on."""
EXPORT_TOLERANCE = 1e-4
"""Largest difference allowed between the exported head's scores and the fitted ones."""
_FINETUNE_ONLY = ("epochs", "weights", "from_scratch", "resume", "int8", "image_size")


class TrainOptions(ConfigModel):
    """What ``vigil train classify`` does; every option of the command is a field here."""

    data: Path = Field(
        description="A folder of class folders, a CSV of path,label, a Label Studio JSON "
        "export, or a manifest written by 'vigil data split' (its split is used as it is)."
    )
    name: str = Field(
        min_length=1, max_length=64, description="Register the model under this name."
    )
    method: Method = Field(
        "probe",
        description="probe: a linear classifier on a pretrained embed model's vectors (fast, "
        "CPU); finetune: train a network end to end (PyTorch).",
    )
    backbone: str | None = Field(
        None,
        min_length=1,
        max_length=4096,
        description="probe: the embed model (a registered name or version, or a .onnx/.tflite "
        "file, registered on first use); finetune: the network architecture.",
    )
    epochs: int | None = Field(None, ge=1, le=10_000, description="finetune: training epochs.")
    seed: int = Field(0, ge=0, le=2**31 - 1, description="Seed of the training.")
    split_seed: int = Field(
        0, ge=0, le=2**63 - 1, description="Seed of the train/validation/test split."
    )
    target_recall: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Two classes: choose the score threshold on the positive class that keeps "
        "at least this share of its validation images (e.g. 0.99 to miss 1 in 100 animals).",
    )
    target_precision: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Two classes: choose the lowest threshold whose validation precision "
        "reaches this.",
    )
    positive: str | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Two classes: the class thresholds and curves are about. None: the rarer "
        "class in training (usually the one looked for).",
    )
    out: Path | None = Field(
        None, description="Run folder. None: VIGIL_HOME/runs/<name>/<date-time>."
    )
    int8: bool = Field(
        False, description="finetune: also make an int8 model; keep it when it loses little."
    )
    int8_max_loss: float = Field(
        0.01,
        gt=0,
        le=1,
        description="Keep the int8 model only when it loses less validation accuracy than this.",
    )
    resume: bool = Field(
        False,
        description="finetune: continue the interrupted run in --out (default: the latest run "
        "of the name).",
    )
    weights: Path | None = Field(
        None, description="finetune: pretrained weights file of the backbone."
    )
    from_scratch: bool = Field(
        False, description="finetune: start from random weights instead of pretrained ones."
    )
    image_size: int | None = Field(
        None, ge=32, le=1024, description="finetune: side of the network's square input."
    )
    workers: int = Field(
        2,
        ge=0,
        le=64,
        description="Processes that check images and feed fine-tuning; 0: all in this process.",
    )
    command: str | None = Field(
        None, max_length=10_000, description="The command line, kept in the model's lineage."
    )

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        if self.target_recall is not None and self.target_precision is not None:
            raise ValueError("give a target recall or a target precision, not both")
        return self

    def target(self) -> tuple[Target, float] | None:
        """Return the target to choose a threshold for, if any."""
        if self.target_recall is not None:
            return ("recall", self.target_recall)
        if self.target_precision is not None:
            return ("precision", self.target_precision)
        return None


@dataclass(frozen=True)
class PreparedData:
    """The split the run trains and tests on."""

    manifest: Manifest
    manifest_path: Path
    summary: DataSummary

    def items(self, split: str) -> tuple[ManifestItem, ...]:
        """Return the images of one split."""
        return self.manifest.split(split)

    def labels(self, split: str) -> np.ndarray:
        """Return the class index of each image of one split."""
        index = {label: i for i, label in enumerate(self.manifest.classes)}
        return np.array([index[item.label] for item in self.items(split)], np.int64)

    def images(self, split: str) -> list[tuple[Path, str]]:
        """Return (file, sha256) of each image of one split."""
        return [(self.manifest.path_of(i), i.sha256) for i in self.items(split)]


@dataclass
class Trained:
    """What a method hands back: the model to register and its scores on held-out images."""

    model_file: Path
    spec: ModelSpec
    validation_scores: np.ndarray
    test_scores: np.ndarray
    backbone: str | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    int8: QuantizationCheck | None = None
    interrupted: bool = False
    build_in_threshold: Callable[[int, float], Path] | None = None
    """Rewrite the model so that its top class decides at a threshold (probe heads)."""


@dataclass(frozen=True)
class TrainResult:
    """A finished (or interrupted) training run.

    Attributes:
        name: The model's name.
        method: ``probe`` or ``finetune``.
        run_dir: The run folder.
        manifest_path: The split manifest kept with the run.
        model_file: The trained model file in the run folder.
        report_path: The HTML report (None when interrupted).
        version: The registered version (None when interrupted).
        evaluation: The results on the test split (None when interrupted).
        data: What it was trained and tested on.
        backbone: The backbone version a probe runs on.
        decision: The threshold it decides by, when a target was given.
        int8: The int8 comparison, when asked for.
        facts: Method details (C chosen, vectors computed, ...).
        notes: What a reader should know (also in the report).
        interrupted: Whether fine-tuning was stopped before it finished.
    """

    name: str
    method: Method
    run_dir: Path
    manifest_path: Path
    model_file: Path
    report_path: Path | None
    version: ModelVersion | None
    evaluation: Evaluation | None
    data: DataSummary
    backbone: str | None = None
    decision: Decision | None = None
    int8: QuantizationCheck | None = None
    facts: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    interrupted: bool = False

    def lines(self) -> list[str]:
        """Return what the command prints: the numbers and where everything is."""
        if self.interrupted or self.evaluation is None:
            return [
                f"interrupted: {self.name} was not registered; continue with --resume",
                f"run folder: {self.run_dir}",
            ]
        numbers = self.evaluation.lines()
        lines = [
            f"trained {self.name} ({self._how()}) on {self._train_count()} images",
            f"test: {numbers[0]}",
            *numbers[1:],
            *self._threshold_lines(),
            *(self.int8.lines() if self.int8 is not None else []),
            *(f"note: {note}" for note in self.notes),
            f"run folder: {self.run_dir}",
            f"manifest: {self.manifest_path}",
            f"model file: {self.model_file}",
            f"report: {self.report_path}",
        ]
        if self.version is not None:
            lines.append(f"registered {self.version.ref}: vigil predict {self.name} photo.jpg")
        return lines

    def to_dict(self) -> dict[str, Any]:
        """Return the result as JSON-ready values (``result.json`` in the run folder)."""
        return {
            "name": self.name,
            "method": self.method,
            "version": self.version.ref if self.version is not None else None,
            "run_dir": str(self.run_dir),
            "manifest": str(self.manifest_path),
            "model_file": str(self.model_file),
            "report": str(self.report_path) if self.report_path else None,
            "backbone": self.backbone,
            "evaluation": self.evaluation.to_dict() if self.evaluation is not None else None,
            "decision": self.decision.to_dict() if self.decision is not None else None,
            "int8": self.int8.to_dict() if self.int8 is not None else None,
            "data": self.data.to_dict(),
            "facts": self.facts,
            "notes": list(self.notes),
            "interrupted": self.interrupted,
        }

    def _how(self) -> str:
        return f"{self.method} on {self.backbone}" if self.backbone else self.method

    def _train_count(self) -> int:
        return sum(self.data.counts.get("train", {}).values())

    def _threshold_lines(self) -> list[str]:
        from vigil.train.report import point_line

        decision = self.decision
        if decision is None or self.evaluation is None:
            return []
        return [
            f"threshold: {point_line(point, decision.positive)}"
            for point in self.evaluation.operating_points
            if (point.target, point.goal) == (decision.target, decision.goal)
        ]


def train_classifier(options: TrainOptions, progress: Progress | None = None) -> TrainResult:
    """Train, evaluate, report and register a classifier; see the module docstring.

    Raises:
        ConfigError: the options do not fit together or the data.
        SourceError: the data is missing, unreadable, has one class, or changed since its
            manifest was written.
        ModelError: the backbone is unknown or not an embed model, or the model cannot be
            exported or registered.
        DependencyError: a library the method needs is not installed.
    """
    from vigil.models.api import Models
    from vigil.models.registry import check_name

    check_options(options)
    check_name(options.name)
    run_dir = run_folder(options)
    data = prepare_data(options, run_dir, progress)
    positive = positive_class(options, data.manifest)
    with Models() as models:
        backbone = _pinned_backbone(options, models)
        keep_data(data)
        trained = train_method(options, data, run_dir, backbone=backbone, progress=progress)
        if trained.interrupted:
            return _interrupted(options, data, run_dir, trained)
        return _finish(
            options, data=data, run_dir=run_dir, trained=trained, models=models, positive=positive
        )


def check_options(options: TrainOptions) -> None:
    """Refuse options that do not fit the method.

    Raises:
        ConfigError: a fine-tuning option with the probe, or the probe without a backbone.
    """
    if options.method == "probe":
        given = [name for name in _FINETUNE_ONLY if getattr(options, name)]
        if given:
            flag = "--" + given[0].replace("_", "-")
            raise ConfigError(
                f"{flag} is for --method finetune; a probe trains in one pass on cached vectors"
            )
        if options.backbone is None:
            raise ConfigError(
                "--method probe needs --backbone: a registered embed model (vigil models list "
                "--task embed) or an embedder file (.tflite, .onnx)"
            )
    if options.weights is not None and options.from_scratch:
        raise ConfigError("--weights and --from-scratch contradict each other: give one")


# The run folder


def run_folder(options: TrainOptions) -> Path:
    """Return the run's folder: ``out``, the latest run of the name (resume), or a new one.

    A new folder is named by the time and made once the data is ready.

    Raises:
        ConfigError: ``out`` holds another run (and this is no resume), or there is no run
            to resume.
    """
    if options.out is not None:
        return _own_folder(options.out, options.resume)
    from vigil.paths import home

    runs = home() / "runs" / options.name
    if options.resume:
        previous = sorted(p for p in runs.glob("*") if p.is_dir()) if runs.is_dir() else []
        if not previous:
            raise ConfigError(f"no run of {options.name} to resume in {runs}")
        return previous[-1]
    return _new_folder(runs)


def _own_folder(out: Path, resume: bool) -> Path:
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file: give a folder")
    if out.is_dir() and any(out.iterdir()) and not resume:
        raise ConfigError(f"--out {out} is not empty: choose a new folder, or --resume a run")
    return out


def _new_folder(runs: Path) -> Path:
    stamp = datetime.now(UTC).astimezone().strftime("%Y%m%d-%H%M%S")
    for attempt in range(1, 1000):
        candidate = runs / (stamp if attempt == 1 else f"{stamp}-{attempt}")
        if not candidate.exists():
            return candidate
    raise ConfigError(f"too many runs started this second in {runs}")


def _make_folder(folder: Path) -> None:
    from vigil.errors import StorageError

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(
            f"cannot create the run folder {folder}: {exc.strerror or exc}"
        ) from None


# Data


def prepare_data(
    options: TrainOptions, run_dir: Path, progress: Progress | None = None
) -> PreparedData:
    """Split the data (or read its manifest) and check it; nothing is written yet.

    Raises:
        SourceError: see :func:`train_classifier`.
    """
    kept = run_dir / MANIFEST_FILE
    if options.resume and kept.is_file():
        manifest, summary = _from_manifest(kept, str(options.data))
    elif is_manifest(options.data):
        manifest, summary = _from_manifest(options.data, str(options.data))
    else:
        manifest, summary = _split(options, progress)
    _check_splits(manifest)
    return PreparedData(
        manifest,
        kept,
        DataSummary.of_manifest(manifest, summary.source, kept, summary.skipped, summary.warnings),
    )


def keep_data(data: PreparedData) -> None:
    """Make the run folder and keep the split's manifest in it.

    Raises:
        StorageError: the folder or file cannot be written.
    """
    from vigil.data.manifest import write_manifest

    _make_folder(data.manifest_path.parent)
    write_manifest(data.manifest, data.manifest_path)


def is_manifest(path: Path) -> bool:
    """Whether ``path`` is a split manifest (not a Label Studio export or a CSV)."""
    from vigil.data.manifest import MANIFEST_FORMAT

    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(document, dict) and document.get("format") == MANIFEST_FORMAT


def _from_manifest(path: Path, source: str) -> tuple[Manifest, DataSummary]:
    from vigil.data.manifest import describe_changes, read_manifest, verify_manifest

    manifest = read_manifest(path)
    changes = verify_manifest(manifest)
    if changes:
        raise SourceError(describe_changes(changes, len(manifest.items)))
    return manifest, DataSummary.of_manifest(manifest, source, path)


def _split(options: TrainOptions, progress: Progress | None) -> tuple[Manifest, DataSummary]:
    from vigil.data.check import build_report, inspect_dataset
    from vigil.data.config import CheckOptions, SplitOptions
    from vigil.data.dataset import load_dataset
    from vigil.data.split import split_dataset

    dataset = load_dataset(options.data)
    checking = CheckOptions(workers=_workers(len(dataset), options.workers))
    infos = inspect_dataset(dataset, checking, _stage(progress, "checked"))
    report = build_report(dataset, infos, checking)
    if report.problem is not None:
        raise SourceError(f"{dataset.source}: {report.problem}")
    result = split_dataset(
        dataset, infos, SplitOptions(seed=options.split_seed), checking.near_threshold
    )
    skipped = [(f.key, f.detail) for f in (*report.unreadable, *report.skipped)]
    warnings = (*report.warnings, *result.warnings)
    summary = DataSummary.of_manifest(result.manifest, str(options.data), None, skipped, warnings)
    return result.manifest, summary


def _workers(images: int, most: int) -> int:
    """Worker processes for checking: one for small datasets (starting workers costs more)."""
    return 1 if images < 200 else max(1, most)


def _check_splits(manifest: Manifest) -> None:
    counts = manifest.counts()
    missing = [c for c in manifest.classes if counts["train"][c] == 0]
    if missing:
        raise SourceError(
            f"no training image of {', '.join(repr(c) for c in missing)}: add images of every "
            "class (at least three each, so that each split gets one)"
        )
    if not manifest.split("test"):
        raise SourceError(
            "the test split is empty, so the model cannot be evaluated: add images (at least "
            "three per class) or split with a larger test fraction"
        )


def _stage(progress: Progress | None, what: str) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    report = progress
    return lambda done, total: report(what, done, total)


# Methods


def _pinned_backbone(options: TrainOptions, models: Models) -> Backbone | None:
    """Return the probe's backbone, pinned to a registered version; None for fine-tuning."""
    from vigil.train.probe import pin_backbone

    if options.method != "probe":
        return None
    assert options.backbone is not None  # check_options
    return pin_backbone(options.backbone, models)


def train_method(
    options: TrainOptions,
    data: PreparedData,
    run_dir: Path,
    *,
    backbone: Backbone | None = None,
    progress: Progress | None = None,
) -> Trained:
    """Train with ``options.method``; return the model and its validation and test scores.

    Args:
        options: What to train.
        data: The split, its manifest kept in ``run_dir``.
        run_dir: Where the model files go.
        backbone: The probe's pinned backbone (required for the probe).
        progress: Called while images are embedded.
    """
    if options.method == "probe":
        if backbone is None:
            raise ConfigError("--method probe needs --backbone")
        return train_probe(options, data, run_dir, backbone, progress)
    return train_finetune(options, data, run_dir, progress)


def train_probe(
    options: TrainOptions,
    data: PreparedData,
    run_dir: Path,
    backbone: Backbone,
    progress: Progress | None = None,
) -> Trained:
    """Fit a probe on the backbone's (cached) vectors and export its head."""
    from vigil.train.export import write_sidecar
    from vigil.train.probe import FeatureCache, export_head, fit_probe, head_spec

    vectors, stats = _split_vectors(data, backbone, FeatureCache(), progress)
    classes = data.manifest.classes
    fit = fit_probe(
        (vectors["train"], data.labels("train")),
        (vectors["validation"], data.labels("validation")),
        len(classes),
        options.seed,
    )
    spec = head_spec(classes, backbone.ref)
    head_file = run_dir / HEAD_FILE

    def deploy(head: Any) -> Path:
        export_head(head, head_file)
        write_sidecar(head_file, spec)  # the run folder's file runs as it is, too
        _check_export(head_file, spec, head, vectors["test"])
        return head_file

    deploy(fit.head)
    return Trained(
        model_file=head_file,
        spec=spec,
        validation_scores=fit.head.scores(vectors["validation"]),
        test_scores=fit.head.scores(vectors["test"]),
        backbone=backbone.ref,
        facts={**stats, **_fit_facts(fit)},
        notes=_probe_notes(fit, backbone),
        build_in_threshold=lambda positive, t: deploy(fit.head.with_threshold(positive, t)),
    )


def _split_vectors(
    data: PreparedData, backbone: Backbone, cache: Any, progress: Progress | None
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Backbone vectors of every split, computed once for all and cached."""
    from vigil.data.config import SPLITS
    from vigil.train.probe import image_features

    everything = [image for split in SPLITS for image in data.images(split)]
    features = image_features(
        everything, backbone.key, backbone.embedder, cache, _stage(progress, "embedded")
    )
    vectors, start = {}, 0
    for split in SPLITS:
        count = len(data.items(split))
        vectors[split] = features.vectors[start : start + count]
        start += count
    stats = {"vectors_computed": features.computed, "vectors_reused": features.reused}
    return vectors, stats


def _check_export(head_file: Path, spec: ModelSpec, head: Any, vectors: np.ndarray) -> None:
    """Load the exported head as the registered model will be, and compare its scores."""
    from vigil.tasks import load_model
    from vigil.tasks.probe import ProbeModel

    model = load_model(head_file, spec, threads=1)
    try:
        assert isinstance(model, ProbeModel)
        exported = model.head_scores(vectors)
    finally:
        model.close()
    fitted = head.scores(vectors)
    difference = float(np.max(np.abs(exported - fitted))) if len(vectors) else 0.0
    if difference > EXPORT_TOLERANCE:
        raise ModelError(
            f"the exported head {head_file} scores differ from the fitted ones by {difference}"
        )


def _fit_facts(fit: ProbeFit) -> dict[str, Any]:
    return {
        "c": fit.c,
        "c_trials": [
            {
                "c": c,
                "validation_balanced_accuracy": round(accuracy, 4),
                "validation_log_loss": round(loss, 4),
            }
            for c, accuracy, loss in fit.trials
        ],
        "converged": fit.converged,
    }


def _probe_notes(fit: ProbeFit, backbone: Backbone) -> list[str]:
    notes = []
    if backbone.registered_from is not None:
        source = backbone.registered_from.name
        notes.append(f"The backbone file {source} was registered as {backbone.ref}.")
    if not fit.trials:
        notes.append(
            "The validation split lacks a class, so C was not chosen on it (C = 1); add images."
        )
    if not fit.converged:
        notes.append(
            "The logistic regression did not fully converge; results may improve "
            "with more data or a different backbone."
        )
    return notes


def train_finetune(
    options: TrainOptions, data: PreparedData, run_dir: Path, progress: Progress | None = None
) -> Trained:
    """Fine-tune a network with :func:`vigil.train.finetune.finetune`; choose fp32 or int8.

    Raises:
        DependencyError: PyTorch is not installed.
        ConfigError: the fine-tuning options are invalid.
    """
    from vigil.train.finetune import FinetuneOptions, finetune

    given = _finetune_settings(options)
    head_epochs = FinetuneOptions.model_fields["head_epochs"].default
    if options.epochs is not None and options.epochs < head_epochs:
        given["head_epochs"] = options.epochs  # a short run trains the head first, then stops
    try:
        settings = FinetuneOptions(**given)
    except ValidationError as exc:
        message = describe_validation_error(exc, FinetuneOptions, None, "command line")
        raise ConfigError(message) from None
    source = options.data if is_manifest(options.data) else data.manifest_path
    result = finetune(
        source,
        list(data.manifest.classes),
        settings,
        run_dir,
        resume=options.resume,
        progress=progress is not None,
    )
    history = history_rows(result.history)
    if result.interrupted:
        empty = np.zeros((0, len(data.manifest.classes)))
        return Trained(
            result.onnx_path, result.spec, empty, empty, history=history, interrupted=True
        )
    model_file, int8 = result.onnx_path, None
    if options.int8:
        model_file, int8 = choose_int8(result.onnx_path, result.spec, data, run_dir, options)
    validation, test = _file_scores(model_file, result.spec, data)
    return Trained(
        model_file=model_file,
        spec=result.spec,
        validation_scores=validation,
        test_scores=test,
        history=history,
        facts={"best_epoch": result.best_epoch, "network": settings.backbone},
        int8=int8,
    )


def _finetune_settings(options: TrainOptions) -> dict[str, Any]:
    given = {
        "backbone": options.backbone,
        "weights": options.weights,
        "from_scratch": options.from_scratch or None,
        "epochs": options.epochs,
        "image_size": options.image_size,
        "workers": options.workers,
        "seed": options.seed,
    }
    return {key: value for key, value in given.items() if value is not None}


def history_rows(history: Any) -> list[dict[str, float]]:
    """Turn a trainer's history (rows of mappings or objects) into rows of numbers."""
    rows = []
    for row in history or ():
        values = row if isinstance(row, Mapping) else _fields_of(row)
        rows.append(
            {
                str(k): float(v)
                for k, v in values.items()
                if isinstance(v, int | float) and not isinstance(v, bool)
            }
        )
    return rows


def _fields_of(row: Any) -> dict[str, Any]:
    for method in ("to_dict", "model_dump"):
        dump = getattr(row, method, None)
        if callable(dump):
            return dict(dump())
    return dict(getattr(row, "__dict__", {}))


def _file_scores(
    model_file: Path, spec: ModelSpec, data: PreparedData
) -> tuple[np.ndarray, np.ndarray]:
    from vigil.tasks import load_model
    from vigil.train.evaluate import class_scores

    model = load_model(model_file, spec)
    try:
        classes = data.manifest.classes
        return (
            class_scores(model, data.images("validation"), classes),
            class_scores(model, data.images("test"), classes),
        )
    finally:
        model.close()


def choose_int8(
    onnx_path: Path, spec: ModelSpec, data: PreparedData, run_dir: Path, options: TrainOptions
) -> tuple[Path, QuantizationCheck]:
    """Quantise to int8 and compare both models on the validation split.

    The int8 model is kept when it loses less accuracy than ``int8_max_loss`` and runs faster.
    """
    from vigil.train.export import quantize_int8

    calibration = [path for path, _ in data.images("train")[:CALIBRATION_IMAGES]]
    int8_path = quantize_int8(onnx_path, calibration, run_dir / INT8_FILE)
    check = compare_int8(onnx_path, int8_path, spec, data, options.int8_max_loss)
    log.info("%s", check.lines()[0])
    return (int8_path if check.kept else onnx_path), check


def compare_int8(
    fp32_path: Path, int8_path: Path, spec: ModelSpec, data: PreparedData, max_loss: float
) -> QuantizationCheck:
    """Measure both models' validation accuracy and speed on the same images."""
    from vigil.data.imageinfo import read_image_quietly
    from vigil.tasks import load_model
    from vigil.train.evaluate import class_scores, time_model

    images = data.images("validation") or data.images("train")
    truth = data.labels("validation") if data.items("validation") else data.labels("train")
    decoded = [read_image_quietly(path) for path, _ in images[:TIMED_IMAGES]]
    results = []
    for path in (fp32_path, int8_path):
        model = load_model(path, spec)
        try:
            scores = class_scores(model, images, data.manifest.classes)
            accuracy = float(np.mean(scores.argmax(axis=1) == truth)) if len(truth) else 0.0
            results.append((accuracy, time_model(model, decoded).median_ms))
        finally:
            model.close()
    (fp32_accuracy, fp32_ms), (int8_accuracy, int8_ms) = results
    return QuantizationCheck(
        fp32_accuracy=fp32_accuracy,
        int8_accuracy=int8_accuracy,
        fp32_ms=fp32_ms,
        int8_ms=int8_ms,
        images=len(images),
        timed_images=len(decoded),
        max_loss=max_loss,
    )


# Deciding, evaluating, reporting, registering


def positive_class(options: TrainOptions, manifest: Manifest) -> int | None:
    """Return the index of the positive class of a two-class model (None for more classes).

    Raises:
        ConfigError: ``positive`` names no class, or is given for more than two classes.
    """
    classes = manifest.classes
    if options.positive is not None and options.positive not in classes:
        raise ConfigError(
            f"--positive {options.positive!r} is not a class of the data ({', '.join(classes)})"
        )
    if len(classes) != 2:
        if options.positive is not None or options.target() is not None:
            raise ConfigError(
                "--positive, --target-recall and --target-precision need two classes; the data "
                f"has {len(classes)}"
            )
        return None
    if options.positive is not None:
        return classes.index(options.positive)
    counts = manifest.counts()["train"]
    return 0 if counts[classes[0]] < counts[classes[1]] else 1


def _finish(
    options: TrainOptions,
    *,
    data: PreparedData,
    run_dir: Path,
    trained: Trained,
    models: Models,
    positive: int | None,
) -> TrainResult:
    from vigil.train.register import classifier_metrics, register_classifier

    points, decision = _decide(options, data, trained, positive)
    evaluation = _evaluate(data, trained, positive, decision, points)
    report_path = _report(
        options,
        data=data,
        run_dir=run_dir,
        trained=trained,
        evaluation=evaluation,
        decision=decision,
    )
    version = register_classifier(
        models,
        trained.model_file,
        options.name,
        trained.spec,
        metrics=classifier_metrics(evaluation, decision, trained.int8),
        lineage=_lineage(options, data, run_dir, trained),
        description=f"{' / '.join(data.manifest.classes)} classifier ({options.method})",
    )
    result = TrainResult(
        name=options.name,
        method=options.method,
        run_dir=run_dir,
        manifest_path=data.manifest_path,
        model_file=trained.model_file,
        report_path=report_path,
        version=version,
        evaluation=evaluation,
        data=data.summary,
        backbone=trained.backbone,
        decision=decision,
        int8=trained.int8,
        facts=trained.facts,
        notes=tuple(trained.notes),
    )
    _write_result(run_dir, result)
    return result


def _decide(
    options: TrainOptions, data: PreparedData, trained: Trained, positive: int | None
) -> tuple[tuple[OperatingPoint, ...], Decision | None]:
    """Thresholds on validation for the standard targets and the one asked for."""
    from vigil.train.evaluate import operating_points

    if positive is None or not len(trained.validation_scores):
        return (), None
    validation = (data.labels("validation") == positive, trained.validation_scores[:, positive])
    test = (data.labels("test") == positive, trained.test_scores[:, positive])
    target = options.target()
    points = operating_points(validation, test, target)
    chosen = next((p for p in points if target and (p.target, p.goal) == target), None)
    if chosen is None or chosen.threshold is None:
        if target is not None:
            trained.notes.append(
                f"No threshold reaches {target[0]} >= {target[1]:g} on the validation images; "
                "the model decides by its highest score."
            )
        return points, None
    threshold = float(min(max(chosen.threshold, 1e-6), 1 - 1e-6))
    built_in = trained.build_in_threshold is not None
    if trained.build_in_threshold is not None:
        trained.model_file = trained.build_in_threshold(positive, threshold)
    label = data.manifest.classes[positive]
    return points, Decision(label, threshold, chosen.target, chosen.goal, built_in)


def _evaluate(
    data: PreparedData,
    trained: Trained,
    positive: int | None,
    decision: Decision | None,
    points: Sequence[OperatingPoint],
) -> Evaluation:
    from vigil.train.evaluate import evaluate_scores

    return evaluate_scores(
        data.labels("test"),
        trained.test_scores,
        data.manifest.classes,
        keys=[item.path for item in data.items("test")],
        positive=positive,
        threshold=decision.threshold if decision is not None else None,
        operating_points=points,
    )


def _report(
    options: TrainOptions,
    *,
    data: PreparedData,
    run_dir: Path,
    trained: Trained,
    evaluation: Evaluation,
    decision: Decision | None,
) -> Path:
    from vigil.train.report import ReportContent, write_report

    facts = [
        ("Model", f"{options.name} (next version)"),
        ("Method", options.method),
        ("Backbone", trained.backbone or options.backbone or "default"),
        ("Data", str(options.data)),
        ("Manifest hash", data.manifest.hash),
        ("Command", options.command or ""),
        ("Trained", datetime.now(UTC).astimezone().isoformat(timespec="seconds")),
    ]
    if "c" in trained.facts:
        facts.append(("Logistic regression C", f"{trained.facts['c']:g} (chosen on validation)"))
    content = ReportContent(
        title=options.name,
        evaluation=evaluation,
        facts=[(label, value) for label, value in facts if value],
        image_files={item.path: data.manifest.path_of(item) for item in data.items("test")},
        data=data.summary,
        history=trained.history,
        int8=trained.int8,
        decision=decision,
        notes=trained.notes,
    )
    return write_report(content, run_dir / REPORT_FILE)


def _lineage(
    options: TrainOptions, data: PreparedData, run_dir: Path, trained: Trained
) -> dict[str, Any]:
    lineage: dict[str, Any] = {
        "method": options.method,
        "dataset": data.manifest.hash,
        "manifest": str(data.manifest_path.resolve()),
        "command": options.command,
        "backbone": trained.backbone or options.backbone,
        "seed": options.seed,
        "split_seed": data.manifest.seed,
        "run": str(run_dir.resolve()),
    }
    if "c" in trained.facts:
        lineage["c"] = trained.facts["c"]
    return {key: value for key, value in lineage.items() if value is not None}


def _write_result(run_dir: Path, result: TrainResult) -> None:
    from vigil.data.manifest import write_text_atomic

    write_text_atomic(run_dir / RESULT_FILE, json.dumps(result.to_dict(), indent=1) + "\n")


def _interrupted(
    options: TrainOptions, data: PreparedData, run_dir: Path, trained: Trained
) -> TrainResult:
    return TrainResult(
        name=options.name,
        method=options.method,
        run_dir=run_dir,
        manifest_path=data.manifest_path,
        model_file=trained.model_file,
        report_path=None,
        version=None,
        evaluation=None,
        data=data.summary,
        interrupted=True,
    )


__all__ = [
    "PreparedData",
    "TrainOptions",
    "TrainResult",
    "Trained",
    "check_options",
    "choose_int8",
    "compare_int8",
    "history_rows",
    "is_manifest",
    "keep_data",
    "positive_class",
    "prepare_data",
    "run_folder",
    "train_classifier",
    "train_finetune",
    "train_method",
    "train_probe",
]
