"""``vigil train posture``: learn posture from labelled keypoint records, next to the rules.

Records are the JSON lines of ``vigil run posture --jsonl``; labels come from a CSV or from time
ranges. The classifier is registered in the model registry and compared with the angle rules on
the same held-out records; the comparison is printed and written as one HTML file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click


@click.command("posture")
@click.option(
    "--records",
    "records",
    multiple=True,
    type=click.Path(path_type=Path),
    metavar="FILE [FILE ...]",
    help="JSON lines from 'vigil run posture --jsonl' (several files: list them after it).",
)
@click.argument("more_records", nargs=-1, type=click.Path(path_type=Path), metavar="")
@click.option(
    "--labels",
    "labels_csv",
    type=click.Path(path_type=Path),
    help="CSV of image/frame/timestamp/time and label.",
)
@click.option(
    "--ranges",
    "ranges_file",
    type=click.Path(path_type=Path),
    help="File of time ranges, one per line: '10:00-10:20 hunched'.",
)
@click.option(
    "--range",
    "ranges",
    multiple=True,
    metavar="'START-END LABEL'",
    help="A time range on the command line (repeatable).",
)
@click.option(
    "--label-map",
    type=click.Path(path_type=Path),
    help="YAML mapping label names of your own to posture classes (null: leave out).",
)
@click.option("--name", required=True, help="Register the classifier under this model name.")
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    help="The HTML report to write (default: NAME-report.html).",
)
@click.option(
    "--algorithm",
    type=click.Choice(["logistic", "boosting"]),
    help="Classifier: logistic regression (default) or gradient boosting.",
)
@click.option("--test-fraction", type=float, help="Share of time blocks held out (default 0.25).")
@click.option("--block-seconds", type=float, help="Length of the split's time blocks (default 60).")
@click.option(
    "--gap-seconds", type=float, help="Drop training records this close to a test one (default 2)."
)
@click.option("--seed", type=int, help="Seed of the split and the model (default 0).")
@click.option(
    "--stage", metavar="STAGE", help="Point this alias (e.g. production) at the new version."
)
@click.option(
    "--config",
    "-c",
    "config_file",
    type=click.Path(path_type=Path),
    help="A posture config whose rules thresholds the classifier is compared with.",
)
def posture_command(
    *,
    records: tuple[Path, ...],
    more_records: tuple[Path, ...],
    labels_csv: Path | None,
    ranges_file: Path | None,
    ranges: tuple[str, ...],
    label_map: Path | None,
    name: str,
    out: Path | None,
    algorithm: str | None,
    test_fraction: float | None,
    block_seconds: float | None,
    gap_seconds: float | None,
    seed: int | None,
    stage: str | None,
    config_file: Path | None,
) -> None:
    """Train a posture classifier on keypoint records and compare it with the angle rules.

    Records come from 'vigil run posture --jsonl'; labels from a CSV or from time ranges. The
    classifier is registered; use it with 'rules: {learned_classifier: NAME@STAGE}'.
    """
    from vigil.apps.posture import PostureConfig
    from vigil.config import load_config
    from vigil.train import posture as training

    if more_records and not records:
        raise click.UsageError("give the records files after --records")
    settings = load_config(
        training.PostureTrainingConfig,
        None,
        algorithm=algorithm,
        test_fraction=test_fraction,
        block_seconds=block_seconds,
        gap_seconds=gap_seconds,
        seed=seed,
    )
    rules = load_config(PostureConfig, config_file).rules
    found = training.read_records([*records, *more_records])
    labeller = _labeller(labels_csv, ranges_file, ranges, label_map)
    result = training.train_posture(
        found, labeller, name, config=settings, rules=rules, stage=stage
    )
    report = training.write_report(result, out or Path(f"{name}-report.html"))
    for line in training.report_lines(result):
        click.echo(line)
    if stage is not None:
        click.echo(f"{name}@{stage} now points at {result.ref}")
    click.echo(f"report: {report}")


def _labeller(
    labels_csv: Path | None,
    ranges_file: Path | None,
    ranges: tuple[str, ...],
    label_map: Path | None,
) -> Any:
    """Read the one source of labels that was given."""
    from vigil.train import posture as training

    given = [x for x in (labels_csv, ranges_file, ranges or None) if x is not None]
    if len(given) != 1:
        raise click.UsageError(
            "give labels in one way: --labels FILE.csv, --ranges FILE or --range 'START-END LABEL'"
        )
    names = training.read_label_map(label_map) if label_map is not None else None
    if labels_csv is not None:
        return training.read_csv_labels(labels_csv, names)
    if ranges_file is not None:
        return training.read_ranges(ranges_file, names)
    return training.parse_ranges(list(ranges), "--range", names)


__all__ = ["posture_command"]
