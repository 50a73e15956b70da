"""The model registry: names, immutable numbered versions, tags and aliases, in a database.

SQLite in ``VIGIL_HOME/vigil.db`` by default, PostgreSQL by URL. The registry keeps metadata
only; the files are in a :class:`~vigil.models.store.BlobStore`, named by their sha256.

- A **model** is a name (letters, digits, ``-`` and ``_``) with a description.
- A **version** is immutable: number (1, 2, 3, ... per name, never reused, even after a version
  is removed), sha256, size, file name, format, creation time, the full
  :class:`~vigil.models.spec.ModelSpec`, metrics, lineage and tags.
- An **alias** (a stage such as ``production`` or ``staging``) points a name at one version;
  promoting re-points it. ``latest`` is implicit: the highest version number.

References: ``name`` (latest), ``name:3`` (a version), ``name@production`` (an alias).
"""

from __future__ import annotations

import difflib
import json
import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, TypeVar

import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Connection, Engine

from vigil.errors import ModelError, StorageError
from vigil.models.spec import ModelSpec
from vigil.models.store import Blob, check_sha256
from vigil.redact import redact_url

T = TypeVar("T")

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
ALIAS_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
TAG_KEY_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:/-]{0,63}$")
TAG_VALUE_MAX = 256
LATEST = "latest"
REGISTRY_ENV = "VIGIL_REGISTRY_URL"

metadata = sa.MetaData()

models_table = sa.Table(
    "registry_models",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(64), nullable=False, unique=True),
    sa.Column("description", sa.Text, nullable=True),
    sa.Column("created", sa.Float, nullable=False, doc="Unix seconds"),
    sa.Column("last_version", sa.Integer, nullable=False, doc="highest number ever given"),
)

versions_table = sa.Table(
    "registry_versions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("model_id", sa.Integer, sa.ForeignKey("registry_models.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False, index=True),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("file_name", sa.String(255), nullable=False),
    sa.Column("format", sa.String(16), nullable=False),
    sa.Column("task", sa.String(16), nullable=False),
    sa.Column("created", sa.Float, nullable=False, doc="Unix seconds"),
    sa.Column("spec", sa.Text, nullable=False, doc="the ModelSpec as JSON"),
    sa.Column("metrics", sa.Text, nullable=False, doc="JSON object"),
    sa.Column("lineage", sa.Text, nullable=False, doc="JSON object"),
    sa.UniqueConstraint("model_id", "version", name="uq_registry_version"),
)

tags_table = sa.Table(
    "registry_tags",
    metadata,
    sa.Column("version_id", sa.Integer, sa.ForeignKey("registry_versions.id"), primary_key=True),
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(TAG_VALUE_MAX), nullable=False),
    sa.Index("ix_registry_tags_key_value", "key", "value"),
)

aliases_table = sa.Table(
    "registry_aliases",
    metadata,
    sa.Column("model_id", sa.Integer, sa.ForeignKey("registry_models.id"), primary_key=True),
    sa.Column("alias", sa.String(32), primary_key=True),
    sa.Column("version_id", sa.Integer, sa.ForeignKey("registry_versions.id"), nullable=False),
    sa.Column("updated", sa.Float, nullable=False, doc="Unix seconds"),
)


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A reference to a registered model: ``name``, ``name:3`` or ``name@production``."""

    name: str
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name


_REF = re.compile(r"^(?P<name>[^:@]+)(?::(?P<version>\d+)|@(?P<alias>[^:@]+))?$")


def parse_ref(text: str) -> ModelRef | None:
    """Return the reference ``text`` spells, or None when it is not one (e.g. a file path)."""
    match = _REF.match(text.strip())
    if match is None or not NAME_PATTERN.match(match["name"]):
        return None
    version = int(match["version"]) if match["version"] else None
    alias = match["alias"]
    if alias == LATEST:
        alias = None
    elif alias is not None and not ALIAS_PATTERN.match(alias):
        return None
    return ModelRef(match["name"], version, alias)


def check_name(name: str) -> str:
    """Return ``name`` when it can name a model.

    Raises:
        ModelError: it is empty, too long or has characters other than letters, digits, - and _.
    """
    if not NAME_PATTERN.match(name):
        raise ModelError(
            f"{name!r} cannot name a model: use up to 64 letters, digits, '-' and '_', "
            "starting with a letter or digit"
        )
    return name


def check_alias(alias: str) -> str:
    """Return ``alias`` when it can name a stage such as ``production``.

    Raises:
        ModelError: it is ``latest`` (always the newest version) or not a lowercase word.
    """
    if alias == LATEST:
        raise ModelError("'latest' always means the newest version; choose another stage name")
    if not ALIAS_PATTERN.match(alias):
        raise ModelError(
            f"{alias!r} cannot name a stage: use up to 32 lowercase letters, digits, '-' and '_', "
            "starting with a letter, e.g. production or staging"
        )
    return alias


def check_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    """Return ``tags`` as a plain dictionary of strings when every key and value is valid.

    Raises:
        ModelError: a key has odd characters or a value is too long.
    """
    checked: dict[str, str] = {}
    for key, value in (tags or {}).items():
        if not TAG_KEY_PATTERN.match(str(key)):
            raise ModelError(
                f"tag name {key!r} is not valid: use up to 64 letters, digits and _ . : / -"
            )
        text = str(value)
        if len(text) > TAG_VALUE_MAX:
            raise ModelError(f"tag {key!r} is longer than {TAG_VALUE_MAX} characters")
        checked[str(key)] = text
    return checked


def check_json_object(value: Mapping[str, Any] | None, what: str) -> str:
    """Return ``value`` as JSON text.

    Raises:
        ModelError: it holds something JSON cannot represent (objects, NaN, ...).
    """
    try:
        return json.dumps(dict(value or {}), sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ModelError(
            f"{what} must be JSON values (numbers, text, lists, objects): {exc}"
        ) from None


@dataclass(frozen=True)
class ModelVersion:
    """One registered, immutable version of a model.

    Attributes:
        name: The model's name.
        version: The version number, 1 for the first.
        sha256: The file's sha256; the store keeps the file under it.
        size: The file's size in bytes.
        file_name: The name the file had when it was registered.
        format: ``onnx``, ``tflite``, ``pytorch``, ... (from the file name).
        created: When the version was registered (UTC).
        spec: How to run the model.
        metrics: Evaluation results, e.g. ``{"map50": 0.61}``.
        lineage: Where it came from: ``dataset`` (a manifest hash), ``parent`` (a model
            reference), ``command``, ``source`` (a URL), ...
        tags: Free-form labels, e.g. ``{"site": "barn"}``.
        aliases: Stages that point at this version, e.g. ``("production",)``.
        latest: Whether this is the newest version of its model.
        description: The model's description.
        path: The file on this machine; None until it is fetched from a remote store.
    """

    name: str
    version: int
    sha256: str
    size: int
    file_name: str
    format: str
    created: datetime
    spec: ModelSpec
    metrics: dict[str, Any] = field(default_factory=dict)
    lineage: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    latest: bool = False
    description: str | None = None
    path: Path | None = None

    @property
    def ref(self) -> str:
        """``name:version``, the reference that always means this file."""
        return f"{self.name}:{self.version}"

    @property
    def task(self) -> str:
        """The model's task (from its spec)."""
        return self.spec.task

    def to_dict(self) -> dict[str, Any]:
        """Everything about the version as JSON-ready values."""
        return {
            "name": self.name,
            "version": self.version,
            "ref": self.ref,
            "task": self.task,
            "format": self.format,
            "file_name": self.file_name,
            "size": self.size,
            "sha256": self.sha256,
            "created": self.created.isoformat(),
            "description": self.description,
            "aliases": list(self.aliases),
            "latest": self.latest,
            "tags": dict(self.tags),
            "metrics": dict(self.metrics),
            "lineage": dict(self.lineage),
            "spec": self.spec.model_dump(mode="json"),
            "path": str(self.path) if self.path is not None else None,
        }


@dataclass(frozen=True, slots=True)
class NewVersion:
    """What :meth:`Registry.add_version` records besides the name."""

    blob: Blob
    file_name: str
    format: str
    spec: ModelSpec
    tags: Mapping[str, str] | None = None
    metrics: Mapping[str, Any] | None = None
    lineage: Mapping[str, Any] | None = None
    description: str | None = None


class Registry:
    """Register, find, alias and remove model versions.

    Args:
        url: An SQLAlchemy URL: ``sqlite:///path/vigil.db`` or
            ``postgresql+psycopg://user:pass@host/db``. Nothing is opened until
            :meth:`open` (or the first verb).
    """

    def __init__(self, url: str) -> None:
        self.url = url
        self._engine: Engine | None = None

    def open(self) -> Self:
        """Connect and create the tables when they do not exist."""
        self._connect()
        return self

    def close(self) -> None:
        """Release the database connections."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def add_version(self, name: str, new: NewVersion) -> ModelVersion:
        """Record a new version of ``name`` (creating the model) and return it.

        Raises:
            ModelError: the name, tags, metrics or lineage are not valid.
        """
        check_name(name)
        tags = check_tags(new.tags)
        row = {
            "sha256": check_sha256(new.blob.sha256),
            "size": new.blob.size,
            "file_name": new.file_name[:255],
            "format": new.format[:16],
            "task": new.spec.task,
            "spec": new.spec.model_dump_json(exclude_unset=True),  # defaults stay defaults
            "metrics": check_json_object(new.metrics, "metrics"),
            "lineage": check_json_object(new.lineage, "lineage"),
        }

        def insert(conn: Connection) -> int:
            model_id = self._model_id_for_new_version(conn, name, new.description)
            number = self._next_number(conn, model_id)
            inserted = conn.execute(
                sa.insert(versions_table).values(
                    model_id=model_id, version=number, created=time.time(), **row
                )
            )
            version_id = _inserted_id(inserted)
            if tags:
                conn.execute(
                    sa.insert(tags_table),
                    [{"version_id": version_id, "key": k, "value": v} for k, v in tags.items()],
                )
            return int(number)

        number = self._write("register a model version", insert, retries=2)
        return self.find(ModelRef(name, version=number))

    def versions(
        self,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        task: str | None = None,
    ) -> list[ModelVersion]:
        """Return versions in name and number order, filtered by name, tags (all must match), task.

        Raises:
            ModelError: ``name`` is not registered.
        """
        conditions: list[Any] = []
        if task is not None:
            conditions.append(versions_table.c.task == task)
        for key, value in check_tags(tags).items():
            tagged = sa.select(tags_table.c.version_id).where(
                tags_table.c.key == key, tags_table.c.value == value
            )
            conditions.append(versions_table.c.id.in_(tagged))

        def read(conn: Connection) -> list[ModelVersion]:
            if name is None:
                return self._load(conn, conditions)
            model_id = self._model(conn, name)["id"]
            return self._load(conn, [*conditions, versions_table.c.model_id == model_id])

        return self._read("list model versions", read)

    def find(self, ref: ModelRef) -> ModelVersion:
        """Return the version ``ref`` points at (the latest when it names no version or alias).

        Raises:
            ModelError: the name, version or alias is unknown, with a suggestion.
        """

        def read(conn: Connection) -> ModelVersion:
            model = self._model(conn, ref.name)
            version_id = self._version_id(conn, model, ref)
            return self._load(conn, [versions_table.c.id == version_id])[0]

        return self._read("find a model version", read)

    def find_by_sha256(self, name: str, sha256: str) -> ModelVersion | None:
        """Return the newest version of ``name`` whose file has this sha256, or None."""

        def read(conn: Connection) -> ModelVersion | None:
            found = self._load(
                conn,
                [
                    models_table.c.name == name,
                    versions_table.c.sha256 == check_sha256(sha256),
                ],
            )
            return found[-1] if found else None

        return self._read("find a model version", read)

    def set_alias(self, ref: ModelRef, alias: str) -> ModelVersion:
        """Point ``alias`` (a stage such as ``production``) of the model at ``ref``'s version.

        Raises:
            ModelError: the alias is not a valid stage name or ``ref`` is unknown.
        """
        check_alias(alias)

        def point(conn: Connection) -> int:
            model = self._model(conn, ref.name)
            version_id = self._version_id(conn, model, ref)
            conn.execute(
                sa.delete(aliases_table).where(
                    aliases_table.c.model_id == model["id"], aliases_table.c.alias == alias
                )
            )
            conn.execute(
                sa.insert(aliases_table).values(
                    model_id=model["id"], alias=alias, version_id=version_id, updated=time.time()
                )
            )
            return version_id

        version_id = self._write("set a model alias", point)
        return self._read(
            "find a model version",
            lambda conn: self._load(conn, [versions_table.c.id == version_id])[0],
        )

    def remove(self, ref: ModelRef, *, force: bool = False) -> list[ModelVersion]:
        """Remove one version (``name:3``, ``name@stage``) or, for a bare name, the whole model.

        Args:
            ref: What to remove.
            force: Remove versions that aliases point at too (the aliases go with them).

        Returns:
            The versions removed.

        Raises:
            ModelError: ``ref`` is unknown, or an alias points at a version and not ``force``.
        """
        whole = ref.version is None and ref.alias is None

        def delete(conn: Connection) -> list[ModelVersion]:
            model = self._model(conn, ref.name)
            if whole:
                ids = [
                    int(row[0])
                    for row in conn.execute(
                        sa.select(versions_table.c.id).where(
                            versions_table.c.model_id == model["id"]
                        )
                    )
                ]
            else:
                ids = [self._version_id(conn, model, ref)]
            doomed = self._load(conn, [versions_table.c.id.in_(ids)]) if ids else []
            _refuse_aliased(doomed, force)
            conn.execute(sa.delete(aliases_table).where(aliases_table.c.version_id.in_(ids)))
            conn.execute(sa.delete(tags_table).where(tags_table.c.version_id.in_(ids)))
            conn.execute(sa.delete(versions_table).where(versions_table.c.id.in_(ids)))
            if whole:
                conn.execute(
                    sa.delete(aliases_table).where(aliases_table.c.model_id == model["id"])
                )
                conn.execute(sa.delete(models_table).where(models_table.c.id == model["id"]))
            return doomed

        return self._write("remove a model", delete)

    def is_referenced(self, sha256: str) -> bool:
        """Whether any version still uses the file with this sha256."""
        query = sa.select(versions_table.c.id).where(versions_table.c.sha256 == sha256).limit(1)
        return self._read(
            "look up a model file", lambda conn: conn.execute(query).first() is not None
        )

    def referenced_hashes(self) -> set[str]:
        """Return the sha256 of every file some version uses."""
        query = sa.select(versions_table.c.sha256).distinct()
        return self._read("list model files", lambda conn: {row[0] for row in conn.execute(query)})

    def names(self) -> list[str]:
        """Every model name, sorted."""
        query = sa.select(models_table.c.name).order_by(models_table.c.name)
        return self._read("list models", lambda conn: [row[0] for row in conn.execute(query)])

    # Queries.

    def _model(self, conn: Connection, name: str) -> dict[str, Any]:
        row = (
            conn.execute(sa.select(models_table).where(models_table.c.name == name))
            .mappings()
            .first()
        )
        if row is None:
            known = [r[0] for r in conn.execute(sa.select(models_table.c.name))]
            raise ModelError(f"no model named {name!r} in the registry{_name_hint(name, known)}")
        return dict(row)

    def _version_id(self, conn: Connection, model: Mapping[str, Any], ref: ModelRef) -> int:
        if ref.alias is not None:
            return self._alias_target(conn, model, ref.alias)
        numbers = [
            int(row[0])
            for row in conn.execute(
                sa.select(versions_table.c.version)
                .where(versions_table.c.model_id == model["id"])
                .order_by(versions_table.c.version)
            )
        ]
        if not numbers:
            raise ModelError(f"model {model['name']!r} has no versions left; add one")
        number = numbers[-1] if ref.version is None else ref.version
        if number not in numbers:
            shown = ", ".join(str(n) for n in numbers)
            raise ModelError(
                f"model {model['name']!r} has no version {number}; its versions: {shown}"
            )
        return self._version_row_id(conn, model["id"], number)

    def _alias_target(self, conn: Connection, model: Mapping[str, Any], alias: str) -> int:
        rows = conn.execute(
            sa.select(aliases_table.c.alias, aliases_table.c.version_id).where(
                aliases_table.c.model_id == model["id"]
            )
        ).all()
        targets = {str(row[0]): int(row[1]) for row in rows}
        if alias in targets:
            return targets[alias]
        close = closest(alias, list(targets))
        if close:
            hint = f"; did you mean '{close}'?"
        elif targets:
            hint = f"; its aliases: {', '.join(sorted(targets))}"
        else:
            hint = "; it has none (set one with 'vigil models promote NAME:VERSION --stage S')"
        raise ModelError(f"model {model['name']!r} has no alias {alias!r}{hint}")

    def _version_row_id(self, conn: Connection, model_id: int, number: int) -> int:
        return int(
            conn.execute(
                sa.select(versions_table.c.id).where(
                    versions_table.c.model_id == model_id, versions_table.c.version == number
                )
            ).scalar_one()
        )

    def _model_id_for_new_version(
        self, conn: Connection, name: str, description: str | None
    ) -> int:
        found = conn.execute(
            sa.select(models_table.c.id).where(models_table.c.name == name)
        ).scalar()
        if found is None:
            inserted = conn.execute(
                sa.insert(models_table).values(
                    name=name, description=description, created=time.time(), last_version=0
                )
            )
            return _inserted_id(inserted)
        if description is not None:
            conn.execute(
                sa.update(models_table)
                .where(models_table.c.id == found)
                .values(description=description)
            )
        return int(found)

    def _next_number(self, conn: Connection, model_id: int) -> int:
        # The update locks the model's row until commit, so concurrent registrations queue.
        conn.execute(
            sa.update(models_table)
            .where(models_table.c.id == model_id)
            .values(last_version=models_table.c.last_version + 1)
        )
        return int(
            conn.execute(
                sa.select(models_table.c.last_version).where(models_table.c.id == model_id)
            ).scalar_one()
        )

    def _load(self, conn: Connection, conditions: Sequence[Any]) -> list[ModelVersion]:
        query = (
            sa.select(
                versions_table,
                models_table.c.name,
                models_table.c.description,
            )
            .join(models_table, models_table.c.id == versions_table.c.model_id)
            .where(*conditions)
            .order_by(models_table.c.name, versions_table.c.version)
        )
        rows = [dict(row) for row in conn.execute(query).mappings()]
        ids = [row["id"] for row in rows]
        tags = _tags_of(conn, ids)
        aliases = _aliases_of(conn, ids)
        latest = _latest_numbers(conn, {row["model_id"] for row in rows})
        return [_version_from_row(row, tags[row["id"]], aliases[row["id"]], latest) for row in rows]

    # Plumbing.

    def _connect(self) -> Engine:
        if self._engine is None:
            from vigil.storage.records import create_engine

            engine = create_engine(self.url)
            try:
                self._safely("create the registry tables", lambda: _create_tables(engine))
            except StorageError:
                engine.dispose()
                raise
            self._engine = engine
        return self._engine

    def _read(self, what: str, action: Callable[[Connection], T]) -> T:
        engine = self._connect()

        def run() -> T:
            with engine.connect() as conn:
                return action(conn)

        return self._safely(what, run)

    def _write(self, what: str, action: Callable[[Connection], T], retries: int = 0) -> T:
        engine = self._connect()

        def run() -> T:
            with engine.begin() as conn:
                return action(conn)

        for _ in range(retries):
            try:
                return run()
            except sa.exc.IntegrityError:
                continue  # another writer registered the same new name first: go again
        return self._safely(what, run)

    def _safely(self, what: str, action: Callable[[], T]) -> T:
        try:
            return action()
        except sa.exc.SQLAlchemyError as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            raise StorageError(f"cannot {what} in {redact_url(self.url)}: {reason}") from None


def _create_tables(engine: Engine, attempts: int = 3) -> None:
    """Create the tables that do not exist; another process may be creating them right now."""
    for attempt in range(attempts):
        try:
            metadata.create_all(engine)
            return
        except sa.exc.SQLAlchemyError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.1 * (attempt + 1))


def _inserted_id(result: sa.CursorResult[Any]) -> int:
    key = result.inserted_primary_key
    if key is None:
        raise StorageError("the database gave no id for a new registry row")
    return int(key[0])


def closest(word: str, known: Sequence[str]) -> str | None:
    """Return the known word ``word`` most likely misspells or abbreviates, if any."""
    starting = sorted(k for k in known if k.startswith(word) and word)
    if starting:
        return starting[0]
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return close[0] if close else None


def _name_hint(name: str, known: Sequence[str]) -> str:
    close = closest(name, known)
    if close:
        return f"; did you mean '{close}'?"
    if known:
        shown = ", ".join(sorted(known)[:10])
        more = ", ..." if len(known) > 10 else ""
        return f"; registered models: {shown}{more}"
    return "; the registry is empty (add one with 'vigil models add' or 'vigil models pull')"


def _refuse_aliased(doomed: Iterable[ModelVersion], force: bool) -> None:
    if force:
        return
    for version in doomed:
        if version.aliases:
            stages = ", ".join(version.aliases)
            raise ModelError(
                f"{version.ref} is {stages}: promote another version first, "
                "or remove it anyway with --force"
            )


def _tags_of(conn: Connection, ids: list[int]) -> dict[int, dict[str, str]]:
    found: dict[int, dict[str, str]] = defaultdict(dict)
    if ids:
        query = sa.select(tags_table).where(tags_table.c.version_id.in_(ids))
        for row in conn.execute(query).mappings():
            found[row["version_id"]][row["key"]] = row["value"]
    return found


def _aliases_of(conn: Connection, ids: list[int]) -> dict[int, list[str]]:
    found: dict[int, list[str]] = defaultdict(list)
    if ids:
        query = (
            sa.select(aliases_table.c.version_id, aliases_table.c.alias)
            .where(aliases_table.c.version_id.in_(ids))
            .order_by(aliases_table.c.alias)
        )
        for version_id, alias in conn.execute(query):
            found[version_id].append(alias)
    return found


def _latest_numbers(conn: Connection, model_ids: set[int]) -> dict[int, int]:
    if not model_ids:
        return {}
    query = (
        sa.select(versions_table.c.model_id, sa.func.max(versions_table.c.version))
        .where(versions_table.c.model_id.in_(model_ids))
        .group_by(versions_table.c.model_id)
    )
    return {int(model_id): int(number) for model_id, number in conn.execute(query)}


def _version_from_row(
    row: Mapping[str, Any], tags: dict[str, str], aliases: list[str], latest: Mapping[int, int]
) -> ModelVersion:
    ref = f"{row['name']}:{row['version']}"
    try:
        spec = ModelSpec.model_validate_json(row["spec"])
    except ValidationError as exc:
        problem = exc.errors()[0]["msg"]
        raise ModelError(
            f"the stored spec of {ref} is no longer valid ({problem}); register it again"
        ) from None
    return ModelVersion(
        name=row["name"],
        version=int(row["version"]),
        sha256=row["sha256"],
        size=int(row["size"]),
        file_name=row["file_name"],
        format=row["format"],
        created=datetime.fromtimestamp(row["created"], UTC),
        spec=spec,
        metrics=json.loads(row["metrics"]),
        lineage=json.loads(row["lineage"]),
        tags=tags,
        aliases=tuple(aliases),
        latest=latest.get(row["model_id"]) == row["version"],
        description=row["description"],
    )


__all__ = [
    "LATEST",
    "ModelRef",
    "ModelVersion",
    "NewVersion",
    "Registry",
    "check_alias",
    "check_json_object",
    "check_name",
    "check_tags",
    "parse_ref",
]
