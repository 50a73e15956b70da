"""Helpers of the service tests: the service on loopback, and tiny encoded images."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass

import cv2
import httpx
import numpy as np
from fastapi import FastAPI

from tests.services import LOOPBACK, wait_until
from vigil.cli.predict import bind

START_TIMEOUT_SECONDS = 10.0


@dataclass
class Service:
    """A running service and a client for it."""

    url: str
    client: httpx.Client
    app: FastAPI

    def metric(self, name: str, **labels: str) -> float:
        """Return one sample of the service's Prometheus metrics (0 when absent)."""
        value = self.app.state.metrics.registry.get_sample_value(name, labels)
        return 0.0 if value is None else float(value)


@contextlib.contextmanager
def running(app: FastAPI) -> Iterator[Service]:
    """Serve ``app`` with uvicorn on loopback until the block ends."""
    import uvicorn

    listener = bind(LOOPBACK, 0)
    port = listener.getsockname()[1]
    config = uvicorn.Config(app, log_config=None, access_log=False, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        if not wait_until(lambda: server.started or not thread.is_alive(), START_TIMEOUT_SECONDS):
            raise RuntimeError("the service did not start")
        url = f"http://{LOOPBACK}:{port}"
        with httpx.Client(base_url=url, timeout=10.0) as client:
            yield Service(url, client, app)
    finally:
        server.should_exit = True
        thread.join(START_TIMEOUT_SECONDS)
        listener.close()


def scene(width: int = 160, height: int = 120) -> np.ndarray:
    """An RGB image with structure: colour gradients and a bright block off-centre."""
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    image = np.stack(
        [np.broadcast_to(x, (height, width)), np.broadcast_to(y, (height, width)), (x + y) / 2],
        axis=2,
    ).astype(np.uint8)
    image[height // 4 : height // 2, width // 2 : 3 * width // 4] = (250, 40, 10)
    return image


def encode(image: np.ndarray, extension: str = ".jpg") -> bytes:
    """Encode an RGB image as ``extension`` (``.jpg``, ``.png``, ``.webp``, ``.bmp``, ``.gif``)."""
    ok, buffer = cv2.imencode(extension, cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    assert ok, extension
    return buffer.tobytes()
