"""Fixtures shared by the whole suite."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli import CliResult, VigilRunner
from vigil.cli.main import main

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def vigil_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own state folder; nothing touches the user's."""
    home = tmp_path / "vigil-home"
    monkeypatch.setenv("VIGIL_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The folder of real photos, clips and models; tests skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not found at {SHARED_DATA} (only in the development checkout)")
    return SHARED_DATA


@pytest.fixture
def vigil(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[VigilRunner]:
    """Run ``vigil ARGS...`` in this process (in ``tmp_path``) and return what it did.

    The command points the ``vigil`` logger at this test's captured stderr; the logger is put
    back as it was afterwards, so later tests neither write to a closed stream nor lose their
    log records to it.
    """
    monkeypatch.chdir(tmp_path)
    logger = logging.getLogger("vigil")
    handlers, level, propagate = logger.handlers[:], logger.level, logger.propagate

    def run(*args: object) -> CliResult:
        capsys.readouterr()
        status = main([str(arg) for arg in args])
        out, err = capsys.readouterr()
        return CliResult(status, out, err)

    try:
        yield run
    finally:
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate
