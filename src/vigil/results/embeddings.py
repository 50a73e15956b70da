"""Embedding results: feature vectors of images, to compare by cosine similarity."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vigil.results import rounding
from vigil.results.checks import require_array
from vigil.results.detections import Index


@dataclass(frozen=True, eq=False)
class Embeddings:
    """N feature vectors of dimension D.

    Attributes:
        vectors: Shape (N, D), float32, as the model outputs them (not normalised).
    """

    vectors: np.ndarray

    def __post_init__(self) -> None:
        require_array(self.vectors, "vectors", 2, "f")

    @classmethod
    def from_array(cls, vectors: np.ndarray) -> Embeddings:
        """Build embeddings from one vector or a stack of them, of any float dtype."""
        values = np.asarray(vectors, np.float32)
        return cls(values.reshape(1, -1) if values.ndim == 1 else values.reshape(len(values), -1))

    def __len__(self) -> int:
        return len(self.vectors)

    def __getitem__(self, index: Index) -> Embeddings:
        if isinstance(index, int):
            index = [index]
        return Embeddings(self.vectors[index])

    @property
    def dim(self) -> int:
        """Length D of each vector."""
        return int(self.vectors.shape[1])

    @property
    def vector(self) -> np.ndarray:
        """The first vector, shape (D,); the one vector of a single image."""
        if len(self) == 0:
            raise IndexError("no embedding vectors")
        return np.asarray(self.vectors[0])

    def normalized(self) -> Embeddings:
        """Return a copy scaled to unit L2 norm; all-zero vectors stay zero."""
        norms = np.linalg.norm(self.vectors, axis=1, keepdims=True)
        return Embeddings((self.vectors / np.where(norms == 0, 1, norms)).astype(np.float32))

    def similarity(self, other: Embeddings) -> np.ndarray:
        """Cosine similarity of every vector here with every vector of ``other``, shape (N, M).

        Raises:
            ValueError: the two have different dimensions.
        """
        if other.dim != self.dim:
            raise ValueError(f"cannot compare {self.dim}-D with {other.dim}-D embeddings")
        return np.asarray(self.normalized().vectors @ other.normalized().vectors.T, np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: the dimension and the vectors."""
        return {
            "task": "embed",
            "dim": self.dim,
            "embeddings": [
                [round(float(v), rounding.VECTOR_DECIMALS) for v in row] for row in self.vectors
            ],
        }
