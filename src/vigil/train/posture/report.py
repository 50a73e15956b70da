"""The training report: text lines and one self-contained HTML file."""

from __future__ import annotations

import json
from collections.abc import Mapping
from html import escape
from pathlib import Path

from vigil.train.posture.config import ALGORITHM_NAMES
from vigil.train.posture.model import Evaluation
from vigil.train.posture.records import local_zone_now
from vigil.train.posture.run import PostureTrainingResult


def report_lines(result: PostureTrainingResult) -> list[str]:
    """Return the comparison as lines of text, for the terminal."""
    left = ", ".join(f"{n} {why}" for why, n in sorted(result.left_out.items())) or "none"
    lines = [
        f"records: {result.records} in {len(result.files)} file(s); {result.used} labelled and "
        f"used (left out: {left})",
        f"split: {result.train} training, {result.test} test records in time blocks of "
        f"{result.config.block_seconds:g} s ({result.blocks} blocks, seed {result.config.seed}"
        f", {result.dropped} training records dropped next to test ones)",
        f"model: {ALGORITHM_NAMES[result.algorithm]}, classes {', '.join(result.classes)}",
        f"{'on the test records':24} {'learned':>8} {'rules':>8}",
        f"{'accuracy':24} {result.learned.accuracy:8.3f} {result.rules.accuracy:8.3f}",
    ]
    for label in result.learned.classes:
        learned, rules = result.learned.recall[label], result.rules.recall[label]
        lines.append(f"{'recall ' + label:24} {learned:8.3f} {rules:8.3f}")
    lines.append(f"they disagree on {len(result.disagreements)} of {result.test} test records")
    lines.append(
        f"registered {result.ref}: use it with 'rules: {{learned_classifier: {result.ref}}}' "
        "in the posture config"
    )
    return lines


def write_report(result: PostureTrainingResult, path: str | Path) -> Path:
    """Write the comparison as one self-contained HTML file.

    Raises:
        StorageError: the file cannot be written.
    """
    from vigil.errors import StorageError

    out = Path(path).expanduser()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_report_html(result), encoding="utf-8")
    except OSError as exc:
        raise StorageError(f"cannot write the report {out}: {exc.strerror}") from None
    return out


_MAX_DISAGREEMENTS_SHOWN = 200

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="Vigil">
<title>Posture classifier {title}</title>
<style>
  :root {{ --text: #222; --muted: #666; --line: #e2e2e2; --card: #fafafa; }}
  * {{ box-sizing: border-box; }}
  body {{ margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
         color: var(--text); background: #fff; line-height: 1.45; }}
  main {{ max-width: 1240px; margin: 0 auto; padding: 24px 20px 48px; }}
  h1 {{ font-size: 1.7rem; margin: 0 0 4px; }}
  h2 {{ font-size: 1.15rem; margin: 32px 0 8px; }}
  .meta {{ color: var(--muted); margin: 0; }}
  .cards {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr));
           gap: 12px; margin: 24px 0 8px; }}
  .card {{ background: var(--card); border: 1px solid var(--line); border-left: 6px solid #bbb;
          border-radius: 8px; padding: 12px 14px; }}
  .card.learned {{ border-left-color: #2e7d32; }}
  .card.rules {{ border-left-color: #ef6c00; }}
  .card .label {{ color: var(--muted); font-size: 0.85rem; text-transform: uppercase;
                 letter-spacing: 0.04em; }}
  .card .value {{ font-size: 1.55rem; font-weight: 650; margin: 2px 0; white-space: nowrap; }}
  .card .detail {{ color: var(--muted); font-size: 0.9rem; }}
  .pair {{ display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr));
          gap: 24px; }}
  table {{ border-collapse: collapse; width: 100%; font-size: 0.95rem; }}
  th, td {{ text-align: left; padding: 6px 10px; border-bottom: 1px solid var(--line);
           vertical-align: top; }}
  th {{ color: var(--muted); font-weight: 600; }}
  td.n {{ text-align: right; font-variant-numeric: tabular-nums; }}
  td.hit {{ background: #e8f5e9; font-weight: 600; }}
  td.miss {{ background: #fff3e0; }}
  footer {{ margin-top: 40px; color: var(--muted); font-size: 0.85rem; }}
</style>
</head>
<body>
<main>
<header>
<h1>Posture classifier {title}</h1>
<p class="meta">{meta}</p>
</header>
{body}
<footer>
<p>Made by vigil train posture. Both columns are measured on the same held-out test records.</p>
</footer>
</main>
</body>
</html>
"""


def render_report_html(result: PostureTrainingResult) -> str:
    """Return the comparison report as HTML (styles inline, no external files)."""
    body = "\n".join(
        [
            _cards(result),
            _recall_table(result),
            '<div class="pair">',
            _confusion_html("Learned classifier: confusion matrix", result.learned),
            _confusion_html("Angle rules: confusion matrix", result.rules),
            "</div>",
            _disagreements_html(result),
            _data_html(result),
        ]
    )
    meta = (
        f"{escape(ALGORITHM_NAMES[result.algorithm])} &middot; {result.train} training and "
        f"{result.test} test records &middot; time blocks of {result.config.block_seconds:g} s"
    )
    return _PAGE.format(title=escape(result.ref), meta=meta, body=body)


def _card(kind: str, label: str, value: str, detail: str) -> str:
    return (
        f'<div class="card {kind}"><div class="label">{escape(label)}</div>'
        f'<div class="value">{escape(value)}</div><div class="detail">{escape(detail)}</div></div>'
    )


def _cards(result: PostureTrainingResult) -> str:
    cards = [
        _card("learned", "learned accuracy", f"{result.learned.accuracy:.1%}", result.ref),
        _card("rules", "rules accuracy", f"{result.rules.accuracy:.1%}", "angle thresholds"),
        _card(
            "",
            "disagreements",
            str(len(result.disagreements)),
            f"of {result.test} test records",
        ),
    ]
    return f'<section class="cards">{"".join(cards)}</section>'


def _recall_table(result: PostureTrainingResult) -> str:
    rows = [
        f"<tr><td>{escape(label)}</td><td class='n'>{result.learned.recall[label]:.1%}</td>"
        f"<td class='n'>{result.rules.recall[label]:.1%}</td>"
        f"<td class='n'>{sum(result.learned.confusion[i])}</td></tr>"
        for i, label in enumerate(result.learned.classes)
    ]
    return (
        "<h2>Recall per class</h2><table><tr><th>class</th><th>learned</th><th>rules</th>"
        f"<th>test records</th></tr>{''.join(rows)}</table>"
    )


def _confusion_html(title: str, evaluation: Evaluation) -> str:
    head = "".join(f"<th>{escape(c)}</th>" for c in evaluation.columns)
    rows = []
    for label, counts in zip(evaluation.classes, evaluation.confusion, strict=True):
        cells = "".join(
            f"<td class='n {_cell_class(label, column, n)}'>{n}</td>"
            for column, n in zip(evaluation.columns, counts, strict=True)
        )
        rows.append(f"<tr><th>{escape(label)}</th>{cells}</tr>")
    return (
        f"<section><h2>{escape(title)}</h2><table><tr><th>true \u2193 / predicted \u2192</th>"
        f"{head}</tr>{''.join(rows)}</table></section>"
    )


def _cell_class(label: str, column: str, count: int) -> str:
    if label == column:
        return "hit"
    return "miss" if count else ""


def _disagreements_html(result: PostureTrainingResult) -> str:
    shown = result.disagreements[:_MAX_DISAGREEMENTS_SHOWN]
    if not shown:
        return "<h2>Where they disagree</h2><p>Nowhere: both say the same on every test record.</p>"
    rows = [
        "<tr>"
        f"<td>{escape(d.image or d.where)}</td><td>{escape(_when(d.timestamp))}</td>"
        f"<td>{escape(d.truth)}</td><td class='{_right(d.rules, d.truth)}'>{escape(d.rules)}</td>"
        f"<td class='{_right(d.learned, d.truth)}'>{escape(d.learned)}</td>"
        f"<td>{escape(_angles(d.angles))}</td></tr>"
        for d in shown
    ]
    more = len(result.disagreements) - len(shown)
    note = f"<p class='meta'>and {more} more</p>" if more > 0 else ""
    return (
        f"<h2>Where they disagree ({len(result.disagreements)})</h2><table><tr><th>record</th>"
        "<th>time</th><th>label</th><th>rules</th><th>learned</th><th>angles (deg)</th></tr>"
        f"{''.join(rows)}</table>{note}"
    )


def _right(said: str, truth: str) -> str:
    return "hit" if said == truth else "miss"


def _when(timestamp: float | None) -> str:
    if timestamp is None:
        return ""
    from vigil.report.timeparse import format_local

    return format_local(timestamp, local_zone_now(), seconds=True)


def _angles(angles: Mapping[str, float | None]) -> str:
    return "  ".join(f"{k} {v:.0f}" for k, v in angles.items() if v is not None) or "none"


def _data_html(result: PostureTrainingResult) -> str:
    files = "".join(
        f"<tr><td>{escape(str(f.path))}</td><td class='n'>{f.lines}</td>"
        f"<td><code>{f.sha256[:16]}</code></td></tr>"
        for f in result.files
    )
    left = "".join(
        f"<tr><td>{escape(why)}</td><td class='n'>{n}</td></tr>"
        for why, n in sorted(result.left_out.items())
    )
    labels = escape(json.dumps(result.labels_source)[:2000])
    return (
        "<h2>Data</h2><table><tr><th>records file</th><th>lines</th><th>sha256</th></tr>"
        f"{files}</table><h2>Left out</h2><table><tr><th>why</th><th>records</th></tr>"
        f"{left or '<tr><td>nothing</td><td></td></tr>'}</table>"
        f"<h2>Labels</h2><p><code>{labels}</code></p>"
    )
