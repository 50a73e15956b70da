"""Posture pipeline throughput: the bare pose model vs the whole ``vigil run posture`` pipeline.

Both run on the same decoded 640x480 frames in the same process, alternating rounds so that
machine noise hits both alike. The pipeline is everything ``vigil run posture`` does per frame
except drawing: pose + rules + per-second records in SQLite + rolled CSV files + the outbox
feeding an MQTT broker (when mosquitto is installed). Goal: the pipeline keeps >= 90% of the bare
model's rate and reaches >= 25 fps.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np

from bench.common import SHARED_DATA, Timing, median, save_results, update_doc
from vigil.apps.posture import PostureConfig
from vigil.engine import Engine
from vigil.frame import Frame
from vigil.rules.tracker import PostureTracker
from vigil.runtimes.mediapipe import MediaPipePose
from vigil.sinks.network import NetworkSinks
from vigil.sinks.records import RecordsSink, RollingFileSink
from vigil.stages.base import Pipeline
from vigil.stages.pose import PoseStage
from vigil.storage.records import RecordStore

ROUNDS = 3
FRAMES = 300
WARMUP = 15
SIZE = (640, 480)


def load_frames() -> tuple[list[np.ndarray], str]:
    """Decoded RGB 640x480 frames: the people clip when present, else the demo clip."""
    clip = SHARED_DATA / "people_video" / "intel_one-by-one-person-detection.mp4"
    if clip.is_file():
        capture = cv2.VideoCapture(str(clip))
        frames = []
        while len(frames) < FRAMES:
            ok, bgr = capture.read()
            if not ok:
                break
            frames.append(cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), SIZE))
        capture.release()
        return frames, f"first {len(frames)} frames of {clip.name} resized to 640x480"
    from vigil.demo import demo_frames

    frames = list(demo_frames(FRAMES / 10))[:FRAMES]
    return frames, f"{len(frames)} frames of the demo clip (640x480)"


def bare_round(frames: list[np.ndarray]) -> list[float]:
    model = MediaPipePose(video=True)
    for image in frames[:WARMUP]:
        model.predict(image)
    times = []
    for image in frames:
        start = time.perf_counter()
        model.predict(image)
        times.append(time.perf_counter() - start)
    model.close()
    return times


def pipeline_round(frames: list[np.ndarray], folder: Path, mqtt_url: str | None) -> list[float]:
    config = PostureConfig.model_validate(
        {
            "device_id": "bench",
            "sinks": {"mqtt": {"url": mqtt_url}} if mqtt_url else {},
            "records": {"roll_seconds": 10},
        }
    )
    config.sinks.outbox.path = folder / "outbox.db"
    model = MediaPipePose(video=True)
    for image in frames[:WARMUP]:
        model.predict(image)
    store = RecordStore(f"sqlite:///{folder / 'records.db'}")
    network = NetworkSinks(config.sinks, "bench")
    roller = RollingFileSink(folder / "rolled", "bench", 10)
    tracker = PostureTracker("bench", config.rules, config.reminders)
    engine = Engine(
        Pipeline([PoseStage(model)]), [tracker], [RecordsSink(store), roller, *network.sinks]
    )
    network.start()
    times = []
    t0 = time.time()
    for index, image in enumerate(frames):
        frame = Frame(image, t0 + index / 10, index, "bench")  # the clip's real 10 fps timing
        start = time.perf_counter()
        engine.process(frame)
        times.append(time.perf_counter() - start)
    engine.run([])  # flush and close like the end of a run
    network.close(5.0)
    return times


@contextmanager
def mosquitto() -> Iterator[str | None]:
    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    if not Path(binary).exists():
        yield None
        return
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as folder:
        conf = Path(folder) / "mosquitto.conf"
        conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
        process = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        time.sleep(0.5)
        try:
            yield f"mqtt://127.0.0.1:{port}"
        finally:
            process.terminate()
            process.wait(timeout=10)


def _row(label: str, timing: Timing) -> str:
    return f"| {label} | {timing.per_second:.1f} | {timing.median_ms:.1f} | {timing.p95_ms:.1f} |"


def main() -> dict[str, object]:
    frames, described = load_frames()
    bare_rounds, pipe_rounds = [], []
    with mosquitto() as mqtt_url, tempfile.TemporaryDirectory() as tmp:
        for round_index in range(ROUNDS):
            bare_rounds.append(bare_round(frames))
            folder = Path(tmp) / f"round{round_index}"
            folder.mkdir()
            pipe_rounds.append(pipeline_round(frames, folder, mqtt_url))
    bare = Timing.of([t for r in bare_rounds for t in r])
    pipe = Timing.of([t for r in pipe_rounds for t in r])
    ratios = [
        Timing.of(p).per_second / Timing.of(b).per_second
        for b, p in zip(bare_rounds, pipe_rounds, strict=True)
    ]
    ratio = median(ratios)
    met = ratio >= 0.9 and pipe.per_second >= 25
    sinks = (
        "SQLite records + rolled CSV + outbox -> MQTT (mosquitto on loopback)"
        if mqtt_url
        else "SQLite records + rolled CSV (no mosquitto here)"
    )
    table = (
        f"Frames: {described}; {ROUNDS} alternating rounds of {len(frames)} frames each.\n"
        f"Pipeline sinks: {sinks}; annotated output off.\n\n"
        "| | fps | median ms/frame | p95 ms/frame |\n|---|---:|---:|---:|\n"
        f"{_row('bare MediaPipe pose, plain loop', bare)}\n"
        f"{_row('whole posture pipeline', pipe)}\n\n"
        f"Pipeline / bare rate: median of rounds **{ratio:.1%}** "
        f"(rounds: {', '.join(f'{r:.1%}' for r in ratios)}). "
        f"Goals: >= 90% and >= 25 fps: **{'met' if met else 'NOT met'}**."
    )
    print(table)
    update_doc("posture", "Posture pipeline (`bench/posture.py`)", table)
    payload: dict[str, object] = {
        "bare": bare,
        "pipeline": pipe,
        "ratio_median": ratio,
        "ratios": ratios,
    }
    save_results("posture", payload)
    return payload


if __name__ == "__main__":
    main()
