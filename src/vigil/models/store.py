"""Content-addressed model files: each file is kept once, named by its sha256.

The layout is the same in a local folder and in an S3-compatible bucket::

    <root>/sha256/ab/cdef0123...        the bytes whose sha256 is "abcdef0123..."
    <root>/sha256/ab/cdef0123....onnx   a hard link to them with the suffix runtimes go by
    <root>/tmp/                         files being written (local folders only)

However many names or versions point at a file, and whatever it was called, its bytes are stored
once; a link with a suffix (made when a path with that suffix is asked for) is the same file on
disk, not a copy. A blob is written to a temporary file in the store's own folder, then renamed
into place, so readers never see half a file and a crash leaves at most a temporary file (which
``vigil models gc`` removes). Blobs never change: a local blob is made read-only.

A bucket store (``s3://bucket/prefix``) keeps a local cache of the blobs it has served, so
runtimes always get a local path. Its endpoint and credentials come from the usual AWS
environment variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``, ``AWS_DEFAULT_REGION``,
``AWS_ENDPOINT_URL``), or ``VIGIL_S3_ENDPOINT_URL`` for a MinIO, Ceph or other S3-compatible
server.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import stat
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, TypeVar

from vigil.errors import ConfigError, DependencyError, StorageError
from vigil.redact import redact_url

T = TypeVar("T")

SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
SUFFIX_PATTERN = re.compile(r"^\.[A-Za-z0-9_]{1,16}$")
CHUNK_BYTES = 1 << 20
STORE_ENV = "VIGIL_MODEL_STORE"
S3_ENDPOINT_ENV = "VIGIL_S3_ENDPOINT_URL"


@dataclass(frozen=True, slots=True)
class Blob:
    """One stored file: its sha256 (lowercase hex), its size and when it was stored."""

    sha256: str
    size: int
    modified: float = 0.0
    """Unix seconds when the blob was written (0 when the store does not know)."""


def check_sha256(value: str) -> str:
    """Return ``value`` in lowercase when it is a sha256 hex digest.

    Raises:
        StorageError: it is not 64 hexadecimal digits.
    """
    lowered = value.strip().lower()
    if not SHA256_PATTERN.match(lowered):
        raise StorageError(f"not a sha256 digest (64 hexadecimal digits): {value!r}")
    return lowered


def sha256_of(path: Path) -> str:
    """Return the sha256 of the file at ``path``, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as source:
        for chunk in iter(lambda: source.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()


def copy_hashing(source: IO[bytes], target: IO[bytes]) -> tuple[str, int]:
    """Copy ``source`` into ``target``; return the sha256 and the number of bytes copied."""
    digest = hashlib.sha256()
    size = 0
    for chunk in iter(lambda: source.read(CHUNK_BYTES), b""):
        digest.update(chunk)
        target.write(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


class BlobStore(ABC):
    """Where model files live, each under its sha256."""

    @property
    @abstractmethod
    def location(self) -> str:
        """The store's folder or URL, for messages (passwords hidden)."""

    @abstractmethod
    def stat(self, sha256: str) -> Blob | None:
        """Return the stored blob with this sha256, or None when there is none."""

    @abstractmethod
    def staged(self) -> contextlib.AbstractContextManager[Path]:
        """Give a new temporary path in the store's folder; it is deleted on exit unless adopted."""

    @abstractmethod
    def adopt(self, path: Path, sha256: str) -> Blob:
        """Move the complete file ``path`` (from :meth:`staged`, hashing to ``sha256``) in."""

    @abstractmethod
    def path(self, sha256: str, *, verify: bool = False, suffix: str = "") -> Path:
        """Return a local path to the blob, fetching it first when the store is remote.

        Args:
            sha256: The blob.
            verify: Hash the local file and compare before returning it.
            suffix: A file suffix such as ``.onnx`` the path must end in (runtimes choose by
                it); the path is then a hard link to the blob.

        Raises:
            StorageError: the blob is missing or (with ``verify``) damaged.
        """

    @abstractmethod
    def cached_path(self, sha256: str, suffix: str = "") -> Path | None:
        """Return the local file of the blob when it is on this machine, without fetching it."""

    @abstractmethod
    def remove(self, sha256: str) -> None:
        """Delete the blob (and any cached copy); deleting a missing blob is not an error."""

    @abstractmethod
    def blobs(self) -> Iterator[Blob]:
        """Every blob in the store."""

    @abstractmethod
    def remove_stale_temporaries(self, older_than: float) -> int:
        """Delete temporary files not touched for ``older_than`` seconds; return how many."""

    def has(self, sha256: str) -> bool:
        """Whether the store holds a blob with this sha256."""
        return self.stat(sha256) is not None

    def put(self, source: Path) -> Blob:
        """Copy the file ``source`` into the store (once: an existing blob is kept).

        Raises:
            StorageError: the file cannot be read or the store cannot be written.
        """
        with self.staged() as part:
            try:
                with source.open("rb") as reader, part.open("wb") as writer:
                    sha256, _ = copy_hashing(reader, writer)
            except OSError as exc:
                raise StorageError(f"cannot copy {source} into {self.location}: {exc}") from None
            return self.adopt(part, sha256)

    def verify(self, sha256: str) -> None:
        """Hash the blob's bytes and compare them with its name.

        Raises:
            StorageError: the blob is missing or its content no longer matches its sha256.
        """
        self.path(sha256, verify=True)


class LocalBlobStore(BlobStore):
    """Blobs in a local folder.

    Args:
        root: The folder; created on the first write.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root).expanduser()

    @property
    def location(self) -> str:
        """The store's folder."""
        return str(self.root)

    def blob_path(self, sha256: str) -> Path:
        """Where the blob with this sha256 is (or would be) kept."""
        digest = check_sha256(sha256)
        return self.root / "sha256" / digest[:2] / digest[2:]

    def stat(self, sha256: str) -> Blob | None:
        """Return the stored blob with this sha256, or None when there is none."""
        try:
            info = self.blob_path(sha256).stat()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StorageError(f"cannot read the model store {self.root}: {exc}") from None
        return Blob(check_sha256(sha256), info.st_size, info.st_mtime)

    @contextlib.contextmanager
    def staged(self) -> Iterator[Path]:
        """Give a new temporary path in ``<root>/tmp``; it is deleted on exit unless adopted."""
        folder = self.root / "tmp"
        _make_folder(folder)
        part = folder / f"{uuid.uuid4().hex}.part"
        try:
            yield part
        finally:
            with contextlib.suppress(OSError):
                part.unlink(missing_ok=True)

    def adopt(self, path: Path, sha256: str) -> Blob:
        """Rename the complete file ``path`` into place (or drop it when the blob exists)."""
        target = self.blob_path(sha256)
        existing = self.stat(sha256)
        if existing is not None:
            path.unlink(missing_ok=True)
            return existing
        _make_folder(target.parent)
        try:
            path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
            os.replace(path, target)
        except OSError as exc:
            raise StorageError(f"cannot store a model file in {self.root}: {exc}") from None
        blob = self.stat(sha256)
        if blob is None:  # removed by someone else in between
            raise StorageError(f"the model file {target} vanished while it was stored")
        return blob

    def path(self, sha256: str, *, verify: bool = False, suffix: str = "") -> Path:
        """Return the blob's path (or a link to it ending in ``suffix``).

        Raises:
            StorageError: the blob is missing or (with ``verify``) damaged.
        """
        target = self.blob_path(sha256)
        if not target.is_file():
            raise StorageError(
                f"model file sha256:{sha256[:12]} is missing from the store {self.root}; "
                "remove the version or register the file again"
            )
        if verify:
            actual = sha256_of(target)
            if actual != check_sha256(sha256):
                raise StorageError(
                    f"model file {target} is damaged: its content hashes to {actual[:12]}..., "
                    f"not {sha256[:12]}...; remove the version or register the file again"
                )
        return self._named(target, suffix)

    def cached_path(self, sha256: str, suffix: str = "") -> Path | None:
        """Return the blob's path (or a link ending in ``suffix``) when the blob exists."""
        target = self.blob_path(sha256)
        return self._named(target, suffix) if target.is_file() else None

    def remove(self, sha256: str) -> None:
        """Delete the blob and its links; deleting a missing blob is not an error."""
        target = self.blob_path(sha256)
        try:
            for link in target.parent.glob(f"{target.name}.*"):
                link.unlink(missing_ok=True)
            target.unlink(missing_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot delete {target}: {exc}") from None
        with contextlib.suppress(OSError):
            target.parent.rmdir()  # only when empty

    def _named(self, target: Path, suffix: str) -> Path:
        """Return ``target`` itself, or a hard link to it whose name ends in ``suffix``."""
        if not suffix:
            return target
        if not SUFFIX_PATTERN.match(suffix):
            raise StorageError(f"{suffix!r} is not a file suffix such as .onnx")
        named = target.with_name(target.name + suffix.lower())
        if named.exists():
            return named
        try:
            os.link(target, named)
        except FileExistsError:
            pass  # made by another process just now
        except OSError:
            try:  # a file system without hard links
                named.symlink_to(target.name)
            except FileExistsError:
                pass
            except OSError as exc:
                raise StorageError(f"cannot name {target} with {suffix}: {exc}") from None
        return named

    def blobs(self) -> Iterator[Blob]:
        """Every blob in the folder."""
        folder = self.root / "sha256"
        if not folder.is_dir():
            return
        for prefix in sorted(folder.iterdir()):
            for item in sorted(prefix.iterdir()) if prefix.is_dir() else []:
                name = prefix.name + item.name
                if SHA256_PATTERN.match(name) and item.is_file():
                    info = item.stat()
                    yield Blob(name, info.st_size, info.st_mtime)

    def remove_stale_temporaries(self, older_than: float) -> int:
        """Delete files in ``<root>/tmp`` not touched for ``older_than`` seconds."""
        folder = self.root / "tmp"
        if not folder.is_dir():
            return 0
        deadline = time.time() - older_than
        removed = 0
        for item in folder.iterdir():
            with contextlib.suppress(FileNotFoundError):
                if item.is_file() and item.stat().st_mtime < deadline:
                    item.unlink()
                    removed += 1
        return removed


class S3BlobStore(BlobStore):
    """Blobs in an S3-compatible bucket, with a local cache that runtimes read from.

    Args:
        bucket: The bucket; it must exist.
        prefix: A folder inside the bucket, e.g. ``"vigil/models"``.
        cache: The local store that keeps fetched blobs (and stages uploads).
        endpoint_url: An S3-compatible endpoint; None for AWS S3 or ``AWS_ENDPOINT_URL``.
        region: Region name; None for the AWS environment's default.
        timeout_seconds: Connect and read timeout of one request.
    """

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        cache: LocalBlobStore,
        endpoint_url: str | None = None,
        region: str | None = None,
        timeout_seconds: float = 60.0,
    ) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.cache = cache
        self.endpoint_url = endpoint_url
        self.region = region
        self._timeout = timeout_seconds
        self._client: Any = None

    @classmethod
    def from_url(cls, url: str, cache_root: Path) -> S3BlobStore:
        """Build a store from ``s3://bucket/prefix``; the cache goes under ``cache_root``.

        Raises:
            ConfigError: the URL names no bucket.
        """
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if len(bucket) < 3:
            raise ConfigError(f"not a bucket URL: {url!r}; use s3://bucket or s3://bucket/prefix")
        cache = LocalBlobStore(cache_root / "s3" / bucket / prefix.strip("/"))
        endpoint = os.environ.get(S3_ENDPOINT_ENV) or None
        return cls(bucket, prefix=prefix, cache=cache, endpoint_url=endpoint)

    @property
    def location(self) -> str:
        """``s3://bucket/prefix`` and the endpoint, for messages."""
        at = f" at {redact_url(self.endpoint_url)}" if self.endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix}{at}"

    def key(self, sha256: str) -> str:
        """Return the object key of the blob with this sha256."""
        digest = check_sha256(sha256)
        return f"{self.prefix}sha256/{digest[:2]}/{digest[2:]}"

    def stat(self, sha256: str) -> Blob | None:
        """Return the blob in the bucket with this sha256, or None when there is none."""
        try:
            head = self._call(
                "look up a model file",
                lambda s3: s3.head_object(Bucket=self.bucket, Key=self.key(sha256)),
            )
        except _NotFound:
            return None
        modified = head.get("LastModified")
        return Blob(
            check_sha256(sha256),
            int(head.get("ContentLength", 0)),
            modified.timestamp() if modified is not None else 0.0,
        )

    def staged(self) -> contextlib.AbstractContextManager[Path]:
        """Give a new temporary path in the local cache's folder."""
        return self.cache.staged()

    def adopt(self, path: Path, sha256: str) -> Blob:
        """Keep the file in the local cache and upload it unless the bucket already has it."""
        cached = self.cache.adopt(path, sha256)
        existing = self.stat(sha256)
        if existing is not None:
            return existing
        source = str(self.cache.blob_path(sha256))
        self._call(
            "upload a model file",
            lambda s3: s3.upload_file(source, self.bucket, self.key(sha256)),
        )
        return self.stat(sha256) or cached

    def path(self, sha256: str, *, verify: bool = False, suffix: str = "") -> Path:
        """Return the cached copy, downloading (and checking) it first when it is not cached."""
        if self.cache.has(sha256):
            return self.cache.path(sha256, verify=verify, suffix=suffix)
        with self.cache.staged() as part:
            self._download(sha256, part)
            actual = sha256_of(part)
            if actual != check_sha256(sha256):
                raise StorageError(
                    f"{self.location}{self.key(sha256)} is damaged: its content hashes to "
                    f"{actual[:12]}..., not {sha256[:12]}..."
                )
            self.cache.adopt(part, actual)
        return self.cache.path(sha256, suffix=suffix)

    def cached_path(self, sha256: str, suffix: str = "") -> Path | None:
        """Return the cached copy when there is one."""
        return self.cache.cached_path(sha256, suffix)

    def remove(self, sha256: str) -> None:
        """Delete the object and the cached copy."""
        self._call(
            "delete a model file",
            lambda s3: s3.delete_object(Bucket=self.bucket, Key=self.key(sha256)),
        )
        self.cache.remove(sha256)

    def blobs(self) -> Iterator[Blob]:
        """Every blob under the prefix."""
        pages = self._call(
            "list model files",
            lambda s3: list(
                s3.get_paginator("list_objects_v2").paginate(
                    Bucket=self.bucket, Prefix=f"{self.prefix}sha256/"
                )
            ),
        )
        for page in pages:
            for item in page.get("Contents", []):
                name = "".join(str(item["Key"]).removeprefix(f"{self.prefix}sha256/").split("/"))
                if SHA256_PATTERN.match(name):
                    yield Blob(name, int(item["Size"]), item["LastModified"].timestamp())

    def remove_stale_temporaries(self, older_than: float) -> int:
        """Delete stale temporary files of the local cache (a bucket has none)."""
        return self.cache.remove_stale_temporaries(older_than)

    def close(self) -> None:
        """Close the client's connections."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _download(self, sha256: str, part: Path) -> None:
        try:
            self._call(
                "download a model file",
                lambda s3: s3.download_file(self.bucket, self.key(sha256), str(part)),
            )
        except _NotFound:
            raise StorageError(
                f"model file sha256:{sha256[:12]} is missing from {self.location}; "
                "remove the version or register the file again"
            ) from None

    def _s3(self) -> Any:
        if self._client is None:
            try:
                import boto3
                from botocore.config import Config
            except ModuleNotFoundError:
                raise DependencyError("boto3", "s3", "a model store in S3") from None
            config = Config(
                connect_timeout=min(10.0, self._timeout),
                read_timeout=self._timeout,
                retries={"total_max_attempts": 3, "mode": "standard"},
            )
            session = boto3.session.Session(region_name=self.region)
            self._client = session.client("s3", endpoint_url=self.endpoint_url, config=config)
        return self._client

    def _call(self, what: str, action: Callable[[Any], T]) -> T:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return action(self._s3())
        except ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            if code in ("404", "NoSuchKey", "NotFound"):
                raise _NotFound from None
            detail = f"{code}: {error.get('Message', '')}".strip(": ")
            raise StorageError(f"cannot {what} in {self.location}: {detail}") from None
        except BotoCoreError as exc:
            raise StorageError(f"cannot {what} in {self.location}: {exc}") from None


class _NotFound(Exception):
    """An object the store asked for is not in the bucket."""


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"cannot create the model store folder {folder}: {exc}") from None


def open_store(location: str | Path | None = None) -> BlobStore:
    """Return the store at ``location``: a folder, ``s3://bucket/prefix``, or the default.

    With no location, ``VIGIL_MODEL_STORE`` wins when set, else ``VIGIL_HOME/models``.
    Nothing is read or written until the store is used.

    Raises:
        ConfigError: the location is a URL of a kind Vigil cannot store models in.
    """
    from vigil.paths import home

    chosen = str(location) if location is not None else os.environ.get(STORE_ENV, "")
    if not chosen:
        return LocalBlobStore(home() / "models")
    if chosen.startswith("s3://"):
        return S3BlobStore.from_url(chosen, home() / "cache")
    if "://" in chosen:
        raise ConfigError(
            f"cannot keep models at {redact_url(chosen)!r}: use a folder or s3://bucket/prefix"
        )
    return LocalBlobStore(chosen)


__all__ = [
    "Blob",
    "BlobStore",
    "LocalBlobStore",
    "S3BlobStore",
    "check_sha256",
    "open_store",
    "sha256_of",
]
