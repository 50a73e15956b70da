"""Classification results: the best classes of one image, best first."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from vigil.results import rounding
from vigil.results.checks import require_array
from vigil.results.detections import Index, label_array


class Classification(NamedTuple):
    """One class and its score."""

    class_id: int
    label: str
    score: float


@dataclass(frozen=True, eq=False)
class Classifications:
    """The top classes of one image, sorted by score, best first.

    Attributes:
        class_id: Output indices of the classes, shape (N,), int64.
        scores: Their scores, shape (N,), float32, non-increasing.
        labels: Their names, shape (N,), str; the class id as text where no name is known.
    """

    class_id: np.ndarray
    scores: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        require_array(self.class_id, "class_id", 1, "i")
        n = len(self.class_id)
        require_array(self.scores, "scores", 1, "f", n)
        require_array(self.labels, "labels", 1, "U", n)
        if n > 1 and bool(np.any(np.diff(self.scores) > 0)):
            raise ValueError("scores must be sorted best first")

    @classmethod
    def from_scores(
        cls,
        scores: np.ndarray,
        names: Sequence[str] | None = None,
        *,
        label_offset: int = 0,
        top_k: int | None = None,
        min_score: float = 0.0,
    ) -> Classifications:
        """Pick the best classes from one score per model output.

        Args:
            scores: (C,) scores, one per output.
            names: Class names; output ``i`` is named ``names[i - label_offset]``.
            label_offset: Outputs before the first class (e.g. a background output); never
                reported.
            top_k: Keep at most this many classes.
            min_score: Drop classes scored below this.
        """
        values = np.asarray(scores, np.float32).reshape(-1)
        order = np.argsort(-values[label_offset:], kind="stable") + label_offset
        order = order[values[order] >= min_score][:top_k]
        return cls(
            class_id=order.astype(np.int64),
            scores=values[order],
            labels=label_array(order, names, label_offset),
        )

    def __len__(self) -> int:
        return len(self.class_id)

    def __getitem__(self, index: Index) -> Classifications:
        if isinstance(index, int):
            index = [index]
        return Classifications(self.class_id[index], self.scores[index], self.labels[index])

    @property
    def top(self) -> Classification | None:
        """The best class, or None when no class was kept."""
        if len(self) == 0:
            return None
        return Classification(int(self.class_id[0]), str(self.labels[0]), float(self.scores[0]))

    def top_k(self, k: int) -> Classifications:
        """Return the ``k`` best classes."""
        return self[:k]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the classes best first, each with label, class id and score."""
        return {
            "task": "classify",
            "classes": [
                {"label": str(label), "class_id": int(cid), "score": rounding.score(score)}
                for cid, score, label in zip(self.class_id, self.scores, self.labels, strict=True)
            ],
        }
