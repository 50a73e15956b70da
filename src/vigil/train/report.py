"""The training report: one self-contained HTML file about a trained (or evaluated) classifier.

The file needs nothing but itself (no scripts, no fonts or styles from elsewhere): charts are
PNG images drawn with matplotlib's object-oriented API and embedded as ``data:`` URLs, and the
misclassified photos are small embedded JPEGs. It holds the headline numbers, the per-class
table, the confusion matrix, ROC and precision-recall curves, the score distribution and the
threshold table (two classes), the training history when there is one, the int8 comparison, the
data summary and the misclassified images. Every string that comes from data (labels, paths,
commands) is HTML-escaped.

:func:`evaluation_lines` gives the same numbers as plain text for a terminal.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from importlib import resources
from pathlib import Path
from string import Template
from typing import TYPE_CHECKING, Any

import numpy as np

from vigil.data.config import SPLITS
from vigil.errors import DependencyError, SourceError, StorageError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from vigil.data.manifest import Manifest
    from vigil.train.evaluate import Curve, Evaluation, OperatingPoint, Rates

DPI = 110
THUMBNAIL_SIDE = 144
"""Longer side in pixels of the thumbnails of misclassified images."""
MAX_THUMBNAILS = 60
"""Misclassified images shown with a thumbnail; the rest are listed by name."""
CLASS_COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
"""Okabe-Ito colours, cycled over classes."""
TEXT_COLOUR = "#333333"
_TEMPLATE = "report.html"


@dataclass(frozen=True)
class DataSummary:
    """What the model was trained and tested on.

    Attributes:
        source: The folder, CSV, export or manifest given.
        classes: Class names.
        counts: Images per class in each split: ``counts["test"]["hardhat"]``.
        manifest: The manifest file kept with the run, if any.
        manifest_hash: Its hash.
        skipped: (image, why) of every image left out.
        warnings: What the data check and the split advise.
    """

    source: str
    classes: tuple[str, ...]
    counts: dict[str, dict[str, int]]
    manifest: str | None = None
    manifest_hash: str | None = None
    skipped: tuple[tuple[str, str], ...] = ()
    warnings: tuple[str, ...] = ()

    @classmethod
    def of_manifest(
        cls,
        manifest: Manifest,
        source: str,
        path: Path | None = None,
        skipped: Sequence[tuple[str, str]] = (),
        warnings: Sequence[str] = (),
    ) -> DataSummary:
        """Summarise a split manifest."""
        return cls(
            source=source,
            classes=manifest.classes,
            counts=manifest.counts(),
            manifest=str(path) if path is not None else None,
            manifest_hash=manifest.hash,
            skipped=tuple(skipped),
            warnings=tuple(warnings),
        )

    def to_dict(self) -> dict[str, Any]:
        """Return the summary as JSON-ready values."""
        return {
            "source": self.source,
            "classes": list(self.classes),
            "counts": self.counts,
            "manifest": self.manifest,
            "manifest_hash": self.manifest_hash,
            "skipped": [{"image": image, "reason": why} for image, why in self.skipped],
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class QuantizationCheck:
    """The int8 model against the float one on the same validation images.

    Attributes:
        fp32_accuracy: Accuracy of the float model.
        int8_accuracy: Accuracy of the int8 model.
        fp32_ms: Median milliseconds per image of the float model.
        int8_ms: The same of the int8 model (same images, same machine).
        images: Validation images the accuracies are measured on.
        timed_images: Images the speeds are measured on.
        max_loss: The int8 model must lose less accuracy than this to be kept.
    """

    fp32_accuracy: float
    int8_accuracy: float
    fp32_ms: float
    int8_ms: float
    images: int
    timed_images: int
    max_loss: float

    @property
    def kept(self) -> bool:
        """Whether the int8 model is the one to keep: it loses little and is faster."""
        return self.loss < self.max_loss and self.int8_ms < self.fp32_ms

    @property
    def verdict(self) -> str:
        """Which model is kept, and why."""
        if self.kept:
            return "kept int8"
        if self.loss >= self.max_loss:
            return f"kept fp32: int8 lost {self.loss:.3f} accuracy, {self.max_loss:g} allowed"
        return "kept fp32: int8 was not faster"

    @property
    def loss(self) -> float:
        """Accuracy lost by quantising (negative: int8 did better)."""
        return self.fp32_accuracy - self.int8_accuracy

    @property
    def speedup(self) -> float:
        """How many times faster the int8 model is."""
        return self.fp32_ms / self.int8_ms if self.int8_ms > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Return the comparison as JSON-ready values."""
        return {
            "fp32_accuracy": round(self.fp32_accuracy, 4),
            "int8_accuracy": round(self.int8_accuracy, 4),
            "fp32_ms": round(self.fp32_ms, 3),
            "int8_ms": round(self.int8_ms, 3),
            "images": self.images,
            "timed_images": self.timed_images,
            "max_loss": self.max_loss,
            "kept": self.kept,
        }

    def lines(self) -> list[str]:
        """Return the comparison for a terminal."""
        return [
            f"int8: accuracy {self.fp32_accuracy:.3f} -> {self.int8_accuracy:.3f} on "
            f"{self.images} validation images, {self.fp32_ms:.2f} -> {self.int8_ms:.2f} ms per "
            f"image ({self.speedup:.1f}x); {self.verdict}"
        ]


@dataclass(frozen=True)
class Decision:
    """The score threshold a two-class model decides by, and why.

    Attributes:
        positive: The class the threshold is on.
        threshold: Its score from which an image is that class.
        target: ``recall`` or ``precision``, the target it was chosen for on validation.
        goal: The value of the target.
        built_in: Whether the registered model decides by it itself (its top class), or the
            threshold must be applied to its score of ``positive``.
    """

    positive: str
    threshold: float
    target: str
    goal: float
    built_in: bool

    def to_dict(self) -> dict[str, Any]:
        """Return the decision as JSON-ready values."""
        return {
            "positive": self.positive,
            "threshold": round(self.threshold, 6),
            "target": self.target,
            "goal": self.goal,
            "built_in": self.built_in,
        }

    def sentence(self) -> str:
        """Say how the model decides, in one sentence."""
        how = (
            "the registered model's top class follows it (its scores are shifted so the "
            "threshold falls at 0.5)"
            if self.built_in
            else f"apply it to the model's score of '{self.positive}'"
        )
        return (
            f"'{self.positive}' when its score is at least {self.threshold:.4f}, chosen on the "
            f"validation images for {self.target} >= {self.goal:g}; {how}"
        )


@dataclass(frozen=True)
class ReportContent:
    """Everything a report shows.

    Attributes:
        title: The heading, e.g. ``hardhat:3``.
        evaluation: Results on the test images.
        facts: (label, value) pairs shown at the top: model, method, backbone, command, ...
        image_files: The file of each evaluated image key, for thumbnails.
        data: What the model was trained and tested on.
        history: Per-epoch training values (``epoch``, ``train_loss``, ``val_accuracy``, ...).
        int8: The int8 comparison, when one was made.
        decision: The threshold the model decides by, when one was chosen.
        notes: Other things a reader should know.
    """

    title: str
    evaluation: Evaluation
    facts: Sequence[tuple[str, str]] = ()
    image_files: Mapping[str, Path] = field(default_factory=dict)
    data: DataSummary | None = None
    history: Sequence[Mapping[str, float]] = ()
    int8: QuantizationCheck | None = None
    decision: Decision | None = None
    notes: Sequence[str] = ()


def write_report(content: ReportContent, path: Path) -> Path:
    """Render the report and write it to ``path`` (through a temporary file).

    Raises:
        DependencyError: matplotlib is not installed.
        StorageError: the file cannot be written.
    """
    from vigil.data.manifest import write_text_atomic

    html = render_report(content)
    try:
        write_text_atomic(path, html)
    except StorageError as exc:
        raise StorageError(f"{exc}; choose another --out") from None
    return path


def render_report(content: ReportContent) -> str:
    """Return the whole report as one HTML document.

    Raises:
        DependencyError: matplotlib is not installed.
    """
    _require_matplotlib()
    sections = [
        _summary_section(content),
        _classes_section(content.evaluation),
        _confusion_section(content.evaluation),
        _curves_section(content.evaluation),
        _threshold_section(content.evaluation, content.decision),
        _history_section(content.history),
        _int8_section(content.int8),
        _data_section(content.data),
        _mistakes_section(content.evaluation, content.image_files),
    ]
    template = Template(
        resources.files("vigil.train").joinpath("templates", _TEMPLATE).read_text("utf-8")
    )
    return template.substitute(
        title=escape(content.title), body="\n".join(s for s in sections if s)
    )


# Plain text


def evaluation_lines(evaluation: Evaluation) -> list[str]:
    """Return the headline numbers, the per-class table and the confusion matrix as text."""
    lines = [_headline(evaluation)]
    width = max(len("class"), *(len(label) for label in evaluation.classes))
    lines.append(f"  {'class':<{width}}  precision  recall     f1  images")
    for m in evaluation.per_class:
        lines.append(
            f"  {m.label:<{width}}  {m.precision:9.3f}  {m.recall:6.3f}  {m.f1:5.3f}  "
            f"{m.support:6d}"
        )
    lines.append("confusion matrix (rows: true class, columns: predicted class)")
    cell = max(6, *(len(label) for label in evaluation.classes))
    lines.append(f"  {'':<{width}}  " + "  ".join(f"{c:>{cell}}" for c in evaluation.classes))
    for label, row in zip(evaluation.classes, evaluation.confusion, strict=True):
        lines.append(f"  {label:<{width}}  " + "  ".join(f"{int(n):>{cell}}" for n in row))
    return lines


def _headline(evaluation: Evaluation) -> str:
    parts = [
        f"accuracy {evaluation.accuracy:.3f} on {evaluation.images} images",
        f"balanced accuracy {evaluation.balanced_accuracy:.3f}",
    ]
    if evaluation.roc_auc is not None:
        parts.append(f"ROC AUC {evaluation.roc_auc:.3f}")
    if evaluation.pr_auc is not None:
        parts.append(f"average precision {evaluation.pr_auc:.3f}")
    return ", ".join(parts)


def point_line(point: OperatingPoint, positive: str) -> str:
    """Return one operating point as a sentence for a terminal."""
    if point.threshold is None or point.test is None:
        return f"{point.target} >= {point.goal:g} for '{positive}': not reachable on validation"
    return (
        f"{point.target} >= {point.goal:g} for '{positive}': threshold {point.threshold:.4f} "
        f"(validation); on test: precision {_number(point.test.precision)}, recall "
        f"{_number(point.test.recall)}, other images discarded {_number(point.test.specificity)}"
    )


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


# Sections


def _summary_section(content: ReportContent) -> str:
    evaluation = content.evaluation
    cards = [
        _card("Accuracy", f"{evaluation.accuracy:.1%}", f"{evaluation.images} test images"),
        _card("Balanced accuracy", f"{evaluation.balanced_accuracy:.1%}", "mean recall"),
        _card("Macro F1", f"{evaluation.macro_f1:.3f}", "mean over classes"),
    ]
    if evaluation.roc_auc is not None:
        cards.append(_card("ROC AUC", f"{evaluation.roc_auc:.3f}", _auc_detail(evaluation)))
    if evaluation.pr_auc is not None:
        cards.append(_card("Average precision", f"{evaluation.pr_auc:.3f}", "PR curve area"))
    facts = "".join(
        f"<tr><th>{escape(label)}</th><td>{escape(value)}</td></tr>"
        for label, value in content.facts
    )
    notes = "".join(f"<li>{escape(note)}</li>" for note in content.notes)
    decision = (
        f'<p class="notice">Decision: {escape(content.decision.sentence())}.</p>'
        if content.decision is not None
        else ""
    )
    return (
        f'<section id="summary"><div class="cards">{"".join(cards)}</div>{decision}'
        f'<table class="facts">{facts}</table>'
        + (f'<ul class="notes">{notes}</ul>' if notes else "")
        + "</section>"
    )


def _auc_detail(evaluation: Evaluation) -> str:
    if evaluation.positive_label is not None:
        return f"'{evaluation.positive_label}' against the rest"
    return "macro average, one class against the rest"


def _card(label: str, value: str, detail: str) -> str:
    return (
        f'<div class="card"><div class="label">{escape(label)}</div>'
        f'<div class="value">{escape(value)}</div><div class="detail">{escape(detail)}</div></div>'
    )


def _classes_section(evaluation: Evaluation) -> str:
    rows = "".join(
        f"<tr><td>{escape(m.label)}</td><td>{m.precision:.3f}</td><td>{m.recall:.3f}</td>"
        f"<td>{m.f1:.3f}</td><td>{m.support}</td></tr>"
        for m in evaluation.per_class
    )
    return (
        '<section id="classes"><h2>Per class</h2><table class="numbers"><thead><tr>'
        "<th>Class</th><th>Precision</th><th>Recall</th><th>F1</th><th>Test images</th>"
        f"</tr></thead><tbody>{rows}</tbody></table></section>"
    )


def _confusion_section(evaluation: Evaluation) -> str:
    header = "".join(f"<th>{escape(c)}</th>" for c in evaluation.classes)
    rows = "".join(
        f"<tr><th>{escape(label)}</th>" + "".join(f"<td>{int(n)}</td>" for n in row) + "</tr>"
        for label, row in zip(evaluation.classes, evaluation.confusion, strict=True)
    )
    table = (
        '<table class="numbers confusion"><thead><tr><th>true \\ predicted</th>'
        f"{header}</tr></thead><tbody>{rows}</tbody></table>"
    )
    chart = _figure_html(
        confusion_figure(evaluation),
        "confusion-chart",
        "The confusion matrix as a grid coloured by the share of each true class.",
    )
    return f'<section id="confusion"><h2>Confusion matrix</h2>{table}{chart}</section>'


def _curves_section(evaluation: Evaluation) -> str:
    if not evaluation.roc:
        return (
            '<section id="curves"><h2>ROC and precision-recall curves</h2><p>No curves: the '
            "test images do not include every class.</p></section>"
        )
    roc = _figure_html(
        curve_figure(evaluation.roc, "false positive rate", "true positive rate (recall)", "AUC"),
        "roc",
        "ROC curves: true positive rate against false positive rate.",
    )
    pr = _figure_html(
        curve_figure(evaluation.pr, "recall", "precision", "AP"),
        "pr",
        "Precision-recall curves: precision against recall.",
    )
    return (
        '<section id="curves"><h2>ROC and precision-recall curves</h2>'
        f'<div class="pair">{roc}{pr}</div></section>'
    )


def _threshold_section(evaluation: Evaluation, decision: Decision | None) -> str:
    if evaluation.positive is None:
        return ""
    positive = evaluation.positive_label or ""
    histogram = _figure_html(
        score_figure(evaluation, decision.threshold if decision else None),
        "scores",
        f"Histograms of the score of '{positive}' for test images of each class.",
    )
    rows = "".join(_point_row(point) for point in evaluation.operating_points)
    table = (
        '<table class="numbers"><thead><tr><th>Target (validation)</th><th>Threshold</th>'
        "<th>Validation precision</th><th>Validation recall</th><th>Test precision</th>"
        "<th>Test recall</th><th>Test: others discarded</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>"
        if rows
        else "<p>No validation images to choose thresholds on.</p>"
    )
    return (
        f'<section id="thresholds"><h2>Choosing a threshold on the score of '
        f"'{escape(positive)}'</h2><p>Each threshold is chosen on the validation images to "
        "reach its target; the test columns show what it does on images it was not chosen "
        f"on.</p>{table}{histogram}</section>"
    )


def _point_row(point: OperatingPoint) -> str:
    target = f"{point.target} &ge; {point.goal:g}"
    if point.threshold is None:
        return f'<tr><td>{target}</td><td colspan="6">not reachable on validation</td></tr>'
    return (
        f"<tr><td>{target}</td><td>{point.threshold:.4f}</td>"
        f"{_rate_cells(point.validation, with_specificity=False)}"
        f"{_rate_cells(point.test, with_specificity=True)}</tr>"
    )


def _rate_cells(rates: Rates | None, *, with_specificity: bool) -> str:
    values = [] if rates is None else [rates.precision, rates.recall]
    if with_specificity and rates is not None:
        values.append(rates.specificity)
    return "".join(f"<td>{_number(v)}</td>" for v in values)


def _history_section(history: Sequence[Mapping[str, float]]) -> str:
    if not history:
        return ""
    figure = history_figure(history)
    if figure is None:
        return ""
    chart = _figure_html(figure, "history-chart", "Loss and accuracy per training epoch.")
    return f'<section id="history"><h2>Training history</h2>{chart}</section>'


def _int8_section(check: QuantizationCheck | None) -> str:
    if check is None:
        return ""
    verdict = (
        "The int8 model is the one registered."
        if check.kept
        else f"The float model is the one registered ({check.verdict.split(': ', 1)[1]})."
    )
    return (
        '<section id="int8"><h2>int8 quantisation</h2><table class="numbers"><thead><tr>'
        "<th></th><th>Validation accuracy</th><th>Median ms per image</th></tr></thead><tbody>"
        f"<tr><th>fp32</th><td>{check.fp32_accuracy:.3f}</td><td>{check.fp32_ms:.2f}</td></tr>"
        f"<tr><th>int8</th><td>{check.int8_accuracy:.3f}</td><td>{check.int8_ms:.2f}</td></tr>"
        f"</tbody></table><p>{check.images} validation images; speed on {check.timed_images} "
        f"of them, same machine ({check.speedup:.1f}x). {escape(verdict)}</p></section>"
    )


def _data_section(data: DataSummary | None) -> str:
    if data is None:
        return ""
    splits = [s for s in SPLITS if s in data.counts]
    header = "".join(f"<th>{s}</th>" for s in splits)
    rows = "".join(
        f"<tr><td>{escape(c)}</td>"
        + "".join(f"<td>{data.counts[s].get(c, 0)}</td>" for s in splits)
        + "</tr>"
        for c in data.classes
    )
    totals = "".join(f"<td>{sum(data.counts[s].values())}</td>" for s in splits)
    manifest = (
        f"<p>Manifest <code>{escape(data.manifest or '')}</code>, hash "
        f"<code>{escape(data.manifest_hash or '')}</code>.</p>"
        if data.manifest_hash
        else ""
    )
    return (
        f'<section id="data"><h2>Data</h2><p>From <code>{escape(data.source)}</code>.</p>'
        f'{manifest}<table class="numbers"><thead><tr><th>Class</th>{header}</tr></thead>'
        f"<tbody>{rows}<tr><th>all</th>{totals}</tr></tbody></table>"
        f"{_skipped_html(data)}{_warnings_html(data)}</section>"
    )


def _skipped_html(data: DataSummary) -> str:
    if not data.skipped:
        return "<p>No image was left out.</p>"
    items = "".join(
        f"<li><code>{escape(image)}</code>: {escape(why)}</li>" for image, why in data.skipped
    )
    return f"<h3>Left out ({len(data.skipped)})</h3><ul>{items}</ul>"


def _warnings_html(data: DataSummary) -> str:
    if not data.warnings:
        return ""
    items = "".join(f"<li>{escape(w)}</li>" for w in data.warnings)
    return f"<h3>Warnings</h3><ul>{items}</ul>"


def _mistakes_section(evaluation: Evaluation, files: Mapping[str, Path]) -> str:
    mistakes = evaluation.mistakes
    heading = f'<section id="mistakes"><h2>Misclassified test images ({len(mistakes)})</h2>'
    if not mistakes:
        return f"{heading}<p>None: every test image was classified right.</p></section>"
    tiles = []
    for index, mistake in enumerate(mistakes):
        picture = _thumbnail_html(files.get(mistake.key)) if index < MAX_THUMBNAILS else ""
        tiles.append(
            f'<figure class="mistake">{picture}<figcaption><code>{escape(mistake.key)}</code>'
            f"<br>true <strong>{escape(mistake.true_label)}</strong>, predicted "
            f"<strong>{escape(mistake.predicted)}</strong> ({mistake.score:.3f})"
            "</figcaption></figure>"
        )
    return f'{heading}<div class="mistakes">{"".join(tiles)}</div></section>'


def _thumbnail_html(path: Path | None) -> str:
    data = thumbnail_jpeg(path) if path is not None else None
    if data is None:
        return '<div class="missing">no preview</div>'
    encoded = base64.b64encode(data).decode("ascii")
    return f'<img src="data:image/jpeg;base64,{encoded}" alt="">'


def thumbnail_jpeg(path: Path, side: int = THUMBNAIL_SIDE) -> bytes | None:
    """Return a small JPEG of the image at ``path``; None when it cannot be read."""
    import cv2

    from vigil.data.imageinfo import read_image_quietly

    try:
        image = read_image_quietly(path)
    except SourceError:
        return None
    height, width = image.shape[:2]
    scale = min(1.0, side / max(height, width))
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", small[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, 80])
    return encoded.tobytes() if ok else None


# Charts


def _require_matplotlib() -> None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise DependencyError("matplotlib", "report", "the training report") from None


def _new_figure(width: float, height: float) -> tuple[Figure, Axes]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _style(axes: Axes) -> None:
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.tick_params(colors=TEXT_COLOUR, labelsize=9)
    axes.xaxis.label.set_color(TEXT_COLOUR)
    axes.yaxis.label.set_color(TEXT_COLOUR)


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()


def _figure_html(figure: Figure, key: str, alt: str) -> str:
    data = base64.b64encode(_png(figure)).decode("ascii")
    return (
        f'<figure class="chart" id="{key}"><img src="data:image/png;base64,{data}" '
        f'alt="{escape(alt)}"></figure>'
    )


def confusion_figure(evaluation: Evaluation) -> Figure:
    """Draw the confusion matrix, each row coloured by its share of the true class."""
    size = len(evaluation.classes)
    figure, axes = _new_figure(1.6 + 0.9 * size, 1.2 + 0.8 * size)
    counts = evaluation.confusion
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    axes.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for (row, column), count in np.ndenumerate(counts):
        colour = "white" if shares[row, column] > 0.6 else TEXT_COLOUR
        axes.text(column, row, str(count), ha="center", va="center", color=colour, fontsize=10)
    ticks = list(range(size))
    axes.set_xticks(ticks, list(evaluation.classes), rotation=30, ha="right")
    axes.set_yticks(ticks, list(evaluation.classes))
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    axes.tick_params(labelsize=9, colors=TEXT_COLOUR)
    return figure


def curve_figure(curves: Sequence[Curve], x_label: str, y_label: str, area: str) -> Figure:
    """Draw ROC or precision-recall curves, one line per class, their areas in the legend."""
    figure, axes = _new_figure(4.6, 3.8)
    for index, curve in enumerate(curves):
        axes.plot(
            curve.x,
            curve.y,
            drawstyle="steps-post" if area == "AP" else "default",
            color=CLASS_COLOURS[index % len(CLASS_COLOURS)],
            label=f"{curve.label} ({area} {curve.area:.3f})",
        )
    if area == "AUC":
        axes.plot([0, 1], [0, 1], color="#BBBBBB", linestyle="--", linewidth=1)
    axes.set_xlim(-0.01, 1.01)
    axes.set_ylim(-0.01, 1.01)
    axes.set_xlabel(x_label)
    axes.set_ylabel(y_label)
    axes.legend(fontsize=8, frameon=False, loc="lower right" if area == "AUC" else "lower left")
    _style(axes)
    return figure


def score_figure(evaluation: Evaluation, threshold: float | None) -> Figure:
    """Draw histograms of the positive class's score for the test images of each class."""
    assert evaluation.positive is not None
    figure, axes = _new_figure(9.0, 3.0)
    scores = evaluation.scores[:, evaluation.positive]
    bins = [float(b) for b in np.linspace(0, 1, 41)]
    for index, label in enumerate(evaluation.classes):
        axes.hist(
            scores[evaluation.y_true == index],
            bins=bins,
            alpha=0.6,
            color=CLASS_COLOURS[index % len(CLASS_COLOURS)],
            label=f"true {label}",
        )
    if threshold is not None:
        axes.axvline(threshold, color="#D55E00", linestyle="--", label="decision threshold")
    axes.set_xlabel(f"score of '{evaluation.positive_label}'")
    axes.set_ylabel("test images")
    axes.legend(fontsize=8, frameon=False)
    _style(axes)
    return figure


def history_figure(history: Sequence[Mapping[str, float]]) -> Figure | None:
    """Draw loss and accuracy per epoch; None when the history has neither.

    Every numeric value whose name holds ``loss`` goes on the left, ``acc`` on the right.
    """
    epochs = [float(row.get("epoch", index + 1)) for index, row in enumerate(history)]
    keys = sorted({k for row in history for k, v in row.items() if _is_number(v)} - {"epoch"})
    losses = [k for k in keys if "loss" in k]
    accuracies = [k for k in keys if "acc" in k]
    if not losses and not accuracies:
        return None
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(9.0, 3.2), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    for position, (names, label) in enumerate(((losses, "loss"), (accuracies, "accuracy"))):
        axes = figure.add_subplot(1, 2, position + 1)
        for index, name in enumerate(names):
            values = [float(row.get(name, np.nan)) for row in history]
            axes.plot(
                epochs,
                values,
                marker="o",
                markersize=3,
                label=name,
                color=CLASS_COLOURS[index % len(CLASS_COLOURS)],
            )
        axes.set_xlabel("epoch")
        axes.set_ylabel(label)
        if names:
            axes.legend(fontsize=8, frameon=False)
        _style(axes)
    return figure


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


__all__ = [
    "DataSummary",
    "Decision",
    "QuantizationCheck",
    "ReportContent",
    "confusion_figure",
    "curve_figure",
    "evaluation_lines",
    "history_figure",
    "point_line",
    "render_report",
    "score_figure",
    "thumbnail_jpeg",
    "write_report",
]
