"""The model boundary that apps, ``vigil predict`` and the inference service share.

A :class:`TaskModel` is a model file plus its :class:`~vigil.models.ModelSpec`: it takes an RGB
frame and returns typed results in that frame's pixel coordinates. One verb, ``predict``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Generic, Protocol, TypeVar, runtime_checkable

import numpy as np

from vigil.errors import ModelError
from vigil.models.spec import ModelSpec, Task
from vigil.runtimes.base import TensorModel, TensorSpec
from vigil.tasks.preprocess import ImageInput, InputMapping, check_image


@runtime_checkable
class Prediction(Protocol):
    """A typed result container (classifications, detections, poses, embeddings)."""

    def __len__(self) -> int:
        """Return the number of items (classes, boxes, people, vectors)."""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, the same from the Python API, the CLI and the HTTP service."""


class TaskModel(Protocol):
    """A loaded model that does one task."""

    spec: ModelSpec

    def predict(self, image: np.ndarray) -> Prediction:
        """Run on an RGB uint8 (H, W, 3) image; results are in its pixel coordinates."""

    def close(self) -> None:
        """Release the model."""


P = TypeVar("P", bound=Prediction)


class FileTaskModel(ABC, Generic[P]):
    """A model file run by a tensor runtime: frame -> input tensor -> outputs -> results.

    Subclasses check that the outputs fit their decoder when built and decode real-valued
    (dequantised) outputs into results.

    Args:
        model: The loaded tensor model; this object closes it.
        spec: The resolved spec; its task must be this class's task.

    Raises:
        ModelError: the model does not take one image input or its outputs do not fit.
    """

    task: ClassVar[Task]
    fallback_size: ClassVar[tuple[int, int] | None] = None
    """Input (width, height) for models with a dynamic input size and no size in their spec."""

    def __init__(self, model: TensorModel, spec: ModelSpec) -> None:
        if spec.task != self.task:
            raise ModelError(f"a {self.task} model cannot run a {spec.task} spec")
        if len(model.inputs) != 1:
            raise ModelError(
                f"model {model.path} must have one image input, has {len(model.inputs)}: "
                f"{', '.join(i.name for i in model.inputs)}"
            )
        self.model = model
        self.spec = spec
        self.input = ImageInput.for_tensor(
            model.inputs[0], spec.preprocess, model.path, self.fallback_size
        )

    @property
    def path(self) -> str:
        """The model file."""
        return self.model.path

    @property
    def inputs(self) -> list[TensorSpec]:
        """The model file's input tensors."""
        return list(self.model.inputs)

    @property
    def outputs(self) -> list[TensorSpec]:
        """The model file's output tensors."""
        return list(self.model.outputs)

    @property
    def thread_safe(self) -> bool:
        """Whether ``predict`` may run in several threads at once: ONNX Runtime yes, LiteRT no."""
        return bool(getattr(self.model, "thread_safe", False))

    def predict(self, image: np.ndarray) -> P:
        """Run on an RGB uint8 (H, W, 3) image; results are in its pixel coordinates.

        Raises:
            ModelError: the image is not RGB uint8, or the model fails to run.
        """
        batch, mapping = self.input.prepare(check_image(image))
        raw = self.model.run([batch])
        outputs = [spec.dequantize(out) for spec, out in zip(self.model.outputs, raw, strict=True)]
        try:
            return self.decode(outputs, mapping)
        except (ValueError, IndexError) as exc:  # outputs whose run-time shapes do not fit
            shapes = ", ".join(str(o.shape) for o in outputs)
            raise ModelError(
                f"the {self.spec.decoder} decoder cannot read the outputs {shapes} of "
                f"{self.path}: {exc}; check the spec's task and decoder"
            ) from None

    @abstractmethod
    def decode(self, outputs: list[np.ndarray], mapping: InputMapping) -> P:
        """Turn real-valued outputs into results in frame pixels."""

    def reset(self) -> None:
        """Model files keep no state between frames."""

    def close(self) -> None:
        """Release the model."""
        self.model.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r}, decoder={self.spec.decoder!r})"


def output_shapes(model: TensorModel) -> str:
    """Return the output shapes as text for messages, dynamic dimensions as ``?``."""
    return ", ".join(
        "(" + ", ".join("?" if d is None else str(d) for d in o.shape) + ")" for o in model.outputs
    )
