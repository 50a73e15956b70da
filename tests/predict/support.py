"""Helpers of the ``vigil predict`` tests: a tiny classifier file and photos made on the spot."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import yaml

from tests.onnx_models import constant_output_model

LABELS = ("cat", "dog", "fox", "owl")
SCORES = (0.1, 0.7, 0.15, 0.05)


def tiny_classifier(folder: Path, *, sidecar: bool = True) -> Path:
    """An ONNX classifier (32x32 input) that scores dog 0.7, fox 0.15, cat 0.1, owl 0.05.

    With ``sidecar``, ``<file>.vigil.yaml`` names its task and labels.
    """
    folder.mkdir(parents=True, exist_ok=True)
    path = constant_output_model(
        folder / "tiny.onnx", (1, 3, 32, 32), {"scores": np.array([SCORES], np.float32)}
    )
    if sidecar:
        spec = {"task": "classify", "labels": list(LABELS)}
        Path(f"{path}.vigil.yaml").write_text(yaml.safe_dump(spec))
    return path


def photos(folder: Path, count: int = 3, size: tuple[int, int] = (64, 48)) -> list[Path]:
    """Write ``count`` small JPEG photos of different colours into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        image = np.full((size[1], size[0], 3), (40 * index, 120, 200 - 40 * index), np.uint8)
        cv2.rectangle(image, (8, 8), (size[0] // 2, size[1] // 2), (255, 255, 255), -1)
        path = folder / f"photo-{index}.jpg"
        cv2.imwrite(str(path), image)
        paths.append(path)
    return paths


def video(path: Path, frames: int = 6, size: tuple[int, int] = (96, 64)) -> Path:
    """Write a short MJPG AVI clip whose frames brighten one by one."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), 10.0, size)
    for index in range(frames):
        writer.write(np.full((size[1], size[0], 3), 30 * index, np.uint8))
    writer.release()
    return path


def frame_count(path: Path) -> int:
    """Count the frames of a video file by decoding them all."""
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count
