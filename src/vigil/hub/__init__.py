"""The hub: devices, live streams, posture records, charts and models, on your own machine.

``vigil serve`` runs it (the ``hub`` extra: FastAPI, uvicorn, argon2-cffi). Build the
application in Python with :func:`create_app`::

    from vigil.hub import HubSettings, create_app

    app = create_app(HubSettings(database_url="sqlite:////data/vigil.db"))

``import vigil.hub`` stays light: the web framework loads with :func:`create_app`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vigil.hub.settings import HubSettings, is_loopback

if TYPE_CHECKING:
    from vigil.hub.app import create_app


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from vigil.hub.app import create_app

        globals()[name] = create_app
        return create_app
    raise AttributeError(f"module 'vigil.hub' has no attribute {name!r}")


__all__ = ["HubSettings", "create_app", "is_loopback"]
