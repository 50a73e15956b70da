"""The generic model stage: any :class:`~vigil.tasks.base.TaskModel` on every frame."""

from __future__ import annotations

from typing import Any

import numpy as np

from vigil.annotate import draw_prediction
from vigil.frame import Frame
from vigil.results import Poses
from vigil.stages.base import FrameResults
from vigil.tasks.base import Prediction, TaskModel

DEFAULT_NAME = "model"
"""The key of :attr:`FrameResults.extras` a :class:`ModelStage` writes when not named."""


class ModelStage:
    """Runs a task model on each frame and puts the prediction into ``results.extras[name]``.

    Pose predictions also go into ``results.poses`` when no earlier stage set it, so what
    reads poses (rules, drawing) works with any pose model.

    Args:
        model: The loaded model; the stage closes it when the pipeline closes.
        name: The key of ``results.extras`` the prediction goes to.
    """

    def __init__(self, model: TaskModel, name: str = DEFAULT_NAME) -> None:
        self.model = model
        self.name = name

    def run(self, frame: Frame, results: FrameResults) -> FrameResults:
        """Run the model on ``frame`` and record what it found."""
        prediction = self.model.predict(frame.image)
        results.extras[self.name] = prediction
        if isinstance(prediction, Poses) and results.poses is None:
            results.poses = prediction
        return results

    def close(self) -> None:
        """Release the model."""
        self.model.close()


def prediction_of(results: FrameResults, name: str = DEFAULT_NAME) -> Prediction:
    """Return the prediction a :class:`ModelStage` called ``name`` put into ``results``.

    Raises:
        KeyError: no such stage ran on this frame.
    """
    prediction: Prediction = results.extras[name]
    return prediction


def describe_prediction(
    frame: Frame, results: FrameResults, name: str = DEFAULT_NAME
) -> dict[str, Any]:
    """Return one frame's JSON object: the image path (or frame index), the task and results.

    The results are ``prediction.to_dict()``, the same as the Python API and the HTTP service
    give.
    """
    where: dict[str, Any] = (
        {"image": frame.path} if frame.path is not None else {"frame": frame.index}
    )
    described = prediction_of(results, name).to_dict()
    return {**where, "task": described.get("task"), "results": described}


def annotate_prediction(
    frame: Frame, results: FrameResults, name: str = DEFAULT_NAME
) -> np.ndarray:
    """Draw the prediction of the stage called ``name`` onto a copy of the frame."""
    image = frame.image.copy()
    draw_prediction(image, prediction_of(results, name))
    return image
