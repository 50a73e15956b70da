"""Model runtimes and the inference service.

1. Per-frame latency of every runtime on the real models of ``../shared/data/models`` (LiteRT:
   the MobileNetV2 quant classifier, the COCO SSD detector, MoveNet, the embedder; MediaPipe
   BlazePose) and on an ONNX model this benchmark builds (ONNX Runtime): a MobileNetV2-shaped
   torch network with random weights, exported to ONNX. Each figure is ``model.predict`` on a
   decoded 640x480 RGB frame: resizing, the model and decoding its outputs.
2. What ``vigil serve-model`` adds: the MobileNetV2 classifier called directly (decode the
   JPEG + predict) against the same model behind the HTTP service in its own process (POST the
   JPEG + decode + predict + JSON, read back by the client), on the same 640x480 JPEGs, in
   short alternating rounds. Goal: the service adds under 3 ms at the median.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import httpx
import numpy as np
import yaml

from bench.common import SHARED_DATA, Timing, save_results, update_doc
from vigil.models.spec import ModelSpec
from vigil.serve.decode import decode_image
from vigil.tasks import load_model
from vigil.tasks.base import TaskModel

FRAMES = 100
WARMUP = 10
PASSES = 3
ROUND_FRAMES = 10
SIZE = (640, 480)
JPEG_QUALITY = 90
GOAL_MS = 3.0
MODELS = SHARED_DATA / "models"
CLASSIFIER = MODELS / "tfls_mobilenet_v2_1.0_224_quant.tflite"
CLIP = SHARED_DATA / "people_video" / "intel_one-by-one-person-detection.mp4"
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)


@dataclass(frozen=True)
class Subject:
    """One model to time: which runtime runs it, how to load it."""

    runtime: str
    model: str
    load: Callable[[], TaskModel]


def load_frames() -> tuple[list[bytes], str]:
    """640x480 JPEGs: the people clip's first frames, resized and encoded at quality 90."""
    capture = cv2.VideoCapture(str(CLIP))
    jpegs = []
    while len(jpegs) < FRAMES:
        ok, bgr = capture.read()
        if not ok:
            break
        _, encoded = cv2.imencode(
            ".jpg", cv2.resize(bgr, SIZE), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
        )
        jpegs.append(encoded.tobytes())
    capture.release()
    return jpegs, f"first {len(jpegs)} frames of {CLIP.name}, 640x480 JPEG (quality 90)"


def imagenet_spec() -> ModelSpec:
    labels = (MODELS / "tfls_imagenet_labels_1001.txt").read_text().splitlines()
    return ModelSpec(task="classify", labels=labels)


def subjects(folder: Path) -> list[Subject]:
    """Every model to time, the ONNX one built into ``folder`` when torch is installed."""
    found = [
        Subject(
            "LiteRT",
            "MobileNetV2 1.0 224 quant classifier",
            lambda: load_model(CLASSIFIER, imagenet_spec()),
        ),
        Subject(
            "LiteRT",
            "COCO SSD MobileNetV1 quant detector (300x300)",
            lambda: load_model(
                MODELS / "tfls_coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.tflite",
                ModelSpec(task="detect"),
            ),
        ),
        Subject(
            "LiteRT",
            "MoveNet Lightning int8 pose (192x192)",
            lambda: load_model(
                MODELS / "tfls_movenet_singlepose_lightning_int8_4.tflite", ModelSpec(task="pose")
            ),
        ),
        Subject(
            "LiteRT",
            "MobileNetV2 0.35 96 embedder",
            lambda: load_model(
                MODELS / "tfex_mobilenet_v2_035_96_embedder_with_metadata.tflite",
                ModelSpec(task="embed"),
            ),
        ),
        Subject("MediaPipe", "BlazePose full, image mode", lambda: load_model("mediapipe")),
    ]
    onnx_path = build_onnx_mobilenet(folder)
    if onnx_path is not None:
        spec = ModelSpec.model_validate(
            {"task": "classify", "preprocess": {"mean": IMAGENET_MEAN, "std": IMAGENET_STD}}
        )
        found.append(
            Subject(
                "ONNX Runtime",
                "MobileNetV2-shaped net, random weights, fp32 (built here with torch)",
                lambda: load_model(onnx_path, spec),
            )
        )
    return found


def build_onnx_mobilenet(folder: Path) -> Path | None:
    """Export a MobileNetV2-shaped torch network with random weights to ONNX; None without torch."""
    try:
        import torch
        from torch import nn
    except ImportError:
        return None

    def conv(cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Module:
        padding = kernel // 2
        layers = [nn.Conv2d(cin, cout, kernel, stride, padding, groups=groups, bias=False)]
        return nn.Sequential(*layers, nn.BatchNorm2d(cout), nn.ReLU6())

    def project(cin: int, cout: int) -> nn.Module:
        return nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout))

    class Block(nn.Module):
        def __init__(self, cin: int, cout: int, stride: int, expand: int) -> None:
            super().__init__()
            hidden = cin * expand
            parts = [conv(cin, hidden, 1)] if expand != 1 else []
            parts += [conv(hidden, hidden, 3, stride, groups=hidden), project(hidden, cout)]
            self.body = nn.Sequential(*parts)
            self.residual = stride == 1 and cin == cout

        def forward(self, x: Any) -> Any:
            return x + self.body(x) if self.residual else self.body(x)

    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1)]  # fmt: skip
    layers: list[nn.Module] = [conv(3, 32, 3, 2)]
    channels = 32
    for expand, out, repeats, stride in settings:
        for index in range(repeats):
            layers.append(Block(channels, out, stride if index == 0 else 1, expand))
            channels = out
    layers += [
        conv(channels, 1280, 1),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(1280, 1000),
    ]
    network = nn.Sequential(*layers).eval()
    path = folder / "mobilenet_v2_random.onnx"
    with torch.no_grad():
        torch.onnx.export(
            network,
            (torch.zeros(1, 3, 224, 224),),
            str(path),
            input_names=["image"],
            output_names=["logits"],
            opset_version=17,
            dynamo=False,
        )
    return path


def time_predict(model: TaskModel, frames: list[np.ndarray]) -> list[float]:
    for image in frames[:WARMUP]:
        model.predict(image)
    times = []
    for image in frames:
        started = time.perf_counter()
        model.predict(image)
        times.append(time.perf_counter() - started)
    return times


def runtime_rows(frames: list[np.ndarray], folder: Path) -> list[tuple[Subject, Timing]]:
    """Time every model, round-robin over PASSES passes, so load spikes spread over all."""
    chosen = subjects(folder)
    models = [subject.load() for subject in chosen]
    times: list[list[float]] = [[] for _ in chosen]
    try:
        for _ in range(PASSES):
            for index, model in enumerate(models):
                times[index] += time_predict(model, frames)
    finally:
        for model in models:
            model.close()
    return [(subject, Timing.of(seconds)) for subject, seconds in zip(chosen, times, strict=True)]


@contextmanager
def served_classifier(folder: Path) -> Iterator[str]:
    """``vigil serve-model`` on the MobileNetV2 classifier, in its own process."""
    import socket

    spec_file = folder / "mobilenet.vigil.yaml"
    spec_file.write_text(yaml.safe_dump(imagenet_spec().model_dump(exclude_unset=True)))
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "vigil.cli.main", "serve-model", str(CLASSIFIER),
               "--spec", str(spec_file), "--port", str(port)]  # fmt: skip
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _healthy(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("vigil serve-model did not start")
            time.sleep(0.1)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def direct_round(model: TaskModel, jpegs: list[bytes]) -> list[float]:
    times = []
    for data in jpegs:
        started = time.perf_counter()
        model.predict(decode_image(data, 40_000_000)).to_dict()
        times.append(time.perf_counter() - started)
    return times


def service_round(client: httpx.Client, jpegs: list[bytes]) -> tuple[list[float], list[float]]:
    """Round-trip times, and the time the service says it spent inside its handler."""
    times, inside = [], []
    for data in jpegs:
        started = time.perf_counter()
        response = client.post("/predict", content=data, headers={"content-type": "image/jpeg"})
        body = response.json()
        times.append(time.perf_counter() - started)
        response.raise_for_status()
        inside.append(body["timing_ms"]["total"] / 1000)
    return times, inside


def service_overhead(jpegs: list[bytes], folder: Path) -> dict[str, Any]:
    model = load_model(CLASSIFIER, imagenet_spec())
    direct: list[list[float]] = []
    served: list[list[float]] = []
    inside: list[float] = []
    try:
        with served_classifier(folder) as url, httpx.Client(base_url=url, timeout=30) as client:
            service_round(client, jpegs[:WARMUP])
            direct_round(model, jpegs[:WARMUP])
            for block in _rounds(jpegs):
                direct.append(direct_round(model, block))
                round_trip, handler = service_round(client, block)
                served.append(round_trip)
                inside += handler
    finally:
        model.close()
    differences = [
        s - d for ds, ss in zip(direct, served, strict=True) for d, s in zip(ds, ss, strict=True)
    ]
    return {
        "direct": Timing.of([t for r in direct for t in r]),
        "service": Timing.of([t for r in served for t in r]),
        "difference": _stats_ms(differences),
        "handler": Timing.of(inside),
    }


def _rounds(jpegs: list[bytes]) -> Iterator[list[bytes]]:
    """Short rounds over every frame, PASSES times: a change of machine load hits both sides."""
    for _ in range(PASSES):
        for start in range(0, len(jpegs), ROUND_FRAMES):
            yield jpegs[start : start + ROUND_FRAMES]


def _stats_ms(seconds: list[float]) -> dict[str, float]:
    values = np.asarray(seconds) * 1000
    return {"median_ms": float(np.median(values)), "p95_ms": float(np.percentile(values, 95))}


def render(rows: list[tuple[Subject, Timing]], overhead: dict[str, Any], described: str) -> str:
    lines = [
        f"Frames: {described}; per-frame figures are `model.predict` on the decoded 640x480 "
        f"RGB frame (resize, model, output decoding), {PASSES} passes over the {FRAMES} frames "
        f"taking the models in turn, each pass after {WARMUP} warm-up frames; 2 threads.",
        "",
        "| runtime | model | median ms | p95 ms | frames/s |",
        "|---|---|---:|---:|---:|",
    ]
    for subject, timing in rows:
        lines.append(
            f"| {subject.runtime} | {subject.model} | {timing.median_ms:.2f} | "
            f"{timing.p95_ms:.2f} | {timing.per_second:.0f} |"
        )
    direct, service, diff, handler = (
        overhead["direct"], overhead["service"], overhead["difference"], overhead["handler"]
    )  # fmt: skip
    met = diff["median_ms"] < GOAL_MS
    lines += [
        "",
        "The HTTP service (`vigil serve-model`, its own process, uvicorn on loopback) against "
        "the same MobileNetV2 classifier called directly, on the same JPEGs, in alternating "
        f"rounds of {ROUND_FRAMES} frames, {PASSES} passes over the frames. Direct: decode "
        "the JPEG + predict + `to_dict()`. Service: POST the JPEG with a keep-alive httpx "
        "client + server-side decode + predict + JSON, parsed by the client. The difference is "
        "taken frame by frame within each pair of rounds.",
        "",
        "| | median ms | p95 ms |",
        "|---|---:|---:|",
        f"| direct: decode + predict | {direct.median_ms:.2f} | {direct.p95_ms:.2f} |",
        f"| service: HTTP round trip | {service.median_ms:.2f} | {service.p95_ms:.2f} |",
        f"| service handler, as the service measured it | {handler.median_ms:.2f} | "
        f"{handler.p95_ms:.2f} |",
        f"| **added by the service** (round trip - direct) | **{diff['median_ms']:.2f}** | "
        f"{diff['p95_ms']:.2f} |",
        "",
        f"Goal: the service adds under {GOAL_MS:.0f} ms at the median: "
        f"**{'met' if met else 'NOT met'}**.",
    ]
    return "\n".join(lines)


def main() -> dict[str, object]:
    if not CLASSIFIER.is_file() or not CLIP.is_file():
        print(f"skipped: the real models and clip are not in {SHARED_DATA}")
        return {}
    jpegs, described = load_frames()
    frames = [decode_image(data, 40_000_000) for data in jpegs]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        rows = runtime_rows(frames, folder)
        overhead = service_overhead(jpegs, folder)
    text = render(rows, overhead, described)
    print(text)
    update_doc("models", "Model runtimes and the inference service (`bench/models.py`)", text)
    payload: dict[str, object] = {
        "runtimes": {f"{s.runtime}: {s.model}": t for s, t in rows},
        **overhead,
    }
    save_results("models", payload)
    return payload


if __name__ == "__main__":
    main()
