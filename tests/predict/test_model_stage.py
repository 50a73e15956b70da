"""The generic model stage inside the engine, and the drawing of each task's results."""

from __future__ import annotations

import numpy as np
import pytest

from vigil.annotate import class_color, draw_classifications, draw_detections, draw_prediction
from vigil.engine import Engine
from vigil.frame import Frame
from vigil.models.spec import TASKS, Task
from vigil.results import COCO_17, Classifications, Detections, Poses
from vigil.sources import ArraySource
from vigil.stages.base import FrameResults, Pipeline
from vigil.stages.model import ModelStage, annotate_prediction, describe_prediction, prediction_of
from vigil.tasks.fake import FakeModel


class Collect:
    """A frame output that keeps what the engine hands it."""

    def __init__(self) -> None:
        self.seen: list[tuple[Frame, FrameResults]] = []

    def write(self, frame: Frame, results: FrameResults) -> None:
        self.seen.append((frame, results))

    def close(self) -> None:
        pass


def frames(count: int = 3) -> list[np.ndarray]:
    return [np.full((120, 160, 3), 60 * i, np.uint8) for i in range(count)]


@pytest.mark.parametrize("task", TASKS)
def test_the_stage_puts_each_frames_prediction_into_extras(task: Task) -> None:
    model = FakeModel(task)
    collect = Collect()
    engine = Engine(Pipeline([ModelStage(model, name="seen")]), [], [], [collect])
    stats = engine.run(ArraySource(frames()))
    assert stats.frames == 3
    for frame, results in collect.seen:
        expected = FakeModel(task).predict(frame.image).to_dict()
        assert prediction_of(results, "seen").to_dict() == expected
        assert describe_prediction(frame, results, "seen") == {
            "frame": frame.index,
            "task": task,
            "results": expected,
        }
        assert (results.poses is not None) == (task == "pose")
    assert model.closed  # the pipeline closed the stage, the stage closed the model


def test_a_pose_stage_before_it_keeps_its_poses() -> None:
    earlier = Poses.empty(COCO_17)
    results = FrameResults(poses=earlier)
    frame = Frame(frames(1)[0], 0.0, 0, "test")
    ModelStage(FakeModel("pose")).run(frame, results)
    assert results.poses is earlier
    assert len(prediction_of(results)) == 1


def test_a_photo_frame_is_described_by_its_path() -> None:
    frame = Frame(frames(1)[0], 0.0, 4, "photos", path="photos/a.jpg")
    results = ModelStage(FakeModel("embed")).run(frame, FrameResults())
    described = describe_prediction(frame, results)
    assert described["image"] == "photos/a.jpg" and "frame" not in described


@pytest.mark.parametrize("task", TASKS)
def test_annotating_draws_on_a_copy(task: Task) -> None:
    frame = Frame(np.full((240, 320, 3), 90, np.uint8), 0.0, 0, "test")
    results = ModelStage(FakeModel(task)).run(frame, FrameResults())
    drawn = annotate_prediction(frame, results)
    assert drawn.shape == frame.image.shape
    assert (drawn != 90).any()
    assert (frame.image == 90).all()


def test_boxes_are_drawn_in_their_class_colour_on_their_place() -> None:
    image = np.zeros((200, 300, 3), np.uint8)
    detections = Detections.from_arrays(
        np.array([[50, 100, 150, 180]]), np.array([0.9]), np.array([3]), names=["a", "b", "c", "d"]
    )
    draw_detections(image, detections)
    edge = image[140, 45:56].astype(int)  # a row across the left edge (anti-aliased)
    brightest = edge[edge.sum(axis=1).argmax()]
    assert np.abs(brightest - class_color(3)).max() < 40
    assert tuple(image[140, 100]) == (0, 0, 0)  # inside stays untouched
    assert image[150:200, 200:].max() == 0  # far from the box


def test_classes_are_listed_in_a_panel() -> None:
    image = np.zeros((200, 300, 3), np.uint8)
    classes = FakeModel("classify").predict(np.zeros((10, 10, 3), np.uint8))
    assert isinstance(classes, Classifications)
    draw_classifications(image, classes, max_lines=2)
    rows = np.flatnonzero(image.any(axis=(1, 2)))
    assert 0 < rows.min() < 20 and rows.max() < 100  # two labels stacked in the top-left corner
    assert image[:, 250:].max() == 0


def test_an_unknown_prediction_draws_nothing() -> None:
    image = np.zeros((50, 50, 3), np.uint8)
    draw_prediction(image, object())
    assert image.max() == 0
