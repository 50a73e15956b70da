"""Validation shared by the result containers, with messages that say expected vs actual."""

from __future__ import annotations

import numpy as np

KINDS = {"f": "float", "i": "integer", "U": "str"}


def require_array(
    array: object, name: str, ndim: int, kind: str, length: int | None = None
) -> None:
    """Raise ValueError unless ``array`` is an ``ndim``-D array of ``kind`` with ``length`` rows.

    Args:
        array: The value to check.
        name: Its field name, for the message.
        ndim: Number of dimensions it must have.
        kind: Its dtype kind: ``f`` float, ``i`` integer (signed or unsigned), ``U`` str.
        length: Rows it must have, if known.
    """
    if not isinstance(array, np.ndarray) or array.ndim != ndim:
        shape = getattr(array, "shape", type(array).__name__)
        raise ValueError(f"{name} must be a {ndim}D np.ndarray, but got {shape}")
    kinds = "iu" if kind == "i" else kind
    if array.dtype.kind not in kinds:
        raise ValueError(f"{name} must hold {KINDS[kind]} values, but got dtype {array.dtype}")
    if length is not None and len(array) != length:
        raise ValueError(f"{name} must have length {length}, but got shape {array.shape}")
