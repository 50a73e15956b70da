"""Runs an app on a source: opens everything, drives the engine, closes everything in order."""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vigil.apps.base import App, AppConfig, AppParts
from vigil.engine import Engine, FrameOutput, RunStats, stop_on_signals
from vigil.outputs import DisplayOutput, JsonLinesOutput, VideoOutput
from vigil.outputs.stream import StreamOutput
from vigil.paths import default_database_url, home
from vigil.sinks.base import Sink
from vigil.sinks.network import NetworkSinks
from vigil.sinks.records import RecordsSink, RollingFileSink
from vigil.sources import Source, SourceStats, open_source
from vigil.sources.base import quiet_opencv
from vigil.stages.base import Pipeline
from vigil.storage.records import RecordStore

log = logging.getLogger(__name__)

_WINDOW_STAMP = re.compile(r"(\d{4})(\d{2})(\d{2})T\d{6}Z")


@dataclass
class RunOptions:
    """Per-run choices from the command line (the config file holds the lasting ones).

    Attributes:
        source: Camera index, stream URL, video file, image, folder or glob.
        save: Write the annotated video here.
        show: Show the annotated frames in a window.
        jsonl: Write one JSON line per frame to this path, or ``-`` for standard output.
        max_frames: Stop after this many frames.
    """

    source: str
    save: Path | None = None
    show: bool = False
    jsonl: str | None = None
    max_frames: int | None = None


@dataclass
class RunReport:
    """Where a run's results went and what it did."""

    stats: RunStats
    source: SourceStats
    database: str
    rolled_files: list[Path] = field(default_factory=list)
    video: Path | None = None
    jsonl: str | None = None
    pending_messages: int = 0


def run_app(
    app: App, config: AppConfig, options: RunOptions, source: Source | None = None
) -> RunReport:
    """Run ``app`` over ``options.source`` (or an already built ``source``) until it ends or a stop.

    Ctrl-C and SIGTERM end the run cleanly: the second in progress is recorded, files are
    closed, and network messages not yet delivered stay in the outbox for the next run.
    """
    source = source or open_source(options.source, config.source)
    closer = _SourceCloser(source)
    with quiet_opencv(), source:
        parts = app.build(config, stills=source.stills)
        network = NetworkSinks(config.sinks, config.device_id)
        database = config.records.database_url or default_database_url()
        store = RecordStore(database)
        rolled = _roller(config, network)
        sinks: list[Sink] = [RecordsSink(store), *([rolled] if rolled else []), *network.sinks]
        engine = Engine(
            Pipeline(parts.stages),
            parts.rules,
            sinks,
            max_frames=options.max_frames,
            on_stop=closer if source.live else None,
        )
        engine.outputs = _outputs(parts, options, source, engine, config)
        network.start()
        pending = 0
        try:
            with stop_on_signals(engine):
                stats = engine.run(source)
        finally:
            closer.wait()
            pending = network.close(config.sinks.outbox.shutdown_grace_seconds)
    return RunReport(
        stats=stats,
        source=source.stats,
        database=database,
        rolled_files=rolled.files if rolled else [],
        video=options.save,
        jsonl=options.jsonl,
        pending_messages=pending,
    )


class _SourceCloser:
    """Closes a camera or stream as soon as the run is asked to stop.

    A run waiting for the next frame of a frozen or unplugged camera would otherwise notice the
    stop only after the read timeout and every reconnect. The close runs on a thread of its own
    because a stop can come from a signal handler, which must not wait for the reader thread;
    :meth:`wait` waits for it before the run goes on, as the close at the end of a run would.
    """

    def __init__(self, source: Source) -> None:
        self._source = source
        self._thread: threading.Thread | None = None

    def __call__(self) -> None:
        """Start closing the source."""
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._source.close, name="vigil-stop-source", daemon=True
            )
            self._thread.start()

    def wait(self) -> None:
        """Wait until a close started by a stop has finished (the source bounds its own wait)."""
        if self._thread is not None:
            self._thread.join()


def _roller(config: AppConfig, network: NetworkSinks) -> RollingFileSink | None:
    records = config.records
    if records.roll_seconds == 0:
        return None
    folder = records.roll_dir or home() / "records" / config.device_id
    return RollingFileSink(
        folder,
        config.device_id,
        records.roll_seconds,
        records.roll_format,
        on_file=_uploader(network, config.device_id) if network.uploads else None,
    )


def _uploader(network: NetworkSinks, device_id: str) -> Callable[[Path], None]:
    """Queue each rolled file for upload as ``<device>/<yyyy>/<mm>/<dd>/<file>``."""

    def upload(path: Path) -> None:
        stamp = _WINDOW_STAMP.search(path.name)  # the window's UTC date, from the file name
        day = "/".join(stamp.groups()) if stamp else "undated"
        network.enqueue_upload(path, f"{device_id}/{day}/{path.name}")

    return upload


def _outputs(
    parts: AppParts, options: RunOptions, source: Source, engine: Engine, config: AppConfig
) -> list[FrameOutput]:
    outputs: list[Any] = []
    hub = config.sinks.hub
    if hub is not None and hub.stream_fps > 0:
        outputs.append(StreamOutput.from_config(hub, config.device_id, parts.annotate))
    if options.jsonl:
        outputs.append(JsonLinesOutput(options.jsonl, parts.describe))
    if options.save:
        outputs.append(VideoOutput(options.save, parts.annotate, fps=source.fps or 10.0))
    if options.show:
        outputs.append(DisplayOutput(parts.annotate, on_quit=lambda: engine.stop("window closed")))
    return outputs
