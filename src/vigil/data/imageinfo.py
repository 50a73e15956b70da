"""What one image file is: its hash, size, pixel format, decodability and perceptual hash.

Images are decoded exactly as Vigil reads them everywhere else
(:func:`vigil.sources.images.read_image`): upright as EXIF says, greyscale, CMYK, 16-bit and
alpha images as 8-bit RGB, a truncated JPEG as far as its data goes. The header is read with
Pillow to report how the file differs from plain 8-bit RGB; the perceptual hash (``imagehash``'s
pHash, 64 bits) finds near duplicates.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vigil.data.parallel import Progress, parallel_map, with_progress
from vigil.errors import DependencyError, SourceError

TRAITS = ("cmyk", "greyscale", "16-bit", "alpha", "exif-rotated")
"""Ways an image differs from plain 8-bit RGB; each is converted when read, never rejected."""

_GREY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
_ALPHA_MODES = frozenset({"RGBA", "RGBa", "LA", "La", "PA"})
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_START, _JPEG_END = b"\xff\xd8", b"\xff\xd9"
_HASH_SIDE = 128


@dataclass(frozen=True, slots=True)
class ImageInfo:
    """What :func:`inspect_image` found out about one file.

    Attributes:
        key: The item's key in its dataset.
        size: File size in bytes (0 when it cannot be read).
        sha256: Hex SHA-256 of the file's bytes; None when it cannot be read.
        error: Why the image cannot be used; None when it can.
        width: Width in pixels after EXIF rotation (0 when it cannot be decoded).
        height: Height in pixels after EXIF rotation.
        truncated: A JPEG whose data ends early; it decodes, the missing part grey.
        traits: Which of :data:`TRAITS` apply.
        phash: 64-bit perceptual hash; None when it cannot be decoded.

    """

    key: str
    size: int
    sha256: str | None
    error: str | None = None
    width: int = 0
    height: int = 0
    truncated: bool = False
    traits: tuple[str, ...] = ()
    phash: int | None = None

    @property
    def usable(self) -> bool:
        """Whether the image decodes (possibly truncated) and can be trained on."""
        return self.error is None


def inspect_image(key: str, path: Path) -> ImageInfo:
    """Read, hash and decode one image file; never raises for a bad file.

    Raises:
        DependencyError: Pillow or imagehash is not installed.

    """
    require_libraries()
    try:
        data = path.read_bytes()
    except OSError as exc:
        return ImageInfo(key, 0, None, f"cannot read: {exc.strerror or exc}")
    digest = hashlib.sha256(data).hexdigest()
    try:
        image = read_image_quietly(path)
    except SourceError:
        return ImageInfo(key, len(data), digest, "not an image or cannot be decoded")
    height, width = image.shape[:2]
    return ImageInfo(
        key,
        len(data),
        digest,
        width=width,
        height=height,
        truncated=looks_truncated(data),
        traits=header_traits(data),
        phash=perceptual_hash(image),
    )


def inspect_images(
    items: Sequence[tuple[str, Path]], workers: int, progress: Progress | None = None
) -> list[ImageInfo]:
    """Inspect ``(key, path)`` pairs with ``workers`` processes; results in the same order."""
    require_libraries()
    results = parallel_map(_inspect_pair, items, workers, chunksize=4)
    return list(with_progress(results, len(items), progress))


def looks_truncated(data: bytes) -> bool:
    """Whether ``data`` is a JPEG that stops before its end-of-image marker."""
    return data.startswith(_JPEG_START) and not data.rstrip(b"\x00").endswith(_JPEG_END)


def header_traits(data: bytes) -> tuple[str, ...]:
    """Which of :data:`TRAITS` the file's header declares; () when Pillow cannot read it."""
    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as image:
                orientation = image.getexif().get(0x0112)
                return _traits(image.mode, image.info, orientation, _bits(image, data))
    except Exception:  # Pillow raises many kinds for odd headers; the decode decides usability
        return ()


def perceptual_hash(image: np.ndarray) -> int:
    """Return the 64-bit pHash of an RGB image as an int (distance: ``(a ^ b).bit_count()``)."""
    import imagehash
    from PIL import Image

    small = _shrink(image, _HASH_SIDE)
    return int(str(imagehash.phash(Image.fromarray(small))), 16)


def _inspect_pair(pair: tuple[str, Path]) -> ImageInfo:
    return inspect_image(*pair)


def read_image_quietly(path: str | Path) -> np.ndarray:
    """Decode as :func:`~vigil.sources.images.read_image` does, without its truncation warning.

    The data layer reports truncated JPEGs once, in ``vigil data check``, instead of on every
    read (every epoch of a loader).

    Raises:
        SourceError: the file cannot be read or decoded.

    """
    import logging

    from vigil.sources.images import read_image

    logger = logging.getLogger("vigil.sources.images")
    previous = logger.level
    logger.setLevel(logging.ERROR)
    try:
        return read_image(path)
    finally:
        logger.setLevel(previous)


def _traits(mode: str, info: dict[Any, Any], orientation: Any, bits: int) -> tuple[str, ...]:
    found = {
        "cmyk": mode == "CMYK",
        "greyscale": mode in _GREY_MODES,
        "16-bit": bits > 8,
        "alpha": mode in _ALPHA_MODES or "transparency" in info,
        "exif-rotated": isinstance(orientation, int) and 2 <= orientation <= 8,
    }
    return tuple(name for name in TRAITS if found[name])


def _bits(image: Any, data: bytes) -> int:
    """Bits per channel as stored in the file (Pillow turns 16-bit RGB PNGs into 8-bit)."""
    if data.startswith(_PNG_SIGNATURE) and len(data) > 24:
        return data[24]
    tiff_bits = getattr(image, "tag_v2", {}).get(258)
    if tiff_bits:
        return max(tiff_bits) if isinstance(tiff_bits, tuple) else int(tiff_bits)
    return 16 if image.mode.startswith("I;16") else 8


def _shrink(image: np.ndarray, side: int) -> np.ndarray:
    height, width = image.shape[:2]
    scale = side / max(height, width)
    if scale >= 1:
        return image
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def require_libraries() -> None:
    """Raise :class:`~vigil.errors.DependencyError` unless Pillow and imagehash import."""
    for module, package in (("PIL", "pillow"), ("imagehash", "imagehash")):
        try:
            __import__(module)
        except ImportError:
            raise DependencyError(package, "train", "checking images") from None


__all__ = [
    "TRAITS",
    "ImageInfo",
    "header_traits",
    "inspect_image",
    "inspect_images",
    "looks_truncated",
    "perceptual_hash",
    "read_image_quietly",
    "require_libraries",
]
