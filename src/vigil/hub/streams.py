"""Live frames: the latest JPEG of each device, in memory, handed to any number of viewers.

A device posts a frame; the hub keeps only the newest one per device and wakes the viewers of
that device. Each viewer sends the newest frame whenever it is ready for one, so a slow viewer
skips frames instead of queueing them, and never holds up the device or the other viewers.
Everything runs on the server's event loop; nothing here blocks.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from vigil.errors import VigilError

BOUNDARY = "vigilframe"
"""The multipart boundary of MJPEG streams."""

KEEPALIVE_SECONDS = 5.0
"""A viewer with no new frame re-checks this often whether the hub is stopping."""


@dataclass(frozen=True, slots=True)
class LiveFrame:
    """One JPEG frame of a device, with when it arrived (``time.time()``) and its number."""

    jpeg: bytes
    received: float
    number: int


@dataclass
class _Channel:
    frame: LiveFrame | None = None
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    viewers: int = 0


class StreamsFull(VigilError):
    """Every live-stream place is taken by a device that sent a frame recently."""


class LiveStreams:
    """The newest frame per device, and the viewers waiting for the next one.

    Args:
        fresh_seconds: A frame older than this is no longer live.
        max_devices: Most devices kept; a stale device makes room for a new one.
    """

    def __init__(self, fresh_seconds: float = 5.0, max_devices: int = 256) -> None:
        self.fresh_seconds = fresh_seconds
        self.max_devices = max_devices
        self._channels: dict[str, _Channel] = {}
        self._numbers = 0
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_task: concurrent.futures.Future[None] | None = None

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Note the event loop the server runs on, so :meth:`stop_soon` can reach it."""
        self._loop = loop
        self._stopping = False

    async def publish(self, device_id: str, jpeg: bytes) -> LiveFrame:
        """Make ``jpeg`` the device's live frame and wake its viewers.

        Raises:
            StreamsFull: there is no room for another device.
        """
        channel = self._channels.get(device_id) or self._new_channel(device_id)
        self._numbers += 1
        frame = LiveFrame(jpeg, time.time(), self._numbers)
        async with channel.changed:
            channel.frame = frame
            channel.changed.notify_all()
        return frame

    def latest(self, device_id: str) -> LiveFrame | None:
        """Return the device's frame when it arrived within ``fresh_seconds``; else None."""
        channel = self._channels.get(device_id)
        if channel is None or channel.frame is None or not self._fresh(channel.frame):
            return None
        return channel.frame

    def streaming(self) -> set[str]:
        """Return the devices with a live frame."""
        return {device for device in list(self._channels) if self.latest(device) is not None}

    def viewers(self, device_id: str) -> int:
        """How many viewers watch the device now."""
        channel = self._channels.get(device_id)
        return channel.viewers if channel is not None else 0

    def frames(self, device_id: str) -> AsyncIterator[LiveFrame]:
        """Yield the device's live frame, then each newer one as it arrives, until stopped.

        A frame that arrives while the viewer is busy replaces the one before: a viewer only
        ever gets the newest. The first frame must be live; after it, a viewer that fell
        behind still gets the newest frame, however old.

        Raises:
            StreamsFull: there is no room for another device (raised here, not while
                iterating).
        """
        channel = self._channels.get(device_id) or self._new_channel(device_id)
        return self._frames(channel)

    async def _frames(self, channel: _Channel) -> AsyncIterator[LiveFrame]:
        channel.viewers += 1
        try:
            seen = 0
            while not self._stopping:
                frame = await self._next(channel, seen)
                if frame is not None:
                    seen = frame.number
                    yield frame
        finally:
            channel.viewers -= 1

    async def stop(self) -> None:
        """End every viewer's stream (the hub is stopping)."""
        self._stopping = True
        for channel in list(self._channels.values()):
            async with channel.changed:
                channel.changed.notify_all()

    def stop_soon(self) -> None:
        """End every viewer's stream, from any thread (a stop signal, a test's teardown)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            self._stopping = True
            return
        self._stop_task = asyncio.run_coroutine_threadsafe(self.stop(), loop)

    async def _next(self, channel: _Channel, seen: int) -> LiveFrame | None:
        async with channel.changed:
            if not self._is_new(channel.frame, seen):
                try:
                    await asyncio.wait_for(channel.changed.wait(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    return None
            frame = channel.frame
        return frame if self._is_new(frame, seen) else None

    def _is_new(self, frame: LiveFrame | None, seen: int) -> bool:
        """Whether to send ``frame``: newer than the last one sent; live when it is the first."""
        if frame is None or frame.number <= seen:
            return False
        return seen > 0 or self._fresh(frame)

    def _fresh(self, frame: LiveFrame) -> bool:
        return time.time() - frame.received <= self.fresh_seconds

    def _new_channel(self, device_id: str) -> _Channel:
        if len(self._channels) >= self.max_devices:
            self._drop_stale()
        if len(self._channels) >= self.max_devices:
            raise StreamsFull(
                f"the hub keeps live frames of at most {self.max_devices} devices and all of "
                "them are streaming; try again later"
            )
        channel = _Channel()
        self._channels[device_id] = channel
        return channel

    def _drop_stale(self) -> None:
        for device_id, channel in list(self._channels.items()):
            if channel.viewers == 0 and (channel.frame is None or not self._fresh(channel.frame)):
                del self._channels[device_id]


def multipart_part(frame: LiveFrame) -> bytes:
    """One part of an MJPEG (``multipart/x-mixed-replace``) stream."""
    head = f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\nContent-Length: {len(frame.jpeg)}\r\n\r\n"
    return head.encode("ascii") + frame.jpeg + b"\r\n"
