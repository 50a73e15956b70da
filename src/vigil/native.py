"""Native libraries' console messages, caught and logged instead of printed.

libjpeg, MediaPipe (absl/glog) and TFLite write straight to file descriptor 2, past Python's
logging. Around the few calls that make them talk (decoding a damaged JPEG, loading a model,
its first inference), :func:`native_messages_to_log` catches descriptor 2, logs the lines it
knows as noise at DEBUG, and passes every other line on unchanged. ``VIGIL_NATIVE_LOGS=1``
leaves the console alone.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_LOCK = threading.Lock()


@contextmanager
def native_messages_to_log(noise: tuple[str, ...], logger: logging.Logger) -> Iterator[None]:
    """Catch descriptor 2 while inside; log ``noise`` lines at DEBUG, pass on the rest.

    Calls are serialised, so keep the block short (a model load, one decode).
    """
    if os.environ.get("VIGIL_NATIVE_LOGS"):
        yield
        return
    with _LOCK, tempfile.TemporaryFile() as capture:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            _pass_on(capture.read().decode("utf-8", "replace"), noise, logger)


def _pass_on(text: str, noise: tuple[str, ...], logger: logging.Logger) -> None:
    for line in text.splitlines(keepends=True):
        if line.startswith(noise):
            logger.debug("%s", line.rstrip())
        else:
            os.write(2, line.encode())


TFLITE_NOISE = ("INFO: Created TensorFlow Lite", "INFO: Initialized TensorFlow Lite")
"""What LiteRT prints when it builds an interpreter."""

MEDIAPIPE_NOISE = (
    *TFLITE_NOISE,
    "WARNING: All log messages before absl::InitializeLog()",
    "W0000 ",
    "I0000 ",
)
"""What MediaPipe's graph prints while it starts and runs its first frame."""
