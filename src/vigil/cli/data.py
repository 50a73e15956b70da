"""``vigil data``: check a labelled image dataset, split it reproducibly, pack it into shards.

A dataset is a folder of class folders, a CSV of path,label (paths relative to the CSV) or a
Label Studio JSON export. Problems with the data end in one ``vigil: error:`` line and exit
status 1; a bad option in status 2.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from pydantic import BaseModel, ValidationError

from vigil.errors import ConfigError, SourceError

ModelT = TypeVar("ModelT", bound=BaseModel)
CommandT = TypeVar("CommandT", bound=Callable[..., Any])


def _default_workers() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


@click.group("data")
def data() -> None:
    """Datasets for training: check, split, verify and pack labelled images."""


def _source_options(command: CommandT) -> CommandT:
    """Options that say how a CSV or Label Studio export names images, labels and groups."""
    options = [
        click.option(
            "--root",
            type=click.Path(path_type=Path),
            help="Label Studio: folder that '/data/local-files/?d=' and upload paths are in.",
        ),
        click.option("--path-column", help="CSV column of image paths (default: path or file)."),
        click.option("--label-column", help="CSV column of labels (default: label or class)."),
        click.option(
            "--group-column",
            help="CSV column (or Label Studio data key) of groups kept in one split.",
        ),
        click.option(
            "--group-pattern",
            metavar="REGEX",
            help="Group by this regex on the relative path, e.g. '^(site\\d+)/'.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def _inspect_options(command: CommandT) -> CommandT:
    options = [
        click.option(
            "--near-threshold",
            type=click.IntRange(0, 32),
            default=8,
            show_default=True,
            help="Near duplicates: perceptual hashes at most this many bits apart (of 64).",
        ),
        click.option(
            "--workers",
            type=click.IntRange(1, 256),
            default=_default_workers,
            show_default="CPU cores, at most 8",
            help="Processes that decode images.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@data.command("check")
@click.argument("source", type=click.Path(path_type=Path))
@_source_options
@_inspect_options
@click.option(
    "--min-side",
    type=click.IntRange(1),
    default=64,
    show_default=True,
    help="Report images whose shorter side is below this many pixels.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def check_command(as_json: bool, **values: Any) -> None:
    """Check SOURCE (class folders, CSV or Label Studio JSON): decodability, duplicates, balance.

    Exits 0 when the data can train a classifier, 1 (after the report) when it cannot.
    """
    from vigil.data.check import check_dataset
    from vigil.data.config import CheckOptions

    dataset = _load(values)
    options = _options(
        CheckOptions,
        min_side=values["min_side"],
        near_threshold=values["near_threshold"],
        workers=values["workers"],
    )
    report = check_dataset(dataset, options, _progress("checked"))
    if as_json:
        click.echo(json.dumps(report.to_dict(), indent=1, ensure_ascii=False))
    else:
        for line in report.lines():
            click.echo(line)
    if report.problem is not None:
        raise SourceError(f"{dataset.source}: {report.problem}")


@data.command("split")
@click.argument("source", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "-o",
    type=click.Path(path_type=Path),
    required=True,
    help="The manifest file to write (JSON).",
)
@click.option("--seed", type=click.IntRange(0), default=0, show_default=True, help="Split seed.")
@click.option("--train", type=float, default=0.70, show_default=True, help="Train fraction.")
@click.option(
    "--validation", type=float, default=0.15, show_default=True, help="Validation fraction."
)
@click.option("--test", type=float, default=0.15, show_default=True, help="Test fraction.")
@click.option("--force", is_flag=True, help="Replace an existing manifest with a different split.")
@_source_options
@_inspect_options
def split_command(out: Path, force: bool, **values: Any) -> None:
    """Split SOURCE into train/validation/test and write the manifest to --out.

    Stratified by class; identical and near-identical images, and images of one group, stay
    in one split. The same data and seed give the same manifest, byte for byte.
    """
    from vigil.data.check import build_report, inspect_dataset
    from vigil.data.config import CheckOptions, SplitOptions
    from vigil.data.manifest import write_manifest
    from vigil.data.split import split_dataset

    split_options = _options(
        SplitOptions,
        train=values["train"],
        validation=values["validation"],
        test=values["test"],
        seed=values["seed"],
    )
    check_options = _options(
        CheckOptions, near_threshold=values["near_threshold"], workers=values["workers"]
    )
    dataset = _load(values)
    infos = inspect_dataset(dataset, check_options, _progress("inspected"))
    report = build_report(dataset, infos, check_options)
    if report.problem is not None:
        raise SourceError(f"{dataset.source}: {report.problem}")
    result = split_dataset(dataset, infos, split_options, check_options.near_threshold)
    _refuse_silent_change(out, result.manifest, force)
    write_manifest(result.manifest, out)
    _print_split(result, out)


@data.command("verify")
@click.argument("manifest_file", metavar="MANIFEST", type=click.Path(path_type=Path))
@click.option(
    "--root", type=click.Path(path_type=Path), help="Where the images are now, if they moved."
)
def verify_command(manifest_file: Path, root: Path | None) -> None:
    """Check that every image of MANIFEST is still there, unchanged."""
    from vigil.data.manifest import describe_changes, read_manifest, verify_manifest

    manifest = read_manifest(manifest_file, root)
    changes = verify_manifest(manifest)
    if changes:
        raise SourceError(describe_changes(changes, len(manifest.items)))
    click.echo(
        f"{manifest_file}: all {len(manifest.items):,} images match (manifest {manifest.hash[:12]})"
    )


@data.command("pack")
@click.argument("manifest_file", metavar="MANIFEST", type=click.Path(path_type=Path))
@click.option(
    "--out", "-o", type=click.Path(path_type=Path), required=True, help="Folder for the shards."
)
@click.option(
    "--size", type=int, default=224, show_default=True, help="Shorter side (or square) in px."
)
@click.option(
    "--fit",
    type=click.Choice(["shorter", "crop"]),
    default="shorter",
    show_default=True,
    help="shorter: keep the aspect ratio; crop: also cut the centre square.",
)
@click.option("--shard-mb", type=float, default=64, show_default=True, help="Shard size limit.")
@click.option("--quality", type=int, default=90, show_default=True, help="JPEG quality.")
@click.option(
    "--workers",
    type=click.IntRange(1, 256),
    default=_default_workers,
    show_default="CPU cores, at most 8",
    help="Processes that decode and encode images.",
)
@click.option(
    "--root", type=click.Path(path_type=Path), help="Where the images are now, if they moved."
)
def pack_command(manifest_file: Path, out: Path, root: Path | None, **values: Any) -> None:
    """Pack the images of MANIFEST, resized and re-encoded, into tar shards under --out."""
    from vigil.data.config import PackOptions
    from vigil.data.manifest import read_manifest
    from vigil.data.pack import pack_manifest

    options = _options(PackOptions, **values)
    manifest = read_manifest(manifest_file, root)
    report = pack_manifest(manifest, out, options, _progress("packed"))
    for line in report.lines():
        click.echo(line)


def _load(values: dict[str, Any]) -> Any:
    from vigil.data.config import ImportOptions
    from vigil.data.dataset import load_dataset

    root = values.get("root")
    options = _options(
        ImportOptions,
        root=str(root) if root is not None else None,
        path_column=values.get("path_column"),
        label_column=values.get("label_column"),
        group_column=values.get("group_column"),
        group_pattern=values.get("group_pattern"),
    )
    return load_dataset(values["source"], options)


def _options(model: type[ModelT], **values: Any) -> ModelT:
    """Validate command-line values into a config model; a bad one is a ConfigError."""
    from vigil.config.base import describe_validation_error

    given = {key: value for key, value in values.items() if value is not None}
    try:
        return model.model_validate(given)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, model, None, "command line")) from None


def _refuse_silent_change(out: Path, manifest: Any, force: bool) -> None:
    """Stop before replacing a manifest that describes a different split, unless forced."""
    from vigil.data.manifest import read_manifest

    if force or not out.exists():
        return
    try:
        previous = read_manifest(out)
    except SourceError:
        raise ConfigError(
            f"{out} exists and is not a Vigil manifest: choose another --out"
        ) from None
    if previous.hash == manifest.hash:
        return
    raise ConfigError(
        f"{out} holds a different split ({_difference(previous, manifest)}): "
        "pass --force to replace it, or write to another --out"
    )


def _difference(old: Any, new: Any) -> str:
    before = {item.path: item for item in old.items}
    after = {item.path: item for item in new.items}
    changed = sum(1 for p in before.keys() & after.keys() if before[p].sha256 != after[p].sha256)
    moved = sum(1 for p in before.keys() & after.keys() if before[p].split != after[p].split)
    parts = [
        f"{len(after.keys() - before.keys())} images added",
        f"{len(before.keys() - after.keys())} removed",
        f"{changed} changed",
        f"{moved} in another split",
    ]
    if old.seed != new.seed or old.fractions != new.fractions:
        parts.append("another seed or fractions")
    return ", ".join(parts)


def _print_split(result: Any, out: Path) -> None:
    manifest = result.manifest
    counts = manifest.counts()
    width = max([len("class"), *(len(label) for label in manifest.classes)])
    click.echo(f"  {'class':<{width}}  {'train':>7}  {'validation':>10}  {'test':>7}")
    for label in manifest.classes:
        row = [counts[split][label] for split in ("train", "validation", "test")]
        click.echo(f"  {label:<{width}}  {row[0]:>7,}  {row[1]:>10,}  {row[2]:>7,}")
    if result.left_out:
        click.echo(f"left out {len(result.left_out)} images that cannot be decoded")
    for warning in result.warnings:
        click.echo(f"warning: {warning}")
    click.echo(f"manifest: {out} ({len(manifest.items):,} images, hash {manifest.hash[:12]})")


def _progress(verb: str) -> Callable[[int, int], None] | None:
    """Return a progress printer for a terminal's standard error; None off a terminal."""
    if not sys.stderr.isatty():
        return None

    def show(done: int, total: int) -> None:
        end = "\n" if done == total else ""
        click.echo(f"\r{verb} {done:,}/{total:,} images", err=True, nl=False)
        if end:
            click.echo("", err=True)

    return show


__all__ = ["data"]
