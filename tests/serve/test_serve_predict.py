"""POST /predict over real HTTP: every body form gives what ``model.predict`` gives directly."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the inference service needs the 'serve' extra")

from tests.serve.support import encode, running, scene
from vigil.models.spec import TASKS, Task
from vigil.serve import ModelInfo, create_app
from vigil.sources import read_image
from vigil.tasks.fake import FakeModel

FORMS = ["raw", "octet-stream", "multipart", "json", "data-url"]


def request_for(form: str, data: bytes, media: str) -> dict[str, Any]:
    """The httpx keyword arguments that send ``data`` in one of the body forms."""
    text = base64.b64encode(data).decode()
    return {
        "raw": {"content": data, "headers": {"content-type": media}},
        "octet-stream": {"content": data, "headers": {"content-type": "application/octet-stream"}},
        "multipart": {"files": {"image": ("photo", data, media)}},
        "json": {"json": {"image": text}},
        "data-url": {"json": {"image": f"data:{media};base64,{text}"}},
    }[form]


def direct(task: Task, path: Path) -> dict[str, Any]:
    """What the Python API gives for the image file at ``path``."""
    return FakeModel(task).predict(read_image(path)).to_dict()


@pytest.mark.parametrize("task", TASKS)
def test_every_form_gives_the_direct_result(task: Task, tmp_path: Path) -> None:
    path = tmp_path / "scene.png"
    path.write_bytes(encode(scene(), ".png"))
    expected = direct(task, path)
    info = ModelInfo(name="fake", version=3, sha256="ab" * 32)
    with running(create_app(FakeModel(task), info=info)) as service:
        for form in FORMS:
            response = service.client.post(
                "/predict", **request_for(form, path.read_bytes(), "image/png")
            )
            assert response.status_code == 200, (form, response.text)
            body = response.json()
            assert body["results"] == expected, form
            assert body["model"] == {"name": "fake", "version": 3, "task": task}
            timing = body["timing_ms"]
            assert set(timing) == {"read", "decode", "inference", "total"}
            assert 0 <= timing["inference"] <= timing["total"]


@pytest.mark.parametrize("extension", [".jpg", ".png", ".webp", ".bmp", ".gif"])
def test_every_format_decodes_like_the_sources(
    extension: str, tmp_path: Path, classifier_service: Any
) -> None:
    path = tmp_path / f"scene{extension}"
    path.write_bytes(encode(scene(), extension))
    expected = direct("classify", path)
    response = classifier_service.client.post(
        "/predict", content=path.read_bytes(), headers={"content-type": "application/octet-stream"}
    )
    assert response.status_code == 200, response.text
    assert response.json()["results"] == expected


def test_the_image_reaches_the_model_upright_and_in_rgb(classifier_service: Any) -> None:
    """A channel swap or a flip on the way would change the fake's scores."""
    image = scene()
    swapped = image[:, :, ::-1].copy()
    answers = [
        classifier_service.client.post(
            "/predict", content=encode(picture, ".png"), headers={"content-type": "image/png"}
        ).json()["results"]
        for picture in (image, swapped)
    ]
    assert answers[0] == FakeModel("classify").predict(image).to_dict()
    assert answers[0] != answers[1]


def test_boxes_are_in_the_sent_image_pixels() -> None:
    image = np.zeros((300, 500, 3), np.uint8)
    with running(create_app(FakeModel("detect"))) as service:
        response = service.client.post(
            "/predict", content=encode(image), headers={"content-type": "image/jpeg"}
        )
    person = response.json()["results"]["detections"][0]
    assert person["label"] == "person"
    assert person["box"] == [50.0, 45.0, 225.0, 285.0]
