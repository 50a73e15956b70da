"""Typed, validated, numpy-backed results: one container per kind.

Every container has ``len()``, filters by indexing and has a ``to_dict()`` whose JSON is the same
from the Python API, the CLI and the HTTP service (scores to 4 decimals, pixels to 1).
"""

from vigil.results.classifications import Classification, Classifications
from vigil.results.detections import Detections
from vigil.results.embeddings import Embeddings
from vigil.results.keypoints import COCO_17, MEDIAPIPE_33, SCHEMAS, KeypointSchema
from vigil.results.poses import Poses

__all__ = [
    "COCO_17",
    "MEDIAPIPE_33",
    "SCHEMAS",
    "Classification",
    "Classifications",
    "Detections",
    "Embeddings",
    "KeypointSchema",
    "Poses",
]
