"""Evaluation metrics, curves and thresholds on hand-made scores, checked value for value."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as sk

from tests.train.conftest import PhotoFolder
from vigil.train.evaluate import (
    area_under,
    average_precision,
    evaluate_scores,
    operating_point,
    operating_points,
    precision_recall_curve,
    rates_at,
    roc_curve,
    threshold_for,
)
from vigil.train.report import DataSummary, QuantizationCheck, ReportContent, write_report

CLASSES = ("empty", "animal")


def two_class_scores(positive_scores: list[float]) -> np.ndarray:
    """Scores of (empty, animal) rows from the animal score of each image."""
    animal = np.array(positive_scores)
    return np.column_stack([1 - animal, animal])


def test_binary_metrics_by_hand() -> None:
    # animal scores: empty, empty, animal, animal
    found = evaluate_scores([0, 0, 1, 1], two_class_scores([0.1, 0.4, 0.35, 0.8]), CLASSES)

    assert found.accuracy == 0.75
    assert found.confusion.tolist() == [[2, 0], [1, 1]]
    empty, animal = found.per_class
    assert (empty.precision, empty.recall, empty.support) == (pytest.approx(2 / 3), 1.0, 2)
    assert empty.f1 == pytest.approx(0.8)
    assert (animal.precision, animal.recall, animal.f1) == (1.0, 0.5, pytest.approx(2 / 3))
    assert found.balanced_accuracy == 0.75
    assert found.macro_f1 == pytest.approx((0.8 + 2 / 3) / 2)
    assert found.positive_label == "animal"
    assert found.roc_auc == pytest.approx(0.75)
    assert found.pr_auc == pytest.approx(5 / 6)
    assert [(m.key, m.true_label, m.predicted) for m in found.mistakes] == [
        ("2", "animal", "empty")
    ]
    assert found.mistakes[0].score == pytest.approx(0.65)


def test_a_threshold_decides_two_classes() -> None:
    found = evaluate_scores(
        [0, 0, 1, 1], two_class_scores([0.1, 0.4, 0.35, 0.8]), CLASSES, threshold=0.3
    )

    assert found.predicted.tolist() == [0, 1, 1, 1]
    assert found.confusion.tolist() == [[1, 1], [0, 2]]
    assert found.per_class[1].recall == 1.0
    assert found.roc_auc == pytest.approx(0.75)  # curves do not depend on the threshold


def test_the_positive_class_can_be_the_first() -> None:
    found = evaluate_scores(
        [0, 0, 1, 1], two_class_scores([0.1, 0.4, 0.35, 0.8]), CLASSES, positive=0
    )

    assert found.positive_label == "empty"
    assert found.roc[0].label == "empty"
    assert found.roc_auc == pytest.approx(0.75)


def test_roc_and_pr_curve_points() -> None:
    positive = np.array([False, False, True, True])
    scores = np.array([0.1, 0.4, 0.35, 0.8])

    fpr, tpr, thresholds = roc_curve(positive, scores)
    recall, precision, pr_thresholds = precision_recall_curve(positive, scores)

    assert fpr.tolist() == [0.0, 0.0, 0.5, 0.5, 1.0]
    assert tpr.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]
    assert thresholds.tolist() == [np.inf, 0.8, 0.4, 0.35, 0.1]
    assert recall.tolist() == [0.0, 0.5, 0.5, 1.0, 1.0]
    assert precision.tolist() == pytest.approx([1.0, 1.0, 0.5, 2 / 3, 0.5])
    assert pr_thresholds.tolist() == [np.inf, 0.8, 0.4, 0.35, 0.1]
    assert area_under(fpr, tpr) == pytest.approx(0.75)
    assert average_precision(recall, precision) == pytest.approx(5 / 6)


def test_tied_scores_make_one_point() -> None:
    fpr, tpr, thresholds = roc_curve(np.array([True, False, True]), np.array([0.5, 0.5, 0.9]))

    assert thresholds.tolist() == [np.inf, 0.9, 0.5]
    assert fpr.tolist() == [0.0, 0.0, 1.0]
    assert tpr.tolist() == [0.0, 0.5, 1.0]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_binary_metrics_agree_with_scikit_learn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, 200)
    animal = np.clip(truth * 0.3 + rng.random(200) * 0.7, 0, 1).round(2)  # ties on purpose

    found = evaluate_scores(truth, two_class_scores(list(animal)), CLASSES)

    predicted = (animal > 0.5).astype(int)  # argmax; 0.5 exactly goes to the first class
    assert found.predicted.tolist() == predicted.tolist()
    assert found.roc_auc == pytest.approx(sk.roc_auc_score(truth, animal))
    assert found.pr_auc == pytest.approx(sk.average_precision_score(truth, animal))
    assert found.balanced_accuracy == pytest.approx(sk.balanced_accuracy_score(truth, predicted))
    assert found.confusion.tolist() == sk.confusion_matrix(truth, predicted).tolist()
    precision, recall, f1, support = sk.precision_recall_fscore_support(truth, predicted)
    assert [m.precision for m in found.per_class] == pytest.approx(precision)
    assert [m.recall for m in found.per_class] == pytest.approx(recall)
    assert [m.f1 for m in found.per_class] == pytest.approx(f1)
    assert [m.support for m in found.per_class] == support.tolist()


def test_more_classes_one_against_the_rest() -> None:
    rng = np.random.default_rng(7)
    truth = np.repeat([0, 1, 2], 30)
    logits = rng.normal(size=(90, 3)) + np.eye(3)[truth] * 1.5
    scores = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)

    found = evaluate_scores(truth, scores, ("cat", "dog", "fox"))

    assert [c.label for c in found.roc] == ["cat", "dog", "fox"]
    assert found.positive is None and found.operating_points == ()
    assert found.roc_auc == pytest.approx(sk.roc_auc_score(truth, scores, multi_class="ovr"))
    one_hot = np.eye(3)[truth]
    assert found.pr_auc == pytest.approx(sk.average_precision_score(one_hot, scores))
    assert found.accuracy == pytest.approx(sk.accuracy_score(truth, scores.argmax(axis=1)))
    assert found.macro_f1 == pytest.approx(
        sk.f1_score(truth, scores.argmax(axis=1), average="macro")
    )


def test_a_class_without_images_has_no_curve_and_no_macro_area() -> None:
    scores = np.array([[0.7, 0.2, 0.1], [0.2, 0.7, 0.1], [0.6, 0.3, 0.1]])

    found = evaluate_scores([0, 1, 0], scores, ("cat", "dog", "fox"))

    assert [c.label for c in found.roc] == ["cat", "dog"]
    assert found.roc_auc is None
    assert found.per_class[2].support == 0
    assert found.balanced_accuracy == 1.0  # the mean over classes that have images


# Thresholds: positives score 0.9, 0.8, 0.7, 0.6; negatives 0.65, 0.3
POSITIVE = np.array([True, True, True, True, False, False])
SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.65, 0.3])


@pytest.mark.parametrize(
    ("target", "goal", "expected"),
    [
        ("recall", 1.0, (0.6 + 0.3) / 2),  # keeps 0.6, halfway to the next lower score
        ("recall", 0.75, (0.7 + 0.65) / 2),
        ("recall", 0.74, (0.7 + 0.65) / 2),  # 3 of 4 needed either way
        ("recall", 0.5, (0.8 + 0.7) / 2),
        ("recall", 0.1, (0.9 + 0.8) / 2),
        ("precision", 1.0, (0.7 + 0.65) / 2),  # the lowest threshold with no false positive
        ("precision", 0.8, (0.6 + 0.3) / 2),  # 4 of 5 at 0.6
        ("precision", 0.75, (0.6 + 0.3) / 2),
    ],
)
def test_threshold_for_a_target(target: str, goal: float, expected: float) -> None:
    threshold = threshold_for(target, goal, POSITIVE, SCORES)  # type: ignore[arg-type]

    assert threshold == pytest.approx(expected)
    rates = rates_at(POSITIVE, SCORES, threshold)
    reached = rates.recall if target == "recall" else rates.precision
    assert reached is not None and reached >= goal


@pytest.mark.parametrize(
    ("positive", "scores"),
    [
        (np.array([True, True, False]), np.array([0.1, 0.2, 0.9])),  # positives below negatives
        (np.array([False, False]), np.array([0.1, 0.2])),  # no positives at all
    ],
)
def test_an_unreachable_precision_has_no_threshold(
    positive: np.ndarray, scores: np.ndarray
) -> None:
    assert threshold_for("precision", 0.9, positive, scores) is None


def test_rates_at_a_threshold() -> None:
    rates = rates_at(POSITIVE, SCORES, 0.675)

    assert (rates.precision, rates.recall, rates.specificity) == (1.0, 0.75, 1.0)
    nothing = rates_at(POSITIVE, SCORES, 0.95)
    assert (nothing.precision, nothing.recall, nothing.specificity) == (None, 0.0, 1.0)


def test_a_threshold_is_chosen_on_validation_and_measured_on_test() -> None:
    validation = (POSITIVE, SCORES)
    test = (np.array([True, True, False, False]), np.array([0.95, 0.5, 0.7, 0.1]))

    point = operating_point("recall", 0.99, validation, test)

    assert point.threshold == pytest.approx(0.45)
    assert point.validation is not None and point.validation.recall == 1.0
    assert point.test is not None
    assert (point.test.precision, point.test.recall, point.test.specificity) == (
        pytest.approx(2 / 3),
        1.0,
        0.5,
    )


def test_the_standard_targets_and_the_asked_one_in_order() -> None:
    points = operating_points((POSITIVE, SCORES), (POSITIVE, SCORES), ("recall", 0.8))

    assert [(p.target, p.goal) for p in points] == [
        ("recall", 0.8),
        ("recall", 0.9),
        ("recall", 0.95),
        ("recall", 0.99),
        ("precision", 0.9),
        ("precision", 0.95),
        ("precision", 0.99),
    ]


@pytest.mark.parametrize(
    ("truth", "scores", "classes", "message"),
    [
        ([0, 1], np.ones((3, 2)) / 2, ("a", "b"), "shape"),
        ([0, 2], np.ones((2, 2)) / 2, ("a", "b"), "0..1"),
        ([0, 0], np.ones((2, 1)), ("a",), "two classes"),
    ],
)
def test_arrays_that_do_not_fit(
    truth: list[int], scores: np.ndarray, classes: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        evaluate_scores(truth, scores, classes)


def test_the_dictionary_form_and_the_text_lines() -> None:
    found = evaluate_scores(
        [0, 0, 1, 1],
        two_class_scores([0.1, 0.4, 0.35, 0.8]),
        CLASSES,
        keys=["a.jpg", "b.jpg", "c.jpg", "d.jpg"],
    )

    data = found.to_dict()
    assert data["accuracy"] == 0.75 and data["roc_auc"] == 0.75 and data["pr_auc"] == 0.8333
    assert data["per_class"]["animal"] == {
        "precision": 1.0,
        "recall": 0.5,
        "f1": 0.6667,
        "support": 2,
    }
    assert data["mistakes"] == [
        {"image": "c.jpg", "true": "animal", "predicted": "empty", "score": 0.65}
    ]
    lines = found.lines()
    assert lines[0].startswith("accuracy 0.750 on 4 images, balanced accuracy 0.750")
    assert lines[-2:] == ["  empty        2       0", "  animal       1       1"]


# The report


def test_the_report_is_one_self_contained_file_with_charts_and_numbers(
    tmp_path: Path, photo_folder: PhotoFolder
) -> None:
    folder = photo_folder({"red": 2, "blue": 2})
    keys = ["blue/blue_000.jpg", "blue/blue_001.jpg", "red/red_000.jpg", "red/red_001.jpg"]
    scores = np.array([[0.9, 0.1], [0.3, 0.7], [0.2, 0.8], [0.6, 0.4]])
    evaluation = evaluate_scores(
        [0, 0, 1, 1],
        scores,
        ("blue", "red"),
        keys=keys,
        operating_points=operating_points(
            (np.array([False, True, True]), np.array([0.2, 0.9, 0.6])),
            (np.array([False, False, True, True]), scores[:, 1]),
            ("recall", 0.99),
        ),
    )
    content = ReportContent(
        title="colours:3",
        evaluation=evaluation,
        facts=[("Command", "vigil train classify --data <photos> --name colours")],
        image_files={key: folder / key for key in keys},
        data=DataSummary(
            "photos/",
            ("blue", "red"),
            {"train": {"blue": 8, "red": 9}, "validation": {"blue": 2, "red": 2}},
            skipped=(("red/broken.jpg", "not an image or cannot be decoded"),),
        ),
        history=[
            {"epoch": 1, "train_loss": 0.9, "val_accuracy": 0.5},
            {"epoch": 2, "train_loss": 0.4, "val_accuracy": 0.75},
        ],
        int8=QuantizationCheck(0.9, 0.89, 4.0, 2.0, 40, 32, 0.01),
    )

    path = write_report(content, tmp_path / "out" / "report.html")

    html = path.read_text()
    assert (
        html.startswith("<!doctype html>") and "<title>Classifier report: colours:3</title>" in html
    )
    assert not re.search(r"(src|href)=\"(https?:)?//", html) and "<script" not in html
    assert html.count('src="data:image/png;base64,') == 5  # confusion, ROC, PR, scores, history
    assert html.count('src="data:image/jpeg;base64,') == 2  # the two misclassified photos
    for shown in ("50.0%", "<td>0.500</td>", "recall &ge; 0.99", "<td>0.4000</td>", "red_001.jpg"):
        assert shown in html, shown
    assert "&lt;photos&gt;" in html  # text from outside is escaped
    assert "red/broken.jpg" in html and "Training history" in html
    assert "The float model is the one registered (int8 lost 0.010 accuracy, 0.01 allowed)." in html
    assert "<tr><th>fp32</th><td>0.900</td><td>4.00</td></tr>" in html


def test_a_report_without_history_int8_or_mistakes(tmp_path: Path) -> None:
    evaluation = evaluate_scores([0, 1], np.array([[0.8, 0.2], [0.1, 0.9]]), CLASSES)

    html = write_report(ReportContent("ok", evaluation), tmp_path / "r.html").read_text()

    assert "None: every test image was classified right." in html
    assert "Training history" not in html and "int8 quantisation" not in html
    assert "No validation images to choose thresholds on." in html


@pytest.mark.parametrize(
    ("fp32", "int8", "kept", "verdict"),
    [
        ((0.9, 4.0), (0.895, 2.0), True, "kept int8"),
        ((0.9, 4.0), (0.88, 2.0), False, "kept fp32: int8 lost 0.020 accuracy, 0.01 allowed"),
        ((0.9, 4.0), (0.9, 5.0), False, "kept fp32: int8 was not faster"),
    ],
)
def test_int8_is_kept_when_it_loses_little_and_is_faster(
    fp32: tuple[float, float], int8: tuple[float, float], kept: bool, verdict: str
) -> None:
    check = QuantizationCheck(fp32[0], int8[0], fp32[1], int8[1], 50, 32, 0.01)

    assert (check.kept, check.verdict) == (kept, verdict)
    assert check.to_dict()["kept"] is kept
