"""Frame sources: cameras, network streams, video files, image files, folders and globs.

:func:`open_source` turns what a user typed after ``--source`` into a :class:`Source`::

    with open_source("rtsp://admin:secret@10.0.0.5/stream1") as source:
        for frame in source:
            ...

``open_source`` checks that paths exist and lists image folders, but opens no camera, stream
or video: that happens in ``open()``, which ``with`` and iteration call. Every failure a user
can cause is a :class:`~vigil.errors.SourceError` with one line to act on.

=========================  ===========  =============================================
spec                       kind         source
=========================  ===========  =============================================
``0``, ``1``, ...          camera       :class:`LiveSource`, newest frame only
``rtsp://``, ``http://``   stream       :class:`LiveSource`, newest frame only
an existing folder         folder       :class:`ImageSource` over its images, sorted
a pattern with ``*?[``     glob         :class:`ImageSource` over the matching images
an image file              image        :class:`ImageSource` of that one photo
any other existing file    video        :class:`VideoFileSource`, every frame
=========================  ===========  =============================================
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from vigil.errors import SourceError
from vigil.sources.base import IMAGE_EXTENSIONS, ArraySource, BaseSource, Source, SourceStats
from vigil.sources.config import SourceConfig
from vigil.sources.images import ImageSource, find_images, glob_images, is_image_path, read_image
from vigil.sources.live import LiveSource
from vigil.sources.video import VideoFileSource

STREAM_SCHEMES = ("rtsp://", "rtsps://", "http://", "https://", "udp://", "tcp://")
"""URL prefixes that :func:`open_source` reads as live streams."""

_GLOB_CHARACTERS = ("*", "?", "[")


class SourceKind(StrEnum):
    """What a source spec names."""

    CAMERA = "camera"
    STREAM = "stream"
    FOLDER = "folder"
    GLOB = "glob"
    IMAGE = "image"
    VIDEO = "video"


def detect_kind(spec: str) -> SourceKind:
    """Say what kind of source ``spec`` names, looking at the file system for paths.

    An existing file or folder wins over a glob reading of its name, so names with brackets work.

    Raises:
        SourceError: ``spec`` is empty, or names a path that does not exist.

    """
    text = spec.strip()
    if not text:
        raise SourceError(
            "empty source: give a camera index, a stream URL, a file, a folder or a glob"
        )
    if text.isascii() and text.isdigit():
        return SourceKind.CAMERA
    if text.lower().startswith(STREAM_SCHEMES):
        return SourceKind.STREAM
    path = Path(text).expanduser()
    if path.is_dir():
        return SourceKind.FOLDER
    if path.is_file():
        return SourceKind.IMAGE if is_image_path(path) else SourceKind.VIDEO
    if any(character in text for character in _GLOB_CHARACTERS):
        return SourceKind.GLOB
    raise SourceError(f"no such file or folder: {text}")


def open_source(spec: str, config: SourceConfig | None = None) -> Source:
    """Build the source that ``spec`` names; nothing is opened until ``open()`` or iteration.

    Args:
        spec: A camera index, a stream URL, a video file, an image file, a folder of images or
            a glob of images (see the table in this module's docstring).
        config: Pacing, timestamps, image and reconnect settings; defaults when None.

    Raises:
        SourceError: the path does not exist, or a folder or glob holds no images.

    """
    settings = config if config is not None else SourceConfig()
    text = spec.strip()
    kind = detect_kind(text)
    if kind is SourceKind.CAMERA:
        return LiveSource(int(text), settings)
    if kind is SourceKind.STREAM:
        return LiveSource(text, settings)
    if kind is SourceKind.VIDEO:
        return VideoFileSource(Path(text).expanduser(), settings)
    if kind is SourceKind.IMAGE:
        return ImageSource([Path(text).expanduser()], text, settings, strict=True)
    if kind is SourceKind.FOLDER:
        images = find_images(Path(text).expanduser(), settings.recursive)
        return ImageSource(images, text, settings)
    return ImageSource(glob_images(text, settings.recursive), text, settings)


__all__ = [
    "IMAGE_EXTENSIONS",
    "STREAM_SCHEMES",
    "ArraySource",
    "BaseSource",
    "ImageSource",
    "LiveSource",
    "Source",
    "SourceConfig",
    "SourceKind",
    "SourceStats",
    "VideoFileSource",
    "detect_kind",
    "find_images",
    "glob_images",
    "open_source",
    "read_image",
]
