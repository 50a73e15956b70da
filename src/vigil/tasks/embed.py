"""Image embedding: one feature vector per image, compared by cosine similarity."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from vigil.errors import ModelError
from vigil.models.spec import ModelSpec, Task
from vigil.results import Embeddings
from vigil.runtimes.base import TensorModel
from vigil.tasks.base import FileTaskModel, output_shapes
from vigil.tasks.preprocess import InputMapping

DECODER_DEFAULTS: dict[str, dict[str, Any]] = {"vector": {}}
"""Spec values each embed decoder starts from."""


class EmbedModel(FileTaskModel[Embeddings]):
    """An image embedder: its one output, flattened, is the image's vector."""

    task: ClassVar[Task] = "embed"

    def __init__(self, model: TensorModel, spec: ModelSpec) -> None:
        super().__init__(model, spec)
        if len(model.outputs) != 1:
            raise ModelError(
                f"the vector decoder needs one output; model {model.path} has "
                f"{output_shapes(model)}: set the spec's task and decoder to match the model"
            )

    def decode(self, outputs: list[np.ndarray], mapping: InputMapping) -> Embeddings:
        """Return the image's vector."""
        return Embeddings.from_array(outputs[0].reshape(-1))
