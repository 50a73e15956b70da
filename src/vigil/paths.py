"""Where Vigil keeps local state: one folder, ``VIGIL_HOME`` or the user's data directory."""

from __future__ import annotations

import os
from pathlib import Path

from vigil.errors import StorageError


def home() -> Path:
    """Return the state folder (records database, outbox, rolled files, models), creating it.

    ``VIGIL_HOME`` wins when set; otherwise the platform's user data directory
    (``~/.local/share/vigil`` on Linux). Nothing is written into the current directory.
    """
    configured = os.environ.get("VIGIL_HOME")
    if configured:
        path = Path(configured).expanduser()
    else:
        from platformdirs import user_data_dir

        path = Path(user_data_dir("vigil", appauthor=False))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the Vigil state folder {path}: {exc.strerror}") from None
    return path


def default_database_url() -> str:
    """Return the SQLite URL of the embedded records database inside :func:`home`."""
    return f"sqlite:///{home() / 'vigil.db'}"


def default_outbox_path() -> Path:
    """Return the path of the durable outbox database inside :func:`home`."""
    return home() / "outbox.db"
