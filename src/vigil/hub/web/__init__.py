"""The hub's web dashboard: overview, live view, posture charts, events, models and login.

``router`` serves the pages and their static files (styles, scripts and the vendored chart
library, all from the hub itself, so the dashboard works offline); the hub's app includes it.
"""

from __future__ import annotations

from vigil.hub.web.pages import router

__all__ = ["router"]
