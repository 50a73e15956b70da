"""S3 uploads through the outbox against a real moto S3 server on loopback."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.services import MotoS3, free_port, moto_s3, wait_until
from tests.sinks.support import sinks_config
from vigil.errors import ConfigError, PermanentDeliveryError, StorageError
from vigil.sinks.base import OutboxMessage
from vigil.sinks.network import NetworkSinks
from vigil.sinks.outbox import Outbox
from vigil.sinks.s3 import enqueue_upload, upload_path


@pytest.fixture
def bucket(s3: MotoS3) -> Iterator[str]:
    name = f"vigil-{uuid.uuid4().hex[:12]}"
    client = s3.client()
    client.create_bucket(Bucket=name)
    yield name
    client.close()


def upload_sinks(tmp_path: Path, endpoint: str, bucket: str, **upload: Any) -> NetworkSinks:
    settings = {
        "bucket": bucket,
        "endpoint_url": endpoint,
        "region": "us-east-1",
        "access_key_id": "testing",
        "secret_access_key": "testing",
        "timeout_seconds": 5,
        **upload,
    }
    return NetworkSinks(sinks_config(tmp_path, upload=settings), device_id="desk-1")


def object_body(s3: MotoS3, bucket: str, key: str) -> bytes:
    client = s3.client()
    try:
        return bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    finally:
        client.close()


def csv_file(tmp_path: Path, name: str = "2026-11-20.csv") -> Path:
    path = tmp_path / name
    path.write_text("ts,state\n1790000000,sitting\n1790000001,standing\n")
    return path


def test_a_file_is_uploaded_under_the_prefix(tmp_path: Path, s3: MotoS3, bucket: str) -> None:
    source = csv_file(tmp_path)
    with upload_sinks(tmp_path, s3.endpoint_url, bucket, prefix="desk-1/") as sinks:
        assert sinks.sinks == []  # uploads take files, not events
        sinks.enqueue_upload(source, "records/2026-11-20.csv")
        assert wait_until(lambda: sinks.outbox.pending() == 0, timeout=10)
        assert sinks.outbox.dead_letters() == []

    assert object_body(s3, bucket, "desk-1/records/2026-11-20.csv") == source.read_bytes()


def test_uploads_wait_while_the_server_is_down_and_resume_in_a_new_process(
    tmp_path: Path,
) -> None:
    port = free_port()
    with moto_s3(port, directory=tmp_path / "moto") as s3:
        endpoint = s3.endpoint_url
        s3.stop()
        source = csv_file(tmp_path)
        sinks = upload_sinks(tmp_path, endpoint, "late-bucket").start()
        try:
            sinks.enqueue_upload(source, "a.csv")
            time.sleep(0.5)  # several failed attempts
            [stats] = sinks.stats()
        finally:
            sinks.close(grace_seconds=0.2)
        assert (stats.sink, stats.pending, stats.dead) == ("s3", 1, 0)

        s3.start()  # a fresh server on the same port
        client = s3.client()
        client.create_bucket(Bucket="late-bucket")
        client.close()
        with upload_sinks(tmp_path, endpoint, "late-bucket") as sinks:
            assert wait_until(lambda: sinks.outbox.pending() == 0, timeout=10)
        assert object_body(s3, "late-bucket", "a.csv") == source.read_bytes()


def test_a_local_file_that_is_gone_is_dead_lettered(
    tmp_path: Path, s3: MotoS3, bucket: str
) -> None:
    gone, kept = csv_file(tmp_path, "gone.csv"), csv_file(tmp_path, "kept.csv")
    sinks = upload_sinks(tmp_path, s3.endpoint_url, bucket)
    with Outbox(tmp_path / "outbox.db") as outbox:
        enqueue_upload(outbox, gone, "gone.csv")
        enqueue_upload(outbox, kept, "kept.csv")
    gone.unlink()

    with sinks:
        assert wait_until(lambda: sinks.outbox.pending() == 0, timeout=10)
        [letter] = sinks.outbox.dead_letters("s3")

    assert "the local file no longer exists" in letter.reason
    assert letter.message.topic == "gone.csv"
    assert object_body(s3, bucket, "kept.csv") == kept.read_bytes()


def test_a_missing_bucket_is_dead_lettered(tmp_path: Path, s3: MotoS3) -> None:
    with upload_sinks(tmp_path, s3.endpoint_url, "no-such-bucket") as sinks:
        sinks.enqueue_upload(csv_file(tmp_path), "a.csv")
        assert wait_until(lambda: sinks.outbox.pending() == 0, timeout=10)
        [letter] = sinks.outbox.dead_letters("s3")
    assert "NoSuchBucket" in letter.reason


def test_enqueue_refuses_what_is_not_a_file(tmp_path: Path) -> None:
    with Outbox(tmp_path / "o.db") as outbox:
        with pytest.raises(StorageError, match="is not a file"):
            enqueue_upload(outbox, tmp_path / "missing.csv", "k")
        with pytest.raises(StorageError, match="is not a file"):
            enqueue_upload(outbox, tmp_path, "k")
        with pytest.raises(StorageError, match="must be non-empty and relative"):
            enqueue_upload(outbox, csv_file(tmp_path), "/absolute")
        assert outbox.pending() == 0


def test_upload_messages_store_the_absolute_path(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    csv_file(tmp_path, "rel.csv")
    with Outbox(tmp_path / "o.db") as outbox:
        enqueue_upload(outbox, "rel.csv", "k.csv")
        [message] = outbox.fetch("s3", 1)
    assert json.loads(message.payload) == {"path": str(tmp_path / "rel.csv")}
    assert upload_path(message) == tmp_path / "rel.csv"


@pytest.mark.parametrize("payload", [b"not json", b"{}", b'{"path": 5}', b"[]"])
def test_a_malformed_upload_message_is_permanent(payload: bytes) -> None:
    message = OutboxMessage(id=1, sink="s3", topic="k", payload=payload, created=0.0)
    with pytest.raises(PermanentDeliveryError):
        upload_path(message)


def test_enqueue_without_an_upload_section_is_a_config_error(tmp_path: Path) -> None:
    sinks = NetworkSinks(sinks_config(tmp_path), device_id="desk-1")
    with pytest.raises(ConfigError, match="uploads are off"):
        sinks.enqueue_upload(csv_file(tmp_path), "k")
