"""A trained classifier as a model file Vigil runs: ONNX with softmax, its spec, and int8.

:func:`export_onnx` writes the network with a softmax at the end, so the file outputs
probabilities, one per class. It takes one NCHW float input, ``image``, of the ImageNet-normalised
pixels; how to get there from an RGB frame (centre crop to the training size, subtract mean,
divide by std, all in 0..255 units) is in the :class:`~vigil.models.ModelSpec` that
:func:`classifier_spec` makes and :func:`write_sidecar` puts next to the file, so
``vigil predict`` and :func:`vigil.tasks.load_model` run it as trained. :func:`check_parity`
runs the file through ``load_model`` and compares its probabilities with torch's.

:func:`quantize_int8` makes a static int8 copy (QDQ, per-channel weights) calibrated on
training images; the softmax stays in float.
"""

from __future__ import annotations

import importlib
import os
import shutil
import warnings
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from vigil.errors import ConfigError, DependencyError, ModelError, StorageError
from vigil.models.spec import ModelSpec, Preprocess
from vigil.tasks.loader import sidecar_path

if TYPE_CHECKING:
    import torch

INPUT_NAME = "image"
OUTPUT_NAME = "probabilities"
OPSET = 17
PARITY_TOLERANCE = 1e-4
"""Largest difference allowed between torch's and ONNX Runtime's probabilities."""

IMAGENET_MEAN = (123.675, 116.28, 103.53)
"""Per-channel mean of ImageNet in 0..255 pixel units (0.485, 0.456, 0.406 times 255)."""
IMAGENET_STD = (58.395, 57.12, 57.375)
"""Per-channel standard deviation in 0..255 units (0.229, 0.224, 0.225 times 255)."""


def export_onnx(model: torch.nn.Module, image_size: int, out_path: Path) -> Path:
    """Write ``model`` followed by a softmax as ONNX (opset 17, batch size free).

    The model is exported in evaluation mode (its training mode is restored afterwards); its
    input is ``image``: (batch, 3, image_size, image_size) float32, its output
    ``probabilities``: (batch, classes).

    Raises:
        DependencyError: torch is not installed.
        StorageError: the file cannot be written.

    """
    torch = _torch("exporting a model to ONNX")
    out_path = Path(out_path)
    temporary = out_path.with_name(f".{out_path.name}.{os.getpid()}.tmp")
    network = torch.nn.Sequential(model, torch.nn.Softmax(dim=1))
    was_training = model.training
    model.eval()
    try:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        _export(torch, network, image_size, temporary)
        os.replace(temporary, out_path)
    except OSError as exc:
        raise StorageError(f"cannot write {out_path}: {exc.strerror or exc}") from None
    finally:
        temporary.unlink(missing_ok=True)
        model.train(was_training)
    return out_path


def _export(torch: Any, network: Any, image_size: int, path: Path) -> None:
    example = torch.zeros(1, 3, image_size, image_size)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", DeprecationWarning)  # the TorchScript exporter is old
        torch.onnx.export(
            network,
            (example,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )


def classifier_spec(classes: Sequence[str], image_size: int) -> ModelSpec:
    """Return the spec of an exported classifier: centre crop, ImageNet mean/std, softmax."""
    preprocess = Preprocess(
        resize="crop",
        interpolation="area",
        color="rgb",
        layout="nchw",
        mean=IMAGENET_MEAN,
        std=IMAGENET_STD,
        input_size=(image_size, image_size),
    )
    return ModelSpec(
        task="classify",
        decoder="scores",
        preprocess=preprocess,
        labels=list(classes),
        softmax="no",
        score_threshold=0.0,
        top_k=min(5, len(classes)),
    )


def write_sidecar(model_path: Path, spec: ModelSpec) -> Path:
    """Write ``spec`` beside ``model_path`` as ``<file>.vigil.yaml``; return its path.

    Raises:
        StorageError: the file cannot be written.

    """
    path = sidecar_path(model_path)
    text = yaml.safe_dump(spec.model_dump(mode="json", exclude_none=True), sort_keys=False)
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise StorageError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def check_parity(
    model: torch.nn.Module, onnx_path: Path, spec: ModelSpec, images: Iterable[np.ndarray]
) -> float:
    """Run RGB ``images`` through the ONNX file (``load_model``) and through torch; compare.

    Both see the same input tensor, the one ``load_model``'s pre-processing makes of each
    image.

    Returns:
        The largest difference between the two sets of probabilities.

    Raises:
        ModelError: it exceeds :data:`PARITY_TOLERANCE`, or no image was given.

    """
    from vigil.tasks import ClassifyModel, load_model

    torch = _torch("checking an exported model")
    labels = spec.labels or []
    full = spec.model_copy(update={"top_k": max(1, len(labels))})
    task_model = load_model(onnx_path, full)
    worst, count = 0.0, 0
    try:
        assert isinstance(task_model, ClassifyModel)
        for image in images:
            expected = _torch_probabilities(torch, model, task_model.input.prepare(image)[0])
            found = task_model.predict(image)
            onnx_scores = np.zeros_like(expected)
            onnx_scores[found.class_id] = found.scores
            worst = max(worst, float(np.abs(onnx_scores - expected).max()))
            count += 1
    finally:
        task_model.close()
    if count == 0:
        raise ModelError("no images to compare the exported model with torch on")
    if worst > PARITY_TOLERANCE:
        raise ModelError(
            f"{onnx_path} gives probabilities up to {worst:.2g} away from torch's "
            f"(allowed {PARITY_TOLERANCE:g}): the export is wrong; please report it"
        )
    return worst


def _torch_probabilities(torch: Any, model: torch.nn.Module, tensor: np.ndarray) -> np.ndarray:
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(torch.from_numpy(np.ascontiguousarray(tensor, np.float32)))
            probabilities: np.ndarray = torch.softmax(logits, dim=1)[0].numpy()
    finally:
        model.train(was_training)
    return probabilities


def quantize_int8(
    onnx_path: Path, calibration_images: Iterable[np.ndarray | Path], out_path: Path
) -> Path:
    """Write a static int8 copy of a classifier exported by :func:`export_onnx`.

    Weights are quantised per channel and activations per tensor (QDQ format, min/max ranges
    seen on the calibration images); the final softmax stays in float. The images are RGB
    uint8 (H, W, 3) frames of any size, or image files, prepared as the model's spec (its
    sidecar) says; a few dozen to a few hundred training images suit. The spec is copied beside
    the new file.

    Raises:
        ConfigError: no calibration image was given.
        SourceError: a calibration image file cannot be read.
        ModelError: the model cannot be quantised or the result does not load.
        DependencyError: onnx or onnxruntime's quantisation tools are missing.

    """
    from vigil.tasks import load_model

    quantization = _quantization()
    onnx_path, out_path = Path(onnx_path), Path(out_path)
    input_name, tensors = _calibration_tensors(onnx_path, calibration_images)
    if not tensors:
        raise ConfigError("int8 quantisation needs calibration images; none were given")
    _quantize(quantization, onnx_path, out_path, _reader(quantization, input_name, tensors))
    if sidecar_path(onnx_path).is_file():
        shutil.copyfile(sidecar_path(onnx_path), sidecar_path(out_path))
    load_model(out_path).close()  # the quantised file must load as it is
    return out_path


def _calibration_tensors(
    onnx_path: Path, images: Iterable[np.ndarray | Path]
) -> tuple[str, list[np.ndarray]]:
    """Return the model's input name and its input tensor for each image (as its spec says)."""
    from vigil.tasks import ClassifyModel, load_model

    model = load_model(onnx_path)
    try:
        if not isinstance(model, ClassifyModel):
            raise ModelError(f"{onnx_path} is not a classifier; int8 export is for classifiers")
        tensors = [model.input.prepare(_rgb(image))[0] for image in images]
        return model.inputs[0].name, tensors
    finally:
        model.close()


def _rgb(image: np.ndarray | Path) -> np.ndarray:
    """Return ``image``, read from its file when it is a path, checked to be RGB uint8."""
    from vigil.data.imageinfo import read_image_quietly
    from vigil.tasks.preprocess import check_image

    if isinstance(image, str | Path):
        return read_image_quietly(image)
    return check_image(image)


def _quantization() -> Any:
    try:
        quantization = importlib.import_module("onnxruntime.quantization")
    except ImportError as exc:
        package = "onnx" if exc.name == "onnx" else "onnxruntime"
        raise DependencyError(package, "train", "int8 quantisation") from None
    return quantization


def _quantize(quantization: Any, onnx_path: Path, out_path: Path, reader: Any) -> None:
    """Optimise and shape-infer the model (as ONNX Runtime advises), then quantise it."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared = out_path.with_name(f".{out_path.name}.{os.getpid()}.prepared.onnx")
    try:
        quant_pre_process(str(onnx_path), str(prepared))
        softmax_nodes = _nodes_of_type(prepared, "Softmax")
        quantization.quantize_static(
            str(prepared),
            str(out_path),
            reader,
            quant_format=quantization.QuantFormat.QDQ,
            per_channel=True,
            activation_type=quantization.QuantType.QInt8,
            weight_type=quantization.QuantType.QInt8,
            nodes_to_exclude=softmax_nodes,
            calibrate_method=quantization.CalibrationMethod.MinMax,
        )
    except Exception as exc:  # onnxruntime raises plain exceptions for models it cannot handle
        out_path.unlink(missing_ok=True)
        raise ModelError(f"cannot quantise {onnx_path}: {type(exc).__name__}: {exc}") from None
    finally:
        prepared.unlink(missing_ok=True)


def _nodes_of_type(path: Path, op_type: str) -> list[str]:
    import onnx

    graph = onnx.load(str(path), load_external_data=False).graph
    return [node.name for node in graph.node if node.op_type == op_type]


def _reader(quantization: Any, input_name: str, tensors: list[np.ndarray]) -> Any:
    """Return a calibration data reader that hands out ``tensors`` one by one."""

    class TensorReader(quantization.CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self._items: Iterator[np.ndarray] = iter(tensors)

        def get_next(self) -> dict[str, np.ndarray] | None:
            item = next(self._items, None)
            return None if item is None else {input_name: item}

    return TensorReader()


def _torch(purpose: str) -> Any:
    try:
        import torch
    except ImportError:
        raise DependencyError("torch", "train", purpose) from None
    return torch


__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "INPUT_NAME",
    "OUTPUT_NAME",
    "PARITY_TOLERANCE",
    "check_parity",
    "classifier_spec",
    "export_onnx",
    "quantize_int8",
    "write_sidecar",
]
