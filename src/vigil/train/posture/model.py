"""Fit the posture classifier, evaluate it and export it as ONNX."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vigil.errors import DependencyError
from vigil.rules.learned import (
    CLASS_READINGS,
    FEATURE_NAMES,
    FEATURES_VERSION,
    classifier_metadata,
)
from vigil.train.posture.config import UNKNOWN, Algorithm


def fit_classifier(
    features: np.ndarray, targets: np.ndarray, algorithm: Algorithm, seed: int = 0
) -> Any:
    """Fit a scikit-learn classifier on class indexes ``targets``.

    Raises:
        DependencyError: scikit-learn is not installed.
    """
    try:
        from sklearn.ensemble import HistGradientBoostingClassifier
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler
    except ImportError:
        raise DependencyError("scikit-learn", "train", "training a posture classifier") from None
    if algorithm == "boosting":
        model: Any = HistGradientBoostingClassifier(
            max_iter=150, learning_rate=0.1, max_leaf_nodes=15, random_state=seed
        )
    else:
        model = Pipeline(
            [
                ("scale", StandardScaler()),
                ("classify", LogisticRegression(C=1.0, max_iter=5000, class_weight="balanced")),
            ]
        )
    model.fit(features, targets)
    return model


@dataclass(frozen=True, slots=True)
class Evaluation:
    """How one way of classifying did on the test records.

    Attributes:
        classes: The true classes, in the order of the confusion matrix's rows.
        columns: The predicted classes, the columns (``unknown`` last when it occurs).
        confusion: Counts: ``confusion[i][j]`` records of ``classes[i]`` predicted ``columns[j]``.
        accuracy: Share of records predicted right.
        recall: Per true class, the share of its records predicted right.
    """

    classes: list[str]
    columns: list[str]
    confusion: list[list[int]]
    accuracy: float
    recall: dict[str, float]

    @property
    def count(self) -> int:
        """Number of records evaluated."""
        return sum(map(sum, self.confusion))

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready form (for the registry's metrics)."""
        return {
            "accuracy": round(self.accuracy, 4),
            "recall": {k: round(v, 4) for k, v in self.recall.items()},
            "confusion": {"rows": self.classes, "columns": self.columns, "counts": self.confusion},
        }


def class_order(names: Iterable[str]) -> list[str]:
    """Order class names as the app's readings are ordered, then unknown, then any others."""
    order = [*CLASS_READINGS, UNKNOWN]
    present = set(names)
    return [n for n in order if n in present] + sorted(present - set(order))


def evaluate(truth: Sequence[str], predicted: Sequence[str]) -> Evaluation:
    """Compare predicted classes with the true ones."""
    classes = class_order(truth)
    columns = class_order([*truth, *predicted])
    counts = Counter(zip(truth, predicted, strict=True))
    confusion = [[counts[(t, p)] for p in columns] for t in classes]
    total = len(truth)
    right = sum(counts[(c, c)] for c in classes)
    recall = {c: counts[(c, c)] / max(1, sum(counts[(c, p)] for p in columns)) for c in classes}
    return Evaluation(classes, columns, confusion, right / total if total else 0.0, recall)


def export_onnx(model: Any, labels: Sequence[str], min_confidence: float, path: Path) -> Path:
    """Write a fitted classifier as ONNX with the metadata the posture app checks.

    The graph takes ``features`` (N, F) float32 and gives ``label`` (N,) and ``probabilities``
    (N, C) in the order of ``labels``.

    Raises:
        DependencyError: skl2onnx or onnx is not installed.
    """
    try:
        import onnx
        from skl2onnx import convert_sklearn
        from skl2onnx.common.data_types import FloatTensorType
    except ImportError as exc:
        package = "onnx" if exc.name == "onnx" else "skl2onnx"
        raise DependencyError(package, "train", "exporting a posture classifier") from None
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    graph = convert_sklearn(
        model,
        "vigil posture classifier",
        initial_types=[("features", FloatTensorType([None, len(FEATURE_NAMES)]))],
        options={id(final): {"zipmap": False}},
    )
    onnx.helper.set_model_props(graph, classifier_metadata(labels, min_confidence))
    graph.doc_string = f"Posture classifier over {FEATURES_VERSION} features: {', '.join(labels)}"
    path.write_bytes(graph.SerializeToString())
    return path
