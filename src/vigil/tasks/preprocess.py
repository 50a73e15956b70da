"""Image pre-processing shared by model tasks: resizing with letterbox and mapping back."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True, slots=True)
class Letterbox:
    """How a frame was scaled and padded into a model input, to map results back.

    A point ``(x, y)`` in model-input pixels is ``((x - pad_x) / scale, (y - pad_y) / scale)``
    in frame pixels.
    """

    scale: float
    pad_x: float
    pad_y: float

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        """Map (..., 2) input-pixel coordinates to frame pixels."""
        offset = np.array([self.pad_x, self.pad_y], np.float32)
        return ((points - offset) / self.scale).astype(np.float32)


def letterbox(
    image: np.ndarray, width: int, height: int, fill: int = 0
) -> tuple[np.ndarray, Letterbox]:
    """Resize ``image`` to fit ``width`` x ``height`` keeping its aspect ratio, centred, padded.

    Returns:
        The padded image (height, width, channels) and the mapping back to the frame.
    """
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (new_w, new_h), interpolation=interpolation)
    pad_x, pad_y = (width - new_w) // 2, (height - new_h) // 2
    out = np.full((height, width, image.shape[2]), fill, dtype=image.dtype)
    out[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    return out, Letterbox(scale=scale, pad_x=float(pad_x), pad_y=float(pad_y))


def to_layout(batch_hwc: np.ndarray, channels_first: bool) -> np.ndarray:
    """Turn one HWC image into a batch of one, NCHW when ``channels_first``, else NHWC."""
    if channels_first:
        return np.ascontiguousarray(batch_hwc.transpose(2, 0, 1)[None])
    return np.ascontiguousarray(batch_hwc[None])
