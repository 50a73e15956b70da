"""Pipeline stages: pose (and, later, detect, classify, embed)."""

from vigil.stages.base import FrameResults, Pipeline, Stage

__all__ = ["FrameResults", "Pipeline", "Stage"]
