"""The learned posture classifier: body-normalised features, fitting, ONNX export, registration."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import onnx
import pytest

import vigil.models
from tests.factories import pose_from_points, side_view
from tests.onnx_models import constant_output_model
from tests.train.test_posture_learned_records import (
    BERLIN,
    SEGMENT_LABELS,
    range_lines,
    synthetic_records,
)
from vigil.errors import ConfigError, ModelError
from vigil.results import MEDIAPIPE_33, Poses
from vigil.rules.learned import (
    FEATURE_NAMES,
    LearnedPostureClassifier,
    open_posture_classifier,
    posture_features,
)
from vigil.rules.posture import PostureRulesConfig, read_posture
from vigil.train.posture import (
    PostureExamples,
    PostureTrainingConfig,
    evaluate,
    export_onnx,
    fit_classifier,
    label_records,
    parse_ranges,
    read_records,
    train_posture,
)

RULES = PostureRulesConfig()
WIDTH = 1280.0


def features_of(poses: Poses) -> np.ndarray | None:
    return posture_features(poses, read_posture(poses, RULES), 0, RULES.min_keypoint_confidence)


def feature(values: np.ndarray, name: str) -> float:
    return float(values[FEATURE_NAMES.index(name)])


# ---------------------------------------------------------------------------------------------
# Features

SKELETONS = [
    pytest.param({"torso": -10, "neck": 15, "thigh": 5, "knee": 90}, id="upright"),
    pytest.param({"torso": 35, "neck": 30, "thigh": 8, "knee": 95}, id="hunched"),
    pytest.param({"torso": 0, "neck": 12, "thigh": 88, "knee": 178}, id="standing"),
    pytest.param({"torso": -30, "neck": 0, "thigh": 35, "knee": 105}, id="reclined-tucked"),
]
TRANSFORMS = {
    "mirrored": lambda x, y: (WIDTH - x, y),
    "half size": lambda x, y: (x * 0.5, y * 0.5),
    "twice the size, shifted": lambda x, y: (x * 2 + 300, y * 2 - 120),
    "shifted": lambda x, y: (x - 250, y + 90),
    "mirrored, scaled, shifted": lambda x, y: (WIDTH - 0.7 * x + 40, 0.7 * y + 33),
}


@pytest.mark.parametrize("angles", SKELETONS)
@pytest.mark.parametrize("transform", list(TRANSFORMS))
@pytest.mark.parametrize(("facing", "side"), [(1, "left"), (-1, "right")])
def test_features_do_not_change_with_mirroring_scaling_or_shifting(
    angles: dict[str, float], transform: str, facing: int, side: str
) -> None:
    points = side_view(**angles, facing=facing, side=side)
    moved = {name: TRANSFORMS[transform](x, y) for name, (x, y) in points.items()}
    original, changed = features_of(pose_from_points(points)), features_of(pose_from_points(moved))
    assert original is not None and changed is not None
    np.testing.assert_allclose(changed, original, atol=1e-4)
    assert feature(original, "torso_angle") == pytest.approx(angles["torso"] / 90, abs=1e-3)


@pytest.mark.parametrize("angles", SKELETONS)
def test_features_are_the_same_for_either_body_side_and_facing(angles: dict[str, float]) -> None:
    views = [
        features_of(pose_from_points(side_view(**angles, facing=f, side=s)))
        for f, s in [(1, "left"), (1, "right"), (-1, "left"), (-1, "right")]
    ]
    for view in views[1:]:
        np.testing.assert_allclose(view, views[0], atol=1e-4)  # type: ignore[arg-type]


def test_features_are_in_torso_lengths_from_the_hip_facing_right() -> None:
    values = features_of(pose_from_points(side_view(torso=0, facing=-1, hip=(700, 500))))
    assert values is not None and values.shape == (len(FEATURE_NAMES),)
    assert (feature(values, "hip_x"), feature(values, "hip_y")) == pytest.approx((0, 0), abs=1e-6)
    assert feature(values, "shoulder_y") == pytest.approx(-1.0, abs=1e-5)  # one torso up
    assert feature(values, "nose_x") > 0  # in front, although the person faces image-left


def test_mediapipe_layout_gives_the_same_features() -> None:
    points = side_view(torso=20, neck=25, thigh=10, knee=100)
    coco, mediapipe = pose_from_points(points), pose_from_points(points, MEDIAPIPE_33)
    np.testing.assert_allclose(features_of(mediapipe), features_of(coco))  # type: ignore[arg-type]


def test_hidden_joints_are_masked() -> None:
    points = side_view(torso=5, neck=10, thigh=10, knee=95)
    hidden = pose_from_points(points, confidence={"left_ankle": 0.2, "left_ear": 0.1})
    values = features_of(hidden)
    assert values is not None
    for name in ("ankle_x", "ankle_y", "ankle_visible", "ear_visible", "knee_measured"):
        assert feature(values, name) == 0.0, name
    assert feature(values, "knee_visible") == 1.0
    assert feature(values, "torso_measured") == 1.0


def test_no_features_without_a_hip_or_a_shoulder() -> None:
    points = side_view()
    no_hips = pose_from_points({k: v for k, v in points.items() if "hip" not in k})
    no_shoulders = pose_from_points({k: v for k, v in points.items() if "shoulder" not in k})
    assert features_of(no_hips) is None
    assert features_of(no_shoulders) is None


# ---------------------------------------------------------------------------------------------
# Fit, export, evaluate


@pytest.fixture(scope="module")
def examples(tmp_path_factory: pytest.TempPathFactory) -> PostureExamples:
    path = tmp_path_factory.mktemp("records") / "day.jsonl"
    spans = synthetic_records(path, SEGMENT_LABELS, seconds=6)
    ranges = parse_ranges(range_lines(spans, BERLIN), zone=BERLIN)
    return label_records(read_records([path]).records, ranges, RULES)


@pytest.mark.parametrize("algorithm", ["logistic", "boosting"])
def test_the_onnx_export_gives_the_classes_sklearn_gives(
    examples: PostureExamples, algorithm: str, tmp_path: Path
) -> None:
    classes = sorted(set(examples.labels))
    targets = np.array([classes.index(label) for label in examples.labels])
    fitted = fit_classifier(examples.features[::2], targets[::2], algorithm)  # type: ignore[arg-type]
    path = export_onnx(fitted, classes, 0.5, tmp_path / "posture.onnx")
    loaded = open_posture_classifier(str(path))
    assert loaded.labels == classes
    held_out = examples.features[1::2]
    expected = fitted.predict(held_out)
    assert list(loaded.predict(held_out)) == list(expected)
    np.testing.assert_allclose(
        loaded.probabilities(held_out), fitted.predict_proba(held_out), atol=1e-4
    )
    assert (expected == targets[1::2]).mean() > 0.95
    properties = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert properties["vigil.kind"] == "posture-classifier"
    assert properties["vigil.posture.features"] == "posture-keypoints-1"


def test_the_classifier_reads_state_and_hunching(examples: PostureExamples, tmp_path: Path) -> None:
    classes = sorted(set(examples.labels))
    targets = np.array([classes.index(label) for label in examples.labels])
    path = export_onnx(
        fit_classifier(examples.features, targets, "logistic"), classes, 0.5, tmp_path / "p.onnx"
    )
    classifier = open_posture_classifier(str(path))
    cases = [
        (side_view(torso=-12, neck=14, thigh=6, knee=92, facing=-1), ("sitting", False)),
        (side_view(torso=38, neck=30, thigh=10, knee=95, side="right"), ("sitting", True)),
        (side_view(torso=2, neck=10, thigh=85, knee=175), ("standing", False)),
        (side_view(torso=30, neck=30, thigh=82, knee=170, facing=-1), ("standing", True)),
    ]
    for points, expected in cases:
        poses = pose_from_points(points)
        assert classifier.classify(poses, 0, read_posture(poses, RULES)) == expected
    no_hips = pose_from_points({k: v for k, v in cases[0][0].items() if "hip" not in k})
    assert classifier.classify(no_hips, 0, read_posture(no_hips, RULES)) == ("unknown", False)


@pytest.mark.parametrize(
    ("truth", "predicted", "accuracy", "recall", "columns"),
    [
        (["sitting"] * 4, ["sitting"] * 4, 1.0, {"sitting": 1.0}, ["sitting"]),
        (
            ["sitting", "sitting", "standing", "sitting_hunched"],
            ["sitting", "unknown", "standing", "sitting"],
            0.5,
            {"sitting": 0.5, "sitting_hunched": 0.0, "standing": 1.0},
            ["sitting", "sitting_hunched", "standing", "unknown"],
        ),
    ],
)
def test_evaluation(
    truth: list[str],
    predicted: list[str],
    accuracy: float,
    recall: dict[str, float],
    columns: list[str],
) -> None:
    result = evaluate(truth, predicted)
    assert result.accuracy == accuracy
    assert result.recall == recall
    assert result.columns == columns
    assert result.count == len(truth)
    if len(columns) == 4:
        assert result.confusion == [[1, 0, 0, 1], [1, 0, 0, 0], [0, 0, 1, 0]]


# ---------------------------------------------------------------------------------------------
# Training end to end and the registry


def test_training_registers_a_posture_classifier_with_its_lineage(tmp_path: Path) -> None:
    path = tmp_path / "day.jsonl"
    spans = synthetic_records(path, SEGMENT_LABELS, seconds=6)
    ranges = parse_ranges(range_lines(spans, BERLIN), zone=BERLIN)
    result = train_posture(
        read_records([path]),
        ranges,
        "desk-posture",
        config=PostureTrainingConfig(block_seconds=6),
        stage="production",
    )
    assert result.ref == "desk-posture:1"
    assert result.classes == ["sitting", "sitting_hunched", "standing", "standing_hunched"]
    assert result.used == result.records == 288
    assert result.train + result.test + result.dropped == 288
    assert result.learned.accuracy > 0.95
    assert result.rules.accuracy > 0.95  # the skeletons were drawn inside the rules' ranges
    assert set(result.learned.recall) == set(result.classes)
    version = vigil.models.get("desk-posture@production")
    assert version.version == 1 and version.spec.task == "classify"
    assert version.spec.labels == result.classes
    assert version.tags == {"posture": "posture-keypoints-1", "algorithm": "logistic"}
    sha = hashlib.sha256(path.read_bytes()).hexdigest()
    assert version.lineage["records"] == [
        {"path": str(path.resolve()), "sha256": sha, "lines": 288}
    ]
    assert version.lineage["labels"]["kind"] == "ranges"
    assert version.lineage["labels"]["ranges"][0] == range_lines(spans, BERLIN)[0]
    assert version.metrics["accuracy"] == round(result.learned.accuracy, 4)
    assert version.metrics["rules"]["accuracy"] == round(result.rules.accuracy, 4)
    assert version.metrics["confusion"]["rows"] == result.classes
    classifier = open_posture_classifier("desk-posture@production")
    poses = pose_from_points(side_view(torso=36, neck=28, thigh=7, knee=95))
    assert classifier.classify(poses, 0, read_posture(poses, RULES)) == ("sitting", True)


def test_one_class_is_not_enough(tmp_path: Path) -> None:
    path = tmp_path / "day.jsonl"
    spans = synthetic_records(path, ["upright"] * 8, seconds=6)
    ranges = parse_ranges(range_lines(spans, BERLIN), zone=BERLIN)
    config = PostureTrainingConfig(block_seconds=6)
    with pytest.raises(ConfigError, match=r"only one class \(sitting\)"):
        train_posture(read_records([path]), ranges, "one", config=config)


def test_no_labelled_record(tmp_path: Path) -> None:
    path = tmp_path / "day.jsonl"
    synthetic_records(path, ["upright", "hunched"], nobody_every=10)
    ranges = parse_ranges(["03:00-04:00 hunched"], zone=BERLIN)
    with pytest.raises(ConfigError, match="no labelled record to learn from: of 40 records, 36 no"):
        train_posture(read_records([path]), ranges, "none")


# ---------------------------------------------------------------------------------------------
# References that are not posture classifiers


def image_classifier(tmp_path: Path) -> Path:
    return constant_output_model(
        tmp_path / "image-classifier.onnx", (1, 8, 8, 3), {"scores": np.ones((1, 4), np.float32)}
    )


def test_a_registered_image_classifier_is_refused(tmp_path: Path) -> None:
    vigil.models.register(image_classifier(tmp_path), "cats", task="classify")
    with pytest.raises(ConfigError, match=r"cats is not a posture classifier .* posture metadata"):
        open_posture_classifier("cats")


def test_a_registered_pose_model_is_refused(tmp_path: Path) -> None:
    vigil.models.register(image_classifier(tmp_path), "poser", task="pose")
    with pytest.raises(ConfigError, match="poser:1 is a pose model, not a posture classifier"):
        open_posture_classifier("poser:1")


def test_other_files_and_unknown_references_are_refused(tmp_path: Path) -> None:
    tflite = tmp_path / "model.tflite"
    tflite.write_bytes(b"TFL3")
    with pytest.raises(ConfigError, match="a posture classifier is an ONNX file"):
        open_posture_classifier(str(tflite))
    with pytest.raises(ModelError, match="no model named 'nothing'"):
        open_posture_classifier("nothing@production")


def test_a_classifier_of_another_feature_layout_is_refused(
    examples: PostureExamples, tmp_path: Path
) -> None:
    classes = sorted(set(examples.labels))
    targets = np.array([classes.index(label) for label in examples.labels])
    path = export_onnx(
        fit_classifier(examples.features, targets, "logistic"), classes, 0.5, tmp_path / "p.onnx"
    )
    model = onnx.load(str(path))
    onnx.helper.set_model_props(
        model,
        {p.key: p.value for p in model.metadata_props} | {"vigil.posture.features": "old-0"},
    )
    onnx.save(model, str(path))
    with pytest.raises(ConfigError, match=r"trained on features 'old-0'.* train it again"):
        open_posture_classifier(str(path))


def test_labels_that_are_not_posture_classes_are_refused(tmp_path: Path) -> None:
    from vigil.runtimes.onnx import OnnxModel

    model = OnnxModel(image_classifier(tmp_path), providers=["cpu"])
    with pytest.raises(ConfigError, match=r"classes \['cat', 'dog'\] are not among sitting"):
        LearnedPostureClassifier(model, ["cat", "dog"], 0.5, "pets")
