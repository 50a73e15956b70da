"""Fixtures shared by the whole suite."""

from __future__ import annotations

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
) -> VigilRunner:
    """Run ``vigil ARGS...`` in this process (in ``tmp_path``) and return what it did."""
    monkeypatch.chdir(tmp_path)

    def run(*args: object) -> CliResult:
        capsys.readouterr()
        status = main([str(arg) for arg in args])
        out, err = capsys.readouterr()
        return CliResult(status, out, err)

    return run
