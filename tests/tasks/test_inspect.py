"""What model files carry: tensors, embedded labels, metadata, and the task their outputs imply."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.tasks.tiny_models import classifier_model, with_metadata
from vigil.errors import ModelError
from vigil.models.inspect import (
    guess_decoder,
    guess_task,
    inspect_model,
    parse_labels,
    read_labels,
    yolo_layout,
)
from vigil.runtimes import TensorSpec
from vigil.runtimes.tflite_metadata import TFLiteMetadata, read_tflite_metadata

MODELS = "models"


@pytest.fixture(autouse=True)
def _litert() -> None:
    pytest.importorskip("ai_edge_litert", reason="TFLite models need vigil[tflite]")


@pytest.mark.parametrize(
    ("name", "task", "decoder", "labels", "first_label", "mean"),
    [
        ("tfls_coco_ssd_mobilenet_v1_1.0_quant_2018_06_29", "detect", "ssd", 90, "person", None),
        ("tfls_mobilenet_v1_0.25_224_quant", "classify", "scores", 1001, "background", None),
        (
            "tfls_mobilenet_v1_0.25_224_1_metadata_1",
            "classify",
            "scores",
            1001,
            "background",
            127.5,
        ),
        ("tfex_mobilenet_v2_035_96_embedder_with_metadata", "embed", "vector", None, None, 127.5),
        ("tfls_movenet_singlepose_lightning_int8_4", "pose", "movenet", None, None, None),
        ("tfls_mobilenet_v2_1.0_224_quant", None, None, None, None, None),
    ],
)
def test_real_tflite_files(
    shared_data: Path,
    *,
    name: str,
    task: str | None,
    decoder: str | None,
    labels: int | None,
    first_label: str | None,
    mean: float | None,
) -> None:
    found = inspect_model(shared_data / MODELS / f"{name}.tflite")
    assert (found.runtime, found.task, found.decoder) == ("tflite", task, decoder)
    assert (len(found.labels) if found.labels else None) == labels
    assert (found.labels[0] if found.labels else None) == first_label
    hints = found.spec_hints()
    assert hints.get("preprocess", {}).get("mean") == ((mean,) * 3 if mean else None)
    described = found.to_dict()
    assert json.loads(json.dumps(described)) == described
    assert (described["task"], described["decoder"]) == (task, decoder)


def test_tflite_tensors_and_quantisation(shared_data: Path) -> None:
    found = inspect_model(shared_data / MODELS / "tfls_mobilenet_v2_1.0_224_quant.tflite")
    (image,) = found.inputs
    assert (image.shape, image.dtype, image.zero_point) == ((1, 224, 224, 3), np.uint8, 128)
    assert image.scale == pytest.approx(1 / 128)
    described = found.to_dict()["outputs"][0]
    assert described["shape"] == [1, 1001] and described["dtype"] == "uint8"
    assert described["quantization"]["zero_point"] == 58


def test_quantised_inputs_take_raw_pixels_despite_their_metadata(shared_data: Path) -> None:
    found = inspect_model(shared_data / MODELS / "tfls_mobilenet_v1_0.25_224_quant.tflite")
    assert found.mean == (127.5,) * 3  # the metadata says so ...
    assert "preprocess" not in found.spec_hints()  # ... but uint8 inputs are fed raw pixels
    assert found.labels_from == "labels.txt inside the file"


def test_damaged_tflite_metadata_is_skipped_with_a_warning(
    shared_data: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = bytearray(
        (shared_data / MODELS / "tfls_mobilenet_v1_0.25_224_quant.tflite").read_bytes()
    )
    data[0:4] = (len(data) + 1000).to_bytes(4, "little")  # the root table is past the end
    assert read_tflite_metadata(bytes(data)) == TFLiteMetadata()
    assert "cannot read the TFLite metadata" in caplog.text


def test_onnx_metadata_props(tmp_path: Path) -> None:
    path = with_metadata(
        classifier_model(tmp_path / "cls.onnx", [0.1, 0.9]),
        {"task": "classify", "names": "{0: 'cat', 1: 'dog'}", "stride": "32"},
    )
    found = inspect_model(path)
    assert (found.runtime, found.task, found.decoder) == ("onnx", "classify", "scores")
    assert found.labels == ("cat", "dog") and found.ultralytics
    assert found.metadata["stride"] == "32"
    assert found.spec_hints()["preprocess"]["resize"] == "crop"


@pytest.mark.parametrize(
    ("text", "labels"),
    [
        ("a\nb\nc\n\n\n", ["a", "b", "c"]),
        ("???\nperson\n???\ncar\n", ["person", "???", "car"]),
        ("  background \r\ntench\r\n", ["background", "tench"]),
        ("", []),
    ],
)
def test_label_files(tmp_path: Path, text: str, labels: list[str]) -> None:
    assert parse_labels(text) == labels
    path = tmp_path / "labels.txt"
    path.write_text(text, encoding="utf-8")
    assert read_labels(path) == labels


def test_unreadable_label_file(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cannot read label file"):
        read_labels(tmp_path / "missing.txt")


def outputs(*shapes: tuple[int | None, ...]) -> list[TensorSpec]:
    return [TensorSpec(f"out{i}", s, np.dtype(np.float32)) for i, s in enumerate(shapes)]


@pytest.mark.parametrize(
    ("shapes", "task", "decoder"),
    [
        ([(1, 10, 4), (1, 10), (1, 10), (1,)], "detect", "ssd"),
        ([(1, 100, 5), (1, 100)], "detect", "boxes-scores"),
        ([(1, 84, 8400)], "detect", "yolo"),
        ([(1, 25200, 85)], "detect", "yolo"),
        ([(None, 84, None)], "detect", "yolo"),
        ([(1, 197, 768)], None, None),  # tokens of a transformer, not boxes
        ([(1, 1, 17, 3)], "pose", "movenet"),
        ([(1, 6, 56)], "pose", "movenet-multipose"),
        ([(1, 56, 8400)], "pose", "yolo-pose"),
        ([(1, 17, 384), (1, 17, 512)], "pose", "rtmpose"),
        ([(1, 1000)], None, None),  # a classifier or an embedder: the file must say
        ([(1, 10), (1, 20)], None, None),
    ],
)
def test_tasks_and_decoders_from_output_shapes(
    shapes: list[tuple[int | None, ...]], task: str | None, decoder: str | None
) -> None:
    found = guess_task(outputs(*shapes), {}, has_labels=False)
    assert found == task
    if task is not None:
        assert guess_decoder(task, outputs(*shapes)) == decoder


def test_a_single_vector_output_is_told_apart_by_labels_or_name() -> None:
    single = outputs((1, 1000))
    assert guess_task(single, {}, has_labels=True) == "classify"
    assert guess_task(single, {}, has_labels=False, name="MobileNet image classifier") == "classify"
    assert guess_task(single, {}, has_labels=False, name="ImageEmbedder") == "embed"
    assert guess_task(single, {"task": "classify"}, has_labels=False) == "classify"


@pytest.mark.parametrize(
    ("shape", "classes", "layout"),
    [
        ((1, 84, 8400), None, (True, False)),
        ((1, 25200, 85), None, (False, True)),
        ((1, 84, 8400), 80, (True, False)),
        ((1, 8400, 84), 80, (False, False)),
        ((1, 25200, 85), 80, (False, True)),
        ((1, 84, 8400), 79, None),
        ((1, 4, 8400), None, None),
    ],
)
def test_yolo_layouts(
    shape: tuple[int, ...], classes: int | None, layout: tuple[bool, bool] | None
) -> None:
    found = yolo_layout(shape, classes)
    assert (None if found is None else (found.channels_first, found.objectness)) == layout
