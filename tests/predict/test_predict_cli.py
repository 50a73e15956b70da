"""``vigil predict`` in this process: tables, JSON lines, annotated output, one-line errors."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from tests.cli import VigilRunner
from tests.predict.support import LABELS, frame_count, photos, tiny_classifier, video
from tests.services import free_port
from vigil.sources import read_image
from vigil.tasks import load_model


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return tiny_classifier(tmp_path / "models")


def test_a_table_per_image(vigil: VigilRunner, model: Path, tmp_path: Path) -> None:
    paths = photos(tmp_path / "photos")
    result = vigil("predict", model, tmp_path / "photos")
    assert result.status == 0, result.stderr
    lines = result.stdout.splitlines()
    headings = [line for line in lines if not line.startswith("  ")]
    assert headings == [f"{path}  [classify]" for path in paths]
    first = lines[1 : 1 + len(LABELS)]
    assert [row.split() for row in first] == [
        ["dog", "0.7000", "class", "1"],
        ["fox", "0.1500", "class", "2"],
        ["cat", "0.1000", "class", "0"],
        ["owl", "0.0500", "class", "3"],
    ]
    assert result.stderr.splitlines()[-1].startswith("3 images in ")


def test_json_lines_are_the_python_api_results(
    vigil: VigilRunner, model: Path, tmp_path: Path
) -> None:
    paths = photos(tmp_path / "photos")
    result = vigil("predict", model, tmp_path / "photos", "--json")
    assert result.status == 0, result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    direct = load_model(model)
    try:
        expected = [direct.predict(read_image(path)).to_dict() for path in paths]
    finally:
        direct.close()
    assert [o["image"] for o in objects] == [str(p) for p in paths]
    assert [o["task"] for o in objects] == ["classify"] * 3
    assert [o["results"] for o in objects] == expected
    assert expected[0]["classes"][0] == {"label": "dog", "class_id": 1, "score": 0.7}


@pytest.mark.parametrize(
    ("options", "labels"),
    [
        (["--top-k", "2"], ["dog", "fox"]),
        (["--threshold", "0.12"], ["dog", "fox"]),
        (["--threshold", "0.5"], ["dog"]),
        (["--threshold", "0.9"], []),
        (["--task", "classify", "--top-k", "1"], ["dog"]),
    ],
)
def test_threshold_and_top_k(
    options: list[str], labels: list[str], vigil: VigilRunner, model: Path, tmp_path: Path
) -> None:
    [photo] = photos(tmp_path / "photos", count=1)
    result = vigil("predict", model, photo, "--json", *options)
    assert result.status == 0, result.stderr
    classes = json.loads(result.stdout)["results"]["classes"]
    assert [c["label"] for c in classes] == labels


def test_nothing_above_the_threshold_says_so(
    vigil: VigilRunner, model: Path, tmp_path: Path
) -> None:
    [photo] = photos(tmp_path / "photos", count=1)
    result = vigil("predict", model, photo, "--threshold", "0.99")
    assert result.stdout.splitlines()[1] == "  (nothing above the threshold)"


def test_a_spec_file_replaces_the_sidecar(vigil: VigilRunner, model: Path, tmp_path: Path) -> None:
    [photo] = photos(tmp_path / "photos", count=1)
    spec = tmp_path / "spec.yaml"
    spec.write_text(
        yaml.safe_dump({"task": "classify", "labels": ["a", "b", "c", "d"], "top_k": 2})
    )
    result = vigil("predict", model, photo, "--json", "--spec", spec)
    assert result.status == 0, result.stderr
    assert [c["label"] for c in json.loads(result.stdout)["results"]["classes"]] == ["b", "c"]


def test_a_registered_model_by_name_and_stage(
    vigil: VigilRunner, model: Path, tmp_path: Path
) -> None:
    from vigil.models import api

    api.register(model, "tiny", task="classify", labels=list(LABELS))
    api.promote("tiny:1", "production")
    [photo] = photos(tmp_path / "photos", count=1)
    for ref in ("tiny", "tiny:1", "tiny@production"):
        result = vigil("predict", ref, photo, "--json", "--top-k", "1")
        assert result.status == 0, result.stderr
        assert json.loads(result.stdout)["results"]["classes"][0]["label"] == "dog"


def test_save_annotates_every_photo_into_a_folder(
    vigil: VigilRunner, model: Path, tmp_path: Path
) -> None:
    paths = photos(tmp_path / "photos")
    out = tmp_path / "annotated"
    result = vigil("predict", model, tmp_path / "photos", "--save", out)
    assert result.status == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in paths]
    for path in paths:
        original, annotated = read_image(path), read_image(out / path.name)
        assert annotated.shape == original.shape
        assert np.abs(annotated.astype(int) - original.astype(int)).mean() > 2  # a panel drawn
    assert f"annotated images: {out}" in result.stderr


def test_a_video_gives_frames_and_an_annotated_video(
    vigil: VigilRunner, model: Path, tmp_path: Path
) -> None:
    clip = video(tmp_path / "clip.avi", frames=6)
    out = tmp_path / "annotated.mp4"
    result = vigil("predict", model, clip, "--json", "--save", out, "--max-frames", "4")
    assert result.status == 0, result.stderr
    objects = [json.loads(line) for line in result.stdout.splitlines()]
    assert [o["frame"] for o in objects] == [0, 1, 2, 3]
    assert all("image" not in o for o in objects)
    assert frame_count(out) == 4
    capture = cv2.VideoCapture(str(out))
    assert (capture.get(cv2.CAP_PROP_FRAME_WIDTH), capture.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (
        96,
        64,
    )
    capture.release()


def test_a_video_table_names_frames(vigil: VigilRunner, model: Path, tmp_path: Path) -> None:
    clip = video(tmp_path / "clip.avi", frames=3)
    result = vigil("predict", model, clip)
    assert result.status == 0, result.stderr
    headings = [line for line in result.stdout.splitlines() if not line.startswith("  ")]
    assert headings == ["frame 0  [classify]", "frame 1  [classify]", "frame 2  [classify]"]
    assert result.stderr.splitlines()[-1].startswith("3 frames in ")


def test_an_unreadable_photo_in_a_folder_is_skipped(
    vigil: VigilRunner, model: Path, tmp_path: Path
) -> None:
    photos(tmp_path / "photos", count=2)
    (tmp_path / "photos" / "broken.jpg").write_bytes(b"not a jpeg")
    result = vigil("predict", model, tmp_path / "photos", "--json")
    assert result.status == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2
    assert "1 unreadable skipped" in result.stderr


@pytest.fixture
def places(model: Path, tmp_path: Path) -> dict[str, Path]:
    """Files the mistakes below name: a photo, a clip, a model without a sidecar, bad specs."""
    [photo] = photos(tmp_path / "photos", count=1)
    detect_spec = tmp_path / "detect.yaml"
    detect_spec.write_text("task: detect\n")
    typo_spec = tmp_path / "typo.yaml"
    typo_spec.write_text("task: classify\ntop_kk: 3\n")
    return {
        "tmp": tmp_path,
        "photo": photo,
        "model": model,
        "bare": tiny_classifier(tmp_path / "bare", sidecar=False),
        "clip": video(tmp_path / "clip.avi", frames=2),
        "detect_spec": detect_spec,
        "typo_spec": typo_spec,
    }


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["{tmp}/missing.onnx", "{photo}"], 1, "model not found: {tmp}/missing.onnx"),
        (["nobody:3", "{photo}"], 1, "nobody"),
        (["{model}", "{tmp}/nowhere.jpg"], 1, "no such file or folder: {tmp}/nowhere.jpg"),
        (["{model}", "{photo}", "--task", "detect"], 1, "fit no detect decoder"),
        (["{bare}", "{photo}"], 1, "pass --task"),
        (["{model}", "{photo}", "--spec", "{tmp}/nospec.yaml"], 2, "config file not found"),
        (
            ["{model}", "{photo}", "--spec", "{detect_spec}", "--task", "classify"],
            2,
            "is a detect model",
        ),
        (["{model}", "{photo}", "--spec", "{typo_spec}"], 2, "line 2: unknown field 'top_kk'"),
        (["{model}", "{photo}", "--threshold", "1.5"], 2, "--threshold"),
        (["{model}", "{photo}", "--task", "segment"], 2, "--task"),
        (["{model}", "{clip}", "--save", "{tmp}/out.txt"], 2, "end the name in .mp4"),
        (["{model}", "{photo}", "--save", "{photo}"], 2, "saved into a folder"),
        (["{model}"], 2, "Missing argument 'SOURCE'"),
    ],
)
def test_mistakes_end_in_one_line(
    args: list[str], status: int, message: str, vigil: VigilRunner, places: dict[str, Path]
) -> None:
    result = vigil("predict", *(arg.format(**places) for arg in args))
    assert result.status == status, result.stderr
    assert message.format(**places) in result.single_error()
    assert result.stdout == ""


def test_serve_model_reports_a_missing_model_before_listening(
    vigil: VigilRunner, tmp_path: Path
) -> None:
    result = vigil("serve-model", tmp_path / "missing.onnx", "--port", free_port())
    assert result.status == 1
    assert "model not found" in result.single_error()


def test_serve_model_reports_a_taken_port(vigil: VigilRunner, model: Path) -> None:
    pytest.importorskip("fastapi", reason="the inference service needs the 'serve' extra")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = vigil("serve-model", model, "--port", port)
    assert result.status == 2
    assert f"cannot listen on 127.0.0.1:{port}" in result.single_error()


def test_serve_model_names_the_extra_it_needs(
    vigil: VigilRunner, model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        "vigil.cli.predict.SERVE_PACKAGES", (("vigil_no_such_module", "no-such-package"),)
    )
    result = vigil("serve-model", model)
    assert result.status == 1
    assert result.single_error() == (
        "vigil serve-model needs the 'no-such-package' package: pip install 'vigil[serve]'"
    )


@pytest.mark.parametrize(
    ("option", "value"), [("--max-body-mb", "0"), ("--max-pixels", "0"), ("--port", "70000")]
)
def test_serve_model_refuses_bad_limits(
    option: str, value: str, vigil: VigilRunner, model: Path
) -> None:
    result = vigil("serve-model", model, option, value)
    assert result.status == 2
    assert option in result.single_error()
