"""The real models of ../shared/data: the same numbers from Python, ``vigil predict`` and HTTP."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.cli import VigilRunner
from tests.predict.support import frame_count
from tests.services import LOOPBACK, free_port, wait_until
from vigil.models.spec import ModelSpec
from vigil.sources import read_image
from vigil.tasks import load_model

pytest.importorskip("ai_edge_litert", reason="the real models are TFLite files (vigil[tflite])")

CLASSIFIER = "models/tfls_mobilenet_v2_1.0_224_quant.tflite"
DETECTOR = "models/tfls_coco_ssd_mobilenet_v1_1.0_quant_2018_06_29.tflite"
BURGER = "classification/tfls_burger.jpg"
CATS_AND_DOGS = "classification/tfls_cats_and_dogs.jpg"
CLIP = "people_video/intel_one-by-one-person-detection.mp4"


@pytest.fixture(scope="module")
def imagenet_spec(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A spec file naming the 1001 ImageNet classes (index 0 is 'background')."""
    labels = (shared_data / "models" / "tfls_imagenet_labels_1001.txt").read_text().splitlines()
    path = tmp_path_factory.mktemp("specs") / "mobilenet.vigil.yaml"
    path.write_text(yaml.safe_dump({"task": "classify", "labels": labels}))
    return path


@pytest.fixture(scope="module")
def burger_direct(shared_data: Path, imagenet_spec: Path) -> dict[str, Any]:
    """The Python API's answer for the burger photo."""
    spec = ModelSpec.model_validate(yaml.safe_load(imagenet_spec.read_text()))
    model = load_model(shared_data / CLASSIFIER, spec)
    try:
        return model.predict(read_image(shared_data / BURGER)).to_dict()
    finally:
        model.close()


def test_the_python_api_calls_the_burger_a_cheeseburger(burger_direct: dict[str, Any]) -> None:
    top = burger_direct["classes"][0]
    assert (top["label"], top["class_id"]) == ("cheeseburger", 934)
    assert top["score"] == pytest.approx(0.96, abs=0.02)


def test_the_cli_gives_the_same_numbers(
    vigil: VigilRunner, shared_data: Path, imagenet_spec: Path, burger_direct: dict[str, Any]
) -> None:
    result = vigil(
        "predict", shared_data / CLASSIFIER, shared_data / BURGER, "--spec", imagenet_spec, "--json"
    )
    assert result.status == 0, result.stderr
    line = json.loads(result.stdout)
    assert line == {
        "image": str(shared_data / BURGER),
        "task": "classify",
        "results": burger_direct,
    }


def test_the_service_gives_the_same_numbers(
    shared_data: Path, imagenet_spec: Path, burger_direct: dict[str, Any]
) -> None:
    pytest.importorskip("fastapi", reason="the inference service needs the 'serve' extra")
    from tests.serve.support import running
    from vigil.serve import ModelInfo, create_app

    spec = ModelSpec.model_validate(yaml.safe_load(imagenet_spec.read_text()))
    model = load_model(shared_data / CLASSIFIER, spec)
    photo = (shared_data / BURGER).read_bytes()
    try:
        with running(create_app(model, info=ModelInfo(name="mobilenet"))) as service:
            answers = [
                service.client.post(
                    "/predict", content=photo, headers={"content-type": "image/jpeg"}
                ),
                service.client.post("/predict", files={"image": ("burger.jpg", photo)}),
                service.client.post("/predict", json={"image": base64.b64encode(photo).decode()}),
            ]
            metadata = service.client.get("/metadata").json()
    finally:
        model.close()
    assert [answer.json()["results"] for answer in answers] == [burger_direct] * 3
    assert metadata["inputs"] == [
        {"name": metadata["inputs"][0]["name"], "shape": [1, 224, 224, 3], "dtype": "uint8"}
    ]
    assert metadata["outputs"][0]["shape"] == [1, 1001]


def test_the_service_finds_the_cats_and_the_dog(shared_data: Path) -> None:
    """tflite-support's expected scores within its tolerance of 0.05; its boxes (x, y, w, h)
    within 30 pixels (2.5% of the photo's width)."""
    pytest.importorskip("fastapi", reason="the inference service needs the 'serve' extra")
    from tests.serve.support import running
    from vigil.serve import create_app

    model = load_model(shared_data / DETECTOR, ModelSpec(task="detect"))
    try:
        with running(create_app(model)) as service:
            photo = (shared_data / CATS_AND_DOGS).read_bytes()
            answer = service.client.post("/predict", files={"image": ("pets.jpg", photo)}).json()
    finally:
        model.close()
    expected = [
        ("cat", 0.64, (54, 396, 393, 196)),
        ("cat", 0.61, (602, 157, 394, 447)),
        ("cat", 0.56, (260, 394, 180, 209)),
        ("dog", 0.50, (389, 197, 278, 409)),
    ]
    found = answer["results"]["detections"][:4]
    for item, (label, score, (x, y, w, h)) in zip(found, expected, strict=True):
        assert item["label"] == label
        assert item["score"] == pytest.approx(score, abs=0.05)
        assert item["box"] == pytest.approx([x, y, x + w, y + h], abs=30)


def test_predict_saves_an_annotated_clip(
    vigil: VigilRunner, shared_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "people.mp4"
    result = vigil(
        "predict",
        shared_data / DETECTOR,
        shared_data / CLIP,
        "--task",
        "detect",
        "--save",
        out,
        "--max-frames",
        "5",
        "--json",
    )
    assert result.status == 0, result.stderr
    assert [json.loads(line)["frame"] for line in result.stdout.splitlines()] == [0, 1, 2, 3, 4]
    assert frame_count(out) == 5


@pytest.fixture
def serve_process(
    shared_data: Path, imagenet_spec: Path, tmp_path: Path
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """``vigil serve-model`` as its own process, stopped with SIGTERM after the test."""
    pytest.importorskip("fastapi", reason="the inference service needs the 'serve' extra")
    port = free_port()
    log = (tmp_path / "serve.log").open("wb")
    command = [
        sys.executable,
        "-m",
        "vigil.cli.main",
        "serve-model",
        str(shared_data / CLASSIFIER),
        "--spec",
        str(imagenet_spec),
        "--port",
        str(port),
    ]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield process, f"http://{LOOPBACK}:{port}"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_serve_model_answers_and_stops_cleanly(
    serve_process: tuple[subprocess.Popen[bytes], str],
    shared_data: Path,
    burger_direct: dict[str, Any],
    tmp_path: Path,
) -> None:
    process, url = serve_process
    assert wait_until(lambda: _healthy(url) or process.poll() is not None, 60), "did not start"
    answer = httpx.post(
        f"{url}/predict",
        content=(shared_data / BURGER).read_bytes(),
        headers={"content-type": "image/jpeg"},
        timeout=10,
    ).json()
    assert answer["results"] == burger_direct
    assert answer["model"] == {
        "name": "tfls_mobilenet_v2_1.0_224_quant.tflite",
        "version": None,
        "task": "classify",
    }
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=15) == 0
    output = (tmp_path / "serve.log").read_text()
    assert f"on {url}" in output and "Traceback" not in output
