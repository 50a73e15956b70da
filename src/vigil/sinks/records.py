"""Local sinks for records: the records database and rolled CSV / Parquet files."""

from __future__ import annotations

import csv
import logging
import math
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from vigil.config import ConfigModel
from vigil.errors import DependencyError, StorageError
from vigil.events import Event
from vigil.storage.records import POSTURE_FIELDS, RecordStore

log = logging.getLogger(__name__)


class RecordsConfig(ConfigModel):
    """Where per-second records are kept."""

    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the records database; empty means the embedded SQLite "
        "database in VIGIL_HOME. PostgreSQL: postgresql+psycopg://user:pass@host/db.",
    )
    roll_seconds: int = Field(
        60,
        ge=0,
        le=86_400,
        description="Also write the records into a new file every this many seconds (0 = off).",
    )
    roll_format: Literal["csv", "parquet"] = Field("csv", description="Format of the rolled files.")
    roll_dir: Path | None = Field(
        None, description="Folder for rolled files; empty means VIGIL_HOME/records/<device-id>."
    )


class RecordsSink:
    """Writes ``record`` events to the posture records table and every other event to ``events``.

    Each record is committed as it arrives (one small transaction per second), so a killed process
    loses at most the second in progress.
    """

    def __init__(self, store: RecordStore) -> None:
        self.store = store

    def publish(self, event: Event) -> None:
        """Store one event."""
        if event.kind == "record":
            self.store.add_posture_records(
                [event.data | {"device_id": event.device_id, "ts": event.timestamp}]
            )
        else:
            self.store.add_events([event])

    def close(self) -> None:
        """Release the database."""
        self.store.close()


class RollingFileSink:
    """Collects ``record`` events and writes them to one file per time window.

    Windows are aligned to multiples of ``roll_seconds`` of frame time. Each finished file is
    written atomically (temporary name, then rename) and handed to ``on_file`` (e.g. an upload).

    Args:
        folder: Where files go; created on the first write.
        device_id: Part of the file names.
        roll_seconds: Window length.
        file_format: ``csv`` or ``parquet``.
        on_file: Called with each finished file's path.
    """

    def __init__(
        self,
        folder: Path,
        device_id: str,
        roll_seconds: int,
        file_format: Literal["csv", "parquet"] = "csv",
        on_file: Callable[[Path], None] | None = None,
    ) -> None:
        self.folder = folder
        self.device_id = device_id
        self.roll_seconds = roll_seconds
        self.file_format = file_format
        self.on_file = on_file
        self.files: list[Path] = []
        self._window: int | None = None
        self._rows: list[dict[str, Any]] = []
        if file_format == "parquet":
            _require_pyarrow()

    def publish(self, event: Event) -> None:
        """Add a record to the current window, writing the previous window's file when it ends."""
        if event.kind != "record":
            return
        window = math.floor(event.timestamp / self.roll_seconds) * self.roll_seconds
        if self._window is not None and window != self._window:
            self._write_window()
        self._window = window
        self._rows.append(
            {k: event.data.get(k) for k in POSTURE_FIELDS}
            | {"device_id": self.device_id, "ts": event.timestamp}
        )

    def close(self) -> None:
        """Write the window in progress."""
        self._write_window()

    def _write_window(self) -> None:
        if not self._rows or self._window is None:
            return
        path = self._free_path(self._window)
        temporary = path.with_name(path.name + ".part")
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            _WRITERS[self.file_format](temporary, self._rows)
            os.replace(temporary, path)
        except OSError as exc:
            raise StorageError(f"cannot write records file {path}: {exc.strerror or exc}") from None
        self._rows = []
        self.files.append(path)
        log.debug("rolled %s", path)
        if self.on_file is not None:
            self.on_file(path)

    def _free_path(self, window: int) -> Path:
        stamp = datetime.fromtimestamp(window, tz=UTC).strftime("%Y%m%dT%H%M%SZ")
        base = f"posture-{self.device_id}-{stamp}"
        path = self.folder / f"{base}.{self.file_format}"
        counter = 1
        while path.exists():
            path = self.folder / f"{base}-{counter}.{self.file_format}"
            counter += 1
        return path


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(POSTURE_FIELDS))
        writer.writeheader()
        writer.writerows(rows)


def _write_parquet(path: Path, rows: list[dict[str, Any]]) -> None:
    pa, pq = _require_pyarrow()
    table = pa.Table.from_pylist([{k: row.get(k) for k in POSTURE_FIELDS} for row in rows])
    pq.write_table(table, path)


def _require_pyarrow() -> tuple[Any, Any]:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise DependencyError("pyarrow", "parquet", "writing Parquet record files") from None
    return pyarrow, pyarrow.parquet


_WRITERS: dict[str, Callable[[Path, list[dict[str, Any]]], None]] = {
    "csv": _write_csv,
    "parquet": _write_parquet,
}
