"""Feed a trainer: (image, label) samples from packed shards or from loose files, in parallel.

Both kinds of source split an epoch into units of work (a shard; a few dozen loose files) that
worker processes read, decode and augment; the loader hands the units out round-robin, takes
the results back in the same round-robin order, and shuffles them within a buffer. So:

- every sample of a split comes exactly once per epoch;
- with shuffle on, unit order changes every epoch and samples mix across units;
- the same seed and number of workers give the same samples in the same order, augmentations
  included, however fast each worker runs.

Shards hold images already decoded, fixed and resized (``vigil data pack``), so a worker only
decodes a small JPEG; loose files are read and resized every epoch, exactly as packing does,
which makes the two comparable (``bench/train.py``). Nothing here needs PyTorch; a trainer turns
a batch into tensors with ``torch.from_numpy(batch.images).permute(0, 3, 1, 2)``.
"""

from __future__ import annotations

import itertools
import logging
import pickle
import queue
import random
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, NamedTuple, Protocol, Self

import cv2
import numpy as np

from vigil.data.config import Fit, LoaderOptions
from vigil.data.manifest import Manifest
from vigil.data.parallel import init_worker, worker_context
from vigil.data.shards import ShardIndex, read_index, read_shard
from vigil.data.transforms import Transform, fit_image
from vigil.errors import ConfigError, SourceError

logger = logging.getLogger(__name__)

_POLL_SECONDS = 0.5


class Sample(NamedTuple):
    """One training example: an image (RGB uint8 HxWx3 unless a transform says otherwise)."""

    image: np.ndarray
    label: int


class Batch(NamedTuple):
    """Stacked samples: images ``(N, H, W, 3)`` and labels ``(N,)`` int64."""

    images: np.ndarray
    labels: np.ndarray


@dataclass(frozen=True, slots=True)
class Unit:
    """A piece of an epoch that one worker reads: a shard path, or loose (file, label) pairs."""

    name: str
    shard: str | None = None
    files: tuple[tuple[str, int], ...] = ()


class SampleReader(Protocol):
    """Reads the samples of a unit; runs in worker processes, so it must be picklable."""

    def read(self, unit: Unit) -> Iterator[tuple[np.ndarray, int] | str]:
        """Yield (RGB image, class index) per sample, or a message for one it had to skip."""


class SampleSource(Protocol):
    """One split of a dataset as units of work."""

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names; labels are indices into this."""

    @property
    def reader(self) -> SampleReader:
        """What workers use to read this source's units."""

    def __len__(self) -> int:
        """Return the number of samples in one epoch."""

    def units(self, rng: random.Random | None) -> list[Unit]:
        """Return the epoch's units, shuffled with ``rng`` (None: stored order)."""


@dataclass(frozen=True)
class ShardReader:
    """Decodes the JPEGs of a shard to RGB arrays."""

    def read(self, unit: Unit) -> Iterator[tuple[np.ndarray, int] | str]:
        """Yield every sample of the unit's shard."""
        assert unit.shard is not None
        for sample in read_shard(unit.shard):
            image = cv2.imdecode(np.frombuffer(sample.jpg, np.uint8), cv2.IMREAD_COLOR)
            if image is None:
                yield f"{unit.shard}: sample {sample.key} does not decode"
                continue
            yield cv2.cvtColor(image, cv2.COLOR_BGR2RGB), sample.cls


@dataclass(frozen=True)
class FileReader:
    """Reads loose image files and resizes them as packing would."""

    size: int
    fit: Fit

    def read(self, unit: Unit) -> Iterator[tuple[np.ndarray, int] | str]:
        """Yield every decodable file of the unit; a message for each that is not."""
        from vigil.data.imageinfo import read_image_quietly

        for path, label in unit.files:
            try:
                image = read_image_quietly(path)
            except SourceError as exc:
                yield f"{exc} (skipped)"
                continue
            yield fit_image(image, self.size, self.fit), label


@dataclass(frozen=True)
class ShardSplit:
    """One split of a packed set (see :func:`open_shards`)."""

    index: ShardIndex
    split: str

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names of the packed set."""
        return self.index.classes

    @property
    def reader(self) -> ShardReader:
        """Decodes shard samples."""
        return ShardReader()

    def __len__(self) -> int:
        return self.index.counts.get(self.split, 0)

    def units(self, rng: random.Random | None) -> list[Unit]:
        """One unit per shard."""
        paths = [str(p) for p in self.index.shard_paths(self.split)]
        if rng is not None:
            rng.shuffle(paths)
        return [Unit(Path(p).name, shard=p) for p in paths]


@dataclass(frozen=True)
class FileSplit:
    """One split of a manifest, read from the original files every epoch.

    Attributes:
        manifest: The split manifest.
        split: ``train``, ``validation`` or ``test``.
        size: Resize as packing does: shorter side (or square) to this many pixels.
        fit: ``shorter`` or ``crop``, as for packing.
        files_per_unit: Files a worker reads per unit of work.

    """

    manifest: Manifest
    split: str
    size: int = 224
    fit: Fit = "shorter"
    files_per_unit: int = 32
    _files: tuple[tuple[str, int], ...] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        classes = self.manifest.classes
        files = tuple(
            (str(self.manifest.path_of(item)), classes.index(item.label))
            for item in self.manifest.split(self.split)
        )
        object.__setattr__(self, "_files", files)

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names of the manifest."""
        return self.manifest.classes

    @property
    def reader(self) -> FileReader:
        """Reads and resizes files."""
        return FileReader(self.size, self.fit)

    def __len__(self) -> int:
        return len(self._files)

    def units(self, rng: random.Random | None) -> list[Unit]:
        """Return the files, shuffled with ``rng``, in units of ``files_per_unit``."""
        files = list(self._files)
        if rng is not None:
            rng.shuffle(files)
        step = self.files_per_unit
        return [
            Unit(f"files-{start // step}", files=tuple(files[start : start + step]))
            for start in range(0, len(files), step)
        ]


def open_shards(folder: str | Path, split: str) -> ShardSplit:
    """One split of the packed set in ``folder`` (reads its ``index.json``).

    Raises:
        SourceError: no index there, or no such split.

    """
    index = read_index(folder)
    index.shard_paths(split)  # raises for an unknown split
    return ShardSplit(index, split)


class Loader:
    """Iterate samples of a source with worker processes; see the module docstring.

    Iterating the loader itself runs the next epoch (0, 1, 2, ...); :meth:`epoch` runs a given
    one. Workers start with the first epoch and live until :meth:`close` (or the ``with``
    block ends); leaving an epoch early stops them, and the next epoch starts new ones.
    """

    def __init__(
        self,
        source: SampleSource,
        options: LoaderOptions | None = None,
        transform: Transform | None = None,
    ) -> None:
        self.source = source
        self.options = options or LoaderOptions()
        self.transform = transform
        self._next_epoch = 0
        self._pool: _WorkerPool | None = None
        self._reported: set[str] = set()

    @property
    def classes(self) -> tuple[str, ...]:
        """Class names; a sample's label indexes this."""
        return self.source.classes

    def __len__(self) -> int:
        return len(self.source)

    def __iter__(self) -> Iterator[Sample]:
        number = self._next_epoch
        self._next_epoch += 1
        return self.epoch(number)

    def epoch(self, number: int) -> Iterator[Sample]:
        """Yield the samples of epoch ``number``: each once, in the order the seed gives."""
        rng = random.Random(f"vigil-loader:{self.options.seed}:{number}")
        samples = self._samples(number, rng if self.options.shuffle else None)
        if not self.options.shuffle:
            return samples
        return _shuffled(samples, self.options.shuffle_buffer, rng)

    def batches(
        self, batch_size: int, epoch: int | None = None, drop_last: bool = False
    ) -> Iterator[Batch]:
        """Yield stacked samples of one epoch (the next one unless ``epoch`` is given).

        Raises:
            ConfigError: the images differ in size (add a crop transform, or pack with
                ``--fit crop``).

        """
        if batch_size < 1:
            raise ConfigError(f"batch size must be at least 1, got {batch_size}")
        samples = iter(self) if epoch is None else self.epoch(epoch)
        pending: list[Sample] = []
        for sample in samples:
            pending.append(sample)
            if len(pending) == batch_size:
                yield stack(pending)
                pending = []
        if pending and not drop_last:
            yield stack(pending)

    def close(self) -> None:
        """Stop the worker processes (a later epoch starts new ones)."""
        if self._pool is not None:
            self._pool.stop()
            self._pool = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def _samples(self, number: int, rng: random.Random | None) -> Iterator[Sample]:
        units = list(enumerate(self.source.units(rng)))
        seed_key = (self.options.seed, number)
        if self.options.workers == 0:
            chunks: Iterable[_Chunk] = produce_chunks(
                self.source.reader, self.transform, units, seed_key, self.options.chunk
            )
        else:
            chunks = self._from_workers(units, seed_key)
        for chunk in chunks:
            self._report(chunk.skipped)
            yield from chunk.samples()

    def _from_workers(
        self, units: Sequence[tuple[int, Unit]], seed_key: tuple[int, int]
    ) -> Iterator[_Chunk]:
        if self._pool is not None and self._pool.busy:  # an earlier epoch was left unfinished
            self.close()
        if self._pool is None:
            started = _WorkerPool(self.source.reader, self.transform, self.options)
            started.start()
            self._pool = started
        pool = self._pool
        finished = False
        try:
            yield from pool.run(units, seed_key)
            finished = True
        finally:
            if not finished and self._pool is pool:
                self.close()

    def _report(self, skipped: Sequence[str]) -> None:
        for message in skipped:
            if message not in self._reported:
                self._reported.add(message)
                logger.warning("%s", message)


def stack(samples: Sequence[Sample]) -> Batch:
    """Stack samples of one size into a :class:`Batch`.

    Raises:
        ConfigError: the images differ in shape.

    """
    shapes = {sample.image.shape for sample in samples}
    if len(shapes) > 1:
        shown = " and ".join(str(s) for s in sorted(shapes)[:2])
        raise ConfigError(
            f"images of one batch differ in shape ({shown}): add a crop transform "
            "(CenterCrop, RandomResizedCrop) or pack with --fit crop"
        )
    images = np.stack([sample.image for sample in samples])
    labels = np.array([sample.label for sample in samples], dtype=np.int64)
    return Batch(images, labels)


@dataclass
class _Chunk:
    """Samples on their way from a worker: images as a list, or stacked to travel as one array."""

    images: list[np.ndarray] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    stacked: np.ndarray | None = None

    def add(self, image: np.ndarray, label: int) -> None:
        self.images.append(image)
        self.labels.append(label)

    def compact(self) -> _Chunk:
        """Return the chunk with its images in one array where they share a shape."""
        shapes = {(image.shape, image.dtype) for image in self.images}
        if len(shapes) != 1:
            return self
        return _Chunk([], self.labels, self.skipped, np.stack(self.images))

    def samples(self) -> Iterator[Sample]:
        images = self.images if self.stacked is None else self.stacked
        for image, label in zip(images, self.labels, strict=True):
            yield Sample(image, label)


@dataclass(frozen=True)
class _Failure:
    message: str


_END = "end-of-epoch"


def produce_chunks(
    reader: SampleReader,
    transform: Transform | None,
    units: Iterable[tuple[int, Unit]],
    seed_key: tuple[int, int],
    size: int,
) -> Iterator[_Chunk]:
    """Read ``units`` and yield their samples in chunks of ``size``; in a worker or in-process.

    The transform's generator for the unit at ``position`` is seeded with
    ``(seed, epoch, position)``, so results do not depend on which worker reads it.
    """
    chunk = _Chunk()
    for position, unit in units:
        rng = np.random.default_rng([*seed_key, position])
        for result in reader.read(unit):
            if isinstance(result, str):
                chunk.skipped.append(result)
                continue
            image, label = result
            chunk.add(transform(image, rng) if transform else image, label)
            if len(chunk.labels) >= size:
                yield chunk
                chunk = _Chunk()
    if chunk.labels or chunk.skipped:
        yield chunk


def _shuffled(samples: Iterable[Sample], size: int, rng: random.Random) -> Iterator[Sample]:
    """Shuffle within a buffer of up to ``size`` samples.

    Output starts once a tenth of the buffer is filled, and the buffer grows to its full size
    by taking in two samples for each one handed out, so the first batch does not wait for the
    whole buffer.
    """
    source = iter(samples)
    start = max(1, size // 10)
    buffer: list[Sample] = []
    for sample in source:
        buffer.append(sample)
        if len(buffer) < size:
            buffer.extend(itertools.islice(source, 1))
        if len(buffer) >= start:
            yield _take(buffer, rng)
    rng.shuffle(buffer)
    yield from buffer


def _take(buffer: list[Sample], rng: random.Random) -> Sample:
    """Remove and return a random sample of ``buffer``."""
    slot = rng.randrange(len(buffer))
    buffer[slot], buffer[-1] = buffer[-1], buffer[slot]
    return buffer.pop()


def _worker_main(
    reader: SampleReader, transform: Transform | None, tasks: Any, results: Any, size: int
) -> None:
    """Run one worker process: read the units of each epoch until told to stop."""
    init_worker()
    while True:
        task = _next_task(tasks)
        if task is None:
            return
        seed_key, units = task
        try:
            for chunk in produce_chunks(reader, transform, units, seed_key, size):
                results.put(chunk.compact())
        except Exception as exc:
            results.put(_Failure(f"{type(exc).__name__}: {exc}"))
            continue
        results.put(_END)


def _next_task(tasks: Any) -> Any:
    """Return the next task, or None when told to stop or when the loader is gone."""
    import multiprocessing

    parent = multiprocessing.parent_process()
    while True:
        try:
            return tasks.get(timeout=_POLL_SECONDS * 4)
        except queue.Empty:
            if parent is not None and not parent.is_alive():
                return None


class _WorkerPool:
    """Worker processes, each with its own task and result queues, read round-robin."""

    def __init__(
        self, reader: SampleReader, transform: Transform | None, options: LoaderOptions
    ) -> None:
        self._reader = reader
        self._transform = transform
        self._options = options
        self._processes: list[Any] = []
        self._tasks: list[Any] = []
        self._results: list[Any] = []
        self.busy = False

    def start(self) -> None:
        context = worker_context()
        for index in range(self._options.workers):
            tasks, results = context.Queue(), context.Queue(maxsize=self._options.prefetch)
            args = (self._reader, self._transform, tasks, results, self._options.chunk)
            process = context.Process(
                target=_worker_main, args=args, daemon=True, name=f"vigil-loader-{index}"
            )
            try:
                process.start()
            except (pickle.PicklingError, AttributeError, TypeError) as exc:
                self.stop()
                raise ConfigError(
                    f"the transform cannot be sent to worker processes ({exc}): use a "
                    "module-level function or class, or workers=0"
                ) from None
            self._processes.append(process)
            self._tasks.append(tasks)
            self._results.append(results)

    def run(self, units: Sequence[tuple[int, Unit]], seed_key: tuple[int, int]) -> Iterator[_Chunk]:
        count = len(self._processes)
        self.busy = True
        for index, tasks in enumerate(self._tasks):
            tasks.put((seed_key, list(units[index::count])))
        active = list(range(count))
        while active:
            for index in list(active):
                message = self._receive(index)
                if isinstance(message, _Failure):
                    raise SourceError(f"loader worker {index}: {message.message}")
                if message == _END:
                    active.remove(index)
                    continue
                yield message
        self.busy = False

    def stop(self) -> None:
        """Stop every worker: politely between epochs, at once in the middle of one."""
        for tasks in self._tasks:
            tasks.put(None)
        for process in self._processes:
            if self.busy:
                process.terminate()
            process.join(timeout=5.0)
            if process.is_alive():
                process.kill()
                process.join(timeout=5.0)
        for channel in (*self._tasks, *self._results):
            channel.close()
            channel.cancel_join_thread()
        self._processes, self._tasks, self._results = [], [], []

    def _receive(self, index: int) -> Any:
        """Return the next message of worker ``index``; wait while it is alive and not silent."""
        deadline = time.monotonic() + self._options.worker_timeout_s
        while True:
            try:
                return self._results[index].get(timeout=_POLL_SECONDS)
            except queue.Empty:
                pass
            process = self._processes[index]
            if not process.is_alive():
                raise SourceError(
                    f"loader worker {index} stopped unexpectedly (exit code {process.exitcode}); "
                    "out of memory? try fewer workers"
                )
            if time.monotonic() > deadline:
                raise SourceError(
                    f"loader worker {index} sent nothing for {self._options.worker_timeout_s:g} s"
                )


__all__ = [
    "Batch",
    "FileReader",
    "FileSplit",
    "Loader",
    "Sample",
    "SampleReader",
    "SampleSource",
    "ShardReader",
    "ShardSplit",
    "Unit",
    "open_shards",
    "produce_chunks",
    "stack",
]
