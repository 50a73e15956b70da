"""The ``probe`` method: a linear classifier on the vectors of a pretrained embed model.

As Custom Vision did, the photos go once through a pretrained network (the *backbone*, a
registered ``embed`` model) and a class-weighted logistic regression learns the classes from
its vectors; the regularisation strength C is the one that does best on the validation split.
The result is a tiny ONNX *head* (vector -> MatMul -> Add -> Softmax -> class probabilities)
whose outputs equal scikit-learn's ``predict_proba``; registered with ``spec.backbone`` naming
the backbone's version, it loads as one classifier (:class:`~vigil.tasks.probe.ProbeModel`).

Vectors are computed once per (image, backbone) and kept in an SQLite cache
(``VIGIL_HOME/cache/features.sqlite``), keyed by the image's sha256 and the backbone's key (the
sha256 of its file and of the spec it runs with), so a second run on the same photos, or a run
with other options, computes nothing again. Everything runs on a CPU, offline.
"""

from __future__ import annotations

import hashlib
import logging
import re
import sqlite3
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, closing, contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from vigil.errors import DependencyError, ModelError, SourceError, StorageError
from vigil.models.spec import ModelSpec

if TYPE_CHECKING:
    from vigil.models.api import Models
    from vigil.tasks.base import TaskModel
    from vigil.tasks.probe import ProbeModel

log = logging.getLogger(__name__)

C_GRID = (0.001, 0.01, 0.1, 1.0, 10.0, 100.0)
"""Inverse regularisation strengths tried; the best on the validation split wins."""
DEFAULT_C = 1.0
"""C used when the validation split has too few classes to choose by."""
MAX_ITERATIONS = 2000
CACHE_FILE = "features.sqlite"
_QUERY_CHUNK = 500

Progress = Callable[[int, int], None]
"""Called with (images done, images in all) while vectors are computed."""
Embedder = Callable[[np.ndarray], np.ndarray]
"""Turns an RGB image into its backbone vector."""


# The backbone


@dataclass(frozen=True)
class Backbone:
    """A pinned embed model that a probe reads vectors from.

    Attributes:
        ref: The registered version, ``name:version``: what the head's spec names.
        path: Its file on this machine.
        spec: Its registered spec.
        sha256: Its file's sha256.
        registered_from: The file this call registered it from (it was given as a file and
            not registered before); None otherwise.
    """

    ref: str
    path: Path
    spec: ModelSpec
    sha256: str
    registered_from: Path | None = None

    @property
    def key(self) -> str:
        """What its vectors are cached under: its file and the spec it runs with."""
        from vigil.tasks.probe import backbone_fingerprint

        return backbone_fingerprint(self.sha256, self.spec)

    @contextmanager
    def embedder(self, threads: int = 2) -> Iterator[Embedder]:
        """Load the backbone; yield the function from an RGB image to its vector."""
        from vigil.tasks import load_model

        model = load_model(self.path, self.spec, threads=threads)
        try:
            yield lambda image: embedding_of(model, image)
        finally:
            model.close()


def pin_backbone(ref: str, models: Models) -> Backbone:
    """Turn ``--backbone`` into a pinned, registered embed model.

    A registered name (``embedder``, ``embedder@production``) is pinned to the version it means
    now; a model file (``.onnx``, ``.tflite``) is registered first (once: the same file is found
    again by its sha256) under a name made from its file name.

    Raises:
        ModelError: the backbone is unknown or not an embed model.
    """
    candidate = Path(ref).expanduser()
    if candidate.is_file():
        return _pin_file(candidate, models)
    try:
        version = models.get(ref)
    except ModelError as exc:
        raise ModelError(f"backbone {ref}: {exc}") from None
    if version.spec.task != "embed":
        raise ModelError(
            f"backbone {ref} is a {version.spec.task} model, not an embed model: give an "
            "embedding model (vigil models list --task embed)"
        )
    assert version.path is not None  # get() fetches the file
    return Backbone(version.ref, version.path, version.spec, version.sha256)


def _pin_file(path: Path, models: Models) -> Backbone:
    from vigil.models.store import sha256_of

    task = _file_task(path)
    if task not in (None, "embed"):
        raise ModelError(
            f"backbone {path} is a {task} model, not an embed model; if its output is a "
            f"feature vector, register it as one: vigil models add {path} --name NAME "
            "--task embed"
        )
    name = backbone_name(path)
    version = models.registry.find_by_sha256(name, sha256_of(path))
    registered_from = path if version is None else None
    if version is None:
        _check_embeds(path)
        version = models.register(
            path, name, task="embed", description=f"image embedder from {path.name}"
        )
        log.info("registered the backbone %s as %s", path, version.ref)
    found = models.get(version.ref)
    assert found.path is not None
    return Backbone(found.ref, found.path, found.spec, found.sha256, registered_from)


def backbone_name(path: Path) -> str:
    """Return the registry name of a backbone file: its file name, made valid."""
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", path.stem).strip("-_")
    return (cleaned or "backbone")[:64]


def _file_task(path: Path) -> str | None:
    """Return the task a model file's sidecar or contents declare, or None."""
    from vigil.models.inspect import inspect_model
    from vigil.tasks.loader import read_sidecar, sidecar_path

    sidecar = read_sidecar(sidecar_path(path))
    declared = sidecar.data.get("task") if sidecar is not None else None
    return str(declared) if declared is not None else inspect_model(path).task


def _check_embeds(path: Path) -> None:
    from vigil.tasks import load_model

    load_model(path, ModelSpec(task="embed"), threads=1).close()


# The feature cache


class FeatureCache:
    """Backbone vectors of images, kept in an SQLite file between runs.

    Args:
        path: The SQLite file; None: ``features.sqlite`` in ``VIGIL_HOME/cache``.

    Nothing is opened until a vector is looked up or stored.
    """

    def __init__(self, path: Path | None = None) -> None:
        self._path = path

    @property
    def path(self) -> Path:
        """The SQLite file."""
        if self._path is None:
            from vigil.paths import home

            self._path = home() / "cache" / CACHE_FILE
        return self._path

    def lookup(self, backbone_key: str, images: Sequence[str]) -> dict[str, np.ndarray]:
        """Return the cached vector of each image sha256 that has one."""
        found: dict[str, np.ndarray] = {}
        wanted = list(dict.fromkeys(images))
        with self._connection() as connection:
            for start in range(0, len(wanted), _QUERY_CHUNK):
                chunk = wanted[start : start + _QUERY_CHUNK]
                marks = ",".join("?" * len(chunk))
                rows = connection.execute(
                    f"SELECT image, vector FROM features WHERE backbone = ? AND image IN ({marks})",
                    [backbone_key, *chunk],
                )
                for image, blob in rows:
                    found[image] = np.frombuffer(blob, np.float32)
        return found

    def store(self, backbone_key: str, vectors: dict[str, np.ndarray]) -> None:
        """Keep vectors by image sha256."""
        rows = [
            (backbone_key, image, np.asarray(v, np.float32).tobytes())
            for image, v in vectors.items()
        ]
        with self._connection() as connection, connection:
            connection.executemany(
                "INSERT OR REPLACE INTO features (backbone, image, vector) VALUES (?, ?, ?)", rows
            )

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        path = self.path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with closing(sqlite3.connect(path, timeout=30)) as connection:
                connection.execute(
                    "CREATE TABLE IF NOT EXISTS features (backbone TEXT NOT NULL, "
                    "image TEXT NOT NULL, vector BLOB NOT NULL, PRIMARY KEY (backbone, image))"
                )
                yield connection
        except (sqlite3.Error, OSError) as exc:
            raise StorageError(
                f"cannot use the feature cache {path}: {exc}; delete it to start afresh"
            ) from None


@dataclass(frozen=True)
class Features:
    """Backbone vectors of some images, and how many had to be computed."""

    vectors: np.ndarray
    """Shape (images, D), float32, in the order the images were given."""
    computed: int
    reused: int


def image_features(
    images: Sequence[tuple[Path, str]],
    backbone_key: str,
    open_embedder: Callable[[], AbstractContextManager[Embedder]],
    cache: FeatureCache | None,
    progress: Progress | None = None,
) -> Features:
    """Return the backbone vector of each (file, sha256), computing only what is not cached.

    The backbone is opened (``open_embedder``) only when some vector is missing.

    Raises:
        SourceError: an image that must be embedded cannot be read.
        StorageError: the cache cannot be used.
    """
    shas = [sha for _, sha in images]
    known = cache.lookup(backbone_key, shas) if cache is not None else {}
    missing = {sha: path for path, sha in images if sha not in known}
    if missing:
        log.info("computing backbone vectors of %d images (%d cached)", len(missing), len(known))
        with open_embedder() as embed:
            computed = _embed_all(missing, embed, progress)
        if cache is not None:
            cache.store(backbone_key, computed)
        known.update(computed)
    if not shas:
        return Features(np.zeros((0, 0), np.float32), 0, 0)
    vectors = np.stack([known[sha] for sha in shas]).astype(np.float32)
    return Features(vectors, len(missing), len(set(shas)) - len(missing))


def _embed_all(
    missing: dict[str, Path], embed: Embedder, progress: Progress | None
) -> dict[str, np.ndarray]:
    from vigil.data.imageinfo import read_image_quietly

    vectors: dict[str, np.ndarray] = {}
    for done, (sha, path) in enumerate(missing.items(), start=1):
        vectors[sha] = np.asarray(embed(read_image_quietly(path)), np.float32).reshape(-1)
        if progress is not None:
            progress(done, len(missing))
    return vectors


def embedding_of(model: TaskModel, image: np.ndarray) -> np.ndarray:
    """Return the vector an embed model gives an image.

    Raises:
        ModelError: the model gives no vector.
    """
    from vigil.results import Embeddings

    found = model.predict(image)
    if not isinstance(found, Embeddings):
        raise ModelError(f"the backbone is a {model.spec.task} model and gives no vector")
    return found.vector


def probe_scores(
    model: ProbeModel,
    images: Sequence[tuple[Path, str | None]],
    cache: FeatureCache | None = None,
) -> np.ndarray:
    """Return a probe's class probabilities of each image, its backbone vectors cached.

    Images without a known sha256 are hashed here. Vectors of a backbone that is a plain file
    (not a registered version) are not cached.

    Raises:
        SourceError: an image cannot be read.
    """
    hashed = [(path, sha or _file_sha256(path)) for path, sha in images]
    key = model.backbone_fingerprint
    features = image_features(
        hashed, key or "", lambda: nullcontext(model.embed), cache if key else None
    )
    return model.head_scores(features.vectors).astype(np.float64)


def _file_sha256(path: Path) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None


# The classifier


@dataclass(frozen=True)
class LinearHead:
    """Class probabilities as ``softmax(vectors @ weights.T + bias)``.

    Attributes:
        weights: Shape (classes, D), float32.
        bias: Shape (classes,), float32.
    """

    weights: np.ndarray
    bias: np.ndarray

    def scores(self, vectors: np.ndarray) -> np.ndarray:
        """Class probabilities of (N, D) vectors, shape (N, classes)."""
        logits = np.asarray(vectors, np.float64) @ self.weights.T.astype(np.float64) + self.bias
        shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
        return np.asarray(shifted / shifted.sum(axis=1, keepdims=True))

    def with_threshold(self, positive: int, threshold: float) -> LinearHead:
        """Return the head whose top class is ``positive`` when this one scores it >= threshold.

        For two classes only: the bias moves so that the decision boundary of the argmax is the
        threshold on this head's probability of ``positive``.

        Raises:
            ValueError: the head has other than two classes, or the threshold is not in (0, 1).
        """
        if len(self.bias) != 2 or not 0 < threshold < 1:
            raise ValueError("a threshold moves a two-class head; it must lie in (0, 1)")
        shift = np.log(threshold / (1 - threshold)) / 2
        sign = np.array([-1.0, 1.0]) if positive == 1 else np.array([1.0, -1.0])
        return replace(self, bias=(self.bias - sign * shift).astype(np.float32))


@dataclass(frozen=True)
class ProbeFit:
    """A fitted probe.

    Attributes:
        pipeline: The scikit-learn pipeline (standardisation + logistic regression).
        head: The same classifier as one linear layer with softmax.
        c: The chosen inverse regularisation strength.
        trials: (C, validation balanced accuracy, validation log loss) of every C tried.
        converged: Whether the solver converged.
    """

    pipeline: Any
    head: LinearHead
    c: float
    trials: tuple[tuple[float, float, float], ...]
    converged: bool


def fit_probe(
    train: tuple[np.ndarray, np.ndarray],
    validation: tuple[np.ndarray, np.ndarray],
    classes: int,
    seed: int = 0,
) -> ProbeFit:
    """Fit class-weighted logistic regressions for each C; keep the best on validation.

    The best C has the highest balanced accuracy on the validation vectors; of several that do
    equally well, the smallest (the strongest regularisation) wins: validation images that
    every C gets right cannot tell them apart, and the simplest model holds up best on images
    unlike them (weakly regularised heads were measured to fail on other parts of a clip whose
    validation part they scored perfectly). With fewer than two classes in validation, C is
    :data:`DEFAULT_C`.

    Args:
        train: (vectors (N, D), class indices (N,)) to learn from.
        validation: The same, to choose C by.
        classes: Number of classes (each must appear in ``train``).
        seed: Seed of the solver.

    Raises:
        DependencyError: scikit-learn is not installed.
        SourceError: a class has no training image.
    """
    _require_sklearn()
    x, y = train
    absent = sorted(set(range(classes)) - set(np.unique(y).tolist()))
    if absent:
        raise SourceError(f"class indices {absent} have no training images")
    val_x, val_y = validation
    if len(np.unique(val_y)) < 2:
        return _probe_fit(_fit(x, y, DEFAULT_C, seed), DEFAULT_C, ())
    fitted = [_fit(x, y, c, seed) for c in C_GRID]
    trials = tuple(
        (c, *_judge(pipeline, val_x, val_y, classes))
        for c, pipeline in zip(C_GRID, fitted, strict=True)
    )
    best = max(range(len(C_GRID)), key=lambda i: (trials[i][1], -i))  # ties: the smaller C
    return _probe_fit(fitted[best], C_GRID[best], trials)


def _probe_fit(pipeline: Any, c: float, trials: tuple[tuple[float, float, float], ...]) -> ProbeFit:
    converged = int(np.max(pipeline[-1].n_iter_)) < MAX_ITERATIONS
    return ProbeFit(pipeline, linear_head(pipeline), c, trials, converged)


def _fit(x: np.ndarray, y: np.ndarray, c: float, seed: int) -> Any:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    classifier = LogisticRegression(
        C=c, class_weight="balanced", max_iter=MAX_ITERATIONS, random_state=seed
    )
    pipeline = make_pipeline(StandardScaler(), classifier)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # reported through ProbeFit
        pipeline.fit(np.asarray(x, np.float64), y)
    return pipeline


def _judge(pipeline: Any, x: np.ndarray, y: np.ndarray, classes: int) -> tuple[float, float]:
    """Balanced accuracy and class-weighted log loss on (x, y)."""
    probabilities = np.clip(pipeline.predict_proba(np.asarray(x, np.float64)), 1e-12, 1.0)
    predicted = probabilities.argmax(axis=1)
    present = np.unique(y)
    recalls = [float(np.mean(predicted[y == k] == k)) for k in present]
    counts = np.bincount(y, minlength=classes)
    weights = len(y) / (len(present) * counts[y])
    loss = float(-np.sum(weights * np.log(probabilities[np.arange(len(y)), y])) / weights.sum())
    return round(float(np.mean(recalls)), 9), loss


def linear_head(pipeline: Any) -> LinearHead:
    """Fold the standardisation into the logistic regression: one weight matrix and a bias.

    A two-class regression has one decision function ``z``; its probabilities equal the
    softmax of ``(-z/2, z/2)``.
    """
    scaler, regression = pipeline[0], pipeline[-1]
    coef = regression.coef_ / scaler.scale_
    intercept = regression.intercept_ - coef @ scaler.mean_
    if coef.shape[0] == 1:
        coef = np.vstack([-coef[0] / 2, coef[0] / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    return LinearHead(coef.astype(np.float32), intercept.astype(np.float32))


def _require_sklearn() -> None:
    try:
        import sklearn  # noqa: F401
    except ImportError:
        raise DependencyError("scikit-learn", "train", "training a probe") from None


# The exported head


def export_head(head: LinearHead, path: Path) -> Path:
    """Write the head as ONNX: ``embedding`` (N, D) -> MatMul -> Add -> Softmax -> ``scores``.

    Raises:
        DependencyError: the onnx package is not installed.
        StorageError: the file cannot be written.
    """
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise DependencyError("onnx", "train", "exporting a probe's head") from None
    classes, dim = head.weights.shape
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["embedding", "weights"], ["logits_raw"]),
            helper.make_node("Add", ["logits_raw", "bias"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["scores"], axis=-1),
        ],
        "probe_head",
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", dim])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["batch", classes])],
        initializer=[
            numpy_helper.from_array(np.ascontiguousarray(head.weights.T), "weights"),
            numpy_helper.from_array(head.bias, "bias"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    model.producer_name = "vigil"
    onnx.checker.check_model(model)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, str(path))
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def head_spec(classes: Sequence[str], backbone: str) -> ModelSpec:
    """Return the spec of a probe head: a classifier of ``classes`` on ``backbone``."""
    return ModelSpec(
        task="classify",
        decoder="scores",
        labels=list(classes),
        top_k=len(classes),
        softmax="no",
        backbone=backbone,
    )


__all__ = [
    "CACHE_FILE",
    "C_GRID",
    "Backbone",
    "FeatureCache",
    "Features",
    "LinearHead",
    "ProbeFit",
    "backbone_name",
    "export_head",
    "fit_probe",
    "head_spec",
    "image_features",
    "linear_head",
    "pin_backbone",
    "probe_scores",
]
