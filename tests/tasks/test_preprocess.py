"""Frames into model inputs and model coordinates back to frame pixels."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from vigil.errors import ModelError
from vigil.models import Preprocess
from vigil.runtimes import TensorSpec
from vigil.tasks.preprocess import ImageInput, InputMapping, check_image, place


def marked_frame(width: int, height: int, centre: tuple[int, int]) -> np.ndarray:
    """A black frame with a white 20 x 20 square centred on ``centre``."""
    frame = np.zeros((height, width, 3), np.uint8)
    x, y = centre
    frame[y - 10 : y + 10, x - 10 : x + 10] = 255
    return frame


def bright_centre(image: np.ndarray) -> tuple[float, float]:
    ys, xs = np.nonzero(image[..., 0] > 127)
    return float(xs.mean() + 0.5), float(ys.mean() + 0.5)


@pytest.mark.parametrize(
    ("resize", "size", "expected"),
    [
        ("stretch", (640, 480), InputMapping(0.5, 320 / 480, 0.0, 0.0, 640, 480)),
        ("letterbox", (640, 480), InputMapping(0.5, 0.5, 0.0, 40.0, 640, 480)),
        ("letterbox", (480, 640), InputMapping(0.5, 0.5, 40.0, 0.0, 480, 640)),
        ("crop", (640, 480), InputMapping(2 / 3, 2 / 3, -53.0, 0.0, 640, 480)),
        ("crop", (300, 900), InputMapping(320 / 300, 320 / 300, 0.0, -320.0, 300, 900)),
    ],
)
def test_each_resize_maps_the_frame_and_back(
    resize: str, size: tuple[int, int], expected: InputMapping
) -> None:
    width, height = size
    centre = (width // 2 + 40, height // 2 + 30)
    frame = marked_frame(width, height, centre)
    placed, mapping = place(frame, 320, 320, Preprocess(resize=resize))
    assert placed.shape == (320, 320, 3)
    assert mapping.scale_x == pytest.approx(expected.scale_x, rel=2e-3)
    assert mapping.scale_y == pytest.approx(expected.scale_y, rel=2e-3)
    assert (mapping.offset_x, mapping.offset_y) == (expected.offset_x, expected.offset_y)
    found = mapping.to_frame(np.array(bright_centre(placed)))
    assert found.tolist() == pytest.approx(centre, abs=1.5)


def test_letterbox_pads_with_the_spec_grey() -> None:
    placed, _ = place(np.zeros((100, 200, 3), np.uint8), 64, 64, Preprocess(resize="letterbox"))
    grey, _ = place(
        np.zeros((100, 200, 3), np.uint8), 64, 64, Preprocess(resize="letterbox", pad_value=114)
    )
    assert placed[0, 0].tolist() == [0, 0, 0]
    assert grey[0, 0].tolist() == [114, 114, 114] and grey[32, 32].tolist() == [0, 0, 0]


def test_mapped_points_and_boxes_stay_inside_the_frame() -> None:
    mapping = InputMapping(0.5, 0.5, 0.0, 40.0, 640, 480)
    points = np.array([[-10.0, 0.0], [330.0, 300.0], [100.0, 140.0]], np.float32)
    assert mapping.to_frame(points).tolist() == [[0.0, 0.0], [640.0, 480.0], [200.0, 200.0]]
    boxes = mapping.boxes_to_frame(np.array([[-5.0, 30.0, 100.0, 400.0]]))
    assert boxes.tolist() == [[0.0, 0.0, 200.0, 480.0]]


def tensor(
    shape: tuple[int | None, ...], dtype: Any, scale: float = 0.0, zero_point: int = 0
) -> TensorSpec:
    return TensorSpec("image", shape, np.dtype(dtype), scale, zero_point)


PIXELS = np.array([[[0, 128, 255]]], np.uint8)  # one pixel: R 0, G 128, B 255


@pytest.mark.parametrize(
    ("input_tensor", "settings", "expected"),
    [
        (tensor((1, 1, 1, 3), np.float32), {}, [0.0, 128.0, 255.0]),
        (
            tensor((1, 1, 1, 3), np.float32),
            {"mean": (127.5,) * 3, "std": (127.5,) * 3},
            [-1.0, 0.5 / 127.5, 1.0],
        ),
        (tensor((1, 1, 1, 3), np.uint8, 1 / 128, 128), {}, [0, 128, 255]),
        (
            tensor((1, 1, 1, 3), np.uint8, 1 / 128, 128),
            {"mean": (127.5,) * 3, "std": (127.5,) * 3},
            [0, 129, 255],  # round(real * 128 + 128); 256 is clipped to 255
        ),
        (tensor((1, 1, 1, 3), np.int8, 1 / 255, -128), {}, [-128, 0, 127]),
        (
            tensor((1, 1, 1, 3), np.int8, 1 / 255, -128),
            {"mean": (0.0,) * 3, "std": (255.0,) * 3},
            [-128, 0, 127],
        ),
        (tensor((1, 1, 1, 3), np.float32), {"color": "bgr"}, [255.0, 128.0, 0.0]),
        (tensor((1, 1, 1, 3), np.float16), {"mean": (0, 0, 0), "std": (255,) * 3}, [0, 0.502, 1]),
    ],
)
def test_input_values_follow_the_spec_and_the_input_type(
    input_tensor: TensorSpec, settings: dict[str, Any], expected: list[float]
) -> None:
    image_input = ImageInput.for_tensor(input_tensor, Preprocess(**settings), "m.onnx")
    batch, _ = image_input.prepare(PIXELS)
    assert batch.dtype == input_tensor.dtype and batch.shape == (1, 1, 1, 3)
    assert batch.reshape(-1).astype(np.float64).tolist() == pytest.approx(expected, abs=1e-3)


def test_channels_first_inputs_get_planes() -> None:
    image_input = ImageInput.for_tensor(tensor((1, 3, 2, 4), np.float32), Preprocess(), "m.onnx")
    assert (image_input.width, image_input.height, image_input.channels_first) == (4, 2, True)
    batch, _ = image_input.prepare(np.broadcast_to(PIXELS, (2, 4, 3)).copy())
    assert batch.shape == (1, 3, 2, 4)
    assert batch[0, :, 0, 0].tolist() == [0.0, 128.0, 255.0]


def test_dynamic_inputs_take_the_spec_size_then_the_fallback() -> None:
    dynamic = tensor((None, 3, None, None), np.float32)
    assert ImageInput.for_tensor(dynamic, Preprocess(input_size=(320, 256)), "m").width == 320
    assert ImageInput.for_tensor(dynamic, Preprocess(), "m", (640, 640)).height == 640


@pytest.mark.parametrize(
    ("shape", "settings", "message"),
    [
        ((1, 3, 224), {}, r"input of shape \(1, 3, 224\); expected a batch of images"),
        ((4, 224, 224, 3), {}, "takes batches of 4 images"),
        ((1, 224, 224, 1), {}, "cannot tell the channel axis"),
        ((1, 1, 224, 224), {"layout": "nchw"}, "takes 1-channel images"),
        ((1, None, None, None), {}, "cannot tell the channel axis"),
        ((1, 3, None, None), {}, "set preprocess.input_size"),
        ((1, 224, 224, 3), {"input_size": (300, 300)}, "takes 224x224 images"),
    ],
)
def test_inputs_that_are_not_image_batches_are_clear_errors(
    shape: tuple[int | None, ...], settings: dict[str, Any], message: str
) -> None:
    with pytest.raises(ModelError, match=message):
        ImageInput.for_tensor(tensor(shape, np.float32), Preprocess(**settings), "m.onnx")


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (np.zeros((10, 10), np.uint8), r"got shape \(10, 10\) dtype uint8"),
        (np.zeros((10, 10, 4), np.uint8), r"got shape \(10, 10, 4\)"),
        (np.zeros((10, 10, 3), np.float32), "dtype float32; convert it first"),
        (np.zeros((0, 10, 3), np.uint8), "the image is empty"),
        ([[1, 2, 3]], "as a numpy array, got list"),
    ],
)
def test_images_that_are_not_rgb_uint8_are_refused(image: Any, message: str) -> None:
    with pytest.raises(ModelError, match=message):
        check_image(image)
