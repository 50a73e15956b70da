"""Health, metadata and metrics over real HTTP; inference off the event loop, one at a time."""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the inference service needs the 'serve' extra")

from tests.serve.support import encode, running, scene
from vigil.models.spec import ModelSpec
from vigil.serve import ModelInfo, ServeSettings, create_app
from vigil.tasks.fake import FakeModel

JPEG = encode(scene(), ".jpg")
RAW = {"content": JPEG, "headers": {"content-type": "image/jpeg"}}


def test_health_says_ok_with_the_model(classifier_service: Any) -> None:
    response = classifier_service.client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "model_loaded": True,
        "model": "model",
        "task": "classify",
    }


def test_metadata_describes_the_model_and_the_limits() -> None:
    spec = ModelSpec(task="detect", labels=["person", "car"], score_threshold=0.4)
    info = ModelInfo(name="yard-detector", version=7, sha256="0f" * 32)
    settings = ServeSettings(max_body_mb=2, max_pixels=5_000_000)
    with running(create_app(FakeModel(spec=spec), settings, info)) as service:
        metadata = service.client.get("/metadata").json()
    assert metadata["name"] == "yard-detector"
    assert metadata["version"] == 7
    assert metadata["sha256"] == "0f" * 32
    assert metadata["task"] == "detect"
    assert ModelSpec.model_validate(metadata["spec"]) == spec
    assert metadata["request"]["max_body_bytes"] == 2 * 1024 * 1024
    assert metadata["request"]["max_pixels"] == 5_000_000
    assert {"image/jpeg", "multipart/form-data", "application/json"} <= set(
        metadata["request"]["content_types"]
    )
    assert metadata["inputs"] == [] and metadata["outputs"] == []  # the fake has no tensors


def _sample(text: str, name: str, **labels: str) -> float:
    """One sample of a Prometheus text exposition (0 when absent)."""
    wanted = ",".join(f'{key}="{value}"' for key, value in labels.items())
    prefix = f"{name}{{{wanted}}} " if labels else f"{name} "
    values = [line.removeprefix(prefix) for line in text.splitlines() if line.startswith(prefix)]
    return float(values[0]) if values else 0.0


def test_metrics_count_requests_and_time_them(classifier_service: Any) -> None:
    client = classifier_service.client
    before = client.get("/metrics").text
    for _ in range(3):
        assert client.post("/predict", **RAW).status_code == 200
    assert (
        client.post("/predict", content=b"", headers={"content-type": "image/jpeg"}).status_code
        == 400
    )
    after = client.get("/metrics")
    assert after.headers["content-type"].startswith("text/plain")
    text = after.text

    def grew(name: str, **labels: str) -> float:
        return _sample(text, name, **labels) - _sample(before, name, **labels)

    ok = {"endpoint": "/predict", "method": "POST", "status": "200"}
    assert grew("vigil_http_requests_total", **ok) == 3
    assert grew("vigil_http_requests_total", **{**ok, "status": "400"}) == 1
    assert grew("vigil_http_requests_total", endpoint="/metrics", method="GET", status="200") == 1
    assert grew("vigil_http_request_seconds_count", endpoint="/predict") == 4
    assert grew("vigil_http_request_seconds_sum", endpoint="/predict") > 0
    assert grew("vigil_http_request_seconds_bucket", endpoint="/predict", le="+Inf") == 4
    assert grew("vigil_inference_seconds_count") == 3
    assert grew("vigil_decode_seconds_count") == 3
    assert _sample(text, "vigil_http_requests_in_flight") == 1  # the /metrics request itself


def test_unknown_paths_share_one_series(classifier_service: Any) -> None:
    for path in ("/a", "/b/c", "/admin.php"):
        classifier_service.client.get(path)
    text = classifier_service.client.get("/metrics").text
    assert (
        _sample(text, "vigil_http_requests_total", endpoint="other", method="GET", status="404")
        >= 3
    )
    assert "/admin.php" not in text


class Overlap(FakeModel):
    """A slow fake that notes how many predictions ran at the same moment."""

    def __init__(self, *, thread_safe: bool) -> None:
        super().__init__("classify", delay=0.05, thread_safe=thread_safe)
        self.running = 0
        self.most = 0
        self._count = threading.Lock()

    def predict(self, image: np.ndarray) -> Any:
        with self._count:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            return super().predict(image)
        finally:
            with self._count:
                self.running -= 1


@pytest.mark.parametrize(("thread_safe", "most"), [(False, 1), (True, 4)])
def test_a_model_that_is_not_thread_safe_runs_one_call_at_a_time(
    thread_safe: bool, most: int
) -> None:
    model = Overlap(thread_safe=thread_safe)
    with running(create_app(model, ServeSettings(warmup=False))) as service:

        def post(_: int) -> int:
            return service.client.post("/predict", **RAW).status_code

        with ThreadPoolExecutor(4) as pool:
            statuses = list(pool.map(post, range(8)))
    assert statuses == [200] * 8
    assert model.most == most


def test_the_event_loop_stays_free_while_the_model_works() -> None:
    model = FakeModel("classify", delay=1.0)
    app = create_app(model, ServeSettings(warmup=False))
    with running(app) as service, ThreadPoolExecutor(1) as pool:
        slow = pool.submit(service.client.post, "/predict", **RAW)
        time.sleep(0.1)
        started = time.monotonic()
        health = service.client.get("/health")
        waited = time.monotonic() - started
        in_flight = _sample(service.client.get("/metrics").text, "vigil_http_requests_in_flight")
        assert slow.result(timeout=5).status_code == 200
    assert health.status_code == 200
    assert waited < 0.5
    assert in_flight == 2  # the slow prediction and the /metrics request


def test_the_model_is_warmed_up_before_the_first_request() -> None:
    model = FakeModel("embed")
    with running(create_app(model)) as service:
        assert model.calls == 1
        service.client.post("/predict", **RAW)
    assert model.calls == 2
    assert not model.closed  # the caller owns the model


class Broken(FakeModel):
    """A model with a bug."""

    def predict(self, image: np.ndarray) -> Any:
        raise RuntimeError("index out of range in the decoder")


def test_a_bug_gives_a_clean_logged_500(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="vigil.serve")
    with running(create_app(Broken("detect"), ServeSettings(warmup=False))) as service:
        response = service.client.post("/predict", **RAW)
        status_500 = service.metric(
            "vigil_http_requests_total", endpoint="/predict", method="POST", status="500"
        )
        assert service.client.get("/health").status_code == 200  # still serving
    assert response.status_code == 500
    assert response.json() == {
        "error": "internal_error",
        "message": "the service failed on this request; see its log",
    }
    assert "index out of range" not in response.text
    assert status_500 == 1
    logged = [r for r in caplog.records if "internal error" in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None


def test_keep_alive_answers_are_not_held_back(classifier_service: Any) -> None:
    """With Nagle's algorithm on the service's sockets, each answer on a reused connection
    would wait about 40 ms for the client's delayed ACK between its headers and its body."""
    client = classifier_service.client
    client.post("/predict", **RAW)
    times = []
    for _ in range(9):
        started = time.perf_counter()
        assert client.post("/predict", **RAW).status_code == 200
        times.append(time.perf_counter() - started)
    assert sorted(times)[4] < 0.02
