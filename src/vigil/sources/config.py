"""Settings shared by every frame source."""

from __future__ import annotations

from datetime import datetime
from typing import Self

from pydantic import Field, model_validator

from vigil.config import ConfigModel


class SourceConfig(ConfigModel):
    """How a source reads frames: pacing, timestamps, image handling and reconnects."""

    max_fps: float | None = Field(
        default=None,
        gt=0,
        le=1000,
        description=(
            "Hand out at most this many frames per second. Video files keep only frames at least "
            "1/max_fps apart in video time; live sources wait and take the newest frame. "
            "None: every video frame, and live frames as fast as they are processed."
        ),
    )
    start_time: datetime | None = Field(
        default=None,
        description=(
            "Timestamp of the first frame of a video file or image set (a naive value is local "
            "time). None: the moment the source is opened. Live sources always use the clock."
        ),
    )
    image_interval_seconds: float = Field(
        default=1.0,
        gt=0,
        le=86_400,
        description="Seconds between the timestamps of consecutive photos of an image source.",
    )
    recursive: bool = Field(
        default=False,
        description="Also read images in subfolders of a folder source (and '**' in globs).",
    )
    loop: bool = Field(
        default=False,
        description="Replay a video file or image set forever, with timestamps that keep rising.",
    )
    max_image_side: int | None = Field(
        default=1920,
        ge=16,
        le=65_536,
        description=(
            "Downscale photos whose longer side exceeds this many pixels; the frame carries the "
            "downscaled image. None: keep the original size."
        ),
    )
    width: int | None = Field(
        default=None,
        ge=1,
        le=16_384,
        description="Frame width to request from a camera; None: the camera's default.",
    )
    height: int | None = Field(
        default=None,
        ge=1,
        le=16_384,
        description="Frame height to request from a camera; None: the camera's default.",
    )
    reconnect_attempts: int = Field(
        default=5,
        ge=0,
        le=1000,
        description="How many times to reopen a camera or stream that fails before giving up.",
    )
    reconnect_initial_seconds: float = Field(
        default=0.5,
        gt=0,
        le=600,
        description="Wait before the first reconnect; it doubles each attempt.",
    )
    reconnect_max_seconds: float = Field(
        default=10.0, gt=0, le=3600, description="Longest wait between two reconnect attempts."
    )
    open_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Give up connecting to a stream URL after this long.",
    )
    read_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=600,
        description="Treat a stream that sends nothing for this long as disconnected.",
    )

    @model_validator(mode="after")
    def _backoff_is_ordered(self) -> Self:
        if self.reconnect_max_seconds < self.reconnect_initial_seconds:
            raise ValueError(
                "reconnect_max_seconds must be at least reconnect_initial_seconds "
                f"({self.reconnect_max_seconds} < {self.reconnect_initial_seconds})"
            )
        return self

    def reconnect_delay(self, attempt: int) -> float:
        """Seconds to wait before reconnect ``attempt`` (1-based): doubling, capped."""
        delay = self.reconnect_initial_seconds * 2.0 ** min(attempt - 1, 60)
        return float(min(delay, self.reconnect_max_seconds))
