"""The one exception tree of Vigil.

Every error a user can cause or fix is a :class:`VigilError`. Library code raises the most
specific subclass with a message that says what went wrong and what to do about it; the CLI
prints that message on one line and exits non-zero, never a traceback.

::

    VigilError
    ├── ConfigError        a config file or option is invalid
    ├── DependencyError    an optional extra is not installed
    ├── SourceError        a camera, stream, video or image cannot be opened or read
    ├── ModelError         a model file cannot be loaded or run
    ├── StorageError       a database or file store cannot be used
    └── SinkError          a sink cannot deliver
        └── PermanentDeliveryError   retrying will not help (the message is dead-lettered)
"""

from __future__ import annotations


class VigilError(Exception):
    """Base class for every error Vigil raises on purpose."""


class ConfigError(VigilError):
    """A configuration file, field or command-line option is invalid."""


class DependencyError(VigilError):
    """An optional dependency is missing; the message names the extra to install."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(f"{purpose} needs the '{package}' package: pip install 'vigil[{extra}]'")
        self.package = package
        self.extra = extra


class SourceError(VigilError):
    """A frame source cannot be opened or stopped delivering frames."""


class ModelError(VigilError):
    """A model file cannot be loaded, or its inputs and outputs are not understood."""


class StorageError(VigilError):
    """A database or file store cannot be opened or written."""


class SinkError(VigilError):
    """A sink failed to deliver a message; the outbox will retry it."""


class PermanentDeliveryError(SinkError):
    """A sink refused a message in a way that retrying cannot fix.

    Args:
        message: Why, in one line.
        whole_batch: Every message of the batch is refused, not only the first (e.g. the
            credentials are refused): the outbox moves them all to the dead letters at once.
    """

    def __init__(self, message: str, *, whole_batch: bool = False) -> None:
        super().__init__(message)
        self.whole_batch = whole_batch


__all__ = [
    "ConfigError",
    "DependencyError",
    "ModelError",
    "PermanentDeliveryError",
    "SinkError",
    "SourceError",
    "StorageError",
    "VigilError",
]
