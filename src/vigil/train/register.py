"""Registering a trained classifier: the file, its spec, its metrics and where it came from.

A trained model becomes the next version of its name in the registry (``vigil models list``),
so ``vigil predict NAME``, ``vigil serve-model NAME`` and apps use it at once. The version
carries the test metrics and a lineage that says how to get it again: the method, the backbone
version it runs on, the data manifest's hash and file, the command line, seeds and the run
folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vigil.models.spec import ModelSpec

if TYPE_CHECKING:
    from vigil.models.api import Models
    from vigil.models.registry import ModelVersion
    from vigil.train.evaluate import Evaluation
    from vigil.train.report import Decision, QuantizationCheck


def classifier_metrics(
    evaluation: Evaluation,
    decision: Decision | None = None,
    int8: QuantizationCheck | None = None,
) -> dict[str, Any]:
    """Return what the registry keeps as a classifier's metrics (all measured on test images).

    The headline numbers, per-class precision, recall and F1, the confusion matrix, the
    threshold the model decides by (two classes) and the int8 comparison.
    """
    metrics: dict[str, Any] = {
        **evaluation.metrics(),
        "split": "test",
        "classes": list(evaluation.classes),
        "confusion": evaluation.confusion.tolist(),
    }
    if decision is not None:
        metrics["decision"] = decision.to_dict()
    if int8 is not None:
        metrics["int8"] = int8.to_dict()
    return metrics


def register_classifier(
    models: Models,
    model_file: Path,
    name: str,
    spec: ModelSpec,
    *,
    metrics: Mapping[str, Any],
    lineage: Mapping[str, Any],
    description: str | None = None,
) -> ModelVersion:
    """Store ``model_file`` and register it as the next version of ``name``.

    Raises:
        ModelError: the name, metrics or lineage are not usable.
        StorageError: the store or registry cannot be written.
    """
    return models.register(
        model_file,
        name,
        spec=spec,
        metrics=metrics,
        lineage=lineage,
        description=description,
    )


__all__ = ["classifier_metrics", "register_classifier"]
