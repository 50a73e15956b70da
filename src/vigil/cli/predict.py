"""``vigil predict`` and ``vigil serve-model``: run any model from the command line or over HTTP.

``predict`` runs the same stage code as apps (a :class:`~vigil.stages.model.ModelStage` in the
engine) over an image, a folder, a glob, a video, a camera or a stream, and prints a table, or
one JSON object per frame. ``serve-model`` puts the model behind the HTTP service of
:mod:`vigil.serve`.
"""

from __future__ import annotations

import importlib.util
import logging
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import click

from vigil.errors import ConfigError, DependencyError, StorageError
from vigil.models.spec import TASKS, Task

if TYPE_CHECKING:
    from vigil.engine import FrameOutput, RunStats
    from vigil.frame import Frame
    from vigil.serve.schema import ModelInfo, ServeSettings
    from vigil.sources import Source
    from vigil.stages.base import FrameResults
    from vigil.tasks.base import TaskModel

log = logging.getLogger(__name__)

SERVE_PACKAGES = (
    ("fastapi", "fastapi"),
    ("uvicorn", "uvicorn"),
    ("multipart", "python-multipart"),
    ("prometheus_client", "prometheus-client"),
)
"""Modules the inference service imports, with the packages that provide them."""

SAVED_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
"""Annotated photos keep their format when it is one of these; others are saved as PNG."""


@dataclass(frozen=True)
class ModelChoice:
    """Which model to run and how, as the command line gives it.

    Attributes:
        ref: A registry name (``name``, ``name:3``, ``name@production``) or a file path.
        spec_file: A spec YAML that replaces the registry's or the file's own.
        task: The task the model must do; for a plain file without a spec, the task to run.
        threshold: Replaces the spec's score threshold.
        top_k: Replaces the spec's number of classes reported.
        threads: Threads the runtime may use.
    """

    ref: str
    spec_file: Path | None = None
    task: Task | None = None
    threshold: float | None = None
    top_k: int | None = None
    threads: int = 2

    def overrides(self) -> dict[str, Any]:
        """Return the spec fields the command line replaces."""
        given = {"score_threshold": self.threshold, "top_k": self.top_k}
        return {key: value for key, value in given.items() if value is not None}


@dataclass
class LoadedModel:
    """A model ready to run, and who it is."""

    model: TaskModel
    info: ModelInfo


def load_chosen_model(choice: ModelChoice) -> LoadedModel:
    """Open the chosen model (see :func:`vigil.models.opening.open_model`).

    Raises:
        ModelError: the model is unknown, missing, cannot be loaded, or its outputs do not fit
            the task.
        ConfigError: the spec file is invalid, or a registered model does another task than
            ``--task``.
    """
    from vigil.models.opening import open_model
    from vigil.serve.schema import ModelInfo

    try:
        opened = open_model(
            choice.ref,
            spec=choice.spec_file,
            task=choice.task,
            overrides=choice.overrides(),
            threads=choice.threads,
        )
    except ConfigError as exc:
        raise ConfigError(f"--task {choice.task}: {exc}" if choice.task else str(exc)) from None
    info = ModelInfo(name=opened.name, version=opened.version, sha256=opened.sha256)
    return LoadedModel(opened.model, info)


def _model_options(command: Any) -> Any:
    """Add the options that say how to load the model, shared by both commands."""
    options = [
        click.option(
            "--threads",
            type=click.IntRange(1, 64),
            default=2,
            show_default=True,
            help="Threads the model's runtime may use.",
        ),
        click.option(
            "--top-k",
            type=click.IntRange(1, 1000),
            help="Classes a classifier reports (replaces the spec's).",
        ),
        click.option(
            "--threshold",
            type=click.FloatRange(0, 1),
            help="Drop results scored below this (replaces the spec's).",
        ),
        click.option(
            "--spec",
            "spec_file",
            type=click.Path(path_type=Path),
            help="A model spec YAML (<model>.vigil.yaml format) to run the model with.",
        ),
        click.option(
            "--task",
            type=click.Choice(TASKS),
            help="The task the model does; needed for a plain file that carries no spec.",
        ),
    ]
    for option in options:
        command = option(command)
    return command


@click.command("predict")
@click.argument("model_ref", metavar="MODEL")
@click.argument("source_spec", metavar="SOURCE")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per frame, not a table.")
@click.option(
    "--save",
    type=click.Path(path_type=Path),
    help="Write annotated output: a folder of images for photos, a video (.mp4, .avi, ...) "
    "for videos, cameras and streams.",
)
@click.option("--max-frames", type=click.IntRange(min=1), help="Stop after this many frames.")
@_model_options
def predict_command(
    *,
    model_ref: str,
    source_spec: str,
    as_json: bool,
    save: Path | None,
    max_frames: int | None,
    task: Task | None,
    spec_file: Path | None,
    threshold: float | None,
    top_k: int | None,
    threads: int,
) -> None:
    """Run MODEL on SOURCE: an image, a folder, a glob, a video, a camera index or a stream URL.

    MODEL is a registry name (name, name:3, name@production) or a model file.
    """
    from vigil.sources import SourceConfig, open_source

    choice = ModelChoice(model_ref, spec_file, task, threshold, top_k, threads)
    source = open_source(source_spec, SourceConfig(max_image_side=None))
    _check_save_target(save, source)
    loaded = load_chosen_model(choice)
    stats = run_prediction(loaded.model, source, as_json=as_json, save=save, max_frames=max_frames)
    _print_summary(stats, source, save)


def run_prediction(
    model: TaskModel,
    source: Source,
    *,
    as_json: bool = False,
    save: Path | None = None,
    max_frames: int | None = None,
) -> RunStats:
    """Run ``model`` over ``source`` through the engine, printing and saving every frame.

    The model is closed at the end, as the engine closes its pipeline.
    """
    from vigil.engine import Engine, stop_on_signals
    from vigil.sources.base import quiet_opencv
    from vigil.stages.base import Pipeline
    from vigil.stages.model import ModelStage

    outputs = _outputs(source, as_json=as_json, save=save)
    engine = Engine(Pipeline([ModelStage(model)]), [], [], outputs, max_frames=max_frames)
    with quiet_opencv(), source, stop_on_signals(engine):
        return engine.run(source)


def _outputs(source: Source, *, as_json: bool, save: Path | None) -> list[FrameOutput]:
    from vigil.outputs import JsonLinesOutput, VideoOutput
    from vigil.stages.model import annotate_prediction, describe_prediction

    outputs: list[FrameOutput] = [
        JsonLinesOutput("-", describe_prediction) if as_json else TableOutput(sys.stdout)
    ]
    if save is not None and source.stills:
        outputs.append(ImageFolderOutput(save))
    elif save is not None:
        outputs.append(VideoOutput(save, annotate_prediction, fps=source.fps or 10.0))
    return outputs


def _check_save_target(save: Path | None, source: Source) -> None:
    """Refuse a --save that does not fit the source before the model is loaded."""
    from vigil.outputs.video import VIDEO_SUFFIXES

    if save is None:
        return
    if source.stills and save.exists() and not save.is_dir():
        raise ConfigError(f"--save {save}: photos are saved into a folder, and this is a file")
    if not source.stills and save.suffix.lower() not in VIDEO_SUFFIXES:
        raise ConfigError(
            f"--save {save}: a video source is saved as a video; "
            f"end the name in {', '.join(VIDEO_SUFFIXES)}"
        )


def _print_summary(stats: RunStats, source: Source, save: Path | None) -> None:
    what = ("image" if source.stills else "frame") + ("" if stats.frames == 1 else "s")
    line = f"{stats.frames} {what} in {stats.seconds:.2f} s ({stats.fps:.1f} per second)"
    if stats.stopped_by:
        line += f", stopped by {stats.stopped_by}"
    skipped = source.stats.frames_skipped
    if skipped:
        line += f"; {skipped} unreadable skipped"
    click.echo(line, err=True)
    if save is not None:
        click.echo(f"annotated {'images' if source.stills else 'video'}: {save}", err=True)


class TableOutput:
    """Prints each frame's results as a small table: a heading, then one row per result."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream

    def write(self, frame: Frame, results: FrameResults) -> None:
        """Print one frame."""
        from vigil.stages.model import prediction_of

        described = prediction_of(results).to_dict()
        where = frame.path if frame.path is not None else f"frame {frame.index}"
        lines = [f"{where}  [{described.get('task', '?')}]", *table_rows(described)]
        self.stream.write("\n".join(lines) + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Nothing to release."""


def table_rows(described: dict[str, Any]) -> list[str]:
    """Return the indented rows of one prediction's ``to_dict()`` form."""
    task = described.get("task")
    if task == "classify":
        rows = [_class_row(c) for c in described["classes"]]
    elif task == "detect":
        rows = [(d["label"], f"{d['score']:.4f}", _box(d["box"])) for d in described["detections"]]
    elif task == "pose":
        rows = [_person_row(i, p) for i, p in enumerate(described["people"])]
    elif task == "embed":
        rows = [_embedding_row(i, v) for i, v in enumerate(described["embeddings"])]
    else:
        rows = [("?", "", str(described))]
    if not rows:
        return ["  (nothing above the threshold)"]
    width = max(len(row[0]) for row in rows)
    return [f"  {name:<{width}}  {score:>7}  {rest}".rstrip() for name, score, rest in rows]


def _class_row(item: dict[str, Any]) -> tuple[str, str, str]:
    class_id = str(item["class_id"])
    return (
        item["label"],
        f"{item['score']:.4f}",
        "" if item["label"] == class_id else f"class {class_id}",
    )


def _box(box: list[float]) -> str:
    x1, y1, x2, y2 = box
    return f"box {x1:.1f}, {y1:.1f}, {x2:.1f}, {y2:.1f}"


def _person_row(index: int, person: dict[str, Any]) -> tuple[str, str, str]:
    points = person["keypoints"]
    confident = sum(1 for point in points if point["confidence"] >= 0.5)
    return (
        f"person {index + 1}",
        f"{person['score']:.4f}",
        f"{len(points)} keypoints ({confident} confident), {_box(person['box'])}",
    )


def _embedding_row(index: int, vector: list[float]) -> tuple[str, str, str]:
    norm = sum(v * v for v in vector) ** 0.5
    head = ", ".join(f"{v:.3f}" for v in vector[:4])
    return f"vector {index + 1}", "", f"dim {len(vector)}, norm {norm:.3f}, [{head}, ...]"


class ImageFolderOutput:
    """Writes each annotated photo into a folder, under the photo's own file name.

    Two photos with the same name (from different subfolders) are kept apart by adding the
    frame index to the later one's name.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.written: list[Path] = []
        self._names: set[str] = set()

    def write(self, frame: Frame, results: FrameResults) -> None:
        """Annotate and save one photo."""
        import cv2

        from vigil.stages.model import annotate_prediction

        path = self._target(frame)
        image = cv2.cvtColor(annotate_prediction(frame, results), cv2.COLOR_RGB2BGR)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            written = cv2.imwrite(str(path), image)
        except (OSError, cv2.error) as exc:
            raise StorageError(f"cannot write {path}: {exc}") from None
        if not written:
            raise StorageError(f"cannot write {path}")
        self.written.append(path)

    def close(self) -> None:
        """Nothing to release: every image is complete when written."""

    def _target(self, frame: Frame) -> Path:
        original = Path(frame.path or f"frame-{frame.index:06d}.png")
        suffix = (
            original.suffix.lower() if original.suffix.lower() in SAVED_IMAGE_SUFFIXES else ".png"
        )
        name = f"{original.stem}{suffix}"
        if name in self._names:
            name = f"{original.stem}-{frame.index}{suffix}"
        self._names.add(name)
        return self.folder / name


@click.command("serve-model")
@click.argument("model_ref", metavar="MODEL")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True)
@click.option(
    "--max-body-mb",
    type=click.FloatRange(0, 1024, min_open=True),
    default=10.0,
    show_default=True,
    help="Largest request body; longer ones get 413.",
)
@click.option(
    "--max-pixels",
    type=click.FloatRange(1, 1e9),
    default=40e6,
    show_default=True,
    help="Largest image (width x height) decoded; larger ones get 413.",
)
@_model_options
def serve_model_command(
    *,
    model_ref: str,
    host: str,
    port: int,
    max_body_mb: float,
    max_pixels: float,
    task: Task | None,
    spec_file: Path | None,
    threshold: float | None,
    top_k: int | None,
    threads: int,
) -> None:
    """Serve MODEL over HTTP: POST an image to /predict; /health, /metadata, /metrics, /docs.

    MODEL is a registry name (name, name:3, name@production) or a model file.
    """
    require_serve_packages()

    settings = _serve_settings(
        host=host, port=port, max_body_mb=max_body_mb, max_pixels=int(max_pixels), threads=threads
    )
    listener = bind(settings.host, settings.port)
    try:
        loaded = load_chosen_model(
            ModelChoice(model_ref, spec_file, task, threshold, top_k, threads)
        )
    except BaseException:
        listener.close()
        raise
    try:
        serve(loaded, settings, listener)
    finally:
        loaded.model.close()


def _serve_settings(**values: Any) -> ServeSettings:
    from pydantic import ValidationError

    from vigil.config.base import describe_validation_error
    from vigil.serve.schema import ServeSettings

    try:
        return ServeSettings(**values)
    except ValidationError as exc:
        raise ConfigError(
            describe_validation_error(exc, ServeSettings, None, "command line")
        ) from None


def require_serve_packages() -> None:
    """Raise DependencyError naming the first package of the ``serve`` extra that is missing."""
    for module, package in SERVE_PACKAGES:
        if importlib.util.find_spec(module) is None:
            raise DependencyError(package, "serve", "vigil serve-model")


def bind(host: str, port: int) -> socket.socket:
    """Open the listening socket, so a taken port is reported before the model is loaded.

    The socket is made with protocol ``IPPROTO_TCP`` (not 0): asyncio turns Nagle's algorithm
    off only on such sockets, and with it on, every keep-alive response waits 40 ms for the
    client's delayed ACK between its headers and its body.

    Raises:
        ConfigError: the address cannot be used (taken, not ours, or unknown).
    """
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP, flags=socket.AI_PASSIVE
        )[0]
    except socket.gaierror as exc:
        raise ConfigError(f"--host {host}: unknown address ({exc.strerror})") from None
    listener = socket.socket(family, kind, proto)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(128)
    except OSError as exc:
        listener.close()
        reason = exc.strerror or str(exc)
        raise ConfigError(
            f"cannot listen on {host}:{port}: {reason}; pick another --port or --host"
        ) from None
    return listener


def serve(loaded: LoadedModel, settings: ServeSettings, listener: socket.socket) -> None:
    """Run the HTTP service on ``listener`` until Ctrl-C or SIGTERM.

    The model runs once before the service starts, so a model that cannot run fails here, with
    its error, rather than in the service's start-up.
    """
    from vigil.serve import create_app
    from vigil.serve.app import warm_up
    from vigil.serve.server import run_server

    if settings.warmup:
        warm_up(loaded.model)
    app = create_app(loaded.model, settings.model_copy(update={"warmup": False}), loaded.info)
    host, port = listener.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    click.echo(
        f"serving {loaded.info.name} ({loaded.model.spec.task}) on http://{shown}:{port}: "
        "POST /predict; GET /health, /metadata, /metrics, /docs",
        err=True,
    )
    started = time.monotonic()
    run_server(app, listener)
    click.echo(f"stopped after {time.monotonic() - started:.0f} s", err=True)
