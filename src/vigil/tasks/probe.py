"""A classifier head on an embedding backbone: image -> backbone vector -> head -> classes.

``vigil train classify --method probe`` trains a small linear head on the vectors of a
pretrained embed model and exports only the head (vector in, class probabilities out). Its spec
names the backbone (``backbone: embedder:2``); :func:`~vigil.tasks.load_model` then returns a
:class:`ProbeModel` that runs both, so the pair is used like any other classifier: in
``vigil predict``, the inference service and apps.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import ClassVar

import numpy as np

from vigil.errors import ModelError
from vigil.models.spec import ModelSpec, Task
from vigil.results import Classifications, Embeddings
from vigil.runtimes.base import TensorModel, TensorSpec
from vigil.tasks.base import TaskModel
from vigil.tasks.classify import are_probabilities, softmax


class ProbeModel:
    """A classifier made of an embed model (the backbone) and a head that reads its vectors.

    Args:
        backbone: The loaded embed model; this object closes it.
        head: The loaded head file: one (N, D) float input, one (N, classes) output.
        spec: The head's resolved spec (task classify, labels, ``backbone``).
        backbone_sha256: The backbone file's sha256, when it is a registered version.
        backbone_spec: The backbone's registered spec, when it is a registered version.

    Raises:
        ModelError: the backbone is not an embed model, or the head does not fit it or the
            labels.
    """

    task: ClassVar[Task] = "classify"

    def __init__(
        self,
        backbone: TaskModel,
        head: TensorModel,
        spec: ModelSpec,
        backbone_sha256: str | None = None,
        backbone_spec: ModelSpec | None = None,
    ) -> None:
        _check_backbone(backbone, spec)
        self.feature_dim = _check_head(head, spec, _output_dim(backbone))
        self.backbone = backbone
        self.head = head
        self.spec = spec
        self.backbone_sha256 = backbone_sha256
        self.backbone_spec = backbone_spec

    @property
    def backbone_fingerprint(self) -> str | None:
        """What identifies the backbone's vectors (its file and spec); None for a plain file."""
        if self.backbone_sha256 is None or self.backbone_spec is None:
            return None
        return backbone_fingerprint(self.backbone_sha256, self.backbone_spec)

    @property
    def path(self) -> str:
        """The head file."""
        return self.head.path

    @property
    def inputs(self) -> list[TensorSpec]:
        """The image input of the backbone."""
        return list(getattr(self.backbone, "inputs", []))

    @property
    def outputs(self) -> list[TensorSpec]:
        """The head's scores output."""
        return list(self.head.outputs)

    @property
    def thread_safe(self) -> bool:
        """Whether ``predict`` may run in several threads at once (both parts must allow it)."""
        return bool(getattr(self.backbone, "thread_safe", False)) and bool(
            getattr(self.head, "thread_safe", False)
        )

    def embed(self, image: np.ndarray) -> np.ndarray:
        """Return the backbone's vector of an RGB uint8 image, shape (D,)."""
        embeddings = self.backbone.predict(image)
        if not isinstance(embeddings, Embeddings):
            raise ModelError(f"the backbone {self.spec.backbone} returned no embedding vector")
        return embeddings.vector

    def head_scores(self, features: np.ndarray) -> np.ndarray:
        """Return the class probabilities of backbone vectors, shape (N, classes).

        Raises:
            ModelError: the vectors are not (N, D) with the backbone's D.
        """
        vectors = np.asarray(features, np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.feature_dim:
            raise ModelError(
                f"the head {self.path} takes (N, {self.feature_dim}) vectors, got {vectors.shape}"
            )
        if len(vectors) == 0:
            return np.zeros((0, len(self.spec.labels or ())), np.float32)
        if self.head.inputs[0].shape[0] in (None, len(vectors)):
            raw = self._run_head(vectors)
        else:  # a head that takes one vector at a time
            raw = np.concatenate([self._run_head(row[None, :]) for row in vectors])
        return np.stack([self._probabilities(row) for row in raw])

    def probabilities(self, image: np.ndarray) -> np.ndarray:
        """Return the probability of every class for one RGB image, shape (classes,)."""
        return np.asarray(self.head_scores(self.embed(image)[None, :])[0])

    def predict(self, image: np.ndarray) -> Classifications:
        """Run the backbone and the head on an RGB uint8 (H, W, 3) image; the best classes."""
        return Classifications.from_scores(
            self.probabilities(image),
            self.spec.labels,
            label_offset=self.spec.label_offset,
            top_k=self.spec.top_k,
            min_score=self.spec.score_threshold or -np.inf,
        )

    def reset(self) -> None:
        """Do nothing: a probe keeps no state between frames."""

    def close(self) -> None:
        """Release both models."""
        try:
            self.head.close()
        finally:
            self.backbone.close()

    def _run_head(self, batch: np.ndarray) -> np.ndarray:
        output = self.head.run([batch])[0]
        real = self.head.outputs[0].dequantize(np.asarray(output))
        return real.reshape(len(batch), -1)

    def _probabilities(self, scores: np.ndarray) -> np.ndarray:
        wanted = self.spec.softmax == "yes" or (
            self.spec.softmax == "auto" and not are_probabilities(scores)
        )
        return softmax(scores) if wanted else scores.astype(np.float32)

    def __repr__(self) -> str:
        return f"ProbeModel({self.path!r}, backbone={self.spec.backbone!r})"


def load_probe(
    head: TensorModel, spec: ModelSpec, *, threads: int = 2, providers: list[str] | None = None
) -> ProbeModel:
    """Load the backbone that ``spec.backbone`` names and join it with the loaded ``head``.

    The backbone is a registered version (``embedder:2``), or a model file (a relative path is
    looked up beside the head first).

    Raises:
        ModelError: the backbone is unknown, cannot be loaded or is not an embed model, or the
            head does not fit it.
    """
    from vigil.models.api import resolve
    from vigil.tasks.loader import load_model

    ref = _backbone_ref(spec, head.path)
    try:
        found = resolve(ref)
    except ModelError as exc:
        raise ModelError(f"cannot load the backbone of {head.path}: {exc}") from None
    if found.spec is not None and found.spec.task != "embed":
        raise ModelError(
            f"the backbone {ref} of {head.path} is a {found.spec.task} model, not an embed model"
        )
    backbone = load_model(found.path, found.spec, threads=threads, providers=providers)
    try:
        return ProbeModel(backbone, head, spec, found.sha256, found.spec)
    except BaseException:
        backbone.close()
        raise


def backbone_fingerprint(sha256: str, spec: ModelSpec) -> str:
    """Identify what an embed model computes: its file's sha256 and the spec fields it sets."""
    text = f"{sha256}\n{spec.model_dump_json(exclude_unset=True)}"
    return hashlib.sha256(text.encode()).hexdigest()


def _backbone_ref(spec: ModelSpec, head_path: str) -> str:
    ref = spec.backbone
    assert ref is not None  # the loader only calls with a backbone
    beside = Path(head_path).parent / ref
    if not Path(ref).is_absolute() and beside.is_file():
        return str(beside)
    return ref


def _check_backbone(backbone: TaskModel, spec: ModelSpec) -> None:
    if backbone.spec.task != "embed":
        raise ModelError(
            f"the backbone {spec.backbone} is a {backbone.spec.task} model, not an embed model: "
            "a probe's head reads embedding vectors"
        )


def _output_dim(backbone: TaskModel) -> int | None:
    outputs = getattr(backbone, "outputs", None)
    if not outputs:
        return None
    size = 1
    for dim in outputs[0].shape[1:]:
        if dim is None:
            return None
        size *= dim
    return size


def _check_head(head: TensorModel, spec: ModelSpec, backbone_dim: int | None) -> int:
    """Check the head reads (N, D) vectors and outputs one score per label; return D."""
    if len(head.inputs) != 1 or len(head.inputs[0].shape) != 2 or len(head.outputs) != 1:
        raise ModelError(
            f"a probe head takes one (N, D) vector and outputs one (N, classes) array; "
            f"{head.path} has inputs {[i.shape for i in head.inputs]} and outputs "
            f"{[o.shape for o in head.outputs]}"
        )
    dim = head.inputs[0].shape[1]
    if dim is None or (backbone_dim is not None and dim != backbone_dim):
        raise ModelError(
            f"the head {head.path} reads {dim}-D vectors but its backbone {spec.backbone} "
            f"outputs {backbone_dim}-D ones: train the head on this backbone"
        )
    classes = head.outputs[0].shape[-1]
    labels = spec.labels
    if labels is not None and classes is not None and len(labels) + spec.label_offset != classes:
        raise ModelError(
            f"the head {head.path} outputs {classes} scores but its spec has {len(labels)} labels"
        )
    return dim


__all__ = ["ProbeModel", "backbone_fingerprint", "load_probe"]
