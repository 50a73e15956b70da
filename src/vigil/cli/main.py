"""``vigil <verb>``: run apps, make reports, inspect config and the outbox.

Every error a user can cause ends in one line on standard error and a non-zero exit status:
1 for a failure while working, 2 for a bad command line or config, 130 after Ctrl-C.
Ctrl-C or SIGTERM while ``vigil run`` processes frames is a clean stop instead: the run finishes
its frame, flushes everything and exits 0; a second one while it flushes gives 130.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

import click

from vigil import __version__
from vigil.cli.data import data as data_group
from vigil.cli.hub import hub_group, serve_command
from vigil.cli.models import models_group
from vigil.cli.predict import predict_command, serve_model_command
from vigil.cli.train import eval_command, train_group
from vigil.errors import ConfigError, VigilError

log = logging.getLogger("vigil")

EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 1, 2, 130


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``vigil`` command; returns the exit status."""
    try:
        cli.main(args=argv, prog_name="vigil", standalone_mode=False)
    except click.exceptions.Exit as done:
        return int(done.exit_code)
    except (click.exceptions.Abort, KeyboardInterrupt):
        _say("interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:
        if not isinstance(exc, click.ClickException | VigilError) and log.isEnabledFor(
            logging.DEBUG
        ):
            raise
        message, status = _describe_failure(exc)
        _say(message, usage=exc if isinstance(exc, click.ClickException) else None)
        return status
    return 0


def _describe_failure(exc: Exception) -> tuple[str, int]:
    """One line and an exit status for an error that ended a command."""
    if isinstance(exc, click.ClickException):
        return exc.format_message(), EXIT_USAGE
    if isinstance(exc, ConfigError):
        return str(exc), EXIT_USAGE
    if isinstance(exc, VigilError):
        return str(exc), EXIT_FAILURE
    return (
        f"unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)",
        EXIT_FAILURE,
    )


def _say(message: str, usage: click.ClickException | None = None) -> None:
    hint = ""
    if isinstance(usage, click.UsageError) and usage.ctx is not None:
        hint = f" (see '{usage.ctx.command_path} --help')"
    click.echo(f"vigil: error: {message}{hint}", err=True)


def _setup_logging(verbose: int, quiet: bool, debug: bool) -> None:
    level = logging.DEBUG if debug else logging.WARNING if quiet else logging.INFO
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root = logging.getLogger("vigil")
    root.handlers[:] = [handler]
    root.setLevel(level if verbose == 0 else logging.DEBUG)
    root.propagate = False


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.levelno >= logging.WARNING:
            message = f"vigil: {record.levelname.lower()}: {message}"
        else:
            message = f"vigil: {message}"
        if record.exc_info and record.levelno >= logging.ERROR and root_debug():
            message += "\n" + self.formatException(record.exc_info)
        return message


def root_debug() -> bool:
    """Whether --debug was given."""
    return logging.getLogger("vigil").isEnabledFor(logging.DEBUG)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="vigil")
@click.option("-v", "--verbose", count=True, help="More detail in the log.")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors.")
@click.option("--debug", is_flag=True, help="Show tracebacks for unexpected errors.")
def cli(verbose: int, quiet: bool, debug: bool) -> None:
    """Vigil: a self-hosted smart camera: pose, posture, rules and reliable sinks."""
    _setup_logging(verbose, quiet, debug)


def _app_choice() -> click.Choice[str]:
    from vigil.apps import app_names

    return click.Choice(app_names())


@cli.command("run")
@click.argument("app_name", metavar="APP", type=_app_choice())
@click.option(
    "--source",
    "-s",
    required=True,
    metavar="SRC",
    help="Webcam index (0), video file, rtsp:// or http:// URL, image, folder or glob.",
)
@click.option(
    "--config", "-c", "config_file", type=click.Path(path_type=Path), help="YAML config file."
)
@click.option(
    "--save",
    type=click.Path(path_type=Path),
    callback=lambda _ctx, _param, path: _video_path(path),
    help="Write the annotated video (.mp4, .mkv, .mov: H.264; .avi: MJPG).",
)
@click.option("--show", is_flag=True, help="Show the annotated frames in a window.")
@click.option(
    "--max-fps",
    type=click.FloatRange(min=0, min_open=True),
    help="Process at most this many frames a second.",
)
@click.option("--device-id", help="Name of this camera in records and topics.")
@click.option(
    "--jsonl",
    metavar="PATH|-",
    help="Write one JSON line per processed frame ('-': standard output).",
)
@click.option(
    "--notify",
    "notify_urls",
    multiple=True,
    metavar="URL",
    help="Apprise URL for reminders (repeatable).",
)
@click.option(
    "--mqtt",
    "mqtt_url",
    metavar="URL",
    help="Publish to this MQTT broker, e.g. mqtt://localhost:1883.",
)
@click.option(
    "--database",
    "database_url",
    metavar="URL",
    help="Records database URL (default: SQLite in VIGIL_HOME).",
)
@click.option(
    "--hub",
    "hub_url",
    metavar="URL",
    callback=lambda _ctx, _param, url: _hub_url(url),
    help="Report records, events and a live view to this Vigil hub, e.g. http://hub:8600.",
)
@click.option(
    "--token",
    "hub_token",
    metavar="T",
    envvar="VIGIL_HUB_TOKEN",
    show_envvar=True,
    callback=lambda _ctx, _param, token: _hub_token(token),
    help="This device's hub token (from 'vigil hub token create DEVICE_ID').",
)
@click.option(
    "--pose-model", metavar="PATH|mediapipe", help="Pose model file (.tflite/.onnx) or 'mediapipe'."
)
@click.option(
    "--start-time", type=click.DateTime(), help="Timestamp of a video's first frame (default: now)."
)
@click.option("--max-frames", type=click.IntRange(min=1), help="Stop after this many frames.")
def run_command(
    *,
    app_name: str,
    source: str,
    config_file: Path | None,
    save: Path | None,
    show: bool,
    max_fps: float | None,
    device_id: str | None,
    jsonl: str | None,
    notify_urls: tuple[str, ...],
    mqtt_url: str | None,
    database_url: str | None,
    hub_url: str | None,
    hub_token: str | None,
    pose_model: str | None,
    start_time: Any,
    max_frames: int | None,
) -> None:
    """Run APP (e.g. posture) on a camera, stream, video, image, folder or glob."""
    from vigil.apps import get_app
    from vigil.apps.runner import RunOptions, run_app
    from vigil.config import load_config

    app = get_app(app_name)
    overrides: dict[str, Any] = {
        "device_id": device_id,
        "source.max_fps": max_fps,
        "source.start_time": start_time,
        "records.database_url": database_url,
        "sinks.mqtt.url": mqtt_url,
        "pose": _pose_override(pose_model),
    }
    config = load_config(app.config_model, config_file, **overrides)
    if notify_urls:
        config = _with_notify(config, list(notify_urls))
    config = _with_hub(config, hub_url, hub_token, token_from_env=_from_env("hub_token"))
    options = RunOptions(source=source, save=save, show=show, jsonl=jsonl, max_frames=max_frames)
    report = run_app(app, config, options)
    _print_run_report(report, to_stderr=jsonl == "-")


def _video_path(path: Path | None) -> Path | None:
    """Refuse a --save name that no video writer takes before anything is opened or loaded."""
    from vigil.outputs.video import VIDEO_SUFFIXES

    if path is not None and path.suffix.lower() not in VIDEO_SUFFIXES:
        raise click.BadParameter(
            f"{path} is not a video name: end it in {', '.join(VIDEO_SUFFIXES)}"
        )
    return path


def _pose_override(pose_model: str | None) -> dict[str, Any] | None:
    if pose_model is None:
        return None
    if pose_model.lower() == "mediapipe":
        return {"type": "mediapipe"}
    return {"type": "keypoints", "model": pose_model}


def _with_notify(config: Any, urls: list[str]) -> Any:
    from vigil.sinks.config import NotifyConfig

    notify = config.sinks.notify or NotifyConfig()
    try:
        config.sinks.notify = notify.model_copy(update={"urls": [*notify.urls, *urls]})
    except ValueError as exc:
        raise ConfigError(f"--notify: {exc}") from None
    return config


def _hub_url(url: str | None) -> str | None:
    """Refuse a --hub value that is not a hub's http(s) address before anything is loaded."""
    from vigil.sinks.config import check_hub_url

    if url is None:
        return None
    try:
        return check_hub_url(url)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def _hub_token(token: str | None) -> str | None:
    if token is not None and not token.strip():
        raise click.BadParameter("the token is empty")
    return None if token is None else token.strip()


def _from_env(parameter: str) -> bool:
    """Whether an option's value came from its environment variable."""
    source = click.get_current_context().get_parameter_source(parameter)
    return source is click.core.ParameterSource.ENVIRONMENT


def _with_hub(config: Any, url: str | None, token: str | None, *, token_from_env: bool) -> Any:
    """Apply --hub and --token over the config's ``sinks.hub``; both are needed in the end.

    A token from VIGIL_HUB_TOKEN alone does not turn reporting on: it only fills in the token
    when a hub URL is given.
    """
    from pydantic import ValidationError

    from vigil.config.base import describe_validation_error
    from vigil.sinks.config import HubConfig

    current = config.sinks.hub
    if url is None and current is None and token_from_env:
        return config
    if url is None and token is None:
        return config
    fields = current.model_dump() if current is not None else {}
    fields |= {k: v for k, v in (("url", url), ("token", token)) if v is not None}
    if "url" not in fields:
        raise click.UsageError("--token needs a hub: give --hub URL too (or sinks.hub.url)")
    if "token" not in fields:
        raise click.UsageError(
            "--hub needs this device's token: give --token T too (or set VIGIL_HUB_TOKEN)"
        )
    try:
        config.sinks.hub = HubConfig.model_validate(fields)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc, HubConfig, None, "command line")) from None
    return config


def _print_run_report(report: Any, to_stderr: bool) -> None:
    stats = report.stats
    lines = [f"processed {stats.frames} frames in {stats.seconds:.1f} s ({stats.fps:.1f} fps)"]
    if stats.stopped_by:
        lines[0] += f", stopped by {stats.stopped_by}"
    counts = ", ".join(f"{n} {kind}" for kind, n in sorted(stats.events.items())) or "none"
    lines.append(f"events: {counts}")
    lines.append(f"records database: {report.database}")
    if report.rolled_files:
        lines.append(
            f"rolled record files: {len(report.rolled_files)} in {report.rolled_files[-1].parent}"
        )
    if report.video:
        lines.append(f"annotated video: {report.video}")
    if report.jsonl and report.jsonl != "-":
        lines.append(f"JSON lines: {report.jsonl}")
    if report.pending_messages:
        lines.append(
            f"{report.pending_messages} network messages wait in the outbox for the next run"
        )
    for line in lines:
        click.echo(line, err=to_stderr)


@cli.group("report")
def report_group() -> None:
    """Make reports from the records."""


@report_group.command("posture")
@click.option(
    "--since", default="24h", show_default=True, help="Start: 24h, 90m, 7d or an ISO date/time."
)
@click.option("--until", default=None, help="End (default: now): same forms as --since.")
@click.option(
    "--out",
    "-o",
    "out",
    type=click.Path(path_type=Path),
    default=Path("posture-report.html"),
    show_default=True,
    help="The HTML file to write.",
)
@click.option("--device-id", help="Only this camera (default: all).")
@click.option("--database", "database_url", metavar="URL", help="Records database URL.")
@click.option(
    "--config",
    "-c",
    "config_file",
    type=click.Path(path_type=Path),
    help="Take the database from this config.",
)
def report_posture(
    *,
    since: str,
    until: str | None,
    out: Path,
    device_id: str | None,
    database_url: str | None,
    config_file: Path | None,
) -> None:
    """Charts of sitting, standing, hunching and reminders over a period, as one HTML file."""
    from vigil.apps.posture import PostureConfig
    from vigil.config import load_config
    from vigil.paths import default_database_url
    from vigil.report import parse_since, write_posture_report
    from vigil.storage.records import RecordStore

    now = time.time()
    start = parse_since(since, now)
    end = parse_since(until, now, option="--until") if until else now
    if end <= start:
        raise ConfigError(f"--until ({until}) must be after --since ({since})")
    config = load_config(PostureConfig, config_file)
    url = database_url or config.records.database_url or default_database_url()
    store = RecordStore(url)
    try:
        result = write_posture_report(store, out, device_id=device_id, since=start, until=end)
    finally:
        store.close()
    _print_report_result(result, out)


def _print_report_result(result: Any, out: Path) -> None:
    if result.warning:
        log.warning("%s", result.warning)
    click.echo(f"report: {result.path}")


@cli.group("config")
def config_group() -> None:
    """Show or check app config files."""


@config_group.command("show")
@click.argument("app_name", metavar="APP", type=_app_choice())
def config_show(app_name: str) -> None:
    """Print APP's config with every field, its default and what it does (YAML)."""
    from vigil.apps import get_app
    from vigil.config.reference import reference_yaml

    click.echo(reference_yaml(get_app(app_name).config_model), nl=False)


@config_group.command("check")
@click.argument("app_name", metavar="APP", type=_app_choice())
@click.argument("config_file", type=click.Path(path_type=Path))
def config_check(app_name: str, config_file: Path) -> None:
    """Check CONFIG_FILE against APP's config; print the first problem with its line."""
    from vigil.apps import get_app
    from vigil.config import load_config

    load_config(get_app(app_name).config_model, config_file)
    click.echo(f"{config_file}: ok")


@cli.command("outbox")
@click.option(
    "--config",
    "-c",
    "config_file",
    type=click.Path(path_type=Path),
    help="Config naming the outbox file.",
)
def outbox_command(config_file: Path | None) -> None:
    """Show what waits in the outbox for each network sink."""
    from vigil.apps.posture import PostureConfig
    from vigil.config import load_config
    from vigil.sinks.network import outbox_status

    config = load_config(PostureConfig, config_file)
    for line in outbox_status(config.sinks.outbox):
        click.echo(line)


@cli.command("demo")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    help="Where to write (default: VIGIL_HOME/demo).",
)
@click.option(
    "--seconds",
    type=click.FloatRange(min=2, max=600),
    default=30.0,
    show_default=True,
    help="Length of the demo clip.",
)
def demo_command(out_dir: Path | None, seconds: float) -> None:
    """Run the posture tracker on bundled sample photos and write a video, records and a report."""
    from vigil.demo import run_demo

    result = run_demo(out_dir, seconds=seconds)
    for line in result.summary_lines():
        click.echo(line)


for command in (
    predict_command,
    serve_model_command,
    models_group,
    data_group,
    train_group,
    eval_command,
    serve_command,
    hub_group,
):
    cli.add_command(command)

if __name__ == "__main__":
    sys.exit(main())
