"""A tiny torch classifier exported to ONNX gives the numbers torch gives, pre-processing included.

The reference pre-processing here is written out step by step with OpenCV and numpy, apart from
Vigil's, so that both the input tensor and the decoded scores are checked.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from vigil.models import ModelSpec, Preprocess
from vigil.tasks import ClassifyModel, load_model

torch = pytest.importorskip("torch", reason="the parity check needs torch (vigil[dev])")

WIDTH, HEIGHT = 48, 32
LABELS = ["ant", "bee", "cat", "dog", "eel"]
MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)


@pytest.fixture(scope="module")
def net() -> Any:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(8, 8, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, len(LABELS)),
    ).eval()


@pytest.fixture(scope="module")
def onnx_path(net: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("parity") / "tiny.onnx"
    example = torch.zeros(1, 3, HEIGHT, WIDTH)
    with warnings.catch_warnings():  # the TorchScript exporter (no onnxscript) warns it is old
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            net, (example,), str(path), input_names=["image"], output_names=["logits"], dynamo=False
        )
    return path


def photo(height: int, width: int) -> np.ndarray:
    """A deterministic RGB image with gradients and texture."""
    rng = np.random.default_rng(7)
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs * 255 / width, ys * 255 / height, (xs + ys) % 64 * 4], axis=-1)
    return np.clip(base + rng.normal(0, 20, base.shape), 0, 255).astype(np.uint8)


def stretch(image: np.ndarray) -> np.ndarray:
    return cv2.resize(image, (WIDTH, HEIGHT), interpolation=cv2.INTER_AREA)


def letterbox_grey(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    scale = min(WIDTH / w, HEIGHT / h)
    new_w, new_h = round(w * scale), round(h * scale)
    out = np.full((HEIGHT, WIDTH, 3), 114, np.uint8)
    top, left = (HEIGHT - new_h) // 2, (WIDTH - new_w) // 2
    out[top : top + new_h, left : left + new_w] = cv2.resize(
        image, (new_w, new_h), interpolation=cv2.INTER_AREA
    )
    return out


def centre_crop(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    scale = max(WIDTH / w, HEIGHT / h)
    new_w, new_h = round(w * scale), round(h * scale)
    resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA)
    top, left = (new_h - HEIGHT) // 2, (new_w - WIDTH) // 2
    return resized[top : top + HEIGHT, left : left + WIDTH]


@pytest.mark.parametrize(
    ("image_shape", "settings", "reference", "bgr"),
    [
        ((64, 96), {"resize": "stretch"}, stretch, False),
        ((90, 70), {"resize": "stretch"}, stretch, False),
        ((64, 128), {"resize": "letterbox", "pad_value": 114}, letterbox_grey, False),
        ((100, 60), {"resize": "crop"}, centre_crop, False),
        ((64, 96), {"resize": "stretch", "color": "bgr"}, stretch, True),
    ],
)
def test_scores_match_torch_number_for_number(
    onnx_path: Path,
    net: Any,
    *,
    image_shape: tuple[int, int],
    settings: dict[str, Any],
    reference: Callable[[np.ndarray], np.ndarray],
    bgr: bool,
) -> None:
    image = photo(*image_shape)
    pixels = reference(image).astype(np.float32)
    if bgr:
        pixels = pixels[..., ::-1]
    tensor = ((pixels - MEAN) / STD).transpose(2, 0, 1)[None]
    with torch.no_grad():
        logits = net(torch.from_numpy(np.ascontiguousarray(tensor))).numpy()[0]
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()

    preprocess = Preprocess(mean=tuple(MEAN.tolist()), std=tuple(STD.tolist()), **settings)
    for softmax, expected in (("auto", probabilities), ("no", logits)):
        spec = ModelSpec(
            task="classify", labels=LABELS, preprocess=preprocess, softmax=softmax, top_k=5
        )
        model = load_model(onnx_path, spec)
        assert isinstance(model, ClassifyModel)
        found = model.predict(image)
        model.close()
        assert found.labels.tolist() == [LABELS[i] for i in found.class_id]
        by_class = np.zeros(len(LABELS), np.float32)
        by_class[found.class_id] = found.scores
        np.testing.assert_allclose(by_class, expected, rtol=1e-4, atol=1e-5)
