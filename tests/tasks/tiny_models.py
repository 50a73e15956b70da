"""Tiny ONNX models for the task tests: fixed outputs in a chosen layout, metadata added."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from tests.onnx_models import constant_output_model


def with_metadata(path: Path, props: dict[str, str]) -> Path:
    """Write ``props`` into the model file's ``metadata_props``."""
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, props)
    onnx.save(model, str(path))
    return path


def yolo_model(
    path: Path,
    rows: np.ndarray,
    input_shape: tuple[int, ...] = (1, 3, 320, 320),
    channels_first: bool = True,
) -> Path:
    """A YOLO detector whose output holds ``rows`` (boxes x values), v8 or v5 orientation."""
    output = rows.T[None] if channels_first else rows[None]
    return constant_output_model(path, input_shape, {"output0": output.astype(np.float32)})


def classifier_model(
    path: Path, scores: list[float], input_shape: tuple[int, ...] = (1, 3, 32, 32)
) -> Path:
    """A classifier that always outputs ``scores``."""
    return constant_output_model(path, input_shape, {"scores": np.array([scores], np.float32)})
