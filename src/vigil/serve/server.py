"""Running the service with uvicorn on a socket that is already listening."""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
GRACEFUL_SHUTDOWN_SECONDS = 5


class Server(uvicorn.Server):
    """uvicorn's server, ending ``run`` normally after SIGINT or SIGTERM.

    uvicorn finishes the requests in progress on either signal, then raises the signal again
    so that the process dies of it; Vigil's commands treat a signal as a clean stop (exit 0)
    and close what they opened after the server returns.
    """

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Turn SIGINT and SIGTERM into a graceful shutdown while the server runs."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in STOP_SIGNALS}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def run_server(app: FastAPI, listener: socket.socket) -> None:
    """Serve ``app`` on ``listener`` until a stop signal (or ``should_exit``), then return."""
    config = uvicorn.Config(
        app,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    Server(config).run(sockets=[listener])
