"""Prometheus metrics of the inference service, in a registry of its own (no global state).

=================================  =========  ==============================================
metric                             type       labels
=================================  =========  ==============================================
``vigil_http_requests_total``      counter    ``endpoint`` (route path), ``method``, ``status``
``vigil_http_request_seconds``     histogram  ``endpoint``: time from request to response
``vigil_http_requests_in_flight``  gauge      requests being handled right now
``vigil_inference_seconds``        histogram  time inside the model's ``predict``
``vigil_decode_seconds``           histogram  time decoding request images
=================================  =========  ==============================================

Requests to paths that match no route are counted under the endpoint ``other``, so probing
random paths cannot grow the number of series without bound.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
"""Histogram buckets in seconds, from a millisecond (a warm small model) to ten seconds."""

UNMATCHED = "other"


class ServiceMetrics:
    """The service's counters, histograms and gauge, registered in a private registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "vigil_http_requests",
            "HTTP requests handled, by endpoint, method and status code.",
            ["endpoint", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "vigil_http_request_seconds",
            "Time from receiving a request to sending its response.",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "vigil_http_requests_in_flight",
            "Requests being handled right now.",
            registry=self.registry,
        )
        self.inference = Histogram(
            "vigil_inference_seconds",
            "Time inside the model's predict.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.decode = Histogram(
            "vigil_decode_seconds",
            "Time decoding request images.",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )

    def exposition(self) -> bytes:
        """Return every metric in the Prometheus text format."""
        return generate_latest(self.registry)

    def observe(self, endpoint: str, method: str, status: int, seconds: float) -> None:
        """Count one finished request and record its duration."""
        self.requests.labels(endpoint=endpoint, method=method, status=str(status)).inc()
        self.latency.labels(endpoint=endpoint).observe(seconds)


class MetricsMiddleware:
    """ASGI middleware that counts and times every HTTP request, errors included.

    Args:
        app: The application to wrap.
        metrics: Where the figures go.
    """

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call; only HTTP requests are measured."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500  # what the client gets when the app raises before answering
        started = time.perf_counter()
        observed = False

        def observe() -> None:
            nonlocal observed
            if not observed:
                observed = True
                elapsed = time.perf_counter() - started
                self.metrics.observe(_endpoint(scope), scope["method"], status, elapsed)

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body"):
                observe()  # counted before the client can have the whole answer
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            self.metrics.in_flight.dec()
            observe()


def _endpoint(scope: Scope) -> str:
    """Return the path template of the route that handled the request, or ``other``."""
    route: Any = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED
