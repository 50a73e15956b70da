"""Pose results: keypoints for any number of people, in a named schema."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from vigil.results import rounding
from vigil.results.keypoints import KeypointSchema


@dataclass(frozen=True)
class Poses:
    """Keypoints of N people in one frame, as parallel numpy arrays.

    Filter by indexing, e.g. ``poses[poses.scores > 0.5]``.

    Attributes:
        keypoints: Pixel coordinates, shape (N, K, 2), float32, (x, y) in frame pixels.
        confidence: Per-keypoint confidence in [0, 1], shape (N, K), float32.
        scores: Per-person score in [0, 1], shape (N,), float32.
        schema: The joint layout; K == len(schema).
        xyxy: Person boxes (N, 4) in frame pixels where the model gives them, else None
            (:meth:`boxes` derives boxes from the joints).
    """

    keypoints: np.ndarray
    confidence: np.ndarray
    scores: np.ndarray
    schema: KeypointSchema
    xyxy: np.ndarray | None = None

    def __post_init__(self) -> None:
        k = len(self.schema)
        if self.keypoints.ndim != 3 or self.keypoints.shape[1:] != (k, 2):
            raise ValueError(
                f"keypoints must have shape (_, {k}, 2) for schema {self.schema.name!r}, "
                f"but got shape {self.keypoints.shape}"
            )
        n = self.keypoints.shape[0]
        if self.confidence.shape != (n, k):
            raise ValueError(
                f"confidence must have shape ({n}, {k}), but got shape {self.confidence.shape}"
            )
        if self.scores.shape != (n,):
            raise ValueError(f"scores must have shape ({n},), but got shape {self.scores.shape}")
        if self.xyxy is not None and self.xyxy.shape != (n, 4):
            raise ValueError(f"xyxy must have shape ({n}, 4), but got shape {self.xyxy.shape}")

    @classmethod
    def empty(cls, schema: KeypointSchema) -> Poses:
        """Return a result with nobody in it."""
        k = len(schema)
        return cls(
            keypoints=np.zeros((0, k, 2), np.float32),
            confidence=np.zeros((0, k), np.float32),
            scores=np.zeros((0,), np.float32),
            schema=schema,
        )

    @classmethod
    def from_arrays(
        cls,
        keypoints: np.ndarray,
        confidence: np.ndarray,
        schema: KeypointSchema,
        scores: np.ndarray | None = None,
        xyxy: np.ndarray | None = None,
    ) -> Poses:
        """Build poses from arrays of any float dtype; scores default to mean confidence."""
        keypoints = np.asarray(keypoints, np.float32).reshape(-1, len(schema), 2)
        confidence = np.clip(np.asarray(confidence, np.float32).reshape(-1, len(schema)), 0, 1)
        if scores is None:
            scores = confidence.mean(axis=1) if len(confidence) else np.zeros(0, np.float32)
        boxes = None if xyxy is None else np.asarray(xyxy, np.float32).reshape(-1, 4)
        return cls(keypoints, confidence, np.asarray(scores, np.float32).reshape(-1), schema, boxes)

    def __len__(self) -> int:
        return int(self.keypoints.shape[0])

    def __getitem__(self, index: int | slice | np.ndarray | list[int]) -> Poses:
        if isinstance(index, int):
            index = [index]
        boxes = None if self.xyxy is None else self.xyxy[index]
        return Poses(
            self.keypoints[index], self.confidence[index], self.scores[index], self.schema, boxes
        )

    def point(self, name: str) -> np.ndarray:
        """Return the (N, 2) pixel coordinates of joint ``name``."""
        return self.keypoints[:, self.schema.index(name)]

    def point_confidence(self, name: str) -> np.ndarray:
        """Return the (N,) confidence of joint ``name``."""
        return self.confidence[:, self.schema.index(name)]

    def to_schema(self, schema: KeypointSchema) -> Poses:
        """Return the same people in another schema, matching joints by name.

        Raises:
            ValueError: if ``schema`` names a joint this schema does not have.
        """
        if schema == self.schema:
            return self
        missing = [n for n in schema.names if n not in self.schema]
        if missing:
            raise ValueError(
                f"cannot convert {self.schema.name!r} poses to {schema.name!r}: "
                f"no joints named {', '.join(missing)}"
            )
        order = [self.schema.index(n) for n in schema.names]
        return Poses(
            self.keypoints[:, order], self.confidence[:, order], self.scores, schema, self.xyxy
        )

    def boxes(self, min_confidence: float = 0.3, margin: float = 0.1) -> np.ndarray:
        """Return (N, 4) xyxy boxes around each person's confident joints, grown by ``margin``.

        A person with no joint above ``min_confidence`` gets a box around all joints. The boxes
        a model gave (:attr:`xyxy`) are not used here: these follow the joints.
        """
        out = np.zeros((len(self), 4), np.float32)
        for i in range(len(self)):
            confident = self.confidence[i] >= min_confidence
            pts = self.keypoints[i][confident] if confident.any() else self.keypoints[i]
            lo, hi = pts.min(axis=0), pts.max(axis=0)
            pad = (hi - lo) * margin
            out[i] = [*(lo - pad), *(hi + pad)]
        return out

    def scaled(self, sx: float, sy: float, dx: float = 0.0, dy: float = 0.0) -> Poses:
        """Return poses with coordinates mapped by ``x * sx + dx`` and ``y * sy + dy``."""
        scale, shift = np.array([sx, sy], np.float32), np.array([dx, dy], np.float32)
        kp = (self.keypoints * scale + shift).astype(np.float32)
        boxes = None
        if self.xyxy is not None:
            boxes = (self.xyxy * np.tile(scale, 2) + np.tile(shift, 2)).astype(np.float32)
        return Poses(kp, self.confidence, self.scores, self.schema, boxes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: each person's score, box and named keypoints.

        The box is the model's where it gives one, else the box around the person's joints.
        """
        boxes = self.xyxy if self.xyxy is not None else self.boxes()
        return {
            "task": "pose",
            "schema": self.schema.name,
            "people": [self._person(i, boxes[i]) for i in range(len(self))],
        }

    def _person(self, i: int, box: np.ndarray) -> dict[str, Any]:
        return {
            "score": rounding.score(self.scores[i]),
            "box": rounding.pixels(box),
            "keypoints": [
                {
                    "name": name,
                    "x": round(float(x), rounding.PIXEL_DECIMALS),
                    "y": round(float(y), rounding.PIXEL_DECIMALS),
                    "confidence": rounding.score(c),
                }
                for name, (x, y), c in zip(
                    self.schema.names, self.keypoints[i], self.confidence[i], strict=True
                )
            ],
        }
