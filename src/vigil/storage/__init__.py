"""Embedded storage: the records database (SQLite by default, PostgreSQL by URL)."""

from vigil.storage.records import POSTURE_FIELDS, RecordStore

__all__ = ["POSTURE_FIELDS", "RecordStore"]
