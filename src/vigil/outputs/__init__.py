"""Per-frame outputs: JSON lines, annotated video, an on-screen window."""

from vigil.outputs.display import DisplayOutput
from vigil.outputs.jsonl import JsonLinesOutput
from vigil.outputs.video import VideoOutput

__all__ = ["DisplayOutput", "JsonLinesOutput", "VideoOutput"]
