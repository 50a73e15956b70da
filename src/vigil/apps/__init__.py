"""Apps: named recipes of stages and rules. Adding an app is adding an entry here and a file."""

from __future__ import annotations

import difflib
import importlib

from vigil.apps.base import App, AppConfig, AppParts
from vigil.errors import ConfigError

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


__all__ = ["App", "AppConfig", "AppParts", "app_names", "get_app"]
