"""The engine: frames through stages and rules to sinks, losing nothing on the way out."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from vigil.engine import Engine
from vigil.errors import SourceError
from vigil.events import Event
from vigil.frame import Frame
from vigil.sinks.base import MemorySink
from vigil.stages.base import FrameResults, Pipeline

IMAGE = np.zeros((2, 2, 3), np.uint8)


class CountingStage:
    def __init__(self) -> None:
        self.closed = False

    def run(self, frame: Frame, results: FrameResults) -> FrameResults:
        results.extras["index"] = frame.index
        return results

    def close(self) -> None:
        self.closed = True


class EverySecond:
    """Emits one event per frame and one more when flushed."""

    def update(self, frame: Frame, results: FrameResults) -> list[Event]:
        return [Event("tick", "test", "d", frame.timestamp, {"index": results.extras["index"]})]

    def flush(self) -> list[Event]:
        return [Event("final", "test", "d", 0.0, {})]


class Recorder:
    def __init__(self) -> None:
        self.seen: list[int] = []
        self.closed = False

    def write(self, frame: Frame, results: FrameResults) -> None:
        self.seen.append(frame.index)

    def close(self) -> None:
        self.closed = True


def frames(count: int, fail_after: int | None = None) -> Iterator[Frame]:
    for i in range(count):
        if fail_after is not None and i == fail_after:
            raise SourceError("camera 0 stopped delivering frames")
        yield Frame(IMAGE, 100.0 + i, i, "test")


def engine(
    sink: MemorySink, output: Recorder, stage: CountingStage, max_frames: int | None = None
) -> Engine:
    return Engine(Pipeline([stage]), [EverySecond()], [sink], [output], max_frames=max_frames)


def test_frames_flow_through_in_order() -> None:
    sink, output, stage = MemorySink(), Recorder(), CountingStage()
    stats = engine(sink, output, stage).run(frames(5))
    assert [e.data["index"] for e in sink.of_kind("tick")] == [0, 1, 2, 3, 4]
    assert output.seen == [0, 1, 2, 3, 4]
    assert stats.frames == 5 and stats.events == {"tick": 5, "final": 1}
    assert sink.closed and output.closed and stage.closed


def test_max_frames_stops_early_and_still_flushes() -> None:
    sink, output, stage = MemorySink(), Recorder(), CountingStage()
    stats = engine(sink, output, stage, max_frames=3).run(frames(10))
    assert stats.frames == 3 and [e.kind for e in sink.events][-1] == "final"


def test_a_failing_source_still_flushes_what_was_taken() -> None:
    sink, output, stage = MemorySink(), Recorder(), CountingStage()
    with pytest.raises(SourceError):
        engine(sink, output, stage).run(frames(10, fail_after=4))
    assert [e.data.get("index") for e in sink.of_kind("tick")] == [0, 1, 2, 3]
    assert sink.of_kind("final") and sink.closed and output.closed and stage.closed


def test_stop_ends_after_the_current_frame() -> None:
    sink, output, stage = MemorySink(), Recorder(), CountingStage()
    run = engine(sink, output, stage)

    def stopping() -> Iterator[Frame]:
        for frame in frames(10):
            if frame.index == 2:
                run.stop("SIGTERM")
            yield frame

    stats = run.run(stopping())
    assert stats.frames == 3 and stats.stopped_by == "SIGTERM"
    assert sink.of_kind("final")


def test_a_failing_close_does_not_keep_the_others_from_closing() -> None:
    class Broken(MemorySink):
        def close(self) -> None:
            raise RuntimeError("disk gone")

    sink, output, stage = MemorySink(), Recorder(), CountingStage()
    run = Engine(Pipeline([stage]), [EverySecond()], [Broken(), sink], [output])
    run.run(frames(2))
    assert sink.closed and output.closed and stage.closed
