"""Typed, validated, numpy-backed results: one container per kind."""

from vigil.results.keypoints import COCO_17, MEDIAPIPE_33, SCHEMAS, KeypointSchema
from vigil.results.poses import Poses

__all__ = ["COCO_17", "MEDIAPIPE_33", "SCHEMAS", "KeypointSchema", "Poses"]
