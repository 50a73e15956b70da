"""Pull models from the catalogue or the Hugging Face Hub into the store and the registry.

``pull("movenet-lightning")`` downloads a catalogue entry; ``pull("hf://owner/repo/path@rev")``
downloads ``{HF_ENDPOINT}/{owner}/{repo}/resolve/{rev}/{path}`` (``HF_ENDPOINT`` defaults to
https://huggingface.co; ``HF_TOKEN``, when set, is sent to it as a bearer token).

A download streams into a temporary file in the store's folder, hashing as it goes. The sha256
it must have comes from the catalogue, from ``sha256=``, or for Hub files from the
``X-Linked-Etag``/``ETag`` header (the Hub sends the sha256 of files kept in Git LFS). A file
whose hash differs is refused: it is deleted and nothing is registered. A cut connection, a
timeout or an HTTP error leaves nothing behind either. A file already in the store is not
downloaded again, and pulling what a name already has registers nothing new.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from vigil.errors import ModelError, StorageError
from vigil.models.catalogue import CatalogueEntry, load_catalogue
from vigil.models.registry import ModelVersion, NewVersion, check_name
from vigil.models.spec import ModelSpec
from vigil.models.store import Blob, BlobStore, check_sha256
from vigil.redact import redact_url

if TYPE_CHECKING:
    import httpx

    from vigil.models.api import Models, SpecLike

log = logging.getLogger("vigil.models")

HF_ENDPOINT_ENV = "HF_ENDPOINT"
HF_TOKEN_ENV = "HF_TOKEN"
DEFAULT_HF_ENDPOINT = "https://huggingface.co"
DEFAULT_TIMEOUT_SECONDS = 30.0
LABELS_MAX_BYTES = 1 << 20
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
Progress = Callable[[int, int | None], None]


@dataclass(frozen=True, slots=True)
class PullResult:
    """What a pull did.

    Attributes:
        version: The registered version (new, or the one that already had this file).
        downloaded: Whether the file came over the network (False when the store had it).
        registered: Whether a new version was registered.
    """

    version: ModelVersion
    downloaded: bool
    registered: bool


@dataclass(frozen=True, slots=True)
class PullPlan:
    """Where a file comes from, what it must hash to and how to register it."""

    name: str
    url: str
    file_name: str
    spec: ModelSpec
    sha256: str | None = None
    size: int | None = None
    trust_etag: bool = False
    headers: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    description: str | None = None
    labels: CatalogueEntry | None = None
    """The catalogue entry whose labels file must be fetched into the spec."""


def pull(
    models: Models,
    source: str,
    *,
    name: str | None = None,
    sha256: str | None = None,
    task: str | None = None,
    spec: SpecLike | None = None,
    catalogue: str | Path | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    progress: Progress | None = None,
) -> PullResult:
    """Download, verify and register a catalogue model or an ``hf://`` file.

    Args:
        models: The registry and store to pull into.
        source: A catalogue name or ``hf://owner/repo/path/in/repo[@revision]``.
        name: Register under this name (default: the catalogue name or the file's stem).
        sha256: The sha256 the file must have (required for catalogue entries without one).
        task: The task of an ``hf://`` file (or a check of a catalogue entry's).
        spec: A ModelSpec or YAML file for an ``hf://`` file, instead of ``task``.
        catalogue: A catalogue file instead of ``VIGIL_CATALOGUE`` or the packaged one.
        timeout: Seconds to wait to connect and for each piece of the answer.
        progress: Called with (bytes so far, total or None) while downloading.

    Raises:
        ModelError: unknown source, no verifiable hash, download failure or hash mismatch.
    """
    plan = plan_pull(source, name=name, sha256=sha256, task=task, spec=spec, catalogue=catalogue)
    if plan.sha256 is not None:
        existing = _already_registered(models, plan.name, plan.sha256)
        if existing is not None:
            return PullResult(existing, downloaded=False, registered=False)
    import httpx

    with httpx.Client(timeout=httpx.Timeout(timeout), follow_redirects=True) as client:
        full_spec = _with_labels(client, plan)
        fetched = download(client, models.store, plan, progress)
    existing = _already_registered(models, plan.name, fetched.blob.sha256)
    if existing is not None:
        return PullResult(existing, downloaded=fetched.downloaded, registered=False)
    version = models.add_blob(plan.name, _new_version(plan, fetched, full_spec))
    return PullResult(version, downloaded=fetched.downloaded, registered=True)


def plan_pull(
    source: str,
    *,
    name: str | None = None,
    sha256: str | None = None,
    task: str | None = None,
    spec: SpecLike | None = None,
    catalogue: str | Path | None = None,
) -> PullPlan:
    """Work out what a pull fetches and how it is checked, without any network access.

    Raises:
        ModelError: the source is unknown or malformed, or no hash can verify the file.
    """
    given = _given_sha256(sha256)
    if source.startswith("hf://"):
        return _hub_plan(source, name=name, sha256=given, task=task, spec=spec)
    if "://" in source:
        raise ModelError(
            f"cannot pull {redact_url(source)!r}: give a catalogue name "
            "(see 'vigil models catalogue') or hf://owner/repo/path[@revision]"
        )
    entry = load_catalogue(catalogue).entry(source)
    return _catalogue_plan(entry, name=name, sha256=given, task=task)


def _given_sha256(sha256: str | None) -> str | None:
    if sha256 is None:
        return None
    try:
        return check_sha256(sha256)
    except StorageError as exc:
        raise ModelError(f"--sha256: {exc}") from None


def _catalogue_plan(
    entry: CatalogueEntry, *, name: str | None, sha256: str | None, task: str | None
) -> PullPlan:
    if entry.sha256 is None and sha256 is None:
        raise ModelError(
            f"the catalogue has no published sha256 for {entry.name!r}; check the file from "
            f"{redact_url(entry.url)} and pull it with --sha256 HASH"
        )
    if entry.sha256 is not None and sha256 is not None and entry.sha256 != sha256:
        raise ModelError(
            f"--sha256 {sha256[:12]}... differs from the catalogue's {entry.sha256[:12]}... "
            f"for {entry.name!r}"
        )
    if task is not None and task != entry.spec.task:
        raise ModelError(f"{entry.name!r} is a {entry.spec.task} model, not {task}")
    lineage: dict[str, Any] = {"source": redact_url(entry.url), "catalogue": entry.name}
    if entry.hash_source:
        lineage["hash_source"] = entry.hash_source
    return PullPlan(
        name=check_name(name or entry.name),
        url=entry.url,
        file_name=entry.target_name,
        spec=entry.spec,
        sha256=entry.sha256 or sha256,
        size=entry.size,
        tags={"source": "catalogue", "licence": entry.licence},
        lineage=lineage,
        description=entry.description,
        labels=entry if entry.labels_url else None,
    )


def parse_hub_ref(source: str) -> tuple[str, str, str]:
    """Split ``hf://owner/repo/path/in/repo[@revision]`` into (owner/repo, path, revision).

    Raises:
        ModelError: it names no owner, repository and file.
    """
    body = source.removeprefix("hf://")
    revision = "main"
    if "@" in body.rsplit("/", 1)[-1]:
        body, revision = body.rsplit("@", 1)
    parts = body.split("/")
    if len(parts) < 3 or not all(parts) or not revision:
        raise ModelError(
            f"{source!r} is not a Hub file: use hf://owner/repo/path/to/model.onnx[@revision]"
        )
    return f"{parts[0]}/{parts[1]}", "/".join(parts[2:]), revision


def hub_url(repo: str, path: str, revision: str) -> str:
    """Return the download URL of a file on the Hub (or the ``HF_ENDPOINT`` server)."""
    endpoint = os.environ.get(HF_ENDPOINT_ENV) or DEFAULT_HF_ENDPOINT
    return f"{endpoint.rstrip('/')}/{repo}/resolve/{quote(revision, safe='')}/{quote(path)}"


def _hub_plan(
    source: str,
    *,
    name: str | None,
    sha256: str | None,
    task: str | None,
    spec: SpecLike | None,
) -> PullPlan:
    from vigil.models.api import build_spec

    repo, path, revision = parse_hub_ref(source)
    file_name = path.rsplit("/", 1)[-1]
    if spec is None and task is None:
        raise ModelError(f"say what {file_name} does: give --task (classify, detect, pose, embed)")
    full_spec = build_spec(Path(file_name), task=task, spec=spec, sidecar=False)
    token = os.environ.get(HF_TOKEN_ENV)
    return PullPlan(
        name=check_name(name or _name_from_file(file_name)),
        url=hub_url(repo, path, revision),
        file_name=file_name,
        spec=full_spec,
        sha256=sha256,
        trust_etag=True,
        headers={"Authorization": f"Bearer {token}"} if token else {},
        tags={"source": "huggingface"},
        lineage={"source": source, "revision": revision},
    )


def _name_from_file(file_name: str) -> str:
    stem = file_name.split(".", 1)[0]
    cleaned = re.sub(r"[^A-Za-z0-9_-]+", "-", stem).strip("-_")[:64]
    return cleaned or "model"


def _already_registered(models: Models, name: str, sha256: str) -> ModelVersion | None:
    found = models.registry.find_by_sha256(name, sha256)
    if found is None or not models.store.has(sha256):
        return None
    return models.get(found.ref)


def _new_version(plan: PullPlan, fetched: Fetched, spec: ModelSpec) -> NewVersion:
    from vigil.models.api import model_format

    lineage = {**plan.lineage, "verified": fetched.verified}
    return NewVersion(
        blob=fetched.blob,
        file_name=plan.file_name,
        format=model_format(Path(plan.file_name)),
        spec=spec,
        tags=plan.tags,
        lineage=lineage,
        description=plan.description,
    )


# Downloading.


@dataclass(frozen=True, slots=True)
class Fetched:
    """A file :func:`download` put in the store (or found there)."""

    blob: Blob
    downloaded: bool
    """False when the store already had the file."""
    verified: bool
    """Whether a known sha256 (catalogue, ``--sha256``, the Hub's ETag) was checked."""


def download(
    client: httpx.Client,
    store: BlobStore,
    plan: PullPlan,
    progress: Progress | None = None,
) -> Fetched:
    """Fetch ``plan.url`` into ``store`` unless it already has the file; verify the sha256.

    Raises:
        ModelError: HTTP error, cut connection, timeout, size or hash mismatch; nothing is kept.
    """
    if plan.sha256 is not None and (cached := store.stat(plan.sha256)) is not None:
        return Fetched(cached, downloaded=False, verified=True)
    transfer = _Transfer(plan, progress)
    try:
        with client.stream("GET", plan.url, headers=plan.headers) as response:
            _raise_for_status(response, plan)
            expected = plan.sha256 or (_etag_sha256(response) if plan.trust_etag else None)
            if expected is not None and (cached := store.stat(expected)) is not None:
                return Fetched(cached, downloaded=False, verified=True)
            transfer.total = _content_length(response, plan)
            with store.staged() as part:
                sha256 = transfer.save(response.iter_bytes(), part)
                _check_hash(sha256, expected, plan)
                blob = store.adopt(part, sha256)
    except _http_errors() as exc:
        raise ModelError(_describe_http_failure(exc, plan, transfer.received)) from None
    if expected is None:
        log.warning("%s was not verified: no sha256 was published for it", _where(plan))
    return Fetched(blob, downloaded=True, verified=expected is not None)


def _http_errors() -> tuple[type[Exception], ...]:
    import httpx

    return (httpx.HTTPError, httpx.StreamError)


@dataclass
class _Transfer:
    """One download in progress: bytes so far, the expected total, who to tell."""

    plan: PullPlan
    progress: Progress | None
    total: int | None = None
    received: int = 0

    def save(self, chunks: Iterator[bytes], part: Path) -> str:
        """Write ``chunks`` to ``part`` and return their sha256."""
        digest = hashlib.sha256()
        try:
            with part.open("wb") as target:
                for chunk in chunks:
                    self._count(len(chunk))
                    digest.update(chunk)
                    target.write(chunk)
        except OSError as exc:
            raise StorageError(
                f"cannot write the download of {self.plan.file_name}: {exc}"
            ) from None
        return digest.hexdigest()

    def _count(self, size: int) -> None:
        self.received += size
        limit = self.plan.size
        if limit is not None and self.received > limit:
            raise ModelError(
                f"{_where(self.plan)} sent more than the {limit} bytes the file has; "
                "refused it and registered nothing"
            )
        if self.progress is not None:
            self.progress(self.received, self.total)


def _check_hash(actual: str, expected: str | None, plan: PullPlan) -> None:
    if expected is not None and actual != expected:
        raise ModelError(
            f"{plan.file_name} from {_where(plan)} has sha256 {actual[:16]}..., expected "
            f"{expected[:16]}...; refused it and registered nothing"
        )


def _raise_for_status(response: httpx.Response, plan: PullPlan) -> None:
    if response.is_success:
        return
    reason = f"HTTP {response.status_code} {response.reason_phrase}".strip()
    hint = ""
    if response.status_code in (401, 403) and plan.trust_etag:
        hint = f"; a private or gated repository needs {HF_TOKEN_ENV}"
    elif response.status_code == 404:
        hint = "; check the name, path and revision"
    raise ModelError(f"cannot download {_where(plan)}: {reason}{hint}")


def _content_length(response: httpx.Response, plan: PullPlan) -> int | None:
    header = response.headers.get("content-length")
    total = int(header) if header and header.isdigit() else None
    if total is not None and plan.size is not None and total != plan.size:
        raise ModelError(
            f"{_where(plan)} offers {total} bytes but {plan.file_name} has {plan.size}; "
            "refused it and registered nothing"
        )
    return total


def _etag_sha256(response: httpx.Response) -> str | None:
    """Return the sha256 the Hub sends for a Git LFS file (on the redirect or the answer)."""
    for answer in (*response.history, response):
        for header in ("x-linked-etag", "etag"):
            value = str(answer.headers.get(header, "")).removeprefix("W/").strip('"').lower()
            if _HEX64.match(value):
                return value
    return None


def _describe_http_failure(exc: Exception, plan: PullPlan, received: int) -> str:
    import httpx

    where = _where(plan)
    if isinstance(exc, httpx.TimeoutException):
        return f"cannot download {where}: no answer in time (after {received} bytes)"
    if isinstance(exc, httpx.ConnectError):
        return f"cannot download {where}: cannot connect ({exc})"
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError):
        return (
            f"cannot download {where}: the connection closed after {received} bytes, "
            "before the whole file; nothing was kept, try again"
        )
    return f"cannot download {where}: {type(exc).__name__}: {exc}"


def _where(plan: PullPlan) -> str:
    return redact_url(plan.url)


# Labels files.


def _with_labels(client: httpx.Client, plan: PullPlan) -> ModelSpec:
    entry = plan.labels
    if entry is None or entry.labels_url is None or entry.labels_sha256 is None:
        return plan.spec
    where = redact_url(entry.labels_url)
    try:
        response = client.get(entry.labels_url)
    except _http_errors() as exc:
        raise ModelError(f"cannot download the labels {where}: {exc}") from None
    if not response.is_success:
        raise ModelError(f"cannot download the labels {where}: HTTP {response.status_code}")
    body = response.content[: LABELS_MAX_BYTES + 1]
    actual = hashlib.sha256(body).hexdigest()
    if len(body) > LABELS_MAX_BYTES or actual != entry.labels_sha256:
        raise ModelError(
            f"the labels {where} have sha256 {actual[:16]}..., expected "
            f"{entry.labels_sha256[:16]}...; refused them and registered nothing"
        )
    lines = [line.strip() for line in body.decode("utf-8", errors="replace").splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    labels = lines[entry.labels_skip :]
    return ModelSpec.model_validate({**plan.spec.model_dump(), "labels": labels})


__all__ = [
    "DEFAULT_HF_ENDPOINT",
    "Fetched",
    "PullPlan",
    "PullResult",
    "download",
    "hub_url",
    "parse_hub_ref",
    "plan_pull",
    "pull",
]
