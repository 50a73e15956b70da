"""``vigil train`` and ``vigil eval``: train a classifier from labelled photos, and judge one.

``vigil train classify`` splits (or reads) the data, trains with the chosen method, evaluates on
the test split, writes the HTML report and registers the model, then prints where everything
is. ``vigil eval`` evaluates any registered classifier (or model file) on labelled images.
Problems with the data or models end in one ``vigil: error:`` line and exit status 1; a bad
option in status 2.
"""

from __future__ import annotations

import json
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource

from vigil.cli.train_posture import posture_command
from vigil.errors import ConfigError


@click.group("train")
def train_group() -> None:
    """Train models from your own labelled data."""


@train_group.command("classify")
@click.option(
    "--data",
    required=True,
    type=click.Path(path_type=Path),
    help="Class folders, a CSV of path,label, a Label Studio export, or a split manifest.",
)
@click.option("--name", required=True, help="Register the model under this name.")
@click.option(
    "--method",
    type=click.Choice(["probe", "finetune"]),
    default="probe",
    show_default=True,
    help="probe: linear classifier on an embed model's vectors; finetune: train a network.",
)
@click.option(
    "--backbone",
    metavar="REF",
    help="probe: embed model (registered name or .tflite/.onnx file); finetune: network name.",
)
@click.option("--epochs", type=int, help="finetune: training epochs.")
@click.option("--seed", type=int, default=0, show_default=True, help="Training seed.")
@click.option("--split-seed", type=int, default=0, show_default=True, help="Split seed.")
@click.option(
    "--target-recall",
    type=float,
    metavar="R",
    help="Two classes: threshold keeping at least R of the positive class (on validation).",
)
@click.option(
    "--target-precision",
    type=float,
    metavar="P",
    help="Two classes: lowest threshold with precision P or better (on validation).",
)
@click.option("--positive", metavar="CLASS", help="Two classes: the class looked for.")
@click.option(
    "--out", type=click.Path(path_type=Path), help="Run folder (default VIGIL_HOME/runs/NAME/...)."
)
@click.option("--int8", is_flag=True, help="finetune: keep an int8 model if it loses little.")
@click.option(
    "--int8-max-loss",
    type=float,
    default=0.01,
    show_default=True,
    help="Most validation accuracy the int8 model may lose.",
)
@click.option("--resume", is_flag=True, help="finetune: continue an interrupted run.")
@click.option(
    "--weights", type=click.Path(path_type=Path), help="finetune: pretrained weights file."
)
@click.option("--from-scratch", is_flag=True, help="finetune: start from random weights.")
@click.option("--image-size", type=int, help="finetune: side of the square network input.")
@click.option(
    "--workers",
    type=int,
    default=2,
    show_default=True,
    help="Processes that check images and feed fine-tuning (0: none).",
)
def classify_command(**values: Any) -> None:
    """Train an image classifier on labelled photos, evaluate, report and register it."""
    from vigil.train.classify import TrainOptions, train_classifier

    options = _options(TrainOptions, command=_command_line(), **values)
    result = train_classifier(options, _progress())
    for line in result.lines():
        click.echo(line)
    if result.interrupted:
        raise click.exceptions.Exit(130)


@click.command("eval")
@click.argument("model_ref", metavar="MODEL")
@click.option(
    "--data",
    required=True,
    type=click.Path(path_type=Path),
    help="Class folders, a CSV of path,label, a Label Studio export, or a split manifest.",
)
@click.option(
    "--split",
    type=click.Choice(["train", "validation", "test", "all"]),
    default="test",
    show_default=True,
    help="Of a manifest: the images to evaluate on.",
)
@click.option("--positive", metavar="CLASS", help="Two classes: the class the curves are about.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
@click.option("--out", type=click.Path(path_type=Path), help="Write the HTML report here.")
@click.option(
    "--threads", type=click.IntRange(1, 64), default=2, show_default=True, help="Model threads."
)
def eval_command(
    *,
    model_ref: str,
    data: Path,
    split: str,
    positive: str | None,
    as_json: bool,
    out: Path | None,
    threads: int,
) -> None:
    """Evaluate the classifier MODEL (registered name or file) on labelled images."""
    from vigil.train.evaluate import evaluate_model
    from vigil.train.report import ReportContent, write_report

    found = evaluate_model(model_ref, data, split=split, positive=positive, threads=threads)
    if out is not None:
        content = ReportContent(
            title=found.model,
            evaluation=found.evaluation,
            facts=[("Model", found.model), ("Data", str(data)), ("Split", split)],
            image_files=found.image_files,
            data=found.data,
        )
        write_report(content, out)
    if as_json:
        click.echo(json.dumps(found.to_dict(), ensure_ascii=False))
        return
    click.echo(f"{found.model} on {data}:")
    for line in found.evaluation.lines():
        click.echo(line)
    if out is not None:
        click.echo(f"report: {out}")


def _options(model: Any, **values: Any) -> Any:
    """Validate command-line values into a config model; a bad one is a ConfigError."""
    from pydantic import ValidationError

    from vigil.config.base import describe_validation_error

    given = {key: value for key, value in values.items() if value is not None}
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, model, None, "command line")) from None


def _command_line() -> str:
    """Return the command as given: ``vigil`` and the options set on the command line."""
    context = click.get_current_context()
    words = ["vigil", *context.command_path.split()[1:]]
    for parameter in context.command.params:
        name = parameter.name
        if name is None or context.get_parameter_source(name) != ParameterSource.COMMANDLINE:
            continue
        flag = parameter.opts[0] if isinstance(parameter, click.Option) else None
        value = context.params[name]
        if flag is None:
            words.append(str(value))
        elif isinstance(parameter, click.Option) and parameter.is_flag:
            words.append(flag)
        else:
            words += [flag, str(value)]
    return shlex.join(words)


def _progress() -> Callable[[str, int, int], None] | None:
    """Return a progress printer for a terminal's standard error; None off a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(what: str, done: int, total: int) -> None:
        click.echo(f"\r{what} {done:,}/{total:,} images", err=True, nl=False)
        if done == total:
            click.echo("", err=True)

    return show


__all__ = ["eval_command", "train_group"]

train_group.add_command(posture_command)
