"""Runtimes: one file per backend that loads a model file and runs tensors through it."""

from __future__ import annotations

from pathlib import Path

from vigil.errors import ModelError
from vigil.runtimes.base import TensorModel, TensorSpec


def load_tensor_model(path: str | Path, threads: int = 2) -> TensorModel:
    """Load a model file with the runtime its extension calls for (``.onnx``, ``.tflite``).

    Raises:
        ModelError: the file is missing or of a kind no runtime reads.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from vigil.runtimes.onnx import OnnxModel

        return OnnxModel(path, threads=threads)
    if suffix == ".tflite":
        from vigil.runtimes.tflite import TFLiteModel

        return TFLiteModel(path, threads=threads)
    raise ModelError(f"cannot tell how to run {path}: expected a .onnx or .tflite file")


__all__ = ["TensorModel", "TensorSpec", "load_tensor_model"]
