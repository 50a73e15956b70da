"""Running the hub with uvicorn until SIGINT or SIGTERM, then returning (a clean stop)."""

from __future__ import annotations

import socket
from types import FrameType

import uvicorn
from fastapi import FastAPI

from vigil.serve.server import GRACEFUL_SHUTDOWN_SECONDS, Server


class HubServer(Server):
    """The model service's server, ending the live streams as soon as a stop signal comes.

    A live stream never ends by itself; without this, a stop would wait for the graceful
    shutdown to time out whenever someone is watching.
    """

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """Begin the graceful shutdown: end the live streams, then let uvicorn stop."""
        app = self.config.app
        hub = getattr(getattr(app, "state", None), "hub", None)
        if hub is not None:
            hub.streams.stop_soon()
        super().handle_exit(sig, frame)


def run_hub(app: FastAPI, listener: socket.socket) -> None:
    """Serve the hub ``app`` on ``listener`` until a stop signal (or ``should_exit``)."""
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    HubServer(config).run(sockets=[listener])
