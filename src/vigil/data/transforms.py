"""Resizing for packing, and augmentations: callables ``(image, rng) -> image`` on RGB uint8.

A loader calls its transform in the worker processes, once per sample, with a
:class:`numpy.random.Generator` seeded from the loader's seed, the epoch and the sample's place,
so augmented epochs repeat exactly. Any picklable callable with that signature works (a
module-level function or an instance of a module-level class); the ones here cover the usual
classifier training: a random resized crop, a horizontal flip and colour jitter for training, a
centre crop for evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import cv2
import numpy as np

from vigil.data.config import Fit


class Transform(Protocol):
    """Turns one RGB uint8 image into another image (or an array the trainer wants)."""

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return the transformed image; draw any randomness from ``rng``."""


def resize_shorter(image: np.ndarray, size: int) -> np.ndarray:
    """Scale so the shorter side is ``size`` pixels, keeping the aspect ratio.

    Large reductions go in two steps, a whole factor first: pixel-area averaging at a whole
    factor is twice as fast as at any other, and the result differs by under one grey level.
    """
    height, width = image.shape[:2]
    scale = size / min(height, width)
    if scale == 1:
        return image
    shape = (max(size, round(width * scale)), max(size, round(height * scale)))
    if scale >= 1:
        return cv2.resize(image, shape, interpolation=cv2.INTER_LINEAR)
    factor = int(1 / scale)
    if factor >= 2:
        reduced = (width // factor, height // factor)
        image = cv2.resize(image, reduced, interpolation=cv2.INTER_AREA)
    return cv2.resize(image, shape, interpolation=cv2.INTER_AREA)


def center_crop(image: np.ndarray, size: int) -> np.ndarray:
    """Return the central ``size`` x ``size`` square (or less, where the image is smaller)."""
    height, width = image.shape[:2]
    top, left = max(0, (height - size) // 2), max(0, (width - size) // 2)
    return image[top : top + size, left : left + size]


def fit_image(image: np.ndarray, size: int, fit: Fit) -> np.ndarray:
    """Resize as packing does: shorter side to ``size``, then for ``crop`` a centre square."""
    resized = resize_shorter(image, size)
    return np.ascontiguousarray(center_crop(resized, size)) if fit == "crop" else resized


@dataclass(frozen=True)
class Compose:
    """Apply transforms one after the other."""

    steps: Sequence[Transform]

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Run every step in order."""
        for step in self.steps:
            image = step(image, rng)
        return image


@dataclass(frozen=True)
class CenterCrop:
    """Resize the shorter side to ``size`` and keep the central square (for evaluation)."""

    size: int

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return a ``size`` x ``size`` image."""
        return fit_image(image, self.size, "crop")


@dataclass(frozen=True)
class RandomResizedCrop:
    """A random part of the image (area share and aspect ratio in ranges), resized to a square.

    Attributes:
        size: Output side in pixels.
        scale: Range of the crop's share of the image area.
        ratio: Range of the crop's width / height.

    """

    size: int
    scale: tuple[float, float] = (0.35, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return a ``size`` x ``size`` crop."""
        height, width = image.shape[:2]
        area = height * width * rng.uniform(*self.scale)
        aspect = float(np.exp(rng.uniform(np.log(self.ratio[0]), np.log(self.ratio[1]))))
        crop_w = int(min(width, max(1, round(np.sqrt(area * aspect)))))
        crop_h = int(min(height, max(1, round(np.sqrt(area / aspect)))))
        top = int(rng.integers(0, height - crop_h + 1))
        left = int(rng.integers(0, width - crop_w + 1))
        crop = image[top : top + crop_h, left : left + crop_w]
        interpolation = cv2.INTER_AREA if crop_w > self.size else cv2.INTER_LINEAR
        return cv2.resize(crop, (self.size, self.size), interpolation=interpolation)


@dataclass(frozen=True)
class RandomFlip:
    """Mirror left to right with probability ``p``."""

    p: float = 0.5

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return the image, mirrored or not."""
        return np.ascontiguousarray(image[:, ::-1]) if rng.random() < self.p else image


@dataclass(frozen=True)
class ColorJitter:
    """Random brightness, contrast and saturation, each a factor in ``[1 - x, 1 + x]``.

    The three are linear in the pixels, so they are applied as one weighted sum of the image,
    its grey version and a constant (about 0.15 ms for 224 x 224).
    """

    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2

    def __call__(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Return the jittered image (uint8)."""
        b, c, s = (
            1 + rng.uniform(-x, x) for x in (self.brightness, self.contrast, self.saturation)
        )
        image = np.ascontiguousarray(image)
        grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
        grey3 = cv2.cvtColor(grey, cv2.COLOR_GRAY2RGB)
        offset = (1 - c) * b * float(grey.mean())
        jittered: np.ndarray = cv2.addWeighted(image, c * b * s, grey3, c * b * (1 - s), offset)
        return jittered


def train_transform(size: int = 224) -> Compose:
    """Return the usual training augmentation: random resized crop, flip, colour jitter."""
    return Compose([RandomResizedCrop(size), RandomFlip(), ColorJitter()])


def eval_transform(size: int = 224) -> CenterCrop:
    """Return the evaluation view: the central square at ``size``."""
    return CenterCrop(size)


__all__ = [
    "CenterCrop",
    "ColorJitter",
    "Compose",
    "RandomFlip",
    "RandomResizedCrop",
    "Transform",
    "center_crop",
    "eval_transform",
    "fit_image",
    "resize_shorter",
    "train_transform",
]
