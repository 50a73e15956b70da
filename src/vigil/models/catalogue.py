"""The catalogue of known public models that ``vigil models pull NAME`` can fetch.

Each entry says where the file is, its licence, its sha256 (published by its maintainers or
recorded in a public manifest, never made up here) and the full
:class:`~vigil.models.spec.ModelSpec` that runs it. An entry whose hash is not published has
``sha256: null``; pulling it needs ``--sha256`` from someone who checked the file.

The catalogue ships inside the package (``catalogue.yaml``). ``VIGIL_CATALOGUE`` (or an
explicit path) names another file of the same form that replaces it, e.g. a site's own mirror.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path
from typing import Self
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from vigil.config import ConfigModel, load_config
from vigil.errors import ModelError
from vigil.models.spec import ModelSpec

CATALOGUE_ENV = "VIGIL_CATALOGUE"
_SHA256 = r"^[0-9a-f]{64}$"
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"
_URL = r"^https?://\S+$"


class CatalogueEntry(ConfigModel):
    """One public model file and how to run it."""

    name: str = Field(pattern=_NAME, description="Name to pull it by (and register it under).")
    description: str = Field(max_length=500, description="What the model does, in one line.")
    url: str = Field(pattern=_URL, max_length=2000, description="Where the file is downloaded.")
    file_name: str | None = Field(
        None, max_length=255, description="File name to keep; default: the URL's last segment."
    )
    sha256: str | None = Field(
        None, pattern=_SHA256, description="The file's sha256; null when none is published."
    )
    size: int | None = Field(None, ge=1, description="The file's size in bytes, when known.")
    licence: str = Field(max_length=100, description="The licence of the weights.")
    hash_source: str | None = Field(
        None, max_length=500, description="Where the sha256 was published."
    )
    homepage: str | None = Field(None, max_length=500, description="The model's documentation.")
    spec: ModelSpec = Field(description="How to run the model.")
    labels_url: str | None = Field(
        None, pattern=_URL, max_length=2000, description="A text file of labels, one per line."
    )
    labels_sha256: str | None = Field(
        None, pattern=_SHA256, description="The sha256 of the labels file (required with it)."
    )
    labels_skip: int = Field(
        0, ge=0, le=10, description="Lines of the labels file the model has no output for."
    )

    @model_validator(mode="after")
    def _labels_are_verifiable(self) -> Self:
        if self.labels_url is not None and self.labels_sha256 is None:
            raise ValueError("give labels_sha256 with labels_url")
        if self.labels_url is not None and self.spec.labels is not None:
            raise ValueError("give labels in the spec or a labels_url, not both")
        return self

    @property
    def target_name(self) -> str:
        """The file name to keep: ``file_name`` or the URL's last path segment."""
        return self.file_name or urlsplit(self.url).path.rsplit("/", 1)[-1] or self.name


class Catalogue(ConfigModel):
    """A list of public models."""

    models: list[CatalogueEntry] = Field(
        default_factory=list, max_length=1000, description="The models, by name."
    )

    @model_validator(mode="after")
    def _names_are_unique(self) -> Self:
        seen: set[str] = set()
        for entry in self.models:
            if entry.name in seen:
                raise ValueError(f"the name {entry.name!r} is used twice")
            seen.add(entry.name)
        return self

    def names(self) -> list[str]:
        """Return the names of the entries, in file order."""
        return [entry.name for entry in self.models]

    def entry(self, name: str) -> CatalogueEntry:
        """Return the entry called ``name``.

        Raises:
            ModelError: there is none; the message suggests the closest name.
        """
        for entry in self.models:
            if entry.name == name:
                return entry
        close = difflib.get_close_matches(name, self.names(), n=1, cutoff=0.5)
        hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(self.names())}"
        raise ModelError(f"no model named {name!r} in the catalogue; {hint}")


def packaged_catalogue_path() -> Path:
    """Return the catalogue file that ships with Vigil."""
    return Path(__file__).with_name("catalogue.yaml")


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Read the catalogue: ``path``, else ``VIGIL_CATALOGUE``, else the packaged one.

    Raises:
        ConfigError: the file is missing or invalid (with its line).
    """
    chosen = path if path is not None else os.environ.get(CATALOGUE_ENV) or None
    return load_config(Catalogue, chosen if chosen is not None else packaged_catalogue_path())


__all__ = [
    "CATALOGUE_ENV",
    "Catalogue",
    "CatalogueEntry",
    "load_catalogue",
    "packaged_catalogue_path",
]
