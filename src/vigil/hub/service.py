"""The hub's state behind the routes: database, accounts, roll-ups, ingest, live streams."""

from __future__ import annotations

import functools
import logging
import threading
from datetime import tzinfo
from typing import TYPE_CHECKING

from vigil.hub.accounts import Accounts
from vigil.hub.db import HubDatabase
from vigil.hub.ingest import Ingest
from vigil.hub.queries import PostureQueries
from vigil.hub.rollups import Rollups
from vigil.hub.settings import HubSettings
from vigil.hub.snapshots import Snapshots
from vigil.hub.streams import LiveStreams

if TYPE_CHECKING:
    from vigil.models.api import Models

log = logging.getLogger(__name__)


class Hub:
    """Everything the API works with, made from the settings; nothing is opened until used.

    Args:
        settings: Where the data is, who must log in, the limits.

    Attributes:
        settings: The settings.
        database: The records database with the hub's tables.
        accounts: Users, sessions and device tokens.
        rollups: The posture roll-ups.
        queries: Posture aggregates and summaries.
        snapshots: Snapshot images.
        ingest: Storing batches from pipelines.
        streams: Live frames.
        login_guard: Failed logins per client address.
    """

    def __init__(self, settings: HubSettings) -> None:
        from vigil.hub.auth import LoginGuard

        self.settings = settings
        self.database = HubDatabase(settings.database_url)
        self.accounts = Accounts(self.database, settings.session_hours)
        self.rollups = Rollups(self.database, settings.break_seconds, settings.rollup_chunk_records)
        self.queries = PostureQueries(self.database, self.rollups)
        self.snapshots = Snapshots(self.database, settings.snapshot_store)
        self.ingest = Ingest(self.database, self.snapshots, settings.message_id_days)
        self.streams = LiveStreams(settings.live_frame_seconds, settings.max_live_streams)
        self.login_guard = LoginGuard(
            settings.login_failures_allowed, settings.login_window_seconds
        )
        self._catching_up: threading.Thread | None = None

    def open(self) -> Hub:
        """Open the database (making the tables) so that a bad URL is reported at start-up.

        Raises:
            StorageError, ConfigError, DependencyError: the database cannot be used.
        """
        self.database.open()
        return self

    @functools.cached_property
    def zone(self) -> tzinfo:
        """The time zone of hours and days (the settings', else the system's, read once)."""
        return self.settings.zone

    def models(self) -> Models:
        """Return the model registry and store (the caller closes them)."""
        from vigil.models.api import Models

        return Models(self.settings.registry_url, self.settings.model_store)

    def start_catching_up(self) -> None:
        """Bring the roll-ups up to date in the background (queries wait for it)."""
        if self._catching_up is not None:
            return
        self._catching_up = threading.Thread(
            target=self._catch_up_quietly, name="hub-rollups", daemon=True
        )
        self._catching_up.start()

    def close(self) -> None:
        """Stop a catch-up in progress and release the database."""
        self.rollups.stop()
        if self._catching_up is not None:
            self._catching_up.join(timeout=30)
            self._catching_up = None
        self.database.close()

    def _catch_up_quietly(self) -> None:
        from vigil.errors import VigilError

        try:
            rolled = self.rollups.catch_up()
        except VigilError as exc:
            log.warning("could not roll up the records: %s", exc)
            return
        if rolled:
            log.info("rolled up %d posture records", rolled)
