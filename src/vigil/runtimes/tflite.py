"""TFLite models through the LiteRT interpreter (``ai-edge-litert``, or ``tflite-runtime``)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from vigil.errors import DependencyError, ModelError
from vigil.native import TFLITE_NOISE, native_messages_to_log
from vigil.runtimes.base import TensorSpec

log = logging.getLogger(__name__)


def _interpreter_class() -> Any:
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter

        return Interpreter
    except ImportError:
        raise DependencyError("ai-edge-litert", "tflite", "running .tflite models") from None


class TFLiteModel:
    """A ``.tflite`` model file in a LiteRT interpreter.

    Args:
        path: The model file.
        threads: Interpreter threads.

    Attributes:
        thread_safe: False: an interpreter runs one inference at a time.
    """

    thread_safe = False

    def __init__(self, path: str | Path, threads: int = 2) -> None:
        interpreter_class = _interpreter_class()
        self.path = str(path)
        try:
            with native_messages_to_log(TFLITE_NOISE, log):
                self._interpreter = interpreter_class(model_path=self.path, num_threads=threads)
                self._interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"cannot load TFLite model {self.path}: {exc}") from None
        self._input_details = self._interpreter.get_input_details()
        self._output_details = self._interpreter.get_output_details()
        self.inputs = [_spec(d) for d in self._input_details]
        self.outputs = [_spec(d) for d in self._output_details]

    def run(self, feeds: list[np.ndarray]) -> list[np.ndarray]:
        """Run one inference."""
        interpreter = self._interpreter
        try:
            for detail, array in zip(self._input_details, feeds, strict=True):
                interpreter.set_tensor(detail["index"], array)
            interpreter.invoke()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"TFLite model {self.path} failed to run: {exc}") from None
        return [interpreter.get_tensor(d["index"]) for d in self._output_details]

    def close(self) -> None:
        """Drop the interpreter."""
        self._interpreter = None


def _spec(detail: dict[str, Any]) -> TensorSpec:
    scale, zero_point = detail.get("quantization", (0.0, 0))
    return TensorSpec(
        name=str(detail["name"]),
        shape=tuple(int(d) if d > 0 else None for d in detail["shape"]),
        dtype=np.dtype(detail["dtype"]),
        scale=float(scale),
        zero_point=int(zero_point),
    )
