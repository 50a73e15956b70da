"""Upload local files (rolled record files, clips) to an S3-compatible bucket through the outbox.

:func:`enqueue_upload` puts ``{"path": "/local/file"}`` with the object key as topic into the
outbox; :class:`S3Transport` uploads it when the store is reachable. A local file that is gone
can never be uploaded (dead letter); network errors and server errors are retried.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from vigil.errors import DependencyError, PermanentDeliveryError, SinkError, StorageError
from vigil.sinks.base import OutboxMessage
from vigil.sinks.config import UploadConfig
from vigil.sinks.outbox import Outbox, deliver_in_order
from vigil.sinks.webhook import check_status

_RETRIED_CODES = frozenset({"RequestTimeout", "SlowDown", "Throttling", "ThrottlingException"})


def enqueue_upload(outbox: Outbox, path: str | Path, key: str, *, sink: str = "s3") -> int:
    """Queue the upload of the local file ``path`` to object ``key``; return the message id.

    Raises:
        StorageError: ``path`` is not a file.

    """
    local = Path(path).expanduser().resolve()
    if not local.is_file():
        raise StorageError(f"cannot upload {local}: it is not a file")
    if not key or key.startswith("/"):
        raise StorageError(f"object key {key!r} must be non-empty and relative, e.g. 2026/a.csv")
    return outbox.put(sink, key, json.dumps({"path": str(local)}))


def upload_path(message: OutboxMessage) -> Path:
    """Return the local file of an upload message.

    Raises:
        PermanentDeliveryError: the payload is not ``{"path": ...}`` or the file is gone.

    """
    try:
        path = Path(json.loads(message.payload)["path"])
    except (ValueError, KeyError, TypeError):
        raise PermanentDeliveryError(
            f"upload message {message.id} is not {{'path': ...}} JSON: {message.payload[:80]!r}"
        ) from None
    if not path.is_file():
        raise PermanentDeliveryError(f"cannot upload {path}: the local file no longer exists")
    return path


class S3Transport:
    """Deliver upload messages to an S3 bucket (AWS S3, MinIO, Ceph, ...).

    Args:
        bucket: The bucket; it must exist.
        prefix: A folder put before every object key, e.g. ``"vigil"`` or ``"site-a/vigil"``.
        endpoint_url: Endpoint of an S3-compatible store; None for AWS S3.
        region: Region name.
        access_key_id: Access key; None uses the usual AWS sources (environment, profile).
        secret_access_key: Secret key of ``access_key_id``.
        timeout_seconds: Read timeout of one request.
        name: The sink name of this transport in the outbox.

    """

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        timeout_seconds: float = 60.0,
        name: str = "s3",
    ) -> None:
        self.bucket = bucket
        self.prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self.endpoint_url = endpoint_url
        self.region = region
        self.name = name
        self._credentials = (access_key_id, secret_access_key)
        self._timeout = timeout_seconds
        self._client: Any = None

    @classmethod
    def from_config(cls, config: UploadConfig) -> S3Transport:
        """Build a transport from the ``upload`` config section."""
        secret = config.secret_access_key
        return cls(
            config.bucket,
            prefix=config.prefix,
            endpoint_url=config.endpoint_url,
            region=config.region,
            access_key_id=config.access_key_id,
            secret_access_key=secret.get_secret_value() if secret is not None else None,
            timeout_seconds=config.timeout_seconds,
        )

    @property
    def where(self) -> str:
        """``s3://bucket/prefix`` at the endpoint, for messages."""
        at = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}/{self.prefix}{at}"

    def open(self) -> None:
        """Create the S3 client (no request is made).

        Raises:
            DependencyError: boto3 is not installed.

        """
        if self._client is not None:
            return
        try:
            import boto3
            from botocore.config import Config
        except ModuleNotFoundError:
            raise DependencyError("boto3", "s3", "uploading files to S3") from None
        session = boto3.session.Session(
            aws_access_key_id=self._credentials[0],
            aws_secret_access_key=self._credentials[1],
            region_name=self.region,
        )
        config = Config(
            connect_timeout=min(10.0, self._timeout),
            read_timeout=self._timeout,
            retries={"total_max_attempts": 1, "mode": "standard"},
        )
        self._client = session.client("s3", endpoint_url=self.endpoint_url, config=config)

    def send(self, messages: list[OutboxMessage]) -> int:
        """Upload the files of ``messages`` one by one, in order; return how many went up."""
        return deliver_in_order(messages, self._upload)

    def close(self) -> None:
        """Close the client's connections."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _upload(self, message: OutboxMessage) -> None:
        if self._client is None:
            raise SinkError(f"S3 upload to {self.where} is not open")
        path = upload_path(message)
        try:
            self._client.upload_file(str(path), self.bucket, self.prefix + message.topic)
        except Exception as exc:
            raise _translate(exc, f"upload of {path.name} to {self.where}") from None


def _translate(exc: Exception, what: str) -> SinkError:
    """Turn a boto3/botocore error into SinkError (retry) or PermanentDeliveryError."""
    from botocore.exceptions import ClientError

    cause = exc if isinstance(exc, ClientError) else exc.__context__
    if not isinstance(cause, ClientError):
        return SinkError(f"{what} failed: {type(exc).__name__}: {exc}")
    error = cause.response.get("Error", {})
    status = int(cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500))
    code = str(error.get("Code", ""))
    detail = f"{code}: {error.get('Message', '')}".strip(": ")
    if code in _RETRIED_CODES:
        return SinkError(f"{what} failed: {detail}")
    try:
        check_status(status, "", detail, what)
    except SinkError as classified:
        return classified
    return SinkError(f"{what} failed: {detail}")


__all__ = ["S3Transport", "enqueue_upload", "upload_path"]
