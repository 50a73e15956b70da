"""Apps: named recipes of stages and rules. Adding an app is adding an entry here and a file."""

from __future__ import annotations

import difflib
import importlib
from typing import TYPE_CHECKING, Any

from vigil.errors import ConfigError

if TYPE_CHECKING:
    from vigil.apps.base import App, AppConfig, AppParts

_APPS: dict[str, str] = {
    "posture": "vigil.apps.posture:PostureApp",
}


def app_names() -> list[str]:
    """Return the names ``vigil run`` accepts."""
    return sorted(_APPS)


def get_app(name: str) -> App:
    """Return the app called ``name``.

    Raises:
        ConfigError: no such app (with the closest name, if any).
    """
    target = _APPS.get(name)
    if target is None:
        close = difflib.get_close_matches(name, _APPS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else f"; apps: {', '.join(app_names())}"
        raise ConfigError(f"no app named '{name}'{hint}")
    module_name, class_name = target.split(":")
    app: App = getattr(importlib.import_module(module_name), class_name)()
    return app


def __getattr__(name: str) -> Any:
    """Load the app base types on first use, so listing app names stays fast."""
    if name in ("App", "AppConfig", "AppParts"):
        return getattr(importlib.import_module("vigil.apps.base"), name)
    raise AttributeError(f"module 'vigil.apps' has no attribute {name!r}")


__all__ = ["App", "AppConfig", "AppParts", "app_names", "get_app"]
