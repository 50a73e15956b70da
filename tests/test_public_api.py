"""The public API: what ``import vigil`` offers, pinned so a change to it is deliberate."""

from __future__ import annotations

import subprocess
import sys

import vigil

EXPECTED = {
    "COCO_17",
    "MEDIAPIPE_33",
    "ConfigError",
    "DependencyError",
    "Event",
    "Frame",
    "KeypointSchema",
    "ModelError",
    "PermanentDeliveryError",
    "Poses",
    "SinkError",
    "SourceError",
    "StorageError",
    "VigilError",
    "__version__",
}


def test_exported_members() -> None:
    assert set(vigil.__all__) == EXPECTED
    for name in vigil.__all__:
        assert hasattr(vigil, name), name


def test_every_error_is_a_vigil_error() -> None:
    errors = [getattr(vigil, n) for n in vigil.__all__ if n.endswith("Error")]
    assert all(issubclass(e, vigil.VigilError) for e in errors)
    assert issubclass(vigil.PermanentDeliveryError, vigil.SinkError)


def test_importing_vigil_loads_no_heavy_backend() -> None:
    code = (
        "import sys, vigil, vigil.apps.posture, vigil.sinks.network; "
        "heavy = [m for m in ('mediapipe', 'torch', 'matplotlib', 'ai_edge_litert', 'boto3', "
        "'pyarrow', 'paho', 'apprise', 'onnxruntime') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
