"""``vigil models``: register, list, inspect, promote, remove and pull model files.

Models are referred to as ``NAME`` (the latest version), ``NAME:3`` (a version) or
``NAME@production`` (a stage alias). Every mistake ends in one ``vigil: error: ...`` line.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from vigil.models.api import Models
    from vigil.models.catalogue import CatalogueEntry
    from vigil.models.registry import ModelVersion

_TASKS = ("classify", "detect", "pose", "embed")


@dataclass(frozen=True, slots=True)
class _Where:
    registry: str | None
    store: str | None

    def open(self) -> Models:
        from vigil.models.api import Models

        return Models(self.registry, self.store)


def _tags(_ctx: click.Context, _param: click.Parameter, items: Sequence[str]) -> dict[str, str]:
    tags: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{item!r} is not KEY=VALUE, e.g. --tag site=barn")
        tags[key.strip()] = value.strip()
    return tags


def _stage(_ctx: click.Context, _param: click.Parameter, stage: str) -> str:
    from vigil.errors import ModelError
    from vigil.models.registry import check_alias

    try:
        return check_alias(stage)
    except ModelError as exc:
        raise click.BadParameter(str(exc)) from None


@click.group("models")
@click.option(
    "--registry",
    metavar="URL|FILE",
    help="Registry database (default: VIGIL_REGISTRY_URL, else SQLite in VIGIL_HOME).",
)
@click.option(
    "--store",
    metavar="DIR|s3://BUCKET/PREFIX",
    help="Where model files are kept (default: VIGIL_MODEL_STORE, else VIGIL_HOME/models).",
)
@click.pass_context
def models_group(ctx: click.Context, registry: str | None, store: str | None) -> None:
    """Register, list, promote, remove and pull models (NAME, NAME:VERSION, NAME@STAGE)."""
    ctx.obj = _Where(registry, store)


@models_group.command("add")
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--name", "-n", required=True, help="The model's name (letters, digits, - and _).")
@click.option("--task", type=click.Choice(_TASKS), help="What the model does (or give --spec).")
@click.option(
    "--labels", type=click.Path(path_type=Path), help="Text file of class names, one per line."
)
@click.option(
    "--tag", "tags", multiple=True, metavar="KEY=VALUE", callback=_tags, help="A tag (repeatable)."
)
@click.option("--description", help="What the model is.")
@click.option(
    "--spec",
    "spec_file",
    type=click.Path(path_type=Path),
    help="A YAML model spec (task, decoder, preprocess, labels, ...).",
)
@click.pass_obj
def add_command(
    where: _Where,
    *,
    file: Path,
    name: str,
    task: str | None,
    labels: Path | None,
    tags: dict[str, str],
    description: str | None,
    spec_file: Path | None,
) -> None:
    """Store FILE and register it as the next version of --name."""
    with where.open() as models:
        version = models.register(
            file,
            name,
            task=task,
            spec=spec_file,
            labels=labels,
            tags=tags,
            description=description,
        )
    click.echo(f"registered {_summary(version)}")


@models_group.command("list")
@click.option("--name", "-n", help="Only this model.")
@click.option(
    "--tag", "tags", multiple=True, metavar="KEY=VALUE", callback=_tags, help="Only with this tag."
)
@click.option("--task", type=click.Choice(_TASKS), help="Only models of this task.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_obj
def list_command(
    where: _Where, *, name: str | None, tags: dict[str, str], task: str | None, as_json: bool
) -> None:
    """List registered model versions."""
    with where.open() as models:
        versions = models.versions(name, tags=tags, task=task)
    if as_json:
        click.echo(json.dumps([v.to_dict() for v in versions], indent=2))
    elif not versions:
        click.echo("no models registered" + (" that match" if tags or task or name else ""))
    else:
        click.echo(_table(_VERSION_COLUMNS, [_version_row(v) for v in versions]))


@models_group.command("info")
@click.argument("ref", metavar="NAME[:VERSION|@STAGE]")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def info_command(where: _Where, *, ref: str, as_json: bool) -> None:
    """Show everything about one model version."""
    with where.open() as models:
        version = models.get(ref)
    if as_json:
        click.echo(json.dumps(version.to_dict(), indent=2))
        return
    for line in _info_lines(version):
        click.echo(line)


@models_group.command("promote")
@click.argument("ref", metavar="NAME[:VERSION|@STAGE]")
@click.option(
    "--stage", required=True, callback=_stage, help="The stage alias, e.g. production or staging."
)
@click.pass_obj
def promote_command(where: _Where, *, ref: str, stage: str) -> None:
    """Point the model's --stage alias at REF (the latest version when REF is a bare name)."""
    with where.open() as models:
        version = models.promote(ref, stage)
    click.echo(f"{version.name}@{stage} is now {version.ref}")


@models_group.command("rm")
@click.argument("ref", metavar="NAME[:VERSION|@STAGE]")
@click.option("--force", is_flag=True, help="Also remove versions that a stage points at.")
@click.pass_obj
def rm_command(where: _Where, *, ref: str, force: bool) -> None:
    """Remove one version, or with a bare NAME the whole model; unused files are deleted."""
    with where.open() as models:
        removal = models.remove(ref, force=force)
    for version in removal.versions:
        click.echo(f"removed {version.ref}")
    if not removal.versions:
        click.echo(f"removed {ref} (it had no versions)")
    if removal.freed:
        sizes = {v.sha256: v.size for v in removal.versions}
        freed = sum(sizes[sha256] for sha256 in removal.freed)
        click.echo(f"deleted {len(removal.freed)} file(s) no version uses ({_size(freed)})")


@models_group.command("pull")
@click.argument("source", metavar="NAME|hf://OWNER/REPO/PATH[@REVISION]")
@click.option("--name", "-n", help="Register under this name (default: the catalogue name).")
@click.option("--sha256", metavar="HASH", help="The sha256 the file must have.")
@click.option("--task", type=click.Choice(_TASKS), help="What a Hub model does (or give --spec).")
@click.option(
    "--spec", "spec_file", type=click.Path(path_type=Path), help="A YAML model spec for a Hub file."
)
@click.option(
    "--catalogue",
    type=click.Path(path_type=Path),
    help="Another catalogue file (default: VIGIL_CATALOGUE, else the packaged one).",
)
@click.pass_obj
def pull_command(
    where: _Where,
    *,
    source: str,
    name: str | None,
    sha256: str | None,
    task: str | None,
    spec_file: Path | None,
    catalogue: Path | None,
) -> None:
    """Download a catalogue model or a Hugging Face Hub file, verify it and register it."""
    progress = _Progress(source)
    with where.open() as models:
        result = models.pull(
            source,
            name=name,
            sha256=sha256,
            task=task,
            spec=spec_file,
            catalogue=catalogue,
            progress=progress,
        )
    progress.done()
    if result.registered:
        click.echo(f"registered {_summary(result.version)}")
    else:
        click.echo(
            f"{result.version.ref} already has this file (sha256 {result.version.sha256[:12]})"
        )


@models_group.command("catalogue")
@click.option(
    "--catalogue", type=click.Path(path_type=Path), help="Another catalogue file to show."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def catalogue_command(catalogue: Path | None, as_json: bool) -> None:
    """List the public models that 'vigil models pull NAME' knows."""
    from vigil.models.catalogue import load_catalogue

    entries = load_catalogue(catalogue).models
    if as_json:
        click.echo(json.dumps([e.model_dump(mode="json") for e in entries], indent=2))
        return
    click.echo(_table(_CATALOGUE_COLUMNS, [_catalogue_row(e) for e in entries]))


@models_group.command("gc")
@click.option("--dry-run", is_flag=True, help="Only show what would be deleted.")
@click.pass_obj
def gc_command(where: _Where, *, dry_run: bool) -> None:
    """Delete stored files that no version uses (left by interrupted runs) and stale temporaries."""
    with where.open() as models:
        report = models.gc(dry_run=dry_run)
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"{verb} {len(report.orphans)} unused file(s) ({_size(report.bytes)})")
    if not dry_run and report.temporaries:
        click.echo(f"deleted {report.temporaries} stale temporary file(s)")


# Output.

_VERSION_COLUMNS = ("NAME", "VERSION", "TASK", "FORMAT", "SIZE", "STAGES", "TAGS", "CREATED")
_CATALOGUE_COLUMNS = ("NAME", "TASK", "FORMAT", "SIZE", "LICENCE", "SHA256", "DESCRIPTION")


def _version_row(version: ModelVersion) -> list[str]:
    stages = [*version.aliases, *(["latest"] if version.latest else [])]
    return [
        version.name,
        str(version.version),
        version.task,
        version.format,
        _size(version.size),
        ",".join(stages),
        ",".join(f"{k}={v}" for k, v in sorted(version.tags.items())),
        version.created.strftime("%Y-%m-%d %H:%M"),
    ]


def _catalogue_row(entry: CatalogueEntry) -> list[str]:
    from vigil.models.api import model_format

    return [
        entry.name,
        entry.spec.task,
        model_format(Path(entry.target_name)),
        _size(entry.size) if entry.size else "?",
        entry.licence,
        entry.sha256[:12] if entry.sha256 else "unpublished",
        entry.description,
    ]


def _table(headers: Sequence[str], rows: list[list[str]]) -> str:
    widths = [
        max(len(str(cell)) for cell in column) for column in zip(headers, *rows, strict=False)
    ]
    lines = [headers, *rows]
    return "\n".join(
        "  ".join(str(cell).ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _info_lines(version: ModelVersion) -> list[str]:
    import yaml

    fields: list[tuple[str, Any]] = [
        ("model", version.ref),
        ("description", version.description or "-"),
        ("task", version.task),
        ("format", version.format),
        ("file", f"{version.file_name} ({_size(version.size)})"),
        ("sha256", version.sha256),
        ("created", version.created.isoformat(timespec="seconds")),
        ("stages", ", ".join([*version.aliases, *(["latest"] if version.latest else [])]) or "-"),
        ("tags", ", ".join(f"{k}={v}" for k, v in sorted(version.tags.items())) or "-"),
        ("metrics", json.dumps(version.metrics) if version.metrics else "-"),
        ("lineage", json.dumps(version.lineage) if version.lineage else "-"),
        ("path", str(version.path) if version.path else "-"),
    ]
    lines = [f"{key + ':':<13}{value}" for key, value in fields]
    spec = yaml.safe_dump(version.spec.model_dump(mode="json"), sort_keys=False).rstrip()
    return [*lines, "spec:", *(f"  {line}" for line in spec.splitlines())]


def _summary(version: ModelVersion) -> str:
    return (
        f"{version.ref} ({version.task}, {version.format}, {_size(version.size)}, "
        f"sha256 {version.sha256[:12]})"
    )


def _size(size: int | None) -> str:
    if size is None:
        return "?"
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


class _Progress:
    """Download progress on standard error: a live line on a terminal, else every quarter."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.live = sys.stderr.isatty()
        self.shown = -1
        self.started = False

    def __call__(self, received: int, total: int | None) -> None:
        self.started = True
        if total:
            step = received * 100 // total if self.live else received * 4 // total * 25
            if step != self.shown:
                self.shown = step
                self._say(f"{self.label}: {_size(received)} of {_size(total)} ({step}%)")
        elif self.live:
            self._say(f"{self.label}: {_size(received)}")

    def done(self) -> None:
        if self.started and self.live:
            click.echo("", err=True)

    def _say(self, text: str) -> None:
        if self.live:
            click.echo(f"\r{text}", err=True, nl=False)
        else:
            click.echo(f"vigil: {text}", err=True)


__all__ = ["models_group"]
