"""Stages: one verb, ``run(frame, results) -> results``; a pipeline is a list of them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from vigil.frame import Frame
from vigil.results import Poses


@dataclass
class FrameResults:
    """What the stages found in one frame.

    Attributes:
        poses: People's keypoints, when a pose stage ran.
        extras: Results of app-specific stages and rules, keyed by name (e.g. ``"posture"``).
    """

    poses: Poses | None = None
    extras: dict[str, Any] = field(default_factory=dict)


class Stage(Protocol):
    """One step of a pipeline."""

    def run(self, frame: Frame, results: FrameResults) -> FrameResults:
        """Add this stage's findings for ``frame`` to ``results``."""

    def close(self) -> None:
        """Release resources."""


class Pipeline:
    """Stages run in order on every frame."""

    def __init__(self, stages: list[Stage]) -> None:
        self.stages = stages

    def run(self, frame: Frame) -> FrameResults:
        """Run every stage on ``frame``."""
        results = FrameResults()
        for stage in self.stages:
            results = stage.run(frame, results)
        return results

    def close(self) -> None:
        """Close every stage."""
        for stage in self.stages:
            stage.close()
