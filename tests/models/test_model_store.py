"""The content-addressed file store: on disk, and in S3 (a real moto server on loopback)."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest

from tests.models.support import sha256, write_model
from tests.services import MotoS3, free_port
from vigil.errors import ConfigError, StorageError
from vigil.models.api import Models
from vigil.models.store import LocalBlobStore, S3BlobStore, open_store

WEIGHTS = b"\x08\x07onnx weights" * 500


def test_a_file_is_stored_under_its_sha256(store: LocalBlobStore, tmp_path: Path) -> None:
    blob = store.put(write_model(tmp_path / "pose.onnx", WEIGHTS))

    digest = sha256(WEIGHTS)
    target = store.root / "sha256" / digest[:2] / digest[2:]
    assert (blob.sha256, blob.size) == (digest, len(WEIGHTS))
    assert target.read_bytes() == WEIGHTS
    assert store.path(digest) == target
    assert stat.S_IMODE(target.stat().st_mode) & 0o222 == 0  # read-only
    assert list(store.blobs()) == [store.stat(digest)]
    assert list((store.root / "tmp").iterdir()) == []  # nothing half-written left


def test_the_same_bytes_under_other_names_are_kept_once(
    store: LocalBlobStore, tmp_path: Path
) -> None:
    first = store.put(write_model(tmp_path / "a.onnx", WEIGHTS))
    second = store.put(write_model(tmp_path / "b" / "other-name.tflite", WEIGHTS))
    third = store.put(write_model(tmp_path / "c.onnx", WEIGHTS + b"!"))

    assert first.sha256 == second.sha256 != third.sha256
    assert sorted(b.sha256 for b in store.blobs()) == sorted([first.sha256, third.sha256])


def test_paths_with_a_suffix_are_links_to_the_one_file(
    store: LocalBlobStore, tmp_path: Path
) -> None:
    blob = store.put(write_model(tmp_path / "m.onnx", WEIGHTS))
    plain = store.path(blob.sha256)

    as_onnx = store.path(blob.sha256, suffix=".onnx")
    as_tflite = store.cached_path(blob.sha256, ".TFLite")

    assert as_onnx == plain.with_name(plain.name + ".onnx")
    assert as_tflite == plain.with_name(plain.name + ".tflite")
    assert {p.stat().st_ino for p in (plain, as_onnx, as_tflite)} == {plain.stat().st_ino}
    assert as_onnx.read_bytes() == WEIGHTS
    assert [b.sha256 for b in store.blobs()] == [blob.sha256]
    with pytest.raises(StorageError, match="not a file suffix"):
        store.path(blob.sha256, suffix="/../x")

    store.remove(blob.sha256)
    assert not plain.parent.exists()  # links and blob gone together


def test_verify_finds_a_damaged_file(store: LocalBlobStore, tmp_path: Path) -> None:
    blob = store.put(write_model(tmp_path / "m.onnx", WEIGHTS))
    store.verify(blob.sha256)  # intact
    target = store.blob_path(blob.sha256)
    target.chmod(stat.S_IRUSR | stat.S_IWUSR)
    target.write_bytes(WEIGHTS[:-1] + b"X")

    assert store.path(blob.sha256) == target  # no check unless asked
    with pytest.raises(StorageError, match="is damaged: its content hashes to"):
        store.verify(blob.sha256)
    with pytest.raises(StorageError, match="is damaged"):
        store.path(blob.sha256, verify=True)


def test_a_missing_blob_is_a_clear_error(store: LocalBlobStore) -> None:
    missing = sha256(b"never stored")
    assert store.stat(missing) is None and store.cached_path(missing) is None
    with pytest.raises(StorageError, match=f"sha256:{missing[:12]} is missing from the store"):
        store.path(missing)
    store.remove(missing)  # removing nothing is fine


@pytest.mark.parametrize("bad", ["abc", "g" * 64, "", "../" + "a" * 61])
def test_only_sha256_digests_name_blobs(store: LocalBlobStore, bad: str) -> None:
    with pytest.raises(StorageError, match="not a sha256 digest"):
        store.blob_path(bad)


def test_a_failed_write_leaves_no_temporary_file(store: LocalBlobStore) -> None:
    with pytest.raises(RuntimeError), store.staged() as part:
        part.write_bytes(b"half")
        raise RuntimeError("connection lost")
    assert list((store.root / "tmp").iterdir()) == []


def test_stale_temporaries_are_removed_fresh_ones_kept(store: LocalBlobStore) -> None:
    folder = store.root / "tmp"
    folder.mkdir(parents=True)
    old, new = folder / "old.part", folder / "new.part"
    old.write_bytes(b"x")
    new.write_bytes(b"y")
    os.utime(old, (time.time() - 7200, time.time() - 7200))

    assert store.remove_stale_temporaries(3600) == 1
    assert sorted(p.name for p in folder.iterdir()) == ["new.part"]


def test_open_store_picks_the_location(
    tmp_path: Path, vigil_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = open_store()
    assert isinstance(default, LocalBlobStore) and default.root == vigil_home / "models"

    monkeypatch.setenv("VIGIL_MODEL_STORE", str(tmp_path / "shared"))
    chosen = open_store()
    assert isinstance(chosen, LocalBlobStore) and chosen.root == tmp_path / "shared"

    bucket = open_store("s3://models-bucket/site-a/vigil")
    assert isinstance(bucket, S3BlobStore)
    assert (bucket.bucket, bucket.prefix) == ("models-bucket", "site-a/vigil/")
    assert bucket.cache.root == vigil_home / "cache" / "s3" / "models-bucket" / "site-a/vigil"


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ("gs://bucket/models", "use a folder or s3://bucket/prefix"),
        ("https://user:secret@host/models", "https://user:\\*\\*\\*@host/models"),
        ("s3://ab", "not a bucket URL"),
    ],
)
def test_open_store_refuses_other_urls(location: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        open_store(location)


# S3.


def s3_store(bucket: str, root: Path, prefix: str = "vigil/models") -> S3BlobStore:
    store = open_store(f"s3://{bucket}/{prefix}")
    assert isinstance(store, S3BlobStore)
    store.cache = LocalBlobStore(root)
    return store


def test_s3_store_uploads_once_and_serves_a_local_copy(
    s3: MotoS3, bucket: str, tmp_path: Path
) -> None:
    writer = s3_store(bucket, tmp_path / "cache-a")
    blob = writer.put(write_model(tmp_path / "m.onnx", WEIGHTS))
    again = writer.put(write_model(tmp_path / "copy.onnx", WEIGHTS))

    client = s3.client()
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    client.close()
    digest = sha256(WEIGHTS)
    assert keys == [f"vigil/models/sha256/{digest[:2]}/{digest[2:]}"]
    assert blob.sha256 == again.sha256 == digest and blob.size == len(WEIGHTS)

    reader = s3_store(bucket, tmp_path / "cache-b")  # another machine: empty cache
    assert reader.cached_path(digest) is None
    local = reader.path(digest, verify=True)
    assert local.read_bytes() == WEIGHTS
    assert local.is_relative_to(tmp_path / "cache-b")
    assert [b.sha256 for b in reader.blobs()] == [digest]

    reader.remove(digest)
    assert reader.stat(digest) is None and not local.exists()
    writer.close()
    reader.close()


def test_s3_store_refuses_a_damaged_object(s3: MotoS3, bucket: str, tmp_path: Path) -> None:
    store = s3_store(bucket, tmp_path / "cache")
    digest = sha256(WEIGHTS)
    client = s3.client()
    client.put_object(Bucket=bucket, Key=store.key(digest), Body=b"not the weights")
    client.close()

    with pytest.raises(StorageError, match="is damaged"):
        store.path(digest)
    assert store.cached_path(digest) is None
    assert list((tmp_path / "cache" / "tmp").iterdir()) == []
    with pytest.raises(StorageError, match="is missing from s3://"):
        store.path(sha256(b"never uploaded"))
    store.close()


def test_s3_store_unreachable_is_one_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("VIGIL_S3_ENDPOINT_URL", f"http://127.0.0.1:{free_port()}")
    store = s3_store("nobody-bucket", tmp_path / "cache")
    with pytest.raises(StorageError, match=r"cannot look up a model file in s3://nobody-bucket"):
        store.put(write_model(tmp_path / "m.onnx"))
    store.close()


def test_models_registered_through_s3_resolve_on_another_machine(
    bucket: str, tmp_path: Path, vigil_home: Path
) -> None:
    registry = tmp_path / "registry.db"
    location = f"s3://{bucket}/fleet"
    with Models(registry=registry, store=location) as hub:
        version = hub.register(write_model(tmp_path / "pose.onnx", WEIGHTS), "pose", task="pose")
        hub.promote("pose:1", "production")
    cache = vigil_home / "cache" / "s3" / bucket / "fleet"
    for path in (cache / "sha256").rglob("*"):
        if path.is_file():
            path.unlink()  # a device that never saw the file

    with Models(registry=registry, store=location) as device:
        assert device.versions()[0].path is None  # not on this machine yet
        resolved = device.resolve("pose@production")
        assert resolved.path.read_bytes() == WEIGHTS
        assert (resolved.name, resolved.version, resolved.sha256) == ("pose", 1, version.sha256)
        assert device.versions()[0].path == resolved.path
        removal = device.remove("pose", force=True)
    assert removal.freed == [version.sha256]
    assert not resolved.path.exists()
