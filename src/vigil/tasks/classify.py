"""Image classification: one score per class, the best ``top_k`` reported."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from vigil.errors import ModelError
from vigil.models.inspect import score_count
from vigil.models.spec import ModelSpec, Task
from vigil.results import Classifications
from vigil.runtimes.base import TensorModel
from vigil.tasks.base import FileTaskModel, output_shapes
from vigil.tasks.preprocess import InputMapping

DECODER_DEFAULTS: dict[str, dict[str, Any]] = {"scores": {"score_threshold": 0.0}}
"""Spec values each classify decoder starts from: report the top_k classes whatever their score."""

_PROBABILITY_SLACK = 1e-3


def softmax(values: np.ndarray) -> np.ndarray:
    """Softmax of a 1-D array, numerically stable."""
    shifted = np.exp(values - values.max())
    return np.asarray(shifted / shifted.sum(), np.float32)


def are_probabilities(values: np.ndarray) -> bool:
    """Whether every value lies in [0, 1]: already probabilities (softmax or sigmoid)."""
    return bool(values.min() >= -_PROBABILITY_SLACK and values.max() <= 1 + _PROBABILITY_SLACK)


class ClassifyModel(FileTaskModel[Classifications]):
    """An image classifier: dequantised scores, softmax when needed, the best ``top_k`` classes.

    ``spec.softmax`` auto applies softmax when the outputs are not already probabilities (a
    value outside [0, 1]). Outputs before ``spec.label_offset`` (e.g. background) are never
    reported. ``spec.labels`` must name every other output. A ``score_threshold`` of 0 (the
    classify default) keeps the ``top_k`` classes whatever their scores.
    """

    task: ClassVar[Task] = "classify"

    def __init__(self, model: TensorModel, spec: ModelSpec) -> None:
        super().__init__(model, spec)
        self.class_count = _check_outputs(model, spec)
        """Number of scores the model outputs (0 when dynamic)."""

    def decode(self, outputs: list[np.ndarray], mapping: InputMapping) -> Classifications:
        """Pick the best classes of the scores output."""
        scores = outputs[0].reshape(-1).astype(np.float32)
        if self._wants_softmax(scores):
            scores = softmax(scores)
        return Classifications.from_scores(
            scores,
            self.spec.labels,
            label_offset=self.spec.label_offset,
            top_k=self.spec.top_k,
            min_score=self.spec.score_threshold or -np.inf,  # 0: keep the top_k, logits too
        )

    def _wants_softmax(self, scores: np.ndarray) -> bool:
        if self.spec.softmax == "auto":
            return not are_probabilities(scores)
        return self.spec.softmax == "yes"


def _check_outputs(model: TensorModel, spec: ModelSpec) -> int:
    """Check the model has one scores output that its labels fit; return the class count."""
    count = score_count(model.outputs[0]) if len(model.outputs) == 1 else None
    if count is None:
        raise ModelError(
            f"the scores decoder needs one (1, classes) output; model {model.path} has "
            f"{output_shapes(model)}: set the spec's task and decoder to match the model"
        )
    labels = spec.labels
    if labels is not None and count and len(labels) + spec.label_offset != count:
        raise ModelError(
            f"model {model.path} outputs {count} scores but its spec has {len(labels)} labels "
            f"with label_offset {spec.label_offset}: give one label per output, or set "
            "label_offset to the outputs before the first label (1 when output 0 is background)"
        )
    return count
