"""Detection results: boxes, scores and classes of the objects found in one frame."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vigil.results import rounding
from vigil.results.checks import require_array

Index = int | slice | np.ndarray | list[int]


@dataclass(frozen=True, eq=False)
class Detections:
    """N detected objects in one frame, as parallel numpy arrays.

    Filter by indexing, e.g. ``detections[detections.confidence > 0.5]``.

    Attributes:
        xyxy: Boxes (x1, y1, x2, y2) in frame pixels, shape (N, 4), float32.
        confidence: Scores in [0, 1], shape (N,), float32.
        class_id: Class indices as the model outputs them, shape (N,), int64.
        labels: Class names, shape (N,), str; the class id as text where no name is known.
        data: Extra per-object arrays (e.g. tracker ids), each of length N.
    """

    xyxy: np.ndarray
    confidence: np.ndarray
    class_id: np.ndarray
    labels: np.ndarray
    data: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        require_array(self.xyxy, "xyxy", 2, "f")
        if self.xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must have shape (_, 4), but got shape {self.xyxy.shape}")
        n = len(self.xyxy)
        require_array(self.confidence, "confidence", 1, "f", n)
        require_array(self.class_id, "class_id", 1, "i", n)
        require_array(self.labels, "labels", 1, "U", n)
        for key, values in self.data.items():
            if not isinstance(values, np.ndarray) or len(values) != n:
                raise ValueError(f"data[{key!r}] must be an np.ndarray of length {n}")

    @classmethod
    def empty(cls) -> Detections:
        """Return a result with no objects."""
        return cls.from_arrays(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))

    @classmethod
    def from_arrays(
        cls,
        xyxy: np.ndarray,
        confidence: np.ndarray,
        class_id: np.ndarray,
        *,
        names: Sequence[str] | None = None,
        data: dict[str, np.ndarray] | None = None,
        label_offset: int = 0,
    ) -> Detections:
        """Build detections from arrays of any numeric dtype, naming classes from ``names``.

        Args:
            xyxy: (N, 4) boxes in frame pixels.
            confidence: (N,) scores.
            class_id: (N,) class indices.
            names: Class names; ids without one are named by their number.
            data: Extra per-object arrays.
            label_offset: Class ids before the first name (1 when id 0 is background).
        """
        ids = np.asarray(class_id).astype(np.int64).reshape(-1)
        return cls(
            xyxy=np.asarray(xyxy, np.float32).reshape(-1, 4),
            confidence=np.asarray(confidence, np.float32).reshape(-1),
            class_id=ids,
            labels=label_array(ids, names, label_offset),
            data=dict(data or {}),
        )

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: Index) -> Detections:
        if isinstance(index, int):
            index = [index]
        return Detections(
            xyxy=self.xyxy[index],
            confidence=self.confidence[index],
            class_id=self.class_id[index],
            labels=self.labels[index],
            data={key: values[index] for key, values in self.data.items()},
        )

    @property
    def area(self) -> np.ndarray:
        """Box areas in square pixels, shape (N,)."""
        width, height = self.xyxy[:, 2] - self.xyxy[:, 0], self.xyxy[:, 3] - self.xyxy[:, 1]
        return np.asarray(width * height, np.float32)

    def with_labels(self, names: Iterable[str]) -> Detections:
        """Keep only the objects whose label is one of ``names``, e.g. ``["person"]``."""
        return self[np.isin(self.labels, list(names))]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: one entry per object with label, class id, score and box."""
        return {"task": "detect", "detections": [self._item(i) for i in range(len(self))]}

    def _item(self, i: int) -> dict[str, Any]:
        item: dict[str, Any] = {
            "label": str(self.labels[i]),
            "class_id": int(self.class_id[i]),
            "score": rounding.score(self.confidence[i]),
            "box": rounding.pixels(self.xyxy[i]),
        }
        for key, values in self.data.items():
            if values.ndim == 1:
                item[key] = rounding.plain(values[i])
        return item


def label_array(
    class_id: np.ndarray, names: Sequence[str] | None, label_offset: int = 0
) -> np.ndarray:
    """Return the name of each class id; ids without a name get their number as text.

    Args:
        class_id: Class indices as the model outputs them.
        names: Class names; class id ``i`` is named ``names[i - label_offset]``.
        label_offset: Outputs before the first name (1 when output 0 is background).
    """
    known = names or ()
    return np.array(
        [
            known[i - label_offset] if 0 <= i - label_offset < len(known) else str(i)
            for i in class_id.tolist()
        ],
        dtype=np.str_,
    ).reshape(-1)
