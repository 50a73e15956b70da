"""Judging a classifier honestly: metrics, curves, thresholds and mistakes on held-out images.

Everything starts from two arrays: the true class of each image and the model's probability of
every class (``scores``, shape (images, classes)). :func:`evaluate_scores` turns them into an
:class:`Evaluation`:

- accuracy, balanced accuracy (the mean per-class recall, which a dominant class cannot
  inflate), per-class precision, recall and F1, the confusion matrix (rows: true class,
  columns: predicted class);
- ROC and precision-recall curves with their areas: for two classes, those of the positive
  class; for more, one curve per class against the rest and the macro average of the areas.
  The precision-recall area is the average precision (precision at each threshold weighed by
  the recall it adds);
- for two classes, :class:`OperatingPoint` s: the score threshold on the positive class that
  reaches a target recall or precision on the *validation* images, and the precision and recall
  that threshold gives on the *test* images (the honest estimate of what it will do);
- the misclassified images, most confident mistakes first.

A class that is never predicted has precision 0; a threshold's precision when it keeps nothing,
or a recall without positive images, is undefined (None).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from vigil.errors import ModelError, SourceError

if TYPE_CHECKING:
    from vigil.tasks.base import TaskModel
    from vigil.train.probe import FeatureCache
    from vigil.train.report import DataSummary

Target = Literal["recall", "precision"]
STANDARD_TARGETS: tuple[tuple[Target, float], ...] = (
    ("recall", 0.90),
    ("recall", 0.95),
    ("recall", 0.99),
    ("precision", 0.90),
    ("precision", 0.95),
    ("precision", 0.99),
)
"""Targets every two-class report shows a threshold for, besides the one asked for."""

_TOLERANCE = 1e-9


@dataclass(frozen=True, slots=True)
class ClassMetrics:
    """How well one class is found.

    Attributes:
        label: The class.
        precision: Of the images predicted as this class, the share that are (0 if none are).
        recall: Of the images of this class, the share predicted as it (0 if there are none).
        f1: The harmonic mean of the two.
        support: Images of this class.
    """

    label: str
    precision: float
    recall: float
    f1: float
    support: int


@dataclass(frozen=True)
class Curve:
    """A ROC or precision-recall curve of one class against the rest.

    Attributes:
        label: The class.
        x: False positive rate (ROC) or recall (precision-recall), one value per threshold.
        y: True positive rate (ROC) or precision.
        thresholds: The score threshold of each point (``inf``: nothing kept).
        area: The area under the ROC curve, or the average precision.
    """

    label: str
    x: np.ndarray
    y: np.ndarray
    thresholds: np.ndarray
    area: float


@dataclass(frozen=True, slots=True)
class Rates:
    """What deciding "positive when the score reaches a threshold" gives on some images."""

    precision: float | None
    recall: float | None
    specificity: float | None
    """Share of the negative images discarded (true negative rate)."""


@dataclass(frozen=True, slots=True)
class OperatingPoint:
    """A threshold on the positive class's score chosen on validation images for a target.

    Attributes:
        target: ``recall`` or ``precision``.
        goal: The value asked for, e.g. 0.99.
        threshold: The score threshold; None when no threshold reaches the goal on validation.
        validation: What the threshold gives on the validation images.
        test: What it gives on the test images.
    """

    target: Target
    goal: float
    threshold: float | None
    validation: Rates | None
    test: Rates | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "target": self.target,
            "goal": self.goal,
            "threshold": _round(self.threshold),
            "validation": _rates_dict(self.validation),
            "test": _rates_dict(self.test),
        }


@dataclass(frozen=True, slots=True)
class Mistake:
    """A misclassified image."""

    key: str
    true_label: str
    predicted: str
    score: float
    """The model's probability of the class it predicted."""


@dataclass(frozen=True)
class Evaluation:
    """A classifier's results on labelled images; see the module docstring.

    Attributes:
        classes: Class names; class ``i`` is column ``i`` of ``scores``.
        y_true: The true class index of each image.
        scores: The probability of each class, shape (images, classes).
        predicted: The predicted class index of each image.
        keys: A name for each image (its path).
        positive: For two classes, the index of the class the curves and thresholds are about.
        threshold: For two classes, the score of the positive class from which it is
            predicted; None: the class with the highest score.
        accuracy: Share of images predicted right.
        balanced_accuracy: Mean recall over the classes that have images.
        macro_f1: Mean F1 over the classes that have images or predictions.
        per_class: Metrics of each class.
        confusion: Counts, rows the true class, columns the predicted class.
        roc: ROC curves (the positive class's for two classes, else one per class).
        pr: Precision-recall curves, likewise.
        roc_auc: Area under the ROC curve (macro average for more classes); None when
            undefined (a class without images).
        pr_auc: Average precision (macro average for more classes); None when undefined.
        operating_points: Thresholds for targets (two classes only).
        mistakes: The misclassified images, most confident first.
    """

    classes: tuple[str, ...]
    y_true: np.ndarray
    scores: np.ndarray
    predicted: np.ndarray
    keys: tuple[str, ...]
    positive: int | None
    threshold: float | None
    accuracy: float
    balanced_accuracy: float
    macro_f1: float
    per_class: tuple[ClassMetrics, ...]
    confusion: np.ndarray
    roc: tuple[Curve, ...]
    pr: tuple[Curve, ...]
    roc_auc: float | None
    pr_auc: float | None
    operating_points: tuple[OperatingPoint, ...] = ()
    mistakes: tuple[Mistake, ...] = field(default=())

    @property
    def images(self) -> int:
        """Number of images evaluated."""
        return len(self.y_true)

    @property
    def positive_label(self) -> str | None:
        """The positive class's name (two classes), else None."""
        return self.classes[self.positive] if self.positive is not None else None

    def metrics(self) -> dict[str, Any]:
        """Return the headline numbers as JSON-ready values (what the registry keeps)."""
        return {
            "images": self.images,
            "accuracy": _round(self.accuracy),
            "balanced_accuracy": _round(self.balanced_accuracy),
            "macro_f1": _round(self.macro_f1),
            "roc_auc": _round(self.roc_auc),
            "pr_auc": _round(self.pr_auc),
            "per_class": {
                m.label: {
                    "precision": _round(m.precision),
                    "recall": _round(m.recall),
                    "f1": _round(m.f1),
                    "support": m.support,
                }
                for m in self.per_class
            },
        }

    def to_dict(self) -> dict[str, Any]:
        """Everything but the curves' points, as JSON-ready values."""
        return {
            "classes": list(self.classes),
            **self.metrics(),
            "positive": self.positive_label,
            "threshold": _round(self.threshold),
            "confusion": self.confusion.tolist(),
            "operating_points": [p.to_dict() for p in self.operating_points],
            "mistakes": [
                {"image": m.key, "true": m.true_label, "predicted": m.predicted, "score": m.score}
                for m in self.mistakes
            ],
        }

    def lines(self) -> list[str]:
        """Return the numbers for a terminal: accuracy, classes, confusion, thresholds."""
        from vigil.train.report import evaluation_lines

        return evaluation_lines(self)


def evaluate_scores(
    y_true: Sequence[int] | np.ndarray,
    scores: np.ndarray,
    classes: Sequence[str],
    *,
    keys: Sequence[str] | None = None,
    positive: int | None = None,
    threshold: float | None = None,
    operating_points: Sequence[OperatingPoint] = (),
) -> Evaluation:
    """Compute every metric of :class:`Evaluation` from true classes and class probabilities.

    Args:
        y_true: The true class index of each image.
        scores: Probabilities, shape (images, classes).
        classes: Class names.
        keys: A name per image (default: its index).
        positive: For two classes, the class the curves and thresholds are about (default 1).
        threshold: For two classes, predict ``positive`` when its score reaches this; None:
            the class with the highest score.
        operating_points: Thresholds chosen beforehand, kept in the result.

    Raises:
        ValueError: the arrays do not fit each other or the classes.
    """
    truth, probabilities = _checked(y_true, scores, classes)
    binary = len(classes) == 2
    positive_index = (1 if positive is None else positive) if binary else None
    predicted = decide(probabilities, positive_index, threshold if binary else None)
    confusion = confusion_matrix(truth, predicted, len(classes))
    per_class = class_metrics(confusion, classes)
    roc, pr = _curves(truth, probabilities, classes, positive_index)
    names = tuple(keys) if keys is not None else tuple(str(i) for i in range(len(truth)))
    return Evaluation(
        classes=tuple(classes),
        y_true=truth,
        scores=probabilities,
        predicted=predicted,
        keys=names,
        positive=positive_index,
        threshold=threshold if binary else None,
        accuracy=float(np.mean(truth == predicted)) if len(truth) else 0.0,
        balanced_accuracy=_mean([m.recall for m in per_class if m.support > 0]),
        macro_f1=_mean([m.f1 for m, used in zip(per_class, _used(confusion), strict=True) if used]),
        per_class=per_class,
        confusion=confusion,
        roc=roc,
        pr=pr,
        roc_auc=_mean_area(roc, len(classes)),
        pr_auc=_mean_area(pr, len(classes)),
        operating_points=tuple(operating_points),
        mistakes=find_mistakes(truth, predicted, probabilities, classes, names),
    )


def decide(scores: np.ndarray, positive: int | None, threshold: float | None) -> np.ndarray:
    """Return the predicted class of each row: the best, or the positive one from a threshold."""
    if positive is None or threshold is None:
        return np.asarray(np.argmax(scores, axis=1), np.int64)
    negative = 1 - positive
    chosen = np.where(scores[:, positive] >= threshold, positive, negative)
    return np.asarray(chosen, np.int64)


def confusion_matrix(y_true: np.ndarray, predicted: np.ndarray, classes: int) -> np.ndarray:
    """Count (true, predicted) pairs; shape (classes, classes)."""
    matrix = np.zeros((classes, classes), np.int64)
    np.add.at(matrix, (y_true, predicted), 1)
    return matrix


def class_metrics(confusion: np.ndarray, classes: Sequence[str]) -> tuple[ClassMetrics, ...]:
    """Precision, recall, F1 and support of each class from a confusion matrix."""
    found = []
    for index, label in enumerate(classes):
        hits = int(confusion[index, index])
        support = int(confusion[index].sum())
        predicted = int(confusion[:, index].sum())
        precision = hits / predicted if predicted else 0.0
        recall = hits / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        found.append(ClassMetrics(label, precision, recall, f1, support))
    return tuple(found)


def roc_curve(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, ...]:
    """Return false and true positive rates at every distinct score, highest first.

    Returns:
        (false positive rates, true positive rates, thresholds), the first threshold ``inf``.
    """
    true_hits, false_hits, thresholds = _cumulative_hits(positive, scores)
    fpr = np.concatenate([[0.0], false_hits / max(false_hits[-1], 1)])
    tpr = np.concatenate([[0.0], true_hits / max(true_hits[-1], 1)])
    return fpr, tpr, np.concatenate([[np.inf], thresholds])


def precision_recall_curve(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, ...]:
    """Precision and recall at every distinct score, from the highest threshold down.

    Returns:
        (recalls, precisions, thresholds); the first point is (recall 0, precision 1) at
        threshold ``inf``.
    """
    true_hits, false_hits, thresholds = _cumulative_hits(positive, scores)
    precision = true_hits / (true_hits + false_hits)
    recall = true_hits / max(true_hits[-1], 1)
    return (
        np.concatenate([[0.0], recall]),
        np.concatenate([[1.0], precision]),
        np.concatenate([[np.inf], thresholds]),
    )


def area_under(x: np.ndarray, y: np.ndarray) -> float:
    """Trapezoidal area under a curve whose x values do not decrease."""
    return float(np.sum(np.diff(x) * (y[1:] + y[:-1]) / 2))


def average_precision(recall: np.ndarray, precision: np.ndarray) -> float:
    """Sum of precision at each threshold times the recall it adds (no interpolation)."""
    return float(np.sum(np.diff(recall) * precision[1:]))


def threshold_for(
    target: Target, goal: float, positive: np.ndarray, scores: np.ndarray
) -> float | None:
    """Return the threshold on ``scores`` that reaches ``goal`` for ``target``, or None.

    For recall, the highest threshold whose recall is at least ``goal`` (it discards the most
    negatives); for precision, the lowest threshold whose precision is at least ``goal`` (it
    keeps the most positives). The threshold lies halfway between the lowest score it keeps and
    the next lower score, so it keeps the same images with a margin on either side. None when
    no threshold reaches the goal or there are no positives.
    """
    positive = np.asarray(positive, bool)
    scores = np.asarray(scores, np.float64)
    if not positive.any():
        return None
    if target == "recall":
        ranked = np.sort(scores[positive])[::-1]
        needed = max(1, math.ceil(goal * len(ranked) - _TOLERANCE))
        return _with_margin(float(ranked[needed - 1]), scores)
    _recall, precision, thresholds = precision_recall_curve(positive, scores)
    reached = np.flatnonzero(precision[1:] >= goal - _TOLERANCE)
    if not len(reached):
        return None
    return _with_margin(float(thresholds[1:][reached[-1]]), scores)


def _with_margin(lowest_kept: float, scores: np.ndarray) -> float:
    """Return the point halfway between ``lowest_kept`` and the next lower score, if any."""
    below = scores[scores < lowest_kept]
    return (lowest_kept + float(below.max())) / 2 if len(below) else lowest_kept


def rates_at(positive: np.ndarray, scores: np.ndarray, threshold: float) -> Rates:
    """Precision, recall and specificity of "positive when the score reaches ``threshold``"."""
    positive = np.asarray(positive, bool)
    kept = scores >= threshold
    true_hits = int(np.sum(kept & positive))
    kept_count = int(kept.sum())
    negatives = int((~positive).sum())
    return Rates(
        precision=true_hits / kept_count if kept_count else None,
        recall=true_hits / int(positive.sum()) if positive.any() else None,
        specificity=int(np.sum(~kept & ~positive)) / negatives if negatives else None,
    )


def operating_point(
    target: Target,
    goal: float,
    validation: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
) -> OperatingPoint:
    """Choose a threshold for ``target`` on validation and measure it on test.

    Args:
        target: ``recall`` or ``precision``.
        goal: The value to reach, in (0, 1].
        validation: (is positive, positive-class score) of the validation images.
        test: The same of the test images.
    """
    threshold = threshold_for(target, goal, *validation)
    if threshold is None:
        return OperatingPoint(target, goal, None, None, None)
    return OperatingPoint(
        target, goal, threshold, rates_at(*validation, threshold), rates_at(*test, threshold)
    )


def operating_points(
    validation: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    extra: tuple[Target, float] | None = None,
) -> tuple[OperatingPoint, ...]:
    """Choose thresholds for :data:`STANDARD_TARGETS` and ``extra``; measure them on test."""
    targets = list(STANDARD_TARGETS)
    if extra is not None and extra not in targets:
        targets.append(extra)
    ordered = sorted(targets, key=lambda t: (t[0] != "recall", t[1]))
    return tuple(operating_point(target, goal, validation, test) for target, goal in ordered)


def find_mistakes(
    y_true: np.ndarray,
    predicted: np.ndarray,
    scores: np.ndarray,
    classes: Sequence[str],
    keys: Sequence[str],
) -> tuple[Mistake, ...]:
    """Return the misclassified images, the most confident mistakes first."""
    wrong = np.flatnonzero(y_true != predicted)
    found = [
        Mistake(
            keys[int(i)],
            classes[int(y_true[i])],
            classes[int(predicted[i])],
            round(float(scores[i, predicted[i]]), 4),
        )
        for i in wrong
    ]
    return tuple(sorted(found, key=lambda m: (-m.score, m.key)))


def _checked(
    y_true: Sequence[int] | np.ndarray, scores: np.ndarray, classes: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    truth = np.asarray(y_true, np.int64).reshape(-1)
    probabilities = np.asarray(scores, np.float64)
    if len(classes) < 2:
        raise ValueError(f"evaluation needs at least two classes, got {len(classes)}")
    if probabilities.shape != (len(truth), len(classes)):
        raise ValueError(
            f"scores must have shape ({len(truth)}, {len(classes)}), got {probabilities.shape}"
        )
    if len(truth) and (truth.min() < 0 or truth.max() >= len(classes)):
        raise ValueError(f"true classes must lie in 0..{len(classes) - 1}")
    return truth, probabilities


def _cumulative_hits(
    positive: np.ndarray, scores: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Count true and false positives kept at each distinct score, highest first."""
    order = np.argsort(-np.asarray(scores, np.float64), kind="stable")
    ranked = np.asarray(scores, np.float64)[order]
    hits = np.asarray(positive, bool)[order]
    last_of_each = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]
    true_hits = np.cumsum(hits)[last_of_each].astype(np.float64)
    false_hits = (last_of_each + 1) - true_hits
    return true_hits, false_hits, ranked[last_of_each]


def _curves(
    truth: np.ndarray, scores: np.ndarray, classes: Sequence[str], positive: int | None
) -> tuple[tuple[Curve, ...], tuple[Curve, ...]]:
    """ROC and precision-recall curves: the positive class's, or one per class."""
    indices = [positive] if positive is not None else range(len(classes))
    roc, pr = [], []
    for index in indices:
        is_class = truth == index
        if not is_class.any() or is_class.all():
            continue  # a curve needs images of the class and of the rest
        fpr, tpr, thresholds = roc_curve(is_class, scores[:, index])
        roc.append(Curve(classes[index], fpr, tpr, thresholds, area_under(fpr, tpr)))
        recall, precision, pr_thresholds = precision_recall_curve(is_class, scores[:, index])
        area = average_precision(recall, precision)
        pr.append(Curve(classes[index], recall, precision, pr_thresholds, area))
    return tuple(roc), tuple(pr)


def _mean_area(curves: Sequence[Curve], classes: int) -> float | None:
    """Return the one curve's area (two classes) or the mean over classes; None if missing."""
    wanted = 1 if classes == 2 else classes
    if len(curves) != wanted:
        return None
    return float(np.mean([c.area for c in curves]))


def _used(confusion: np.ndarray) -> list[bool]:
    return [bool(confusion[i].sum() or confusion[:, i].sum()) for i in range(len(confusion))]


def _mean(values: Sequence[float]) -> float:
    return float(np.mean(values)) if len(values) else 0.0


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def _rates_dict(rates: Rates | None) -> dict[str, float | None] | None:
    if rates is None:
        return None
    return {
        "precision": _round(rates.precision),
        "recall": _round(rates.recall),
        "specificity": _round(rates.specificity),
    }


# Scoring models on images


def class_scores(
    model: TaskModel,
    images: Sequence[tuple[Path, str | None]],
    classes: Sequence[str],
    *,
    cache: FeatureCache | None = None,
) -> np.ndarray:
    """Return each image's probability of each of ``classes``, shape (images, classes).

    A probe (backbone + head) computes the backbone's vectors through ``cache`` when one is
    given (images with a known sha256 are embedded once); other classifiers run on each image
    with every class reported.

    Args:
        model: A loaded classifier.
        images: (file, sha256 or None) of each image.
        classes: The classes, in the order of the columns; each must be one of the model's
            labels.
        cache: Where backbone vectors are kept between runs.

    Raises:
        ModelError: the model is no classifier, or does not know a class.
        SourceError: an image cannot be read.
    """
    from vigil.tasks.probe import ProbeModel

    columns = label_columns(model, classes)
    if isinstance(model, ProbeModel):
        from vigil.train.probe import probe_scores

        return probe_scores(model, images, cache)[:, columns]
    return _per_image_scores(model, [path for path, _ in images])[:, columns]


def label_columns(model: TaskModel, classes: Sequence[str]) -> list[int]:
    """Return the model's output position of each class.

    Raises:
        ModelError: the model is not a classifier with labels, or lacks one of ``classes``.
    """
    labels = model.spec.labels
    if model.spec.task != "classify" or not labels:
        raise ModelError(
            f"evaluation needs a classifier with labels; this is a {model.spec.task} model"
            + ("" if labels else " without labels")
        )
    missing = [c for c in classes if c not in labels]
    if missing:
        raise ModelError(
            f"the model does not know the class{'es' if len(missing) > 1 else ''} "
            f"{', '.join(repr(m) for m in missing)} of the data (its labels: "
            f"{', '.join(labels[:10])}{', ...' if len(labels) > 10 else ''})"
        )
    return [labels.index(c) for c in classes]


def _per_image_scores(model: TaskModel, paths: Sequence[Path]) -> np.ndarray:
    """Run the model on each image with every class reported; one row of scores per image."""
    from vigil.data.imageinfo import read_image_quietly
    from vigil.results import Classifications

    labels = model.spec.labels or []
    offset = model.spec.label_offset
    original = model.spec
    model.spec = original.model_copy(update={"top_k": len(labels) + offset, "score_threshold": 0.0})
    try:
        rows = np.zeros((len(paths), len(labels)), np.float64)
        for row, path in enumerate(paths):
            found = model.predict(read_image_quietly(path))
            if not isinstance(found, Classifications):
                raise ModelError(f"{model.spec.task} models cannot be evaluated as classifiers")
            rows[row, found.class_id - offset] = found.scores
    finally:
        model.spec = original
    return rows


@dataclass(frozen=True, slots=True)
class Timing:
    """How fast a model ran on some images."""

    images: int
    median_ms: float
    """Median milliseconds per image (the image already decoded), after one warm-up run."""


def time_model(model: TaskModel, images: Sequence[np.ndarray]) -> Timing:
    """Time ``model.predict`` on decoded images, after one warm-up run."""
    if not images:
        return Timing(0, 0.0)
    model.predict(images[0])
    durations = []
    for image in images:
        started = time.perf_counter()
        model.predict(image)
        durations.append((time.perf_counter() - started) * 1000)
    return Timing(len(images), float(np.median(durations)))


# Evaluating a model on labelled images


@dataclass(frozen=True)
class ModelEvaluation:
    """A model's results on labelled images (``vigil eval``).

    Attributes:
        model: The model as named (``name:version`` for a registered one, else the file).
        evaluation: The results.
        data: What it was evaluated on.
        image_files: The file of each evaluated image key.
    """

    model: str
    evaluation: Evaluation
    data: DataSummary
    image_files: dict[str, Path]

    def to_dict(self) -> dict[str, Any]:
        """Return everything as JSON-ready values."""
        return {"model": self.model, **self.evaluation.to_dict(), "data": self.data.to_dict()}


@dataclass(frozen=True)
class _Labelled:
    keys: list[str]
    files: list[Path]
    labels: list[str]
    shas: list[str | None]
    summary: DataSummary


def evaluate_model(
    ref: str,
    data: Path,
    *,
    split: str = "test",
    positive: str | None = None,
    threads: int = 2,
) -> ModelEvaluation:
    """Evaluate a classifier on a labelled folder, CSV, Label Studio export or manifest.

    Args:
        ref: A registered model (``name``, ``name:3``, ``name@production``) or a model file.
        data: The labelled images; of a manifest, the images of ``split``.
        split: ``train``, ``validation``, ``test`` or ``all`` (manifests only).
        positive: For a two-class model, the class curves are about; default: the rarer one
            in the data.
        threads: Threads the model's runtime may use.

    Raises:
        ModelError: the model is no classifier or does not know a class of the data.
        SourceError: the data is missing or has no usable image.
        ConfigError: ``positive`` or ``split`` names nothing.
    """
    from vigil.models.opening import open_model
    from vigil.train.probe import FeatureCache

    labelled = _labelled_images(data, split)
    opened = open_model(ref, task="classify", threads=threads)
    try:
        classes = _model_classes(opened.model, labelled.labels)
        images = list(zip(labelled.files, labelled.shas, strict=True))
        scores = class_scores(opened.model, images, classes, cache=FeatureCache())
    finally:
        opened.model.close()
    evaluation = evaluate_scores(
        [classes.index(label) for label in labelled.labels],
        scores,
        classes,
        keys=labelled.keys,
        positive=_positive_index(classes, labelled.labels, positive),
    )
    name = f"{opened.name}:{opened.version}" if opened.version is not None else opened.name
    files = dict(zip(labelled.keys, labelled.files, strict=True))
    return ModelEvaluation(name, evaluation, labelled.summary, files)


def _model_classes(model: TaskModel, data_labels: Sequence[str]) -> list[str]:
    """Return the model's labels, checked to hold every class of the data."""
    label_columns(model, sorted(set(data_labels)))
    classes = list(model.spec.labels or [])
    if len(classes) < 2:
        raise ModelError(f"a classifier needs two classes or more; the model has {classes}")
    return classes


def _positive_index(
    classes: Sequence[str], labels: Sequence[str], positive: str | None
) -> int | None:
    """Return the positive class of two: ``positive``, else the rarer one in the data."""
    from vigil.errors import ConfigError

    if positive is not None and positive not in classes:
        raise ConfigError(
            f"--positive {positive!r} is not a class of the model ({', '.join(classes)})"
        )
    if len(classes) != 2:
        return None
    if positive is not None:
        return classes.index(positive)
    counts = [labels.count(label) for label in classes]
    return 0 if 0 < counts[0] < counts[1] else 1


def _labelled_images(data: Path, split: str) -> _Labelled:
    from vigil.data.config import SPLITS
    from vigil.errors import ConfigError

    if split not in (*SPLITS, "all"):
        raise ConfigError(f"--split must be one of {', '.join(SPLITS)} or all (got {split!r})")
    from vigil.train.classify import is_manifest

    found = _from_manifest(data, split) if is_manifest(data) else _from_dataset(data)
    if not found.keys:
        raise SourceError(
            f"no usable labelled image in {data}"
            + (f" ({split} split)" if is_manifest(data) else "")
        )
    return found


def _from_manifest(path: Path, split: str) -> _Labelled:
    from vigil.data.manifest import describe_changes, file_change, read_manifest
    from vigil.train.report import DataSummary

    manifest = read_manifest(path)
    items = manifest.items if split == "all" else manifest.split(split)
    changes = [
        (item.path, reason)
        for item in items
        if (reason := file_change(manifest.path_of(item), item)) is not None
    ]
    if changes:
        from vigil.data.manifest import Change

        raise SourceError(describe_changes([Change(p, r) for p, r in changes], len(items)))
    return _Labelled(
        keys=[item.path for item in items],
        files=[manifest.path_of(item) for item in items],
        labels=[item.label for item in items],
        shas=[item.sha256 for item in items],
        summary=DataSummary.of_manifest(manifest, str(path), path),
    )


def _from_dataset(source: Path) -> _Labelled:
    from vigil.data.check import inspect_dataset
    from vigil.data.config import CheckOptions
    from vigil.data.dataset import load_dataset
    from vigil.train.report import DataSummary

    dataset = load_dataset(source)
    workers = 1 if len(dataset) < 200 else 2
    infos = inspect_dataset(dataset, CheckOptions(workers=workers))
    usable = [(item, info) for item, info in zip(dataset.items, infos, strict=True) if info.usable]
    skipped = [(info.key, info.error or "") for info in infos if not info.usable]
    skipped += [(s.where, s.reason) for s in dataset.skipped]
    counts = {"test": {c: sum(1 for item, _ in usable if item.label == c) for c in dataset.classes}}
    summary = DataSummary(str(source), dataset.classes, counts, skipped=tuple(skipped))
    return _Labelled(
        keys=[item.key for item, _ in usable],
        files=[item.path for item, _ in usable],
        labels=[item.label for item, _ in usable],
        shas=[info.sha256 for _, info in usable],
        summary=summary,
    )


__all__ = [
    "STANDARD_TARGETS",
    "ClassMetrics",
    "Curve",
    "Evaluation",
    "Mistake",
    "ModelEvaluation",
    "OperatingPoint",
    "Rates",
    "Target",
    "Timing",
    "area_under",
    "average_precision",
    "class_scores",
    "confusion_matrix",
    "decide",
    "evaluate_model",
    "evaluate_scores",
    "label_columns",
    "operating_point",
    "operating_points",
    "precision_recall_curve",
    "rates_at",
    "roc_curve",
    "threshold_for",
    "time_model",
]
