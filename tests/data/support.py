"""Tiny images of every kind the data layer meets, written on the spot."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from PIL import Image

SIZE = (96, 128)  # height, width


def pattern(seed: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    """An RGB image of coarse random blocks: distinct seeds give unrelated perceptual hashes."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    return cv2.resize(blocks, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)


def write_jpeg(path: Path, image: np.ndarray, quality: int = 92) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, "JPEG", quality=quality)
    return path


def write_png(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(image).save(path, "PNG")
    return path


def write_photo(path: Path, seed: int, size: tuple[int, int] = SIZE) -> Path:
    return write_jpeg(path, pattern(seed, size))


def write_cmyk(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pattern(seed)).convert("CMYK").save(path, "JPEG", quality=92)
    return path


def write_grey(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pattern(seed)).convert("L").save(path, "PNG")
    return path


def write_16bit(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    deep = pattern(seed).astype(np.uint16) * 257
    assert cv2.imwrite(str(path), deep[:, :, ::-1])
    return path


def write_alpha(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rgba = np.dstack([pattern(seed), np.full(SIZE, 200, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(path, "PNG")
    return path


def write_exif_rotated(path: Path, seed: int) -> Path:
    """A landscape JPEG whose EXIF says: rotate 90 degrees clockwise to view (orientation 6)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(pattern(seed)).save(path, "JPEG", quality=92, exif=exif)
    return path


def write_truncated(path: Path, seed: int, keep: float = 0.6) -> Path:
    full = write_photo(path, seed, (192, 256))
    data = full.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def write_not_image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("this is a shopping list, not a photo\n")
    return path


def write_near_copy(path: Path, seed: int) -> Path:
    """The image of ``seed`` cropped by a pixel, brighter, re-encoded: other bytes, same picture."""
    original = pattern(seed)
    height, width = original.shape[:2]
    shifted = cv2.resize(original[1:, 1:], (width, height), interpolation=cv2.INTER_LINEAR)
    image = np.clip(shifted.astype(np.int16) + 6, 0, 255).astype(np.uint8)
    return write_jpeg(path, image, quality=75)


def class_folders(root: Path, counts: dict[str, int], first_seed: int = 0) -> Path:
    """A folder of class folders with ``counts[label]`` distinct photos each."""
    seed = first_seed
    for label, count in counts.items():
        for index in range(count):
            write_photo(root / label / f"{label}_{index:03d}.jpg", seed)
            seed += 1
    return root


def write_csv(path: Path, rows: Iterable[dict[str, Any]], columns: list[str]) -> Path:
    lines = [",".join(columns)]
    lines += [",".join(str(row.get(c, "")) for c in columns) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def label_studio_task(
    task_id: int, image: str, choices: list[list[str]] | None, **extra: Any
) -> dict[str, Any]:
    """A task of an image-classification export; one annotation per choice list."""
    annotations = [
        {
            "id": task_id * 10 + n,
            "was_cancelled": False,
            "result": [
                {
                    "from_name": "choice",
                    "to_name": "image",
                    "type": "choices",
                    "value": {"choices": chosen},
                }
            ],
        }
        for n, chosen in enumerate(choices or [])
    ]
    return {"id": task_id, "data": {"image": image, **extra}, "annotations": annotations}


def write_json(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document))
    return path
