"""Fixtures of the end-to-end tests: the real ``vigil`` command, in this process or its own."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.support import Spawner, VigilProcess


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
