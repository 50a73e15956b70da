"""Runtimes: one file per backend that loads a model file and runs tensors through it."""

from __future__ import annotations

from pathlib import Path

from vigil.errors import ModelError
from vigil.runtimes.base import TensorModel, TensorSpec

RUNTIMES = {".onnx": "ONNX Runtime", ".tflite": "LiteRT"}
"""Model file extensions and the runtime that reads each."""


def load_tensor_model(
    path: str | Path, threads: int = 2, providers: list[str] | None = None
) -> TensorModel:
    """Load a model file with the runtime its extension calls for (``.onnx``, ``.tflite``).

    Args:
        path: The model file.
        threads: Inference threads.
        providers: ONNX Runtime execution providers in order of preference (see
            :class:`~vigil.runtimes.onnx.OnnxModel`); LiteRT runs on the CPU and ignores them.

    Raises:
        ModelError: the file is missing or of a kind no runtime reads.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"model file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        from vigil.runtimes.onnx import OnnxModel

        return OnnxModel(path, threads=threads, providers=providers)
    if suffix == ".tflite":
        from vigil.runtimes.tflite import TFLiteModel

        return TFLiteModel(path, threads=threads)
    raise ModelError(f"cannot tell how to run {path}: expected a .onnx or .tflite file")


__all__ = ["RUNTIMES", "TensorModel", "TensorSpec", "load_tensor_model"]
