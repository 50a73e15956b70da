"""Fixtures of the sink tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.services import Mosquitto, MotoS3, mosquitto, moto_s3, wait_until
from vigil.sinks.outbox import Outbox


@pytest.fixture
def outbox(tmp_path: Path) -> Iterator[Outbox]:
    with Outbox(tmp_path / "outbox.db") as box:
        yield box


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A mosquitto broker shared by the sink tests (use a topic prefix of your own)."""
    with mosquitto(directory=tmp_path_factory.mktemp("mosquitto")) as running:
        yield running


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    """A moto S3 server shared by the sink tests (make a bucket of your own)."""
    with moto_s3(directory=tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture(autouse=True)
def no_threads_left_running() -> Iterator[None]:
    """Every sink a test starts must stop its delivery and network threads when closed."""
    before = set(threading.enumerate())

    def left() -> list[str]:
        prefixes = ("vigil-dispatch", "paho-mqtt")
        return [t.name for t in set(threading.enumerate()) - before if t.name.startswith(prefixes)]

    yield
    wait_until(lambda: not left(), timeout=3)
    assert not left(), f"threads still running after the test: {left()}"
