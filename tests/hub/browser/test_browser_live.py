"""The live page in a browser: the newest frame, under a second behind, and a clear empty state.

Frames posted by the test carry their number in vertical bands (``number_image``), which the
test reads back from the page's image, so it can tell how far behind the view is. A real
``vigil run posture --hub`` on a clip then feeds the same page.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import pytest

from tests.e2e.support import CLIP, VigilProcess
from tests.hub.browser.support import Browsing, screenshot
from tests.hub.conftest import HubFactory, RunningHub
from tests.services import NUMBER_BITS, number_image, wait_until

DEVICE = "desk-1"
POST_FPS = 10.0
PIPELINE_START_SECONDS = 90.0

READ_BANDS = """bits => {
  const image = document.getElementById('stream');
  const canvas = document.createElement('canvas');
  canvas.width = image.naturalWidth;
  canvas.height = image.naturalHeight;
  const context = canvas.getContext('2d');
  context.drawImage(image, 0, 0);
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
  const band = Math.floor(canvas.width / bits);
  const means = [];
  for (let b = 0; b < bits; b++) {
    let sum = 0;
    let count = 0;
    for (let y = 0; y < canvas.height; y += 4) {
      for (let x = b * band; x < (b + 1) * band; x += 2) {
        sum += pixels[(y * canvas.width + x) * 4];
        count += 1;
      }
    }
    means.push(sum / count);
  }
  return means;
}"""
"""Mean brightness of each vertical band of the live image (the frame's number, in binary)."""


class FramePoster:
    """Posts numbered JPEG frames to the hub's live stream of a device, ``fps`` a second."""

    def __init__(self, hub: RunningHub, device_id: str, fps: float) -> None:
        self.client = hub.client(headers={"Content-Type": "image/jpeg"})
        self.path = f"/api/streams/{device_id}"
        self.fps = fps
        self.latest = -1
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> FramePoster:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        number = 0
        while not self._stop.is_set():
            ok, jpeg = cv2.imencode(".jpg", number_image(number, 240, 120))
            assert ok
            response = self.client.post(self.path, content=jpeg.tobytes())
            assert response.status_code == 200, response.text
            self.latest = number
            number += 1
            self._stop.wait(1.0 / self.fps)


@pytest.fixture
def quick_hub(hub_factory: HubFactory) -> Iterator[RunningHub]:
    """A hub that forgets a live frame after one second, so the empty state comes back soon."""
    with hub_factory(live_frame_seconds=1.0) as started:
        yield started


def shown_number(page: Any) -> int:
    means = page.evaluate(READ_BANDS, NUMBER_BITS)
    return sum(1 << bit for bit, mean in enumerate(means) if mean > 127)


def test_the_live_view_is_under_a_second_behind(browsing: Browsing, quick_hub: RunningHub) -> None:
    unknown = browsing.open(f"{quick_hub.url}/live/nobody")
    unknown.wait_for_selector("body[data-stream='none']")
    assert "No device with this id" in unknown.inner_text("#nostream")
    quick_hub.token(DEVICE)  # the device is known, but sends nothing yet
    page = browsing.open(f"{quick_hub.url}/live/{DEVICE}")
    page.wait_for_selector("body[data-stream='none']")
    assert page.is_visible("#nostream") and page.is_hidden("#stream")
    assert "not sending frames" in page.inner_text("#nostream")

    poster = FramePoster(quick_hub, DEVICE, POST_FPS).start()
    try:
        page.wait_for_selector("body[data-stream='live']", timeout=10_000)
        page.wait_for_function("() => document.getElementById('stream').naturalWidth === 240")
        seen = []
        for _ in range(5):
            page.wait_for_timeout(400)
            latest = poster.latest
            shown = shown_number(page)
            assert 0 <= latest - shown <= POST_FPS, (latest, shown)  # at most a second behind
            seen.append(shown)
        assert seen == sorted(seen) and seen[-1] > seen[0]
        screenshot(page, "live")
    finally:
        poster.stop()
    page.wait_for_selector("body[data-stream='none']", timeout=10_000)
    assert "not sending frames" in page.inner_text("#nostream")
    assert page.is_hidden("#stream")
    browsing.assert_clean(allowed=["status of 404"])  # the unknown device


def test_the_live_view_follows_a_running_pipeline(
    browsing: Browsing, secure_hub: RunningHub, shared_data: Path, tmp_path: Path
) -> None:
    token = secure_hub.token(DEVICE)
    pipeline = VigilProcess(
        [
            "run", "posture", "--source", shared_data / CLIP, "--device-id", DEVICE,
            "--hub", secure_hub.url, "--token", token, "--max-frames", 1000,
        ],
        tmp_path / "pipeline",
    )  # fmt: skip
    try:
        viewer = secure_hub.session("viewer")
        page = browsing.open(f"{secure_hub.url}/login")
        browsing.context.add_cookies(
            [{"name": c.name, "value": c.value, "url": secure_hub.url} for c in viewer.cookies.jar]
        )
        page.goto(f"{secure_hub.url}/live/{DEVICE}")
        streaming = wait_until(
            lambda: page.get_attribute("body", "data-stream") == "live" or not pipeline.running,
            PIPELINE_START_SECONDS,
            interval=0.2,
        )
        assert streaming and pipeline.running, pipeline.stderr()
        page.wait_for_function("() => document.getElementById('stream').naturalWidth > 0")
        first = page.locator("#stream").screenshot()
        changed = wait_until(lambda: page.locator("#stream").screenshot() != first, 10.0, 0.3)
        assert changed, "the live image did not change while the pipeline ran"
        screenshot(page, "live-pipeline")
        result = pipeline.wait_after(signal.SIGTERM, 60)  # a clean stop, before --max-frames
        assert result.status == 0, result.stderr
    finally:
        pipeline.stop()
    browsing.assert_clean()


def test_a_reload_reopens_the_stream(browsing: Browsing, quick_hub: RunningHub) -> None:
    quick_hub.token(DEVICE)
    poster = FramePoster(quick_hub, DEVICE, POST_FPS).start()
    try:
        assert wait_until(lambda: poster.latest >= 0, 10.0)
        page = browsing.open(f"{quick_hub.url}/live/{DEVICE}")
        page.wait_for_selector("body[data-stream='live']")
        page.reload()
        page.wait_for_selector("body[data-stream='live']")
        page.wait_for_function("() => document.getElementById('stream').naturalWidth === 240")
        first = shown_number(page)
        time.sleep(0.5)
        assert shown_number(page) > first
    finally:
        poster.stop()
    browsing.assert_clean()
