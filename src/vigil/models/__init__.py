"""Models: metadata, runnable task models, the local store and the registry.

``import vigil.models`` stays light: the registry, store and hub client (SQLAlchemy, httpx)
load on first use of ``vigil.models.register``, ``list``, ``get``, ``resolve``, ... .
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from vigil.models.spec import DECODERS, TASKS, ModelSpec, Preprocess, Task

if TYPE_CHECKING:
    from vigil.models.api import (
        Models,
        ResolvedModel,
        get,
        promote,
        pull,
        register,
        remove,
        resolve,
    )
    from vigil.models.api import list_versions as list
    from vigil.models.registry import ModelVersion

_LAZY = {
    "Models": ("vigil.models.api", "Models"),
    "ModelVersion": ("vigil.models.registry", "ModelVersion"),
    "ResolvedModel": ("vigil.models.api", "ResolvedModel"),
    "get": ("vigil.models.api", "get"),
    "list": ("vigil.models.api", "list_versions"),
    "promote": ("vigil.models.api", "promote"),
    "pull": ("vigil.models.api", "pull"),
    "register": ("vigil.models.api", "register"),
    "remove": ("vigil.models.api", "remove"),
    "resolve": ("vigil.models.api", "resolve"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'vigil.models' has no attribute {name!r}")
    module, attribute = _LAZY[name]
    value = getattr(importlib.import_module(module), attribute)
    globals()[name] = value
    return value


__all__ = [
    "DECODERS",
    "TASKS",
    "ModelSpec",
    "ModelVersion",
    "Models",
    "Preprocess",
    "ResolvedModel",
    "Task",
    "get",
    "list",
    "promote",
    "pull",
    "register",
    "remove",
    "resolve",
]
