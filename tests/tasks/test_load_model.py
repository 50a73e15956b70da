"""load_model: the runtime from the file, the spec from file + sidecar + caller, clear errors."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from tests.onnx_models import constant_output_model
from tests.tasks.tiny_models import classifier_model, with_metadata
from vigil.errors import ConfigError, ModelError
from vigil.models import ModelSpec, Preprocess
from vigil.results import Classifications
from vigil.runtimes.onnx import OnnxModel
from vigil.tasks import ClassifyModel, load_model

IMAGE = np.full((48, 64, 3), 90, np.uint8)


def classes(model: object) -> list[tuple[str, float]]:
    assert isinstance(model, ClassifyModel)
    found = model.predict(IMAGE)
    assert isinstance(found, Classifications)
    return [
        (str(label), round(float(s), 4))
        for label, s in zip(found.labels, found.scores, strict=True)
    ]


def test_a_bare_vector_output_needs_a_task(tmp_path: Path) -> None:
    path = classifier_model(tmp_path / "m.onnx", [0.2, 0.8])
    with pytest.raises(ModelError, match=r"cannot tell what .*m\.onnx does .*pass --task"):
        load_model(path)


def test_the_sidecar_spec_is_read_and_explicit_fields_win(tmp_path: Path) -> None:
    path = classifier_model(tmp_path / "m.onnx", [0.1, 0.6, 0.3])
    Path(f"{path}.vigil.yaml").write_text(
        "task: classify\nlabels: [cat, dog, fox]\ntop_k: 1\n", encoding="utf-8"
    )
    assert classes(load_model(path)) == [("dog", 0.6)]
    explicit = ModelSpec(task="classify", top_k=2)  # labels still come from the sidecar
    assert classes(load_model(path, explicit)) == [("dog", 0.6), ("fox", 0.3)]


def test_nested_preprocess_fields_merge_one_by_one(tmp_path: Path) -> None:
    path = with_metadata(
        classifier_model(tmp_path / "u.onnx", [0.1, 0.9]),
        {"author": "Ultralytics", "task": "classify", "names": "{0: 'cat', 1: 'dog'}"},
    )
    assert load_model(path).spec.preprocess.resize == "crop"  # from the file's metadata
    spec = ModelSpec(task="classify", preprocess=Preprocess(resize="stretch"))
    preprocess = load_model(path, spec).spec.preprocess
    assert preprocess.resize == "stretch"  # given explicitly
    assert (preprocess.mean, preprocess.std) == ((0.0,) * 3, (255.0,) * 3)  # still the file's


@pytest.mark.parametrize(
    ("sidecar", "message"),
    [
        ("task: classify\ntop_k: 0\n", r"m\.onnx\.vigil\.yaml line 2: 'top_k': Input should be"),
        ("task: classify\ntop_kk: 3\n", "unknown field 'top_kk'"),
        ("- task\n", "a model spec must be a mapping"),
        ("task: [classify\n", r"line \d+: not valid YAML"),
    ],
)
def test_bad_sidecars_are_config_errors(tmp_path: Path, sidecar: str, message: str) -> None:
    path = classifier_model(tmp_path / "m.onnx", [0.1, 0.9])
    Path(f"{path}.vigil.yaml").write_text(sidecar, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_model(path)


@pytest.mark.parametrize(
    ("scores", "softmax", "labels", "offset", "expected"),
    [
        ([2.0, 1.0, 0.0], "auto", ["a", "b", "c"], 0, [("a", 0.6652), ("b", 0.2447), ("c", 0.09)]),
        ([0.7, 0.2, 0.1], "auto", ["a", "b", "c"], 0, [("a", 0.7), ("b", 0.2), ("c", 0.1)]),
        ([2.0, 1.0, 0.0], "no", ["a", "b", "c"], 0, [("a", 2.0), ("b", 1.0), ("c", 0.0)]),
        ([0.7, 0.2, 0.1], "yes", ["a", "b", "c"], 0, [("a", 0.4640), ("b", 0.2814), ("c", 0.2546)]),
        ([0.7, 0.1, 0.2], "auto", ["x", "y"], 1, [("y", 0.2), ("x", 0.1)]),  # 0 is background
        ([0.7, 0.1, 0.2], "auto", None, 0, [("0", 0.7), ("2", 0.2), ("1", 0.1)]),
    ],
)
def test_classifier_scores(
    tmp_path: Path,
    *,
    scores: list[float],
    softmax: str,
    labels: list[str] | None,
    offset: int,
    expected: list[tuple[str, float]],
) -> None:
    spec = ModelSpec(
        task="classify",
        labels=labels,
        label_offset=offset,
        softmax=softmax,  # type: ignore[arg-type]
    )
    assert classes(load_model(classifier_model(tmp_path / "c.onnx", scores), spec)) == expected


def test_labels_that_do_not_match_the_outputs_are_an_error(tmp_path: Path) -> None:
    path = classifier_model(tmp_path / "m.onnx", [0.1, 0.6, 0.3])
    with pytest.raises(
        ModelError, match=r"outputs 3 scores but its spec has 2 labels.*label_offset"
    ):
        load_model(path, ModelSpec(task="classify", labels=["cat", "dog"]))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("missing.onnx", None, "model file not found"),
        ("garbage.onnx", b"not a model", "cannot load ONNX model"),
        ("garbage.tflite", b"not a model", "cannot load TFLite model"),
        ("model.pt", b"weights", "expected a .onnx or .tflite file"),
    ],
)
def test_files_that_are_not_models(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelError, match=message):
        load_model(path, ModelSpec(task="classify"))


@pytest.mark.parametrize(
    ("spec", "outputs", "message"),
    [
        (ModelSpec(task="detect", decoder="ssd"), 2, r"ssd decoder does not fit .*\(1, 2\)"),
        (ModelSpec(task="detect"), 2, r"outputs \(1, 2\) of .* fit no detect decoder"),
        (ModelSpec(task="pose"), 2, "fit no pose decoder"),
        (ModelSpec(task="pose", decoder="rtmpose"), 2, "rtmpose decoder does not fit"),
        (
            ModelSpec(task="pose", decoder="movenet", keypoint_schema="mediapipe-33"),
            51,
            "gives COCO-17 keypoints, but the spec of .* says mediapipe-33",
        ),
    ],
)
def test_specs_that_do_not_fit_the_outputs(
    tmp_path: Path, spec: ModelSpec, outputs: int, message: str
) -> None:
    path = classifier_model(tmp_path / "m.onnx", [0.5] * outputs)
    with pytest.raises(ModelError, match=message):
        load_model(path, spec)


def test_outputs_a_decoder_cannot_read_at_run_time(tmp_path: Path) -> None:
    path = constant_output_model(
        tmp_path / "m.onnx", (1, 3, 32, 32), {"out": np.zeros((1, 4, 10), np.float32)}
    )
    model = load_model(path, ModelSpec(task="pose", decoder="yolo-pose"))
    with pytest.raises(ModelError, match=r"yolo-pose decoder cannot read the outputs \(1, 4, 10\)"):
        model.predict(IMAGE)


def test_an_input_that_is_not_an_image_batch(tmp_path: Path) -> None:
    path = classifier_model(tmp_path / "m.onnx", [0.5, 0.5], input_shape=(1, 3, 32))
    with pytest.raises(ModelError, match=r"input of shape \(1, 3, 32\); expected a batch"):
        load_model(path, ModelSpec(task="classify"))


def test_images_must_be_rgb_uint8(tmp_path: Path) -> None:
    model = load_model(
        classifier_model(tmp_path / "m.onnx", [0.5, 0.5]), ModelSpec(task="classify")
    )
    with pytest.raises(ModelError, match="expected an RGB uint8 image"):
        model.predict(IMAGE.astype(np.float32))
    with pytest.raises(ModelError, match="expected an RGB uint8 image"):
        model.predict(IMAGE[..., 0])


def test_the_task_model_describes_its_file(tmp_path: Path) -> None:
    model = load_model(
        classifier_model(tmp_path / "m.onnx", [0.5, 0.5]), ModelSpec(task="classify")
    )
    assert isinstance(model, ClassifyModel)
    assert model.inputs[0].shape == (1, 3, 32, 32) and model.outputs[0].shape == (1, 2)
    assert model.thread_safe and model.class_count == 2
    assert repr(model).startswith("ClassifyModel(") and "scores" in repr(model)
    model.close()


def test_an_absent_execution_provider_falls_back_to_cpu(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = classifier_model(tmp_path / "m.onnx", [0.5, 0.5])
    with caplog.at_level(logging.INFO, logger="vigil.runtimes.onnx"):
        model = load_model(path, ModelSpec(task="classify"), providers=["tensorrt", "cuda"])
    assert isinstance(model, ClassifyModel) and isinstance(model.model, OnnxModel)
    assert model.model.provider == "CPUExecutionProvider"
    lines = [r.getMessage() for r in caplog.records if r.name == "vigil.runtimes.onnx"]
    assert lines == [
        "ONNX Runtime runs m.onnx on CPUExecutionProvider "
        "(TensorrtExecutionProvider, CUDAExecutionProvider not available)"
    ]
    assert len(classes(model)) == 2


def test_an_unknown_execution_provider_is_a_config_error(tmp_path: Path) -> None:
    path = classifier_model(tmp_path / "m.onnx", [0.5, 0.5])
    with pytest.raises(
        ConfigError, match=r"unknown ONNX Runtime provider 'cdua'.*did you mean 'cuda'"
    ):
        load_model(path, ModelSpec(task="classify"), providers=["cdua"])


def test_mediapipe_by_name(shared_data: Path) -> None:
    pytest.importorskip("mediapipe", reason="MediaPipe pose needs vigil[pose]")
    import cv2

    model = load_model("mediapipe")
    try:
        assert (model.spec.task, model.spec.decoder, model.spec.keypoint_schema) == (
            "pose",
            "mediapipe",
            "mediapipe-33",
        )
        photo = shared_data / "posture_side" / "spr_recline.jpg"
        image = cv2.cvtColor(cv2.imread(str(photo)), cv2.COLOR_BGR2RGB)
        people = model.predict(image).to_dict()["people"]
        assert len(people) == 1 and len(people[0]["keypoints"]) == 33
        with pytest.raises(ModelError, match="expected an RGB uint8 image"):
            model.predict(image[..., :2])
    finally:
        model.close()
