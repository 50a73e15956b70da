"""The engine: frames from a source through stages and rules, events out to sinks.

::

    Source --frames--> Pipeline of Stages --results--> Rules --events--> Sinks
                                               |
                                               +--> per-frame outputs (JSON lines, video, window)
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Protocol

from vigil.events import Event
from vigil.frame import Frame
from vigil.sinks.base import Sink
from vigil.stages.base import FrameResults, Pipeline

log = logging.getLogger(__name__)


class Rule(Protocol):
    """Consumes results over time, keeps state, emits events. No I/O."""

    def update(self, frame: Frame, results: FrameResults) -> list[Event]:
        """Take one frame's results; return the events that are due."""

    def flush(self) -> list[Event]:
        """Return the events still pending at the end of a run."""


class FrameOutput(Protocol):
    """Something that consumes every processed frame: a JSON-lines file, a video, a window."""

    def write(self, frame: Frame, results: FrameResults) -> None:
        """Handle one processed frame."""

    def close(self) -> None:
        """Finish and release resources."""


@dataclass
class RunStats:
    """What a run did."""

    frames: int = 0
    events: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    stopped_by: str | None = None

    @property
    def fps(self) -> float:
        """Frames processed per wall-clock second."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class Engine:
    """Drives frames through a pipeline, rules, outputs and sinks until the source ends or a stop.

    Args:
        pipeline: The stages.
        rules: Rules fed with every frame's results.
        sinks: Where events go.
        outputs: Per-frame consumers.
        max_frames: Stop after this many frames (None: until the source ends).
        on_stop: Called once by the first :meth:`stop`, e.g. to wake a source that waits for a
            frame that may never come. It runs in the caller of ``stop`` (a signal handler,
            another thread), so it must return at once.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        rules: list[Rule],
        sinks: list[Sink],
        outputs: list[FrameOutput] | None = None,
        max_frames: int | None = None,
        *,
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        self.pipeline = pipeline
        self.rules = rules
        self.sinks = sinks
        self.outputs = outputs or []
        self.max_frames = max_frames
        self.on_stop = on_stop
        self.stats = RunStats()
        self._stop = threading.Event()

    def stop(self, reason: str = "stop requested") -> None:
        """Ask the run to end after the current frame (thread-safe)."""
        if self._stop.is_set():
            return
        self.stats.stopped_by = reason
        self._stop.set()
        if self.on_stop is not None:
            self.on_stop()

    def run(self, frames: Iterable[Frame]) -> RunStats:
        """Process ``frames`` until they end, :meth:`stop` is called, or ``max_frames``.

        Whatever happens, pending events are flushed to the sinks and outputs are closed.
        """
        started = time.perf_counter()
        try:
            for frame in frames:
                self.process(frame)
                if self._stop.is_set() or self._reached_limit():
                    break
        finally:
            self._finish()
            self.stats.seconds = time.perf_counter() - started
        return self.stats

    def process(self, frame: Frame) -> FrameResults:
        """Run one frame through stages, rules, outputs and sinks."""
        results = self.pipeline.run(frame)
        events = [event for rule in self.rules for event in rule.update(frame, results)]
        for output in self.outputs:
            output.write(frame, results)
        self._publish(events)
        self.stats.frames += 1
        return results

    def _reached_limit(self) -> bool:
        return self.max_frames is not None and self.stats.frames >= self.max_frames

    def _publish(self, events: list[Event]) -> None:
        for event in events:
            self.stats.events[event.kind] = self.stats.events.get(event.kind, 0) + 1
            for sink in self.sinks:
                sink.publish(event)

    def _finish(self) -> None:
        try:
            self._publish([event for rule in self.rules for event in rule.flush()])
        finally:
            closables: list[FrameOutput | Sink] = [*self.outputs, *self.sinks]
            for closable in closables:
                _close_quietly(closable)
            self.pipeline.close()


def _close_quietly(thing: FrameOutput | Sink) -> None:
    try:
        thing.close()
    except Exception:  # one failing close must not keep the others from flushing
        log.exception("closing %s failed", type(thing).__name__)


@contextmanager
def stop_on_signals(engine: Engine) -> Iterator[None]:
    """Turn SIGINT (Ctrl-C) and SIGTERM into a clean :meth:`Engine.stop` while the block runs.

    A second signal while stopping raises KeyboardInterrupt, for a user who cannot wait.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if engine._stop.is_set():
            raise KeyboardInterrupt
        log.warning("%s received: finishing the current frame and flushing", name)
        engine.stop(name)

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
