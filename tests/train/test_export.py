"""Export: ONNX with softmax and a spec that runs as trained; static int8 that loads and agrees."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from tests.train.conftest import TEXTURES
from vigil.data import read_manifest
from vigil.errors import ConfigError, ModelError, SourceError
from vigil.tasks import ClassifyModel, load_model

torch = pytest.importorskip("torch", reason="exporting needs torch (vigil[train])")
onnx = pytest.importorskip("onnx", reason="checking the int8 graph needs onnx")

from vigil.train.backbones import build_backbone  # noqa: E402
from vigil.train.export import (  # noqa: E402
    check_parity,
    classifier_spec,
    export_onnx,
    quantize_int8,
    write_sidecar,
)

LABELS = ["ant", "bee", "cat", "dog"]
SIZE = 96
MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)
PHOTOS = [
    "classification/tfex_fox.jpeg",
    "classification/tfls_burger.jpg",
    "classification/tfex_table.jpg",
    "posture_side/",
]


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def opinionated(name: str, classes: int, seed: int = 0) -> Any:
    """A network with random but decisive weights: its probabilities are far from uniform."""
    torch.manual_seed(seed)
    network = build_backbone(name, classes)
    for module in network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
    head = next(m for m in network.head.modules() if isinstance(m, torch.nn.Linear))
    torch.nn.init.normal_(head.weight, 0, 2.0 if name == "tiny_cnn" else 0.3)
    return network.to(memory_format=torch.channels_last).train()


def real_photos(shared_data: Path) -> list[np.ndarray]:
    paths = []
    for name in PHOTOS:
        found = shared_data / name
        paths += sorted(found.glob("*.jpg"))[:2] if found.is_dir() else [found]
    return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]


def centre_crop(image: np.ndarray, side: int) -> np.ndarray:
    """The spec's 'crop': scale the shorter side to ``side``, cut the centre square."""
    h, w = image.shape[:2]
    scale = side / min(h, w)
    new_w, new_h = max(side, round(w * scale)), max(side, round(h * scale))
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
    top, left = (new_h - side) // 2, (new_w - side) // 2
    return resized[top : top + side, left : left + side]


def torch_probabilities(network: Any, image: np.ndarray) -> np.ndarray:
    tensor = ((centre_crop(image, SIZE).astype(np.float32) - MEAN) / STD).transpose(2, 0, 1)
    network.eval()
    with torch.no_grad():
        result: np.ndarray = torch.softmax(network(torch.from_numpy(tensor[None])), 1)[0].numpy()
    return result


def exported(network: Any, folder: Path, labels: list[str] = LABELS) -> Path:
    path = export_onnx(network, SIZE, folder / "model.onnx")
    write_sidecar(path, classifier_spec(labels, SIZE))
    return path


@pytest.fixture(scope="module")
def texture_images(textures: Path) -> list[np.ndarray]:
    manifest = read_manifest(textures)
    return [
        cv2.cvtColor(cv2.imread(str(manifest.path_of(item))), cv2.COLOR_BGR2RGB)
        for item in manifest.split("train")[:60]
    ]


def test_export_gives_torchs_probabilities_on_real_photos(
    shared_data: Path, tmp_path: Path
) -> None:
    network = opinionated("mobilenet_v2", len(LABELS))
    path = exported(network, tmp_path)
    model = load_model(path)  # everything it needs is in the sidecar
    assert isinstance(model, ClassifyModel) and model.spec.top_k == 4
    photos = real_photos(shared_data)
    assert len(photos) >= 5
    confidence = 0.0
    for photo in photos:
        expected = torch_probabilities(network, photo)
        found = model.predict(photo)
        by_class = np.zeros(len(LABELS), np.float32)
        by_class[found.class_id] = found.scores
        np.testing.assert_allclose(by_class, expected, rtol=1e-4, atol=1e-5)
        confidence = max(confidence, float(expected.max()))
    model.close()
    assert confidence > 0.5  # decisive enough for the comparison to mean something
    assert check_parity(network, path, classifier_spec(LABELS, SIZE), photos) < 1e-4


def test_exported_model_takes_batches_and_outputs_probabilities(tmp_path: Path) -> None:
    import onnxruntime

    path = exported(opinionated("tiny_cnn", 3), tmp_path, LABELS[:3])
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image"]
    assert session.get_inputs()[0].shape[1:] == [3, SIZE, SIZE]
    batch = np.random.default_rng(0).normal(size=(5, 3, SIZE, SIZE)).astype(np.float32)
    (probabilities,) = session.run(None, {"image": batch})
    assert probabilities.shape == (5, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, rtol=1e-5)


def test_export_leaves_the_network_in_its_mode(tmp_path: Path) -> None:
    network = opinionated("tiny_cnn", 2)
    exported(network, tmp_path, LABELS[:2])
    assert network.training
    network.eval()
    export_onnx(network, SIZE, tmp_path / "again.onnx")
    assert not network.training


def test_a_wrong_export_fails_the_parity_check(tmp_path: Path, texture_images: Any) -> None:
    path = exported(opinionated("tiny_cnn", 3, seed=1), tmp_path, LABELS[:3])
    other = opinionated("tiny_cnn", 3, seed=2)
    with pytest.raises(ModelError, match="away from torch's"):
        check_parity(other, path, classifier_spec(LABELS[:3], SIZE), texture_images[:4])
    with pytest.raises(ModelError, match="no images"):
        check_parity(other, path, classifier_spec(LABELS[:3], SIZE), [])


def by_class(model: Any, image: np.ndarray, classes: int) -> np.ndarray:
    found = model.predict(image)
    scores = np.zeros(classes, np.float32)
    scores[found.class_id] = found.scores
    return scores


def test_int8_model_loads_and_agrees_with_float(tmp_path: Path, texture_images: Any) -> None:
    path = exported(opinionated("tiny_cnn", 3), tmp_path, list(TEXTURES))
    int8 = quantize_int8(path, texture_images[:40], tmp_path / "model.int8.onnx")
    assert int8 == tmp_path / "model.int8.onnx"
    assert Path(f"{int8}.vigil.yaml").read_text() == Path(f"{path}.vigil.yaml").read_text()
    fp32_model, int8_model = load_model(path), load_model(int8)
    pairs = [
        (by_class(fp32_model, image, 3), by_class(int8_model, image, 3))
        for image in texture_images[40:]
    ]
    fp32_model.close()
    int8_model.close()
    agree = np.mean([a.argmax() == b.argmax() for a, b in pairs])
    gaps = [np.abs(a - b).max() for a, b in pairs]
    assert agree >= 0.8
    assert np.median(gaps) < 0.05
    assert max(gaps) > 0  # it is a different model, not a copy


def test_int8_graph_is_static_qdq_per_channel_with_float_softmax(
    tmp_path: Path, texture_images: Any
) -> None:
    path = exported(opinionated("tiny_cnn", 3), tmp_path, list(TEXTURES))
    int8 = quantize_int8(path, texture_images[:20], tmp_path / "int8.onnx")
    graph = onnx.load(str(int8)).graph
    kinds = [node.op_type for node in graph.node]
    assert "QuantizeLinear" in kinds and "DequantizeLinear" in kinds
    assert not {"DynamicQuantizeLinear", "ConvInteger", "MatMulInteger"} & set(kinds)
    scales = {i.name: onnx.numpy_helper.to_array(i) for i in graph.initializer}
    weight_scales = [
        scales[node.input[1]]
        for node in graph.node
        if node.op_type == "DequantizeLinear"
        and scales.get(node.input[0]) is not None
        and scales[node.input[0]].ndim == 4
    ]
    assert weight_scales and all(s.size > 1 for s in weight_scales)  # one scale per channel
    softmax = next(node for node in graph.node if node.op_type == "Softmax")
    assert softmax.output[0] == "probabilities"
    producer = {out: node.op_type for node in graph.node for out in node.output}
    assert producer[softmax.input[0]] == "DequantizeLinear"  # float in, float out


def test_int8_calibrates_from_image_files_too(tmp_path: Path, textures: Path) -> None:
    manifest = read_manifest(textures)
    files = [manifest.path_of(item) for item in manifest.split("train")[:10]]
    path = exported(opinionated("tiny_cnn", 3), tmp_path, list(TEXTURES))
    int8 = quantize_int8(path, files, tmp_path / "int8.onnx")
    model = load_model(int8)
    assert model.predict(cv2.imread(str(files[0]))[:, :, ::-1].copy()).top is not None
    model.close()


@pytest.mark.parametrize(
    ("calibration", "error", "says"),
    [
        ([], ConfigError, "needs calibration images"),
        ([Path("nowhere.jpg")], SourceError, "nowhere.jpg"),
        ([np.zeros((8, 8), np.uint8)], ModelError, "RGB uint8"),
    ],
)
def test_int8_refuses_bad_calibration(
    tmp_path: Path, calibration: list[Any], error: type[Exception], says: str
) -> None:
    path = exported(opinionated("tiny_cnn", 3), tmp_path, list(TEXTURES))
    with pytest.raises(error, match=says):
        quantize_int8(path, calibration, tmp_path / "int8.onnx")
    assert not (tmp_path / "int8.onnx").exists()


def test_without_quantisation_tools_it_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from vigil.errors import DependencyError

    path = exported(opinionated("tiny_cnn", 3), tmp_path, list(TEXTURES))
    monkeypatch.setitem(sys.modules, "onnxruntime.quantization", None)
    with pytest.raises(DependencyError, match=r"vigil\[train\]"):
        quantize_int8(path, [np.zeros((8, 8, 3), np.uint8)], tmp_path / "int8.onnx")
