"""Task models: a model file plus its spec, run on RGB frames, returning typed results.

``load_model(path, spec)`` picks the runtime from the file, merges the spec with what the file
carries and returns a :class:`ClassifyModel`, :class:`DetectModel`, :class:`PoseModel` or
:class:`EmbedModel`; each has one verb, ``predict(image)``.
"""

from vigil.tasks.base import FileTaskModel, Prediction, TaskModel
from vigil.tasks.classify import ClassifyModel
from vigil.tasks.detect import DetectModel
from vigil.tasks.embed import EmbedModel
from vigil.tasks.loader import MEDIAPIPE, load_model, resolve_spec
from vigil.tasks.pose import PoseModel

__all__ = [
    "MEDIAPIPE",
    "ClassifyModel",
    "DetectModel",
    "EmbedModel",
    "FileTaskModel",
    "PoseModel",
    "Prediction",
    "TaskModel",
    "load_model",
    "resolve_spec",
]
