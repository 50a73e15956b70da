"""Fixtures shared by the training tests: labelled photo folders and a tiny embedding model."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest

TINTS = {
    "red": (230, 40, 40),
    "blue": (40, 60, 230),
    "green": (40, 200, 60),
    "yellow": (230, 220, 40),
}
"""Colours that the photos of each class are tinted with, so that colour tells them apart."""

PhotoFolder = Callable[..., Path]


def tinted_photo(seed: int, tint: tuple[int, int, int], size: tuple[int, int] = (48, 64)):
    """A photo of coarse random blocks, half of it the tint: distinct, but its class shows."""
    rng = np.random.default_rng(seed)
    blocks = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
    pattern = cv2.resize(blocks, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)
    mixed = 0.5 * pattern.astype(np.float32) + 0.5 * np.array(tint, np.float32)
    return mixed.astype(np.uint8)


def write_photo(path: Path, image: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image[:, :, ::-1])
    return path


@pytest.fixture
def photo_folder(tmp_path: Path) -> PhotoFolder:
    """Make a folder of class folders of tinted photos: ``photo_folder({"red": 12, ...})``."""

    def make(counts: dict[str, int] | None = None, name: str = "photos", first_seed: int = 0):
        root = tmp_path / name
        seed = first_seed
        for label, count in (counts or {"red": 12, "blue": 12}).items():
            for index in range(count):
                write_photo(
                    root / label / f"{label}_{index:03d}.jpg", tinted_photo(seed, TINTS[label])
                )
                seed += 1
        return root

    return make


def write_tiny_embedder(path: Path, side: int = 16) -> Path:
    """An ONNX embedder: the mean colour of each quarter of a ``side`` x ``side`` image (12-D)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    half = side // 2
    graph = helper.make_graph(
        [
            helper.make_node("Reshape", ["image", "blocks_shape"], ["blocks"]),
            helper.make_node("ReduceMean", ["blocks"], ["means"], axes=[2, 4], keepdims=0),
            helper.make_node("Reshape", ["means", "vector_shape"], ["embedding"]),
        ],
        "tiny_embedder",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, side, side, 3])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, 12])],
        initializer=[
            numpy_helper.from_array(np.array([1, 2, half, 2, half, 3], np.int64), "blocks_shape"),
            numpy_helper.from_array(np.array([1, 12], np.int64), "vector_shape"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


@pytest.fixture
def tiny_embedder(tmp_path: Path) -> Path:
    """A 12-D ONNX embedding model file (no sidecar)."""
    return write_tiny_embedder(tmp_path / "models" / "tiny_embedder.onnx")


# Fine-tuning: a generated dataset of textures a small network learns in a few epochs

TEXTURES = ("checker", "horizontal", "vertical")
"""Classes of :func:`texture`: stripes across, stripes down, or both at once."""


def texture(kind: str, rng: np.random.Generator, side: int = 64) -> np.ndarray:
    """A noisy two-colour pattern of random colours, period and phase; its kind is the class."""
    period = float(rng.uniform(8, 16))
    phase = float(rng.uniform(0, period))
    ys, xs = np.mgrid[0:side, 0:side].astype(np.float32)
    across = np.sin(2 * np.pi * (ys + phase) / period)
    down = np.sin(2 * np.pi * (xs + phase) / period)
    wave = {"horizontal": across, "vertical": down, "checker": across * down}[kind]
    first, second = (rng.integers(0, 256, 3).astype(np.float32) for _ in range(2))
    mix = (wave[..., None] + 1) / 2
    image = first * mix + second * (1 - mix) + rng.normal(0, 20, (side, side, 3))
    return np.clip(image, 0, 255).astype(np.uint8)


def write_textures(root: Path, per_class: int, seed: int = 0) -> Path:
    """A folder of class folders with ``per_class`` PNG textures of each kind."""
    rng = np.random.default_rng(seed)
    for kind in TEXTURES:
        for index in range(per_class):
            write_photo(root / kind / f"{kind}_{index:03d}.png", texture(kind, rng))
    return root


@pytest.fixture(scope="session")
def textures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The manifest file of 100 textures per class (60/20/20), with its shards packed beside it."""
    from vigil.data import (
        CheckOptions,
        PackOptions,
        SplitOptions,
        inspect_dataset,
        load_dataset,
        pack_manifest,
        split_dataset,
        write_manifest,
    )

    folder = tmp_path_factory.mktemp("textures")
    dataset = load_dataset(write_textures(folder / "images", 100))
    infos = inspect_dataset(dataset, CheckOptions(workers=1))
    split = split_dataset(dataset, infos, SplitOptions(train=0.6, validation=0.2, test=0.2))
    write_manifest(split.manifest, folder / "split.json")
    pack_manifest(split.manifest, folder / "shards", PackOptions(size=64, workers=1))
    return folder / "split.json"
