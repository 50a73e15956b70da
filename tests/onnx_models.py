"""Tiny ONNX models built by the tests: a fixed output whatever the input, in a chosen layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

_ELEMENT = {np.dtype(np.float32): TensorProto.FLOAT, np.dtype(np.uint8): TensorProto.UINT8}


def constant_output_model(
    path: Path,
    input_shape: tuple[int, ...],
    outputs: dict[str, np.ndarray],
    input_dtype: type = np.float32,
) -> Path:
    """Write a model that outputs ``outputs`` (plus 0 x the input's sum, to use the input)."""
    nodes = [
        helper.make_node("Cast", ["image"], ["image_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["image_f"], ["total"], keepdims=0),
        helper.make_node("Mul", ["total", "zero"], ["nothing"]),
    ]
    initializers = [numpy_helper.from_array(np.array(0.0, np.float32), "zero")]
    graph_outputs = []
    for name, raw in outputs.items():
        value = raw.astype(np.float32)
        initializers.append(numpy_helper.from_array(value, f"{name}_value"))
        nodes.append(helper.make_node("Add", [f"{name}_value", "nothing"], [name]))
        graph_outputs.append(
            helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape))
        )
    graph = helper.make_graph(
        nodes,
        "constant",
        [
            helper.make_tensor_value_info(
                "image", _ELEMENT[np.dtype(input_dtype)], list(input_shape)
            )
        ],
        graph_outputs,
        initializer=initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
