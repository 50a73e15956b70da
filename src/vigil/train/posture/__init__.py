"""Training the learned posture classifier (``vigil train posture``).

::

    records (vigil run posture --jsonl) ─┐
    labels (CSV, or time ranges) ────────┴─▶ features ─▶ split in time blocks ─▶ fit
        ─▶ evaluate next to the angle rules on the same test records ─▶ ONNX ─▶ registry ─▶ report

**Records** are the JSON lines ``vigil run posture --jsonl`` writes: one object per frame with
``frame``, ``image`` (photos), ``timestamp`` and ``time``, and the main person's ``keypoints``
(``name``, ``x``, ``y``, ``confidence``). Records without a person, without a label or without a
visible shoulder and hip are left out and counted.

**Labels** name what a person does; each maps to the app's outputs (see :data:`LABEL_ALIASES`):
``sitting``/``upright``/``reclined`` = sitting, not hunched; ``hunched``/``sitting_hunched`` =
sitting, hunched; ``standing``; ``standing_hunched``. A label map (YAML ``name: class``, ``null``
to leave a label out) adds names of one's own. Labels come from a CSV (:func:`read_csv_labels`)
or from time ranges (:func:`parse_ranges`).

**Split**: records are cut into blocks of ``block_seconds`` of record time; whole blocks go to
training or test (stratified by each block's main label, seeded), and training records within
``gap_seconds`` of a test record are dropped, so no test frame has a training neighbour.

The parts: :mod:`~vigil.train.posture.records` (reading records), :mod:`~vigil.train.posture.labels`
(label names, CSV labels, time ranges), :mod:`~vigil.train.posture.split` (examples and the
time-block split), :mod:`~vigil.train.posture.model` (fit, evaluate, export),
:mod:`~vigil.train.posture.run` (the whole run) and :mod:`~vigil.train.posture.report`.
"""

from vigil.train.posture.config import LABEL_ALIASES, PostureTrainingConfig
from vigil.train.posture.labels import (
    CsvLabels,
    Labeller,
    LabelNames,
    RangeLabels,
    TimeRange,
    parse_ranges,
    read_csv_labels,
    read_label_map,
    read_ranges,
)
from vigil.train.posture.model import Evaluation, evaluate, export_onnx, fit_classifier
from vigil.train.posture.records import KeypointRecord, Records, RecordsFile, read_records
from vigil.train.posture.report import render_report_html, report_lines, write_report
from vigil.train.posture.run import Disagreement, PostureTrainingResult, train_posture
from vigil.train.posture.split import (
    PostureExamples,
    Split,
    label_records,
    reading_class,
    split_in_time_blocks,
)

__all__ = [
    "LABEL_ALIASES",
    "CsvLabels",
    "Disagreement",
    "Evaluation",
    "KeypointRecord",
    "LabelNames",
    "Labeller",
    "PostureExamples",
    "PostureTrainingConfig",
    "PostureTrainingResult",
    "RangeLabels",
    "Records",
    "RecordsFile",
    "Split",
    "TimeRange",
    "evaluate",
    "export_onnx",
    "fit_classifier",
    "label_records",
    "parse_ranges",
    "read_csv_labels",
    "read_label_map",
    "read_ranges",
    "read_records",
    "reading_class",
    "render_report_html",
    "report_lines",
    "split_in_time_blocks",
    "train_posture",
    "write_report",
]
