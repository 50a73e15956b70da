"""Fixtures of the ``vigil predict`` tests: the real command in this process, tiny models."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.support import CliResult, VigilRunner
from vigil.cli.main import main


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
