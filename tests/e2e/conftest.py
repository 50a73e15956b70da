"""Fixtures of the end-to-end tests: the real ``vigil`` command, in this process or its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.support import CliResult, Spawner, VigilProcess, VigilRunner
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


@pytest.fixture
def spawn(tmp_path: Path) -> Iterator[Spawner]:
    """Start ``vigil ARGS...`` as a process in ``tmp_path``; any still running are killed after."""
    started: list[VigilProcess] = []

    def start(*args: object) -> VigilProcess:
        process = VigilProcess(list(args), tmp_path / f"process-{len(started)}")
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
