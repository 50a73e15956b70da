"""Photos as frames: one image file, the images in a folder, or the images a glob matches.

Each photo becomes one frame whose ``path`` is the file and whose timestamp is
``start_time + i * image_interval_seconds``, so per-second records and timers work on photo
sets. Photos whose longer side exceeds ``max_image_side`` are downscaled, and the frame carries
the downscaled image: results (boxes, keypoints) are in the coordinates of that image.
"""

from __future__ import annotations

import glob
import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np

from vigil.errors import SourceError
from vigil.frame import Frame
from vigil.native import native_messages_to_log
from vigil.sources.base import IMAGE_EXTENSIONS, BaseSource, bgr_to_rgb, quiet_opencv
from vigil.sources.config import SourceConfig

logger = logging.getLogger(__name__)

_JPEG_START = b"\xff\xd8"
_JPEG_END = b"\xff\xd9"
_LIBJPEG_NOISE = ("Corrupt JPEG data", "Premature end of JPEG file")


class ImageSource(BaseSource):
    """Frames from image files, in the order given.

    A file that cannot be decoded is skipped with a WARNING and counted in
    ``stats.frames_skipped``, unless the source is ``strict`` (one image named by the user),
    where it raises :class:`~vigil.errors.SourceError`.
    """

    stills = True

    def __init__(
        self,
        paths: Sequence[str | Path],
        source_id: str | None = None,
        config: SourceConfig | None = None,
        *,
        strict: bool = False,
    ) -> None:
        """Describe the source; nothing is read until iteration.

        Args:
            paths: The image files, in the order their frames should come.
            source_id: Names the source; defaults to the first path.
            config: Timestamps, downscaling and looping.
            strict: Raise on an undecodable file instead of skipping it.

        """
        self._paths = [Path(p) for p in paths]
        if not self._paths:
            raise SourceError("an image source needs at least one image file")
        super().__init__(source_id or str(self._paths[0]), config)
        self._strict = strict

    @property
    def paths(self) -> list[Path]:
        """The image files of this source, in order."""
        return list(self._paths)

    def _open(self) -> None:
        pass

    def _close(self) -> None:
        pass

    def _frames(self) -> Iterator[Frame]:
        start = self.start_timestamp()
        interval = self.config.image_interval_seconds
        index = 0
        while True:
            for path in self._paths:
                if self.closed:
                    return
                image = self._read(path)
                if image is not None:
                    self.stats.frames_delivered += 1
                    yield Frame(image, start + index * interval, index, self.source_id, str(path))
                    index += 1
            if index == 0 or not self.config.loop:
                break
        if index == 0:
            raise SourceError(f"none of the {len(self._paths)} images of {self.source_id} decode")

    def _read(self, path: Path) -> np.ndarray | None:
        try:
            image = read_image(path, self.config.max_image_side)
        except SourceError as exc:
            if self._strict:
                raise
            logger.warning("%s (skipped)", exc)
            self.stats.frames_skipped += 1
            return None
        self.stats.frames_read += 1
        return image


def read_image(path: str | Path, max_side: int | None = None) -> np.ndarray:
    """Decode an image file to RGB uint8, upright as its EXIF orientation says.

    Greyscale, CMYK and alpha images become RGB; a truncated JPEG decodes as far as its data
    goes (the rest is grey) with a WARNING.

    Args:
        path: The image file.
        max_side: Downscale so that the longer side is at most this many pixels; None: never.

    Raises:
        SourceError: the file cannot be read, or is not an image OpenCV can decode.

    """
    data = _read_bytes(Path(path))
    image = _decode(data)
    if image is None and _is_truncated_jpeg(data):
        with native_messages_to_log(_LIBJPEG_NOISE, logger):
            image = _decode(data + _JPEG_END)
        if image is not None:
            logger.warning("%s is truncated; decoded the part that is there", path)
    if image is None:
        raise SourceError(f"not an image or cannot be decoded: {path}")
    return _fit(bgr_to_rgb(image), max_side)


def find_images(folder: str | Path, recursive: bool = False) -> list[Path]:
    """List the image files in ``folder`` (by extension), sorted by path.

    Raises:
        SourceError: the folder holds no image files.

    """
    root = Path(folder)
    candidates = root.rglob("*") if recursive else root.iterdir()
    images = sorted(p for p in candidates if _is_image_file(p))
    if not images:
        where = "or its subfolders" if recursive else "(set recursive to look in subfolders)"
        raise SourceError(f"no images in folder {root} {where}; looked for {_extensions()}")
    return images


def glob_images(pattern: str, recursive: bool = False) -> list[Path]:
    """List the image files that the glob ``pattern`` matches, sorted by path.

    Raises:
        SourceError: nothing matches, or none of the matches is an image file.

    """
    matches = glob.glob(os.path.expanduser(pattern), recursive=recursive)
    if not matches:
        raise SourceError(f"no files match {pattern}")
    images = sorted(Path(m) for m in matches if _is_image_file(Path(m)))
    if not images:
        raise SourceError(
            f"{len(matches)} files match {pattern} but none is an image; looked for {_extensions()}"
        )
    return images


def is_image_path(path: str | Path) -> bool:
    """Whether ``path`` has the extension of an image type that image sources read."""
    return Path(path).suffix.lower() in IMAGE_EXTENSIONS


def _is_image_file(path: Path) -> bool:
    return is_image_path(path) and path.is_file()


def _extensions() -> str:
    return " ".join(sorted(IMAGE_EXTENSIONS))


def _read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read image {path}: {exc.strerror or exc}") from None


def _decode(data: bytes) -> np.ndarray | None:
    if not data:
        return None
    buffer = np.frombuffer(data, dtype=np.uint8)
    with quiet_opencv():
        try:
            image: np.ndarray | None = cv2.imdecode(buffer, cv2.IMREAD_COLOR)
        except cv2.error:
            return None
    return image


def _is_truncated_jpeg(data: bytes) -> bool:
    return data.startswith(_JPEG_START) and not data.rstrip(b"\x00").endswith(_JPEG_END)


def _fit(image: np.ndarray, max_side: int | None) -> np.ndarray:
    height, width = image.shape[:2]
    longest = max(height, width)
    if max_side is None or longest <= max_side:
        return image
    scale = max_side / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


__all__ = ["ImageSource", "find_images", "glob_images", "is_image_path", "read_image"]
