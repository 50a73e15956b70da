"""The live view on a hub: the annotated frame as a JPEG, posted a few times a second.

Best effort, and never in the pipeline's way: the pipeline thread only annotates a frame when
one is due (at most ``fps`` a second) and leaves it in a one-frame slot; a background thread
downscales, encodes and posts whatever frame is newest. A frame that waits while the previous one
is still being sent is replaced by the next, so a slow or hanging hub costs dropped frames, never
pipeline time, and the live view stays as fresh as the network allows::

    pipeline ─write─▶ [newest frame] ◀─take─ sender thread ─POST─▶ /api/streams/{device_id}
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from vigil import __version__
from vigil.errors import ConfigError
from vigil.frame import Frame
from vigil.outputs.video import Annotate
from vigil.sinks.config import HubConfig, check_hub_url
from vigil.sinks.hub import answer_text, hub_endpoint
from vigil.sinks.webhook import endpoint_label
from vigil.stages.base import FrameResults

if TYPE_CHECKING:
    import httpx

log = logging.getLogger(__name__)

_AUTH_STATUSES = frozenset({401, 403})
_JOIN_SECONDS = 0.5


def encode_jpeg(image: np.ndarray, quality: int = 75, max_side: int = 960) -> bytes:
    """Encode an RGB image as JPEG, downscaled first so that its longer side is at most max_side."""
    height, width = image.shape[:2]
    scale = max_side / max(height, width)
    if scale < 1:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"cannot encode a {width}x{height} frame as JPEG")
    return bytes(data.tobytes())


@dataclass
class StreamStats:
    """What the live stream did.

    Attributes:
        handed: Frames the pipeline handed over (at most ``fps`` a second).
        sent: Frames the hub accepted.
        replaced: Handed frames that a newer one replaced before they could be sent.
        failed: Frames whose post failed (hub unreachable, refused, or an error answer).
    """

    handed: int = 0
    sent: int = 0
    replaced: int = 0
    failed: int = 0


class StreamOutput:
    """Posts the annotated frame to a hub's live view, at most ``fps`` times a second.

    Args:
        url: The hub's http(s) address, e.g. ``http://hub.local:8600``.
        token: The device token, sent as ``Authorization: Bearer <token>``; never logged.
        device_id: The device whose live view this is.
        annotate: Draws the results onto a copy of the frame (runs on the pipeline thread).
        fps: Most frames a second.
        quality: JPEG quality, 10 to 100.
        max_side: Frames whose longer side is larger are downscaled to it.
        timeout_seconds: Timeout of one post.

    The constructor does no I/O; the sender thread starts with the first frame.

    Raises:
        ConfigError: the URL is not an http(s) address, or fps is not positive.

    """

    def __init__(
        self,
        url: str,
        token: str,
        device_id: str,
        annotate: Annotate,
        *,
        fps: float = 5.0,
        quality: int = 75,
        max_side: int = 960,
        timeout_seconds: float = 5.0,
    ) -> None:
        try:
            check_hub_url(url)
        except ValueError as exc:
            raise ConfigError(f"hub: {exc}") from None
        if fps <= 0:
            raise ConfigError(f"the live stream needs fps > 0, got {fps}")
        self.endpoint = hub_endpoint(url, f"/api/streams/{device_id}")
        self.label = endpoint_label(url)
        self.annotate = annotate
        self.interval = 1.0 / fps
        self.quality = quality
        self.max_side = max_side
        self.timeout_seconds = timeout_seconds
        self.stats = StreamStats()
        self._token = token
        self._due = float("-inf")
        self._slot: np.ndarray | None = None
        self._changed = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._reachable = True
        self._refused = False

    @classmethod
    def from_config(cls, config: HubConfig, device_id: str, annotate: Annotate) -> StreamOutput:
        """Build the live stream of the ``hub`` config section for one device."""
        return cls(
            config.url,
            config.token.get_secret_value(),
            device_id,
            annotate,
            fps=config.stream_fps,
            quality=config.stream_quality,
            max_side=config.stream_max_side,
            timeout_seconds=config.timeout_seconds,
        )

    def write(self, frame: Frame, results: FrameResults) -> None:
        """Hand the annotated frame to the sender if one is due; return at once either way."""
        now = time.monotonic()
        if now < self._due or self._refused:
            return
        self._due += self.interval  # keeps the phase, so frame timing jitter costs no rate
        if self._due <= now:  # the first frame, or the first after a pause
            self._due = now + self.interval
        image = self.annotate(frame, results)
        with self._changed:
            if self._slot is not None:
                self.stats.replaced += 1
            self._slot = image
            self.stats.handed += 1
            self._changed.notify()
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="vigil-stream", daemon=True)
            self._thread.start()

    def close(self) -> None:
        """Stop the sender; a post in flight gets a moment to end, a frame waiting is dropped."""
        with self._changed:
            self._stopping = True
            self._slot = None
            self._changed.notify()
        if self._thread is not None:
            self._thread.join(_JOIN_SECONDS)
            if self._thread.is_alive():
                log.debug("live stream: a post is still in flight at close; leaving it")
            self._thread = None

    def _run(self) -> None:
        import httpx

        headers = {
            "Authorization": f"Bearer {self._token}",
            "Content-Type": "image/jpeg",
            "User-Agent": f"vigil/{__version__}",
        }
        with httpx.Client(timeout=self.timeout_seconds, headers=headers) as client:
            while not self._refused and (image := self._take()) is not None:
                try:
                    self._send(client, encode_jpeg(image, self.quality, self.max_side))
                except Exception:  # the thread must log, never die silently
                    log.exception("live stream: unexpected error; this frame is dropped")

    def _take(self) -> np.ndarray | None:
        """Wait for the newest frame; None when closing."""
        with self._changed:
            while self._slot is None and not self._stopping:
                self._changed.wait()
            image, self._slot = self._slot, None
            return None if self._stopping else image

    def _send(self, client: httpx.Client, jpeg: bytes) -> None:
        import httpx

        try:
            response = client.post(self.endpoint, content=jpeg)
        except httpx.HTTPError as exc:
            self._failed(f"{type(exc).__name__} {exc}".strip())
            return
        if response.status_code in _AUTH_STATUSES:
            self._refuse(response.status_code)
        elif 200 <= response.status_code < 300:
            self._sent()
        else:
            answer = answer_text(response)
            self._failed(f"HTTP {response.status_code}" + (f": {answer}" if answer else ""))

    def _sent(self) -> None:
        self.stats.sent += 1
        if not self._reachable:
            log.info("live stream: the hub at %s takes frames again", self.label)
            self._reachable = True

    def _failed(self, reason: str) -> None:
        self.stats.failed += 1
        if self._reachable:
            log.warning(
                "live stream: cannot reach the hub at %s (%s); live frames are dropped until it "
                "is back (records and events wait in the outbox)",
                self.label,
                reason,
            )
            self._reachable = False

    def _refuse(self, status: int) -> None:
        """Stop posting for the rest of the run: a refused token stays refused."""
        self.stats.failed += 1
        self._refused = True
        log.info(
            "live stream: off for this run, the hub at %s refused the device token (HTTP %d)",
            self.label,
            status,
        )


__all__ = ["StreamOutput", "StreamStats", "encode_jpeg"]
