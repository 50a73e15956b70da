"""ONNX models through ONNX Runtime (CPU by default; CUDA, OpenVINO, TensorRT when installed)."""

from __future__ import annotations

import difflib
import logging
from pathlib import Path

import numpy as np

from vigil.errors import ConfigError, ModelError
from vigil.runtimes.base import TensorSpec

log = logging.getLogger(__name__)

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

PROVIDERS = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "directml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
}
"""Short names of ONNX Runtime execution providers; the full names are accepted too."""

DEFAULT_PROVIDERS = ("cuda", "openvino")
"""Tried in order when none are asked for; CPU always comes last. TensorRT is left out because it
builds an engine for minutes on first load: ask for it explicitly."""

CPU = PROVIDERS["cpu"]


def provider_names(wanted: list[str] | tuple[str, ...]) -> list[str]:
    """Turn short or full provider names into ONNX Runtime's full names, in the same order.

    Raises:
        ConfigError: a name is neither a known short name nor a full ``...ExecutionProvider``.
    """
    full = []
    for name in wanted:
        if name.endswith("ExecutionProvider"):
            full.append(name)
        elif name.lower() in PROVIDERS:
            full.append(PROVIDERS[name.lower()])
        else:
            close = difflib.get_close_matches(name.lower(), PROVIDERS, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"unknown ONNX Runtime provider {name!r}: use one of {', '.join(PROVIDERS)}{hint}"
            )
    return full


def choose_providers(wanted: list[str], available: list[str]) -> list[str]:
    """Return the wanted providers that are installed, in order, with CPU last."""
    chosen = [p for p in wanted if p in available and p != CPU]
    return [*dict.fromkeys(chosen), CPU]


class OnnxModel:
    """An ONNX model file loaded into an ONNX Runtime session.

    Args:
        path: The ``.onnx`` file.
        threads: Intra-op threads; 0 lets ONNX Runtime decide.
        providers: Execution providers in order of preference, short (``cuda``, ``openvino``,
            ``tensorrt``, ``cpu``) or full names; those not installed are skipped and CPU is
            always last. None tries :data:`DEFAULT_PROVIDERS`.

    Attributes:
        thread_safe: Sessions may be run from several threads at once.
        provider: The provider that runs the model.
        metadata: The file's ``metadata_props`` (Ultralytics exports keep ``names``, ``task``,
            ``imgsz`` and ``stride`` there).
    """

    thread_safe = True

    def __init__(
        self, path: str | Path, threads: int = 0, providers: list[str] | None = None
    ) -> None:
        import onnxruntime as ort

        self.path = str(path)
        wanted = provider_names(DEFAULT_PROVIDERS if providers is None else providers)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.log_severity_level = 3
        chosen = choose_providers(wanted, list(ort.get_available_providers()))
        try:
            self._session = ort.InferenceSession(self.path, options, providers=chosen)
        except Exception as exc:  # ORT raises its own untyped errors for bad files
            raise ModelError(f"cannot load ONNX model {self.path}: {_first_line(exc)}") from None
        self.provider = str(self._session.get_providers()[0])
        self.metadata: dict[str, str] = dict(self._session.get_modelmeta().custom_metadata_map)
        self.inputs = [_spec(i) for i in self._session.get_inputs()]
        self.outputs = [_spec(o) for o in self._session.get_outputs()]
        _log_provider(self.path, self.provider, wanted if providers is not None else [])

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


def _log_provider(path: str, provider: str, asked: list[str]) -> None:
    missing = [p for p in asked if p not in (provider, CPU)]
    note = f" ({', '.join(missing)} not available)" if missing and provider == CPU else ""
    log.info("ONNX Runtime runs %s on %s%s", Path(path).name, provider, note)


def _spec(node: object) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) and d > 0 else None for d in getattr(node, "shape", ()))
    dtype = np.dtype(_DTYPES.get(str(getattr(node, "type", "")), np.float32))
    return TensorSpec(name=str(getattr(node, "name", "")), shape=shape, dtype=dtype)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[-1] if text else type(exc).__name__
