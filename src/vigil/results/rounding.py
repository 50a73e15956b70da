"""How results round their numbers in JSON, so every front end prints the same values."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

SCORE_DECIMALS = 4
"""Scores and confidences: enough to rank and threshold, short enough to read."""

PIXEL_DECIMALS = 1
"""Pixel coordinates: a tenth of a pixel."""

VECTOR_DECIMALS = 6
"""Embedding components: small numbers whose relative precision matters."""


def score(value: float) -> float:
    """Return a score rounded for JSON."""
    return round(float(value), SCORE_DECIMALS)


def pixels(values: Iterable[float]) -> list[float]:
    """Return pixel coordinates rounded for JSON."""
    return [round(float(v), PIXEL_DECIMALS) for v in values]


def plain(value: object) -> object:
    """Return a numpy scalar as a JSON value; floats are rounded like scores."""
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer | int):
        return int(value)
    if isinstance(value, np.floating | float):
        return score(float(value))
    return str(value)
