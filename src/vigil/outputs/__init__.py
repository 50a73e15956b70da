"""Per-frame outputs: JSON lines, annotated video, an on-screen window, a hub's live view."""

from vigil.outputs.display import DisplayOutput
from vigil.outputs.jsonl import JsonLinesOutput
from vigil.outputs.stream import StreamOutput
from vigil.outputs.video import VideoOutput

__all__ = ["DisplayOutput", "JsonLinesOutput", "StreamOutput", "VideoOutput"]
