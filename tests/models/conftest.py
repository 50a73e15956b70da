"""Fixtures of the model tests: a registry on SQLite or PostgreSQL, stores, an S3 server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.postgres import PostgresServer, postgres_server
from tests.services import MotoS3, moto_s3
from vigil.models.api import Models
from vigil.models.store import LocalBlobStore


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoS3]:
    with moto_s3(directory=tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture
def bucket(s3: MotoS3, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A fresh bucket, with the AWS environment pointing at the moto server."""
    name = f"vigil-{uuid.uuid4().hex[:12]}"
    client = s3.client()
    client.create_bucket(Bucket=name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3.secret_access_key)
    monkeypatch.setenv("AWS_DEFAULT_REGION", s3.region)
    monkeypatch.setenv("VIGIL_S3_ENDPOINT_URL", s3.endpoint_url)
    yield name
    client.close()


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "store")


@pytest.fixture
def sqlite_models(tmp_path: Path, store: LocalBlobStore) -> Iterator[Models]:
    with Models(registry=tmp_path / "registry.db", store=store) as models:
        yield models


@pytest.fixture(params=["sqlite", "postgresql"])
def models(
    request: pytest.FixtureRequest, tmp_path: Path, store: LocalBlobStore
) -> Iterator[Models]:
    """Models over a registry on SQLite and, in a second run, on a real PostgreSQL server."""
    if request.param == "sqlite":
        url: str | Path = tmp_path / "registry.db"
    else:
        server: PostgresServer = request.getfixturevalue("postgres")
        url = server.url
    with Models(registry=url, store=store) as opened:
        yield opened
    if request.param == "postgresql":
        _drop_registry_tables(str(url))


def _drop_registry_tables(url: str) -> None:
    from vigil.models.registry import metadata
    from vigil.storage.records import create_engine

    engine = create_engine(url)
    metadata.drop_all(engine)
    engine.dispose()
