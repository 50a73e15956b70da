"""Fine-tune a pretrained CNN on a split dataset, on a CPU, fed from packed shards.

The schedule, from pretrained ImageNet weights (:mod:`vigil.train.backbones`):

1. **head** (``head_epochs``): a new classifier head, one output per class, learns on its own
   while the rest of the network is frozen (its batch-norm statistics too), at ``lr_head``;
2. **full** (the remaining epochs): the whole network learns at the lower ``lr_full``.

Both phases use AdamW (no weight decay on biases and batch-norm weights) and a cosine decay of
the learning rate over the phase, batch by batch; augmentation is the data layer's random
resized crop, flip and colour jitter; with ``class_weighting`` the loss weighs each class by
``images / (classes * images of the class)``, so a rare class counts as much as a common one.

After every epoch the network is scored on the validation split by **balanced accuracy** (the
mean of the per-class recalls): unlike plain accuracy it does not reward ignoring a rare class,
and unlike macro F1 it stays meaningful on the small validation sets of a few dozen images per
class that fine-tuning usually has (macro F1 is reported as well). The best epoch (ties: lower
validation loss) is kept in ``checkpoints/best.pt``; once the whole network trains, ``patience``
epochs without improvement end the run. The best weights are exported to ``model.onnx`` with
its spec beside it, and the file is checked against torch through ``vigil.tasks.load_model``.

Images come from tar shards (``vigil data pack``) through the data layer's parallel
:class:`~vigil.data.Loader`: a shard set packed from the same manifest at least as large as
``image_size`` is used where it lies (``run_dir/shards``, or a folder next to the manifest
file); otherwise the manifest is packed into ``run_dir/shards`` first.

Ctrl-C stops after the current batch: the epoch in progress is dropped, the best epoch so far
is exported and the result says ``interrupted``. ``resume`` goes on from the last finished
epoch (weights, optimiser, schedule, random state); with the same settings and loader workers
it ends with the same weights as a run that was never stopped.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

import numpy as np
from pydantic import Field, field_validator, model_validator

from vigil.config import ConfigModel
from vigil.data.manifest import Manifest, read_manifest
from vigil.errors import ConfigError, DependencyError, SourceError
from vigil.models.spec import ModelSpec

if TYPE_CHECKING:
    import torch

    from vigil.data import Batch, Loader
    from vigil.data.shards import ShardIndex
    from vigil.train.backbones import Classifier
    from vigil.train.checkpoints import Resumed, RunFiles

logger = logging.getLogger(__name__)

BACKBONE_NAMES = ("mobilenet_v2", "resnet18", "tiny_cnn")
"""Networks :func:`finetune` can train (defined in :mod:`vigil.train.backbones`)."""

METRIC = "balanced_accuracy"
"""The validation figure that picks the best epoch and stops training early."""

Phase = Literal["head", "full"]

_SAME = 1e-6  # scores closer than this are equal; the validation loss breaks the tie
_LOSS_GAIN = 1e-4  # a tie is broken only by a loss lower by more than this
_PARITY_IMAGES = 4


class FinetuneOptions(ConfigModel):
    """How :func:`finetune` trains: network, weights, schedule, data and stopping."""

    backbone: str = Field(
        default="mobilenet_v2",
        description="Network to fine-tune: mobilenet_v2 (fast on a CPU), resnet18, or tiny_cnn "
        "(for tests; it has no pretrained weights).",
    )
    weights: Path | None = Field(
        default=None,
        description="Pretrained weights in torchvision's layout, e.g. mobilenet_v2-7ebf99e0.pth "
        "from download.pytorch.org/models. None: a standard file in torch's hub cache, else "
        "torchvision's download where torchvision is installed.",
    )
    from_scratch: bool = Field(
        default=False,
        description="Train from random weights (needs many more images); there is then no "
        "head-only phase.",
    )
    epochs: int = Field(default=15, ge=1, le=1000, description="Most epochs in all.")
    head_epochs: int = Field(
        default=3,
        ge=0,
        le=1000,
        description="Epochs at the start that train only the new head (backbone frozen); "
        "all of them when there are no more epochs than this.",
    )
    batch_size: int = Field(default=32, ge=2, le=1024, description="Images per training step.")
    image_size: int = Field(
        default=160,
        ge=32,
        le=1024,
        description="Side of the square input in pixels. 160 trains MobileNetV2 about 3x faster "
        "than 224 on a CPU; 224 is the size the ImageNet weights were trained at.",
    )
    workers: int = Field(
        default=2,
        ge=0,
        le=64,
        description="Loader processes that decode and augment images (0: in the training "
        "process); resuming with the same number repeats the same batches.",
    )
    threads: int | None = Field(
        default=None,
        ge=1,
        le=256,
        description="Threads torch computes with. None: one per core that is idle when "
        "training starts (at least 1). Threads that have to share busy cores slow each other "
        "down badly: on 2 cores busy with other work, 1 thread trained 3 to 5 times faster "
        "than 2.",
    )
    seed: int = Field(
        default=0, ge=0, le=2**32 - 1, description="Seed of weights, order and augmentation."
    )
    lr_head: float = Field(
        default=1e-3, gt=0, le=1, description="Learning rate while only the head trains."
    )
    lr_full: float = Field(
        default=1e-4, gt=0, le=1, description="Learning rate once the whole network trains."
    )
    weight_decay: float = Field(
        default=1e-4,
        ge=0,
        le=1,
        description="AdamW's decoupled weight decay (not on biases and batch-norm weights).",
    )
    patience: int = Field(
        default=5,
        ge=1,
        le=1000,
        description="Stop after this many whole-network epochs without a better validation "
        "balanced accuracy.",
    )
    class_weighting: bool = Field(
        default=True,
        description="Weigh each class's loss by how rare it is in the training split.",
    )
    augment: bool = Field(
        default=True,
        description="Random resized crop, horizontal flip and colour jitter on training images; "
        "off: the centre crop that evaluation uses.",
    )

    @field_validator("backbone")
    @classmethod
    def _known_backbone(cls, value: str) -> str:
        if value not in BACKBONE_NAMES:
            raise ValueError(f"unknown backbone; choose one of {', '.join(BACKBONE_NAMES)}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.from_scratch and self.weights is not None:
            raise ValueError("give weights or from_scratch, not both")
        return self

    def phase_of(self, epoch: int) -> Phase:
        """Return the phase of 1-based ``epoch``: head-only first, unless from scratch."""
        return "head" if not self.from_scratch and epoch <= self.head_epochs else "full"

    def phase_epochs(self, phase: Phase) -> int:
        """Return how many epochs ``phase`` has."""
        head = 0 if self.from_scratch else min(self.head_epochs, self.epochs)
        return head if phase == "head" else self.epochs - head


@dataclass(frozen=True)
class EpochStats:
    """The figures of one finished epoch.

    Attributes:
        epoch: 1-based.
        phase: ``head`` (backbone frozen) or ``full``.
        learning_rate: At the epoch's first step.
        train_loss: Mean (class-weighted) training loss.
        train_accuracy: Share of training images classified right while learning.
        val_loss: Mean cross-entropy on the validation split (unweighted).
        val_accuracy: Share of validation images classified right.
        val_balanced_accuracy: Mean per-class recall on validation: the score that picks the
            best epoch.
        val_macro_f1: Mean per-class F1 on validation.
        images_per_second: Training images per second of training (validation excluded).
        seconds: The whole epoch, validation included.
        load_ms_median: Median wait for the next training batch from the loader.
        load_ms_p95: Its 95th percentile.
        load_first_ms: The wait for the epoch's first batch (loader processes starting in the
            first epoch, the shuffle buffer filling in every epoch).
        load_share: Share of the training time spent waiting for the loader (0: never).
        step_ms_median: Median time of one training step (forward, backward, update).
        step_ms_p95: Its 95th percentile.
        improved: Whether this epoch became the best so far.

    """

    epoch: int
    phase: Phase
    learning_rate: float
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    val_balanced_accuracy: float
    val_macro_f1: float
    images_per_second: float
    seconds: float
    load_ms_median: float
    load_ms_p95: float
    load_first_ms: float
    load_share: float
    step_ms_median: float
    step_ms_p95: float
    improved: bool

    @property
    def score(self) -> float:
        """The validation figure that ranks epochs (:data:`METRIC`)."""
        return self.val_balanced_accuracy

    def to_dict(self) -> dict[str, Any]:
        """Return the figures as plain values."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> EpochStats:
        """Rebuild stats from :meth:`to_dict`."""
        return cls(**values)


@dataclass(frozen=True)
class FinetuneResult:
    """What :func:`finetune` made.

    Attributes:
        onnx_path: The best epoch's network as ONNX (softmax included), spec beside it.
        spec: How to run it (also in ``<onnx_path>.vigil.yaml``).
        history: One entry per finished epoch, resumed ones included.
        best_epoch: The epoch exported.
        interrupted: Whether Ctrl-C ended the run before its last epoch.
        checkpoint: ``best.pt``: the best epoch's weights (torchvision's layout).
        stopped_early: Whether the validation score stopped improving.

    """

    onnx_path: Path
    spec: ModelSpec
    history: list[EpochStats]
    best_epoch: int
    interrupted: bool
    checkpoint: Path
    stopped_early: bool = False


EpochCallback = Callable[[EpochStats], None]
"""Called after every finished epoch (checkpoints written); KeyboardInterrupt stops the run."""


def finetune(
    manifest: Manifest | Path,
    classes: list[str],
    options: FinetuneOptions,
    run_dir: Path,
    *,
    resume: bool = False,
    progress: bool = True,
    on_epoch_end: EpochCallback | None = None,
) -> FinetuneResult:
    """Fine-tune ``options.backbone`` on ``manifest``'s train split (see the module docstring).

    Args:
        manifest: The split (or its JSON file).
        classes: Class names in output order; the manifest's classes, in any order.
        options: Network, schedule and data settings.
        run_dir: Where shards (if packed here), checkpoints and ``model.onnx`` go.
        resume: Go on from ``run_dir``'s last finished epoch instead of starting.
        progress: Show a progress bar on standard error.
        on_epoch_end: Called with each finished epoch's figures.

    Raises:
        ConfigError: no pretrained weights and not ``from_scratch``; classes that do not match
            the manifest; a run already in ``run_dir`` (without ``resume``) or none to resume.
        SourceError: a split the training needs is empty, or the images changed.
        ModelError: the weights file does not fit the backbone, or the export is wrong.
        DependencyError: torch is not installed.

    """
    _require_torch()
    from vigil.train.checkpoints import RunFiles

    split = read_manifest(manifest) if isinstance(manifest, str | Path) else manifest
    plan = _plan(split, classes, options, Path(run_dir))
    files = RunFiles(Path(run_dir))
    fingerprint = _fingerprint(options, plan)
    with _cpu_threads(options.threads):
        trainer = _Trainer(options, plan, files, progress)
        resumed = trainer.prepare(resume, fingerprint)
        trainer.open_data(manifest if isinstance(manifest, str | Path) else None)
        try:
            if resumed is not None:
                trainer.restore(resumed)
            interrupted = trainer.run(on_epoch_end)
            return trainer.finish(interrupted)
        finally:
            trainer.close()


def _require_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise DependencyError("torch", "train", "fine-tuning a classifier") from None


@dataclass(frozen=True)
class _Plan:
    """What a run trains on: the split, class order, label mapping and class weights."""

    manifest: Manifest
    classes: tuple[str, ...]
    label_map: np.ndarray
    class_weights: np.ndarray
    run_dir: Path


def _plan(manifest: Manifest, classes: list[str], options: FinetuneOptions, run_dir: Path) -> _Plan:
    """Check the classes and splits; map the manifest's class indices to ``classes``.

    Raises:
        ConfigError: ``classes`` are not the manifest's classes.
        SourceError: the train or validation split is empty, or a class has no training image.

    """
    unknown = sorted(set(classes) - set(manifest.classes))
    absent = sorted(set(manifest.classes) - set(classes))
    if unknown or absent or len(set(classes)) != len(classes):
        raise ConfigError(
            f"the classes to train ({', '.join(classes)}) must be the manifest's classes "
            f"({', '.join(manifest.classes)}), each once, in any order"
        )
    counts = manifest.counts()
    for split in ("train", "validation"):
        if not any(counts[split].values()):
            raise SourceError(
                f"the manifest has no {split} images: split the dataset with a non-zero "
                f"{split} fraction ('vigil data split')"
            )
    train = [counts["train"][name] for name in classes]
    missing = [name for name, count in zip(classes, train, strict=True) if count == 0]
    if missing:
        raise SourceError(
            f"class {', '.join(missing)} has no training images: add images or drop the class"
        )
    weights = class_weights(train) if options.class_weighting else np.ones(len(classes))
    label_map = np.array([classes.index(name) for name in manifest.classes], np.int64)
    return _Plan(manifest, tuple(classes), label_map, weights.astype(np.float32), run_dir)


def class_weights(counts: list[int]) -> np.ndarray:
    """Loss weight of each class: ``images / (classes * images of the class)``.

    Every class then carries the same share of the loss however many images it has; with
    equal counts every weight is 1.
    """
    values = np.asarray(counts, np.float64)
    return np.asarray(values.sum() / (len(values) * values), np.float64)


def _fingerprint(options: FinetuneOptions, plan: _Plan) -> dict[str, Any]:
    """Return the settings a resumed run must share with the run it continues."""
    settings = options.model_dump(mode="json", exclude={"workers", "threads", "weights"})
    return {**settings, "classes": list(plan.classes), "manifest": plan.manifest.hash}


@contextmanager
def _cpu_threads(threads: int | None) -> Iterator[None]:
    """Let torch use ``threads`` (None: :func:`default_threads`); restore the setting after."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads or default_threads())
    try:
        yield
    finally:
        torch.set_num_threads(before)


def default_threads(interval: float = 0.25) -> int:
    """Return how many of the cores this process may use are idle now (at least 1).

    torch's threads wait for each other at every layer, so one that shares a core with other
    work holds all of them up; threads only on idle cores avoid that. Idleness is measured
    over ``interval`` seconds from ``/proc/stat``; where that cannot be read, every core counts
    as idle.
    """
    affinity = getattr(os, "sched_getaffinity", None)
    cores = sorted(affinity(0)) if affinity else list(range(os.cpu_count() or 1))
    before = _cpu_times(cores)
    if before is None:
        return len(cores)
    time.sleep(interval)
    after = _cpu_times(cores) or before
    idle = sum(a[0] - b[0] for a, b in zip(after, before, strict=True))
    total = sum(a[1] - b[1] for a, b in zip(after, before, strict=True))
    idle_cores = len(cores) * idle / total if total > 0 else len(cores)
    return max(1, min(len(cores), round(idle_cores)))


def _cpu_times(cores: list[int]) -> list[tuple[int, int]] | None:
    """Return (idle, total) clock ticks of each of ``cores`` from ``/proc/stat``; None without."""
    try:
        lines = Path("/proc/stat").read_text().splitlines()
    except OSError:
        return None
    ticks: dict[int, tuple[int, int]] = {}
    for line in lines:
        name, *values = line.split()
        if name.startswith("cpu") and name[3:].isdigit():
            numbers = [int(v) for v in values[:8]]
            ticks[int(name[3:])] = (numbers[3] + numbers[4], sum(numbers))
    found = [ticks[core] for core in cores if core in ticks]
    return found if len(found) == len(cores) else None


def _tqdm() -> Any:
    try:
        from tqdm import tqdm
    except ImportError:
        raise DependencyError("tqdm", "train", "the fine-tuning progress bar") from None
    return tqdm


@dataclass
class _StopRequest:
    """Set by the first Ctrl-C; the training loop stops after the batch in progress."""

    requested: bool = False


@contextmanager
def _stop_on_interrupt() -> Iterator[_StopRequest]:
    """Turn the first Ctrl-C into a stop request, a second one into KeyboardInterrupt."""
    stop = _StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def request_stop(signum: int, frame: object) -> None:
        if stop.requested:
            raise KeyboardInterrupt
        stop.requested = True
        logger.warning(
            "stopping after this batch and keeping the best epoch (Ctrl-C again: at once)"
        )

    previous = signal.signal(signal.SIGINT, request_stop)
    try:
        yield stop
    finally:
        signal.signal(signal.SIGINT, previous)


class _Interrupted(Exception):
    """The training loop noticed a stop request."""


@dataclass
class _TrainFigures:
    loss_sum: float = 0.0
    correct: int = 0
    images: int = 0
    seconds: float = 0.0
    load_seconds: list[float] = field(default_factory=list)
    step_seconds: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class _EvalFigures:
    loss: float
    accuracy: float
    balanced_accuracy: float
    macro_f1: float


class _Trainer:
    """One run: the network, its data, the phase's optimiser and the run's state."""

    def __init__(
        self, options: FinetuneOptions, plan: _Plan, files: RunFiles, progress: bool
    ) -> None:
        import torch

        from vigil.train.checkpoints import RunState
        from vigil.train.export import IMAGENET_MEAN, IMAGENET_STD

        self.torch = torch
        self.options = options
        self.plan = plan
        self.files = files
        self.progress = progress
        self.state = RunState()
        self.fingerprint: dict[str, Any] = {}
        self.phase: Phase | None = None
        self.optimizer: torch.optim.Optimizer | None = None
        self.scheduler: torch.optim.lr_scheduler.LRScheduler | None = None
        self.loaders: dict[str, Loader] = {}
        self.shards: ShardIndex | None = None
        self.model: Classifier | None = None
        self.loss = torch.nn.CrossEntropyLoss(weight=torch.from_numpy(plan.class_weights))
        self.mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        self.stop = _StopRequest()

    # setting up

    def prepare(self, resume: bool, fingerprint: dict[str, Any]) -> Resumed | None:
        """Build the network: from ``last.pt`` when resuming, else with pretrained weights.

        Returns:
            What ``last.pt`` holds when resuming, for :meth:`restore` once the data is open.

        Raises:
            ConfigError: see :func:`finetune`.

        """
        from vigil.train.backbones import build_backbone
        from vigil.train.checkpoints import load_last

        self.fingerprint = fingerprint
        if not resume and self.files.last.exists():
            raise ConfigError(
                f"{self.plan.run_dir} already holds a training run: resume it, or train "
                "into a new folder"
            )
        resumed = load_last(self.files.last, fingerprint) if resume else None
        self.torch.manual_seed(self.options.seed)
        model = build_backbone(self.options.backbone, len(self.plan.classes))
        if resumed is not None:
            model.load_state_dict(resumed.model)
        elif not self.options.from_scratch:
            _load_pretrained(model, self.options)
        self.model = model.to(memory_format=self.torch.channels_last)  # type: ignore[call-overload]
        return resumed

    def restore(self, resumed: Resumed) -> None:
        """Take up the state, phase, optimiser, schedule and random state of ``last.pt``."""
        self.state = resumed.state
        if not self.state.finished:
            self._begin_phase(resumed.phase)  # type: ignore[arg-type]
            assert self.optimizer is not None and self.scheduler is not None
            self.optimizer.load_state_dict(resumed.optimizer)
            self.scheduler.load_state_dict(resumed.scheduler)
        self.torch.set_rng_state(resumed.rng)
        logger.info("resuming %s after epoch %d", self.plan.run_dir, self.state.epoch)

    def open_data(self, manifest_path: str | Path | None) -> None:
        """Find or pack the shards; open the training and validation loaders."""
        from vigil.data import Loader as DataLoader
        from vigil.data import LoaderOptions, eval_transform, open_shards, train_transform

        folder = _shard_folder(self.plan, self.options, manifest_path, self.progress)
        size, workers, seed = self.options.image_size, self.options.workers, self.options.seed
        augment = train_transform(size) if self.options.augment else eval_transform(size)
        train = open_shards(folder, "train")
        self.shards = train.index
        self.loaders = {
            "train": DataLoader(train, LoaderOptions(workers=workers, seed=seed), augment),
            "validation": DataLoader(
                open_shards(folder, "validation"),
                LoaderOptions(workers=workers, seed=seed, shuffle=False),
                eval_transform(size),
            ),
        }

    def close(self) -> None:
        """Stop the loaders' worker processes."""
        for loader in self.loaders.values():
            loader.close()

    # the schedule

    def run(self, on_epoch_end: EpochCallback | None) -> bool:
        """Train the remaining epochs; return whether Ctrl-C (or the callback) stopped them."""
        with _stop_on_interrupt() as stop:
            self.stop = stop
            try:
                while not self.state.finished:
                    stats = self._epoch(self.state.epoch + 1)
                    if on_epoch_end is not None:
                        on_epoch_end(stats)
            except (_Interrupted, KeyboardInterrupt):
                return not self.state.finished
            except SourceError:
                if stop.requested:  # Ctrl-C in a terminal also stops the loader's workers
                    return True
                raise
        return False

    def _epoch(self, number: int) -> EpochStats:
        phase = self.options.phase_of(number)
        if phase != self.phase:
            self._begin_phase(phase)
        assert self.optimizer is not None
        rate = float(self.optimizer.param_groups[0]["lr"])
        started = time.perf_counter()
        with self._bar(number, phase) as bar:
            figures = self._train_epoch(number, bar)
            scores = self._evaluate()
            stats = self._stats(
                number=number,
                phase=phase,
                rate=rate,
                figures=figures,
                scores=scores,
                started=started,
            )
            bar.set_postfix_str(_summary(stats), refresh=True)
        if not self.progress:
            logger.info("epoch %d/%d (%s): %s", number, self.options.epochs, phase, _summary(stats))
        self._keep(stats)
        return stats

    def _begin_phase(self, phase: Phase) -> None:
        """Freeze or unfreeze the body; a new optimiser and schedule for the phase."""
        model = self._model()
        for module in model.body_modules():
            module.requires_grad_(phase == "full")
        trained = model.head if phase == "head" else model
        rate = self.options.lr_head if phase == "head" else self.options.lr_full
        groups = _parameter_groups(trained, self.options.weight_decay)
        self.optimizer = self.torch.optim.AdamW(groups, lr=rate)
        steps = max(1, self.options.phase_epochs(phase) * self._steps_per_epoch())
        self.scheduler = self.torch.optim.lr_scheduler.CosineAnnealingLR(
            self.optimizer, T_max=steps, eta_min=rate * 0.01
        )
        self.phase = phase

    def _steps_per_epoch(self) -> int:
        count = self.shards.counts.get("train", 0) if self.shards else 1
        full, rest = divmod(count, self.options.batch_size)
        return full + (1 if rest > 1 else 0)

    # one epoch

    def _train_epoch(self, number: int, bar: Any) -> _TrainFigures:
        model = self._model()
        model.train()
        if self.phase == "head":
            for module in model.body_modules():
                module.eval()  # frozen batch-norm statistics
        figures = _TrainFigures()
        batches = self.loaders["train"].batches(self.options.batch_size, epoch=number - 1)
        waited = time.perf_counter()
        for batch in batches:
            loaded = time.perf_counter()
            if len(batch.labels) > 1:  # batch norm cannot train on a single image
                self._step(batch, figures)
            done = time.perf_counter()
            figures.load_seconds.append(loaded - waited)
            figures.step_seconds.append(done - loaded)
            figures.seconds += done - waited
            bar.update(1)
            if self.progress:
                bar.set_postfix_str(self._running(figures, bar), refresh=False)
            if self.stop.requested:
                raise _Interrupted
            waited = time.perf_counter()
        return figures

    def _step(self, batch: Batch, figures: _TrainFigures) -> None:
        assert self.optimizer is not None and self.scheduler is not None
        images, labels = self._tensors(batch)
        self.optimizer.zero_grad(set_to_none=True)
        logits = self._model()(images)
        loss = self.loss(logits, labels)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        figures.loss_sum += float(loss.item()) * len(labels)
        figures.correct += int((logits.argmax(1) == labels).sum().item())
        figures.images += len(labels)

    def _tensors(self, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
        """Images as normalised NCHW floats (channels-last in memory) and mapped labels."""
        pixels = self.torch.from_numpy(batch.images).permute(0, 3, 1, 2).float()
        images = ((pixels - self.mean) / self.std).contiguous(
            memory_format=self.torch.channels_last
        )
        labels = self.torch.from_numpy(self.plan.label_map[batch.labels])
        return images, labels

    def _evaluate(self) -> _EvalFigures:
        """Loss and scores of the network on the validation split."""
        model = self._model()
        model.eval()
        classes = len(self.plan.classes)
        confusion = np.zeros((classes, classes), np.int64)
        loss_sum, count = 0.0, 0
        with self.torch.no_grad():
            for batch in self.loaders["validation"].batches(self.options.batch_size, epoch=0):
                images, labels = self._tensors(batch)
                logits = model(images)
                loss = self.torch.nn.functional.cross_entropy(logits, labels, reduction="sum")
                loss_sum += float(loss.item())
                count += len(labels)
                predicted = logits.argmax(1).numpy()
                np.add.at(confusion, (labels.numpy(), predicted), 1)
                if self.stop.requested:
                    raise _Interrupted
        accuracy, balanced, f1 = classification_scores(confusion)
        return _EvalFigures(loss_sum / max(1, count), accuracy, balanced, f1)

    def _stats(
        self,
        *,
        number: int,
        phase: Phase,
        rate: float,
        figures: _TrainFigures,
        scores: _EvalFigures,
        started: float,
    ) -> EpochStats:
        state = self.state
        improved = scores.balanced_accuracy > state.best_score + _SAME or (
            scores.balanced_accuracy >= state.best_score - _SAME
            and scores.loss < state.best_loss - _LOSS_GAIN
        )
        return EpochStats(
            epoch=number,
            phase=phase,
            learning_rate=rate,
            train_loss=figures.loss_sum / max(1, figures.images),
            train_accuracy=figures.correct / max(1, figures.images),
            val_loss=scores.loss,
            val_accuracy=scores.accuracy,
            val_balanced_accuracy=scores.balanced_accuracy,
            val_macro_f1=scores.macro_f1,
            images_per_second=figures.images / max(figures.seconds, 1e-9),
            seconds=time.perf_counter() - started,
            load_ms_median=_percentile_ms(figures.load_seconds, 50),
            load_ms_p95=_percentile_ms(figures.load_seconds, 95),
            load_first_ms=1000 * figures.load_seconds[0] if figures.load_seconds else 0.0,
            load_share=sum(figures.load_seconds) / max(figures.seconds, 1e-9),
            step_ms_median=_percentile_ms(figures.step_seconds, 50),
            step_ms_p95=_percentile_ms(figures.step_seconds, 95),
            improved=improved,
        )

    def _keep(self, stats: EpochStats) -> None:
        """Update the run's state, save ``best.pt`` on improvement and ``last.pt`` always."""
        from vigil.train.checkpoints import save_best, save_last

        state = self.state
        state.epoch = stats.epoch
        state.history.append(stats.to_dict())
        if stats.improved:
            state.best_epoch, state.best_score, state.best_loss = (
                stats.epoch,
                stats.score,
                stats.val_loss,
            )
            save_best(self.files.best, self._model(), self._about(stats))
        if stats.phase == "full":
            state.stale_epochs = 0 if stats.improved else state.stale_epochs + 1
        state.stopped_early = state.stale_epochs >= self.options.patience
        state.finished = state.stopped_early or stats.epoch >= self.options.epochs
        assert self.optimizer is not None and self.scheduler is not None
        save_last(
            self.files.last,
            model=self._model(),
            phase=stats.phase,
            optimizer=self.optimizer,
            scheduler=self.scheduler,
            state=state,
            fingerprint=self.fingerprint,
        )

    def _about(self, stats: EpochStats) -> dict[str, Any]:
        return {
            "backbone": self.options.backbone,
            "classes": list(self.plan.classes),
            "image_size": self.options.image_size,
            "epoch": stats.epoch,
            METRIC: stats.score,
        }

    # the end

    def finish(self, interrupted: bool) -> FinetuneResult:
        """Export the best epoch to ONNX, check it against torch, and describe the run.

        Raises:
            KeyboardInterrupt: the run was interrupted before any epoch finished.

        """
        from vigil.train.checkpoints import load_best
        from vigil.train.export import check_parity, classifier_spec, export_onnx, write_sidecar

        if self.state.best_epoch == 0:
            raise KeyboardInterrupt  # nothing finished, nothing to keep
        model = self._model()
        model.load_state_dict(load_best(self.files.best))
        onnx_path = export_onnx(model, self.options.image_size, self.plan.run_dir / "model.onnx")
        spec = classifier_spec(self.plan.classes, self.options.image_size)
        write_sidecar(onnx_path, spec)
        check_parity(model, onnx_path, spec, self._sample_images())
        history = [EpochStats.from_dict(entry) for entry in self.state.history]
        return FinetuneResult(
            onnx_path=onnx_path,
            spec=spec,
            history=history,
            best_epoch=self.state.best_epoch,
            interrupted=interrupted,
            checkpoint=self.files.best,
            stopped_early=self.state.stopped_early,
        )

    def _sample_images(self) -> list[np.ndarray]:
        """Return a few validation images as packed (uncropped), to check the export on."""
        import cv2

        from vigil.data import read_shard

        assert self.shards is not None
        images: list[np.ndarray] = []
        for path in self.shards.shard_paths("validation"):
            for sample in read_shard(path):
                image = cv2.imdecode(np.frombuffer(sample.jpg, np.uint8), cv2.IMREAD_COLOR)
                if image is not None:
                    images.append(cv2.cvtColor(image, cv2.COLOR_BGR2RGB))
                if len(images) == _PARITY_IMAGES:
                    return images
        return images

    # helpers

    def _model(self) -> Classifier:
        assert self.model is not None
        return self.model

    @contextmanager
    def _bar(self, number: int, phase: Phase) -> Iterator[Any]:
        tqdm = _tqdm()
        count = self.shards.counts.get("train", 0) if self.shards else 0
        bar = tqdm(
            total=-(-count // self.options.batch_size),
            desc=f"epoch {number}/{self.options.epochs} {phase}",
            unit="batch",
            disable=not self.progress,
            leave=True,
            dynamic_ncols=True,
            mininterval=0.5,
        )
        try:
            yield bar
        finally:
            bar.close()

    def _running(self, figures: _TrainFigures, bar: Any) -> str:
        """Loss, accuracy, images/s and time left (this epoch and the ones after it)."""
        images = max(1, figures.images)
        rate = figures.images / max(figures.seconds, 1e-9)
        done = bar.n / max(1, bar.total)
        epoch_seconds = figures.seconds / max(done, 1e-9)
        after = self.options.epochs - self.state.epoch - 1
        left = epoch_seconds * (1 - done) + after * self._epoch_seconds(epoch_seconds)
        return (
            f"loss {figures.loss_sum / images:.3f} acc {figures.correct / images:.3f} "
            f"{rate:.0f} img/s left <= {_duration(left)}"
        )

    def _epoch_seconds(self, estimate: float) -> float:
        history = self.state.history
        return float(history[-1]["seconds"]) if history else estimate


def _load_pretrained(model: Classifier, options: FinetuneOptions) -> None:
    """Put pretrained weights into every layer but the head.

    Raises:
        ConfigError: there are none (and the run is not from scratch).
        ModelError: the weights do not fit.

    """
    from vigil.train.backbones import backbone, load_body_weights, pretrained_state

    found = pretrained_state(options.backbone, options.weights)
    if found is None:
        raise ConfigError(_no_weights_message(backbone(options.backbone).url, options.backbone))
    state, source = found
    count = load_body_weights(model, state, source)
    logger.info("%s: %d pretrained tensors from %s", options.backbone, count, source)


def _no_weights_message(url: str | None, name: str) -> str:
    where = (
        f"download {url} and pass it as weights (--weights FILE)"
        if url
        else f"{name} has no published weights: pass a weights file"
    )
    return (
        f"no pretrained weights for {name} (none given, none in torch's hub cache, torchvision "
        f"not usable): {where}, or train from scratch (--from-scratch; needs far more images)"
    )


def _parameter_groups(module: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    """Weights of convolutions and linear layers decay; biases and norm weights do not."""
    decay = [p for p in module.parameters() if p.requires_grad and p.ndim > 1]
    plain = [p for p in module.parameters() if p.requires_grad and p.ndim <= 1]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": plain, "weight_decay": 0.0},
    ]


def _shard_folder(
    plan: _Plan, options: FinetuneOptions, manifest_path: str | Path | None, progress: bool
) -> Path:
    """Return a shard set of this manifest packed at ``image_size`` or more; pack one if none."""
    from vigil.data import PackOptions, pack_manifest

    for candidate in _shard_candidates(plan.run_dir, manifest_path):
        if _fits(candidate, plan.manifest, options.image_size):
            return candidate
    out = plan.run_dir / "shards"
    pack_options = PackOptions(size=options.image_size, workers=max(1, options.workers))
    with _pack_bar(progress, len(plan.manifest.items)) as tick:
        pack_manifest(plan.manifest, out, pack_options, tick)
    return out


def _shard_candidates(run_dir: Path, manifest_path: str | Path | None) -> list[Path]:
    candidates = [run_dir / "shards"]
    if manifest_path is not None:
        beside = Path(manifest_path).parent
        candidates += sorted(index.parent for index in beside.glob("*/index.json"))
    return candidates


def _fits(folder: Path, manifest: Manifest, image_size: int) -> bool:
    """Whether ``folder`` holds shards of ``manifest`` packed at ``image_size`` or more."""
    from vigil.data import read_index

    if not (folder / "index.json").is_file():
        return False
    try:
        index = read_index(folder)
    except SourceError:
        return False
    return (
        index.manifest_hash == manifest.hash
        and index.classes == manifest.classes
        and index.size >= image_size
        and {"train", "validation"} <= index.splits.keys()
    )


@contextmanager
def _pack_bar(progress: bool, total: int) -> Iterator[Callable[[int, int], None]]:
    tqdm = _tqdm()
    bar = tqdm(total=total, desc="packing shards", unit="image", disable=not progress)

    def tick(done: int, _total: int) -> None:
        bar.update(done - bar.n)

    try:
        yield tick
    finally:
        bar.close()


def classification_scores(confusion: np.ndarray) -> tuple[float, float, float]:
    """Accuracy, balanced accuracy and macro F1 from a confusion matrix (rows: true class).

    Balanced accuracy and macro F1 average over the classes that occur (true or predicted).
    """
    confusion = np.asarray(confusion, np.float64)
    total = confusion.sum()
    right = np.diag(confusion)
    actual, predicted = confusion.sum(axis=1), confusion.sum(axis=0)
    present = actual > 0
    recall = np.divide(right, actual, out=np.zeros_like(right), where=present)
    precision = np.divide(right, predicted, out=np.zeros_like(right), where=predicted > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros_like(right), where=both > 0)
    seen = present | (predicted > 0)
    accuracy = float(right.sum() / total) if total else 0.0
    balanced = float(recall[present].mean()) if present.any() else 0.0
    macro_f1 = float(f1[seen].mean()) if seen.any() else 0.0
    return accuracy, balanced, macro_f1


def _percentile_ms(seconds: list[float], q: float) -> float:
    return float(np.percentile(seconds, q) * 1000) if seconds else 0.0


def _summary(stats: EpochStats) -> str:
    return (
        f"loss {stats.train_loss:.3f} acc {stats.train_accuracy:.3f} "
        f"{stats.images_per_second:.0f} img/s | val loss {stats.val_loss:.3f} "
        f"bal. acc {stats.val_balanced_accuracy:.3f}{' *' if stats.improved else ''}"
    )


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(max(0.0, seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


__all__ = [
    "BACKBONE_NAMES",
    "METRIC",
    "EpochCallback",
    "EpochStats",
    "FinetuneOptions",
    "FinetuneResult",
    "class_weights",
    "classification_scores",
    "default_threads",
    "finetune",
]
