"""The runtime boundary: load a model file, feed tensors, get tensors. Nothing about apps."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One input or output of a model.

    Attributes:
        name: The tensor's name in the model file.
        shape: Dimensions; None where the model leaves a dimension dynamic.
        dtype: The element type the model expects or returns.
        scale: Quantisation scale (real = scale * (q - zero_point)); 0 when not quantised.
        zero_point: Quantisation zero point.
    """

    name: str
    shape: tuple[int | None, ...]
    dtype: np.dtype
    scale: float = 0.0
    zero_point: int = 0

    @property
    def quantized(self) -> bool:
        """Whether values are stored as scaled integers."""
        return self.scale != 0.0

    def dequantize(self, values: np.ndarray) -> np.ndarray:
        """Return ``values`` as real float32 numbers."""
        if not self.quantized:
            return values.astype(np.float32, copy=False)
        return (values.astype(np.float32) - self.zero_point) * self.scale


class TensorModel(Protocol):
    """A loaded model file: ONNX Runtime, LiteRT, or any other backend."""

    path: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]

    def run(self, feeds: list[np.ndarray]) -> list[np.ndarray]:
        """Run the model on one array per input; return one array per output, as stored."""

    def close(self) -> None:
        """Release the model."""
