"""The whole ``vigil train posture`` run: label, split, fit, compare, export, register."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from vigil.errors import ConfigError
from vigil.rules.learned import (
    FEATURES_VERSION,
    POSTURE_TAG,
)
from vigil.rules.posture import PostureRulesConfig
from vigil.train.posture.config import UNKNOWN, Algorithm, PostureTrainingConfig
from vigil.train.posture.labels import Labeller
from vigil.train.posture.model import Evaluation, class_order, evaluate, export_onnx, fit_classifier
from vigil.train.posture.records import Records, RecordsFile
from vigil.train.posture.split import PostureExamples, Split, label_records, split_in_time_blocks


@dataclass(frozen=True, slots=True)
class Disagreement:
    """A test record where the learned classifier and the rules say different things."""

    where: str
    timestamp: float | None
    image: str | None
    truth: str
    rules: str
    learned: str
    angles: dict[str, float | None]


@dataclass(frozen=True)
class PostureTrainingResult:
    """What ``vigil train posture`` did.

    Attributes:
        name: The registered model name.
        version: Its new version number.
        algorithm: The kind of classifier fitted.
        classes: The classes it predicts, in output order.
        files: The records files read.
        records: Records read in all.
        used: Labelled records with a body frame.
        left_out: Why the other records were left out.
        train: Training records.
        test: Test records.
        dropped: Training records dropped for being next to a test record.
        blocks: Time blocks the records span.
        learned: The learned classifier on the test records.
        rules: The angle rules on the same test records.
        disagreements: The test records where the two differ.
        labels_source: Where the labels came from.
        config: The split and model settings.
    """

    name: str
    version: int
    algorithm: Algorithm
    classes: list[str]
    files: list[RecordsFile]
    records: int
    used: int
    left_out: dict[str, int]
    train: int
    test: int
    dropped: int
    blocks: int
    learned: Evaluation
    rules: Evaluation
    disagreements: list[Disagreement]
    labels_source: dict[str, Any]
    config: PostureTrainingConfig

    @property
    def ref(self) -> str:
        """``name:version``."""
        return f"{self.name}:{self.version}"


def train_posture(
    records: Records,
    labeller: Labeller,
    name: str,
    *,
    config: PostureTrainingConfig | None = None,
    rules: PostureRulesConfig | None = None,
    stage: str | None = None,
) -> PostureTrainingResult:
    """Train, evaluate next to the rules, export and register a posture classifier.

    Args:
        records: The keypoint records (:func:`read_records`).
        labeller: Gives records their classes (:func:`read_csv_labels`, :func:`parse_ranges`).
        name: The registered model's name.
        config: Split and model settings.
        rules: The angle rules to compare with; their joint confidence threshold is also the
            classifier's.
        stage: Point this stage alias (e.g. ``production``) at the new version.

    Raises:
        ConfigError: no record is labelled, only one class is, or no test set can be held out.
        ModelError: the name cannot name a model.
        DependencyError: scikit-learn, skl2onnx or onnx is missing.
    """
    from vigil.models.registry import check_alias, check_name

    check_name(name)
    if stage is not None:
        check_alias(stage)
    settings = config or PostureTrainingConfig()
    thresholds = rules or PostureRulesConfig()
    examples = label_records(records.records, labeller, thresholds)
    _check_examples(examples, records)
    split = split_in_time_blocks(examples.records, examples.labels, settings)
    fitted = _fit(examples, split, settings)
    predicted = [
        fitted.classes[int(i)] for i in fitted.model.predict(examples.features[split.test])
    ]
    truth = [examples.labels[i] for i in split.test]
    learned = evaluate(truth, predicted)
    compared = evaluate(truth, [examples.rules[i] for i in split.test])
    metrics = learned.as_dict() | {
        "rules": compared.as_dict(),
        "train_records": len(split.train),
        "test_records": len(split.test),
    }
    lineage = _lineage(records, labeller, settings)
    version = _register(fitted, name, thresholds, metrics=metrics, lineage=lineage, stage=stage)
    return PostureTrainingResult(
        name=name,
        version=version,
        algorithm=settings.algorithm,
        classes=fitted.classes,
        files=records.files,
        records=len(records.records),
        used=len(examples.records),
        left_out=dict(examples.left_out),
        train=len(split.train),
        test=len(split.test),
        dropped=split.dropped,
        blocks=split.blocks,
        learned=learned,
        rules=compared,
        disagreements=_disagreements(examples, split.test, predicted),
        labels_source=labeller.lineage(),
        config=settings,
    )


@dataclass(frozen=True, slots=True)
class _Fitted:
    model: Any
    classes: list[str]
    algorithm: Algorithm


def _fit(examples: PostureExamples, split: Split, config: PostureTrainingConfig) -> _Fitted:
    """Fit the classifier on the training records; its classes are theirs, in class order."""
    classes = [c for c in class_order(examples.labels[i] for i in split.train) if c != UNKNOWN]
    if len(classes) < 2:
        raise ConfigError(
            f"the training records hold only one class ({', '.join(classes)}): a classifier "
            "needs records of at least two"
        )
    targets = np.array([classes.index(examples.labels[i]) for i in split.train])
    model = fit_classifier(examples.features[split.train], targets, config.algorithm, config.seed)
    return _Fitted(model, classes, config.algorithm)


def _register(
    fitted: _Fitted,
    name: str,
    rules: PostureRulesConfig,
    *,
    metrics: dict[str, Any],
    lineage: dict[str, Any],
    stage: str | None,
) -> int:
    """Export to ONNX and register (and point ``stage`` at it); return the new version."""
    import vigil.models

    with tempfile.TemporaryDirectory(prefix="vigil-posture-") as folder:
        onnx_path = export_onnx(
            fitted.model,
            fitted.classes,
            rules.min_keypoint_confidence,
            Path(folder) / "posture.onnx",
        )
        version = vigil.models.register(
            onnx_path,
            name,
            task="classify",
            labels=fitted.classes,
            tags={POSTURE_TAG: FEATURES_VERSION, "algorithm": fitted.algorithm},
            description="Posture classifier over body-normalised keypoints (vigil train posture)",
            metrics=metrics,
            lineage=lineage,
        )
    if stage is not None:
        vigil.models.promote(version.ref, stage)
    return version.version


def _check_examples(examples: PostureExamples, records: Records) -> None:
    if examples.records:
        return
    reasons = ", ".join(f"{n} {why}" for why, n in examples.left_out.most_common())
    raise ConfigError(
        f"no labelled record to learn from: of {len(records.records)} records, {reasons}; check "
        "that the labels name these records (image paths, frames or times)"
    )


def _disagreements(
    examples: PostureExamples, test: np.ndarray, predicted: Sequence[str]
) -> list[Disagreement]:
    found = []
    for index, learned in zip(test, predicted, strict=True):
        rules = examples.rules[index]
        if rules != learned:
            record = examples.records[index]
            found.append(
                Disagreement(
                    where=record.where,
                    timestamp=record.timestamp,
                    image=record.image,
                    truth=examples.labels[index],
                    rules=rules,
                    learned=learned,
                    angles=examples.readings[index].angles.as_dict(),
                )
            )
    return found


def _lineage(records: Records, labeller: Labeller, config: PostureTrainingConfig) -> dict[str, Any]:
    return {
        "command": "vigil train posture",
        "records": [
            {"path": str(f.path.resolve()), "sha256": f.sha256, "lines": f.lines}
            for f in records.files
        ],
        "labels": labeller.lineage(),
        "features": FEATURES_VERSION,
        "split": config.model_dump(exclude={"algorithm"}),
        "algorithm": config.algorithm,
        "trained": datetime.now(UTC).isoformat(timespec="seconds"),
    }
