"""Snapshot images of events in a content-addressed store (a local folder or a bucket).

The layout and the code are those of the model store (:mod:`vigil.models.store`): each image is
kept once, named by its sha256, so the same snapshot sent twice takes no extra room.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from vigil.errors import StorageError
from vigil.hub import db
from vigil.hub.db import HubDatabase
from vigil.models.store import BlobStore, check_sha256, open_store

JPEG_START = b"\xff\xd8\xff"
"""Every JPEG file starts with these bytes."""


def is_jpeg(data: bytes) -> bool:
    """Whether ``data`` looks like a JPEG file (its start-of-image marker)."""
    return data.startswith(JPEG_START)


class Snapshots:
    """Snapshot images: bytes in a blob store, one row each in ``hub_snapshots``.

    Args:
        database: The hub's database.
        location: A folder or ``s3://bucket/prefix``; None for ``VIGIL_HOME/hub/snapshots``.
    """

    def __init__(self, database: HubDatabase, location: str | None = None) -> None:
        self.database = database
        self.location = location
        self._store: BlobStore | None = None

    @property
    def store(self) -> BlobStore:
        """The blob store (made on first use)."""
        if self._store is None:
            from vigil.paths import home

            self._store = open_store(self.location or home() / "hub" / "snapshots")
        return self._store

    def put(self, data: bytes) -> str:
        """Store one image; return its sha256."""
        digest = hashlib.sha256(data).hexdigest()
        if self.store.has(digest):
            return digest
        with self.store.staged() as part:
            try:
                part.write_bytes(data)
            except OSError as exc:
                raise StorageError(
                    f"cannot write a snapshot into {self.store.location}: {exc}"
                ) from None
            self.store.adopt(part, digest)
        return digest

    def record(self, conn: Connection, device_id: str, digests: dict[str, int]) -> None:
        """Note stored images (sha256 -> size) of a device in the snapshots table."""
        now = time.time()
        rows = [
            {"sha256": digest, "device_id": device_id, "size": size, "created": now}
            for digest, size in digests.items()
        ]
        db.insert_ignoring_duplicates(conn, db.snapshots, rows)

    def path(self, sha256: str) -> Path | None:
        """Return the image's file on this machine, or None when the hub has no such snapshot."""
        digest = check_sha256(sha256)
        query = sa.select(db.snapshots.c.sha256).where(db.snapshots.c.sha256 == digest)
        if self.database.read("look up a snapshot", lambda c: c.execute(query).first()) is None:
            return None
        if not self.store.has(digest):
            return None
        return self.store.path(digest)
