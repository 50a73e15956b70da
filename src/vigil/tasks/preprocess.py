"""Image pre-processing shared by model tasks: resize, colour, layout, scaling, mapping back.

A frame becomes a model's input tensor as the model's :class:`~vigil.models.Preprocess` says;
:class:`InputMapping` takes the model's coordinates back to frame pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vigil.errors import ModelError
from vigil.models.spec import Preprocess
from vigil.runtimes.base import TensorSpec


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


@dataclass(frozen=True, slots=True)
class InputMapping:
    """Where a frame went in the model input: ``input = frame * scale + offset`` per axis.

    Maps model-input pixels back to frame pixels, clipped to the frame.
    """

    scale_x: float
    scale_y: float
    offset_x: float
    offset_y: float
    frame_width: int
    frame_height: int

    def to_frame(self, points: np.ndarray) -> np.ndarray:
        """Map (..., 2) input-pixel (x, y) coordinates to frame pixels, inside the frame."""
        offset = np.array([self.offset_x, self.offset_y], np.float32)
        scale = np.array([self.scale_x, self.scale_y], np.float32)
        frame = (np.asarray(points, np.float32) - offset) / scale
        limit = np.array([self.frame_width, self.frame_height], np.float32)
        return np.asarray(np.clip(frame, 0, limit), np.float32)

    def boxes_to_frame(self, xyxy: np.ndarray) -> np.ndarray:
        """Map (N, 4) input-pixel boxes to frame pixels, inside the frame."""
        corners = np.asarray(xyxy, np.float32).reshape(-1, 2, 2)
        return self.to_frame(corners).reshape(-1, 4)


def letterbox(
    image: np.ndarray, width: int, height: int, fill: int = 0, interpolation: int | None = None
) -> tuple[np.ndarray, Letterbox]:
    """Resize ``image`` to fit ``width`` x ``height`` keeping its aspect ratio, centred, padded.

    Args:
        image: The (height, width, channels) image.
        width: Width of the result.
        height: Height of the result.
        fill: Grey level of the padding.
        interpolation: An OpenCV interpolation flag; None: area averaging when shrinking (best
            for viewing), bilinear when growing.

    Returns:
        The padded image (height, width, channels) and the mapping back to the frame.
    """
    h, w = image.shape[:2]
    scale = min(width / w, height / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    resized = _resize(image, new_w, new_h, _interpolation(interpolation, scale))
    pad_x, pad_y = (width - new_w) // 2, (height - new_h) // 2
    out = np.full((height, width, image.shape[2]), fill, dtype=image.dtype)
    out[pad_y : pad_y + new_h, pad_x : pad_x + new_w] = resized
    return out, Letterbox(scale=scale, pad_x=float(pad_x), pad_y=float(pad_y))


def place(
    image: np.ndarray, width: int, height: int, settings: Preprocess
) -> tuple[np.ndarray, InputMapping]:
    """Fit ``image`` into ``width`` x ``height`` as ``settings.resize`` says.

    stretch scales each axis on its own; letterbox keeps the aspect and pads with
    ``settings.pad_value``; crop keeps the aspect and cuts the centre. ``settings.interpolation``
    picks the resampling.
    """
    h, w = image.shape[:2]
    linear = cv2.INTER_LINEAR if settings.interpolation == "linear" else None
    if settings.resize == "stretch":
        sx, sy = width / w, height / h
        resized = _resize(image, width, height, _interpolation(linear, min(sx, sy)))
        return resized, InputMapping(sx, sy, 0.0, 0.0, w, h)
    if settings.resize == "letterbox":
        padded, box = letterbox(image, width, height, settings.pad_value, linear)
        return padded, InputMapping(box.scale, box.scale, box.pad_x, box.pad_y, w, h)
    return _centre_crop(image, width, height, linear)


def _centre_crop(
    image: np.ndarray, width: int, height: int, interpolation: int | None
) -> tuple[np.ndarray, InputMapping]:
    h, w = image.shape[:2]
    scale = max(width / w, height / h)
    new_w, new_h = max(width, round(w * scale)), max(height, round(h * scale))
    resized = _resize(image, new_w, new_h, _interpolation(interpolation, scale))
    left, top = (new_w - width) // 2, (new_h - height) // 2
    cropped = np.ascontiguousarray(resized[top : top + height, left : left + width])
    return cropped, InputMapping(scale, scale, float(-left), float(-top), w, h)


def _interpolation(interpolation: int | None, scale: float) -> int:
    if interpolation is not None:
        return interpolation
    return cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR


def _resize(image: np.ndarray, width: int, height: int, interpolation: int) -> np.ndarray:
    if image.shape[1] == width and image.shape[0] == height:
        return image
    return cv2.resize(image, (width, height), interpolation=interpolation)


def to_layout(batch_hwc: np.ndarray, channels_first: bool) -> np.ndarray:
    """Turn one HWC image into a batch of one, NCHW when ``channels_first``, else NHWC."""
    if channels_first:
        return np.ascontiguousarray(batch_hwc.transpose(2, 0, 1)[None])
    return np.ascontiguousarray(batch_hwc[None])


def check_image(image: object) -> np.ndarray:
    """Return ``image`` if it is an RGB uint8 (H, W, 3) array.

    Raises:
        ModelError: it is not; the message says what it is and how to convert it.
    """
    if not isinstance(image, np.ndarray):
        raise ModelError(f"expected an RGB image as a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ModelError(
            f"expected an RGB uint8 image of shape (height, width, 3), got shape {image.shape} "
            f"dtype {image.dtype}; convert it first, e.g. with cv2.cvtColor"
        )
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ModelError(f"the image is empty: shape {image.shape}")
    return image


@dataclass(frozen=True)
class ImageInput:
    """Turns RGB frames into one model input tensor.

    Attributes:
        tensor: The model's input.
        settings: How to prepare frames.
        width: Input width in pixels.
        height: Input height in pixels.
        channels_first: NCHW when True, NHWC when False.
    """

    tensor: TensorSpec
    settings: Preprocess
    width: int
    height: int
    channels_first: bool

    @classmethod
    def for_tensor(
        cls,
        tensor: TensorSpec,
        settings: Preprocess,
        path: str,
        fallback_size: tuple[int, int] | None = None,
    ) -> ImageInput:
        """Read the input geometry from ``tensor``'s shape and ``settings``.

        Args:
            tensor: The model's image input.
            settings: The spec's pre-processing.
            path: The model file, for messages.
            fallback_size: (width, height) when the input size is dynamic and the settings give
                none.

        Raises:
            ModelError: the input is not a batch of 3-channel images, or its size is unknown.
        """
        channels_first = _channels_first(tensor, settings, path)
        height, width = tensor.shape[2:4] if channels_first else tensor.shape[1:3]
        size = _input_size(width, height, settings, fallback_size, path)
        return cls(tensor, settings, size[0], size[1], channels_first)

    def prepare(self, image: np.ndarray) -> tuple[np.ndarray, InputMapping]:
        """Return the input batch for ``image`` and the mapping back to its pixels."""
        placed, mapping = place(image, self.width, self.height, self.settings)
        if self.settings.color == "bgr":
            placed = placed[..., ::-1]
        return to_layout(self._values(placed), self.channels_first), mapping

    def _values(self, pixels: np.ndarray) -> np.ndarray:
        tensor, settings = self.tensor, self.settings
        if settings.mean is None or settings.std is None:
            return _raw_pixels(pixels, tensor.dtype)
        mean = np.array(settings.mean, np.float32)
        std = np.array(settings.std, np.float32)
        real = (pixels.astype(np.float32) - mean) / std
        if tensor.quantized:
            real = np.round(real / tensor.scale + tensor.zero_point)
        if np.issubdtype(tensor.dtype, np.integer):
            info = np.iinfo(tensor.dtype)
            return np.clip(np.round(real), info.min, info.max).astype(tensor.dtype)
        return real.astype(tensor.dtype)


def _raw_pixels(pixels: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Pixels 0..255 as the input type; int8 inputs take them shifted to -128..127."""
    if dtype == np.int8:
        return (pixels.astype(np.int16) - 128).astype(np.int8)
    return pixels.astype(dtype)


def _channels_first(tensor: TensorSpec, settings: Preprocess, path: str) -> bool:
    shape = tensor.shape
    if len(shape) != 4:
        raise ModelError(
            f"model {path} takes an input of shape {_shown(shape)}; expected a batch of images, "
            "(1, height, width, 3) or (1, 3, height, width)"
        )
    if shape[0] not in (1, None):
        raise ModelError(
            f"model {path} takes batches of {shape[0]} images; export it with batch size 1 or a "
            "dynamic batch"
        )
    if settings.layout != "auto":
        channels_first = settings.layout == "nchw"
    elif shape[1] == 3 or shape[3] == 3:
        channels_first = shape[1] == 3
    else:
        raise ModelError(
            f"cannot tell the channel axis of model {path} from its input shape {_shown(shape)}; "
            "set preprocess.layout to nchw or nhwc"
        )
    channels = shape[1] if channels_first else shape[3]
    if channels not in (3, None):
        raise ModelError(
            f"model {path} takes {channels}-channel images (input {_shown(shape)}); "
            "Vigil feeds RGB images"
        )
    return channels_first


def _input_size(
    width: int | None,
    height: int | None,
    settings: Preprocess,
    fallback: tuple[int, int] | None,
    path: str,
) -> tuple[int, int]:
    if width is not None and height is not None:
        if settings.input_size is not None and settings.input_size != (width, height):
            raise ModelError(
                f"model {path} takes {width}x{height} images, but its spec says input_size "
                f"{settings.input_size[0]}x{settings.input_size[1]}; leave input_size out for "
                "models with a fixed size"
            )
        return width, height
    size = settings.input_size or fallback
    if size is None:
        raise ModelError(
            f"model {path} takes images of any size; set preprocess.input_size (width, height) "
            "in its spec"
        )
    return size


def _shown(shape: tuple[int | None, ...]) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"
