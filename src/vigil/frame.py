"""The unit of data that flows from a source into a pipeline."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Frame:
    """One image from a source.

    Attributes:
        image: RGB pixels, shape (height, width, 3), dtype uint8.
        timestamp: Capture time in seconds since the Unix epoch. Rules measure durations with
            it, so a recorded hour is judged like a live hour.
        index: Sequence number of the frame within its source, counting from 0.
        source_id: Which source produced the frame (a path, URL or camera index).
        path: The image file the frame came from, for image sources; otherwise None.
    """

    image: np.ndarray
    timestamp: float
    index: int
    source_id: str
    path: str | None = None

    def __post_init__(self) -> None:
        image = self.image
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                "Frame.image must be an RGB uint8 array of shape (H, W, 3), "
                f"but got dtype {image.dtype} and shape {image.shape}"
            )

    @property
    def height(self) -> int:
        """Image height in pixels."""
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        """Image width in pixels."""
        return int(self.image.shape[1])
