"""Vigil: a self-hosted smart-camera platform.

The package imports fast: heavy backends (MediaPipe, LiteRT, PyTorch) load only when a
pipeline that needs them is built.
"""

from vigil.errors import (
    ConfigError,
    DependencyError,
    ModelError,
    PermanentDeliveryError,
    SinkError,
    SourceError,
    StorageError,
    VigilError,
)
from vigil.events import Event
from vigil.frame import Frame
from vigil.results import COCO_17, MEDIAPIPE_33, KeypointSchema, Poses

__version__ = "0.1.0"

__all__ = [
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
]
