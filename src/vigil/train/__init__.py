"""Training: image classifiers from labelled photos, evaluated honestly and registered.

The flow of ``vigil train classify``, usable from Python::

    from vigil.train import TrainOptions, train_classifier

    result = train_classifier(
        TrainOptions(data="photos/", name="hardhat", backbone="embedder.tflite")
    )
    print(result.evaluation.accuracy, result.version.ref, result.report_path)

Two methods: ``probe`` (a logistic regression on a pretrained embed model's vectors, fast on a
CPU; :mod:`vigil.train.probe`) and ``finetune`` (a network trained end to end with PyTorch;
:mod:`vigil.train.finetune`). :mod:`vigil.train.evaluate` computes the metrics, curves and
thresholds, :mod:`vigil.train.report` writes the HTML report.

``import vigil.train`` loads nothing heavy: scikit-learn, onnx, matplotlib and torch are imported
by the functions that need them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vigil.train.classify import TrainOptions, TrainResult, train_classifier
    from vigil.train.evaluate import Evaluation, evaluate_scores
    from vigil.train.report import ReportContent, write_report

_LAZY = {
    "Evaluation": ("vigil.train.evaluate", "Evaluation"),
    "ReportContent": ("vigil.train.report", "ReportContent"),
    "TrainOptions": ("vigil.train.classify", "TrainOptions"),
    "TrainResult": ("vigil.train.classify", "TrainResult"),
    "evaluate_scores": ("vigil.train.evaluate", "evaluate_scores"),
    "train_classifier": ("vigil.train.classify", "train_classifier"),
    "write_report": ("vigil.train.report", "write_report"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'vigil.train' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


__all__ = [
    "Evaluation",
    "ReportContent",
    "TrainOptions",
    "TrainResult",
    "evaluate_scores",
    "train_classifier",
    "write_report",
]
