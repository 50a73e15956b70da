"""ONNX models through ONNX Runtime (CPU by default; CUDA, OpenVINO, TensorRT when installed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vigil.errors import ModelError
from vigil.runtimes.base import TensorSpec

_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(double)": np.float64,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
    "tensor(int32)": np.int32,
    "tensor(int64)": np.int64,
    "tensor(bool)": np.bool_,
}


class OnnxModel:
    """An ONNX model file loaded into an ONNX Runtime session.

    Args:
        path: The ``.onnx`` file.
        threads: Intra-op threads; 0 lets ONNX Runtime decide.
        providers: Execution providers in order of preference; those not installed are skipped,
            CPU is always last.
    """

    def __init__(
        self, path: str | Path, threads: int = 0, providers: list[str] | None = None
    ) -> None:
        import onnxruntime as ort

        self.path = str(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        available = set(ort.get_available_providers())
        wanted = [p for p in (providers or []) if p in available]
        try:
            self._session = ort.InferenceSession(
                self.path, options, providers=[*wanted, "CPUExecutionProvider"]
            )
        except Exception as exc:  # ORT raises its own untyped errors for bad files
            raise ModelError(f"cannot load ONNX model {self.path}: {_first_line(exc)}") from None
        self.inputs = [_spec(i) for i in self._session.get_inputs()]
        self.outputs = [_spec(o) for o in self._session.get_outputs()]

    def run(self, feeds: list[np.ndarray]) -> list[np.ndarray]:
        """Run one inference."""
        named = {spec.name: array for spec, array in zip(self.inputs, feeds, strict=True)}
        try:
            return list(self._session.run(None, named))
        except Exception as exc:
            raise ModelError(f"ONNX model {self.path} failed to run: {_first_line(exc)}") from None

    def close(self) -> None:
        """Drop the session."""
        self._session = None


def _spec(node: object) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else None for d in getattr(node, "shape", ()))
    dtype = np.dtype(_DTYPES.get(str(getattr(node, "type", "")), np.float32))
    return TensorSpec(name=str(getattr(node, "name", "")), shape=shape, dtype=dtype)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
