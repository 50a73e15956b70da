"""Fixtures for the source tests: videos written on the spot and an MJPEG server on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.services import NUMBER_BITS, MjpegServer, number_image

VideoWriter = Callable[..., Path]


def _read_number(image: np.ndarray) -> int:
    """The number that :func:`number_image` drew, read from the middle of each band."""
    width = image.shape[1]
    band = width // NUMBER_BITS
    middle = image[image.shape[0] // 4 : -image.shape[0] // 4]
    number = 0
    for bit in range(NUMBER_BITS):
        column = middle[:, bit * band + band // 4 : (bit + 1) * band - band // 4]
        if column.mean() > 127:
            number |= 1 << bit
    return number


def _write_video(
    path: Path, frames: Sequence[np.ndarray], fps: float = 5.0, fourcc: str = "MJPG"
) -> Path:
    """Write BGR ``frames`` to ``path`` with OpenCV and return the path."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    assert writer.isOpened(), f"OpenCV cannot write {fourcc} to {path}"
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path


@pytest.fixture
def read_number() -> Callable[[np.ndarray], int]:
    """Read the number drawn into a frame (RGB or BGR) by the video and stream fixtures."""
    return _read_number


@pytest.fixture
def write_video() -> VideoWriter:
    """Write BGR frames to a video file: ``write_video(path, frames, fps=5.0, fourcc="MJPG")``."""
    return _write_video


@pytest.fixture
def numbered_video(tmp_path: Path) -> VideoWriter:
    """Write a video of ``count`` numbered frames, some in given colours, some rows of noise."""

    def make(
        count: int = 12,
        fps: float = 5.0,
        name: str = "clip.avi",
        colours: dict[int, tuple[int, int, int]] | None = None,
        noise_rows: int = 0,
    ) -> Path:
        rng = np.random.default_rng(count)
        frames = [number_image(i) for i in range(count)]
        for frame in frames:  # noise below the number makes frames big, e.g. to cut files
            frame[frame.shape[0] - noise_rows :] = rng.integers(0, 256, (noise_rows, 160, 3))
        for index, bgr in (colours or {}).items():
            frames[index][:] = bgr
        return _write_video(tmp_path / name, frames, fps)

    return make


@pytest.fixture
def mjpeg_server() -> Iterator[Callable[..., MjpegServer]]:
    """Start MJPEG servers on free loopback ports; all are stopped after the test."""
    servers: list[MjpegServer] = []

    def start(**options: object) -> MjpegServer:
        server = MjpegServer(**options)  # type: ignore[arg-type]
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()
