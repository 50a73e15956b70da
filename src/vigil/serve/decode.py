"""Request bodies to RGB images, refusing what is not a whole image of a sane size.

The image size is read from the file header before anything is decoded, so a small file that
would decode to gigapixels (a decompression bomb) is refused without allocating it. Only
formats whose header is read here are accepted: JPEG, PNG, WebP, BMP and GIF.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import cv2
import numpy as np

from vigil.errors import VigilError
from vigil.sources.base import bgr_to_rgb, quiet_opencv

FORMATS = ("JPEG", "PNG", "WebP", "BMP", "GIF")
"""The image formats the service accepts."""

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_PNG_END = b"IEND\xaeB`\x82"
_JPEG_START = b"\xff\xd8"
_JPEG_END = b"\xff\xd9"
# Start-of-frame markers carry the size; C4 (DHT), C8 (JPG) and CC (DAC) share the range.
_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
_BMP_HEADER_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})


class RequestRejected(VigilError):
    """A request the service refuses: a bad body, not a usable image, or one too large.

    Attributes:
        status: The HTTP status that says why, e.g. 413 too large, 422 not a usable image.
        code: A short machine-readable reason, e.g. ``not_an_image``.
    """

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """Decode an encoded image to RGB uint8 (H, W, 3), upright as its EXIF orientation says.

    Raises:
        RequestRejected: empty, not an accepted format, truncated, undecodable, or larger than
            ``max_pixels``.
    """
    if not data:
        raise RequestRejected(400, "empty_body", "the request has no image: the body is empty")
    format_name, width, height = read_header(data)
    if width <= 0 or height <= 0:
        raise RequestRejected(
            422, "bad_image", f"the {format_name} header gives an empty size {width}x{height}"
        )
    if width * height > max_pixels:
        raise RequestRejected(
            413,
            "image_too_large",
            f"the image is {width}x{height} pixels; this service takes at most "
            f"{max_pixels:,} pixels: downscale it first",
        )
    if format_name == "PNG" and _PNG_END not in data:  # libpng would print errors on it
        raise RequestRejected(422, "truncated_image", "the PNG data is truncated")
    return _decode(data, format_name)


def read_header(data: bytes) -> tuple[str, int, int]:
    """Return the format name, width and height from an image's header, decoding nothing.

    Raises:
        RequestRejected: the bytes start like no accepted format, or the header is cut short.
    """
    for name, matches, size_of in _READERS:
        if matches(data):
            try:
                width, height = size_of(data)
            except (struct.error, IndexError, ValueError):
                raise RequestRejected(
                    422, "truncated_image", f"the {name} header is truncated or damaged"
                ) from None
            return name, width, height
    raise RequestRejected(
        422, "not_an_image", f"the body is not an image: send one of {', '.join(FORMATS)}"
    )


def _decode(data: bytes, format_name: str) -> np.ndarray:
    with quiet_opencv():
        try:
            image: np.ndarray | None = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        except cv2.error:
            image = None
    if image is None and format_name == "JPEG" and _JPEG_END not in data:
        raise RequestRejected(422, "truncated_image", "the JPEG data is truncated")
    if image is None:
        raise RequestRejected(422, "bad_image", f"the {format_name} data cannot be decoded")
    return bgr_to_rgb(image)


def _png_size(data: bytes) -> tuple[int, int]:
    if data[12:16] != b"IHDR":
        raise ValueError("no IHDR chunk")
    width, height = struct.unpack(">II", data[16:24])
    return int(width), int(height)


def _gif_size(data: bytes) -> tuple[int, int]:
    width, height = struct.unpack("<HH", data[6:10])
    return int(width), int(height)


def _bmp_size(data: bytes) -> tuple[int, int]:
    header_size = struct.unpack("<I", data[14:18])[0]
    if header_size not in _BMP_HEADER_SIZES:
        raise ValueError(f"unknown BMP header size {header_size}")
    if header_size == 12:  # OS/2 BITMAPCOREHEADER
        width, height = struct.unpack("<HH", data[18:22])
    else:
        width, height = struct.unpack("<ii", data[18:26])
    return abs(int(width)), abs(int(height))  # a negative height means top-down rows


def _webp_size(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            raise ValueError("no VP8 frame tag")
        width, height = struct.unpack("<HH", data[26:30])
        return int(width) & 0x3FFF, int(height) & 0x3FFF
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            raise ValueError("no VP8L signature")
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    raise ValueError(f"unknown WebP chunk {chunk!r}")


def _jpeg_size(data: bytes) -> tuple[int, int]:
    """Walk the marker segments to the first start-of-frame, which holds the size."""
    position = 2
    while True:
        if data[position] != 0xFF:
            raise ValueError("lost the JPEG marker sequence")
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte before a marker
            position += 1
            continue
        if marker in _JPEG_STANDALONE:
            position += 2
            continue
        length = struct.unpack(">H", data[position + 2 : position + 4])[0]
        if marker in _JPEG_FRAME_MARKERS:
            height, width = struct.unpack(">HH", data[position + 5 : position + 9])
            return int(width), int(height)
        if marker == 0xDA or length < 2:  # image data before any frame header
            raise ValueError("no start-of-frame segment")
        position += 2 + length


_Matcher = Callable[[bytes], bool]
_SizeReader = Callable[[bytes], tuple[int, int]]
_READERS: tuple[tuple[str, _Matcher, _SizeReader], ...] = (
    ("JPEG", lambda d: d.startswith(_JPEG_START) and len(d) > 3, _jpeg_size),
    ("PNG", lambda d: d.startswith(_PNG_SIGNATURE), _png_size),
    ("WebP", lambda d: d[:4] == b"RIFF" and d[8:12] == b"WEBP", _webp_size),
    ("BMP", lambda d: d.startswith(b"BM") and len(d) > 2, _bmp_size),
    ("GIF", lambda d: d[:6] in (b"GIF87a", b"GIF89a"), _gif_size),
)
