"""What a ``.tflite`` file says about itself: TFLite Metadata (name, normalisation, label files).

Models with metadata keep a ``TFLITE_METADATA`` flatbuffer in one of their buffers (schema:
``tensorflow/lite/schema/schema.fbs`` and ``metadata_schema.fbs``). Only the fields Vigil uses
are read, with the ``flatbuffers`` package's table reader; the files named as labels are stored
in a zip archive appended to the model.
"""

from __future__ import annotations

import logging
import struct
from dataclasses import dataclass
from typing import Any

from vigil.errors import DependencyError

log = logging.getLogger(__name__)

_METADATA_NAME = "TFLITE_METADATA"
_NORMALIZATION_OPTIONS = 1  # ProcessUnitOptions union member
_LABEL_FILE_TYPES = (2, 3)  # AssociatedFileType TENSOR_AXIS_LABELS, TENSOR_VALUE_LABELS


@dataclass(frozen=True)
class TFLiteMetadata:
    """The parts of a model's TFLite Metadata that Vigil uses.

    Attributes:
        entries: Names of the model's metadata entries (``TFLITE_METADATA``,
            ``min_runtime_version``, ...).
        name: The model's name, e.g. ``"MobileNetV1 image classifier"``.
        mean: Input normalisation: subtract this from float inputs, per channel.
        std: Input normalisation: then divide by this.
        label_files: Files of the appended zip archive that name output classes, in the order
            the outputs list them.
    """

    entries: tuple[str, ...] = ()
    name: str | None = None
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    label_files: tuple[str, ...] = ()


class _Table:
    """A flatbuffer table, read field by field (field index i sits at vtable slot 4 + 2 i)."""

    def __init__(self, table: Any) -> None:
        self._t = table

    @classmethod
    def root(cls, data: bytes) -> _Table:
        buffer = bytearray(data)
        (start,) = struct.unpack_from("<I", buffer, 0)  # the root table's offset
        return cls(_flatbuffers_table()(buffer, start))

    def _offset(self, field: int) -> int:
        return int(self._t.Offset(4 + 2 * field))

    def string(self, field: int) -> str | None:
        offset = self._offset(field)
        if not offset:
            return None
        return bytes(self._t.String(offset + self._t.Pos)).decode("utf-8", "replace")

    def integer(self, field: int, fmt: str) -> int:
        offset = self._offset(field)
        if not offset:
            return 0
        size = struct.calcsize(fmt)
        at = self._t.Pos + offset
        return int(struct.unpack_from(fmt, self._t.Bytes[at : at + size])[0])

    def table(self, field: int) -> _Table | None:
        offset = self._offset(field)
        if not offset:
            return None
        return self._at(self._t.Indirect(offset + self._t.Pos))

    def tables(self, field: int) -> list[_Table]:
        offset = self._offset(field)
        if not offset:
            return []
        start = self._t.Vector(offset)
        return [self._at(self._t.Indirect(start + 4 * i)) for i in range(self._t.VectorLen(offset))]

    def floats(self, field: int) -> tuple[float, ...]:
        offset = self._offset(field)
        if not offset:
            return ()
        start, count = self._t.Vector(offset), self._t.VectorLen(offset)
        return struct.unpack_from(f"<{count}f", self._t.Bytes, start)

    def raw(self, field: int) -> bytes:
        offset = self._offset(field)
        if not offset:
            return b""
        start, count = self._t.Vector(offset), self._t.VectorLen(offset)
        return bytes(self._t.Bytes[start : start + count])

    def _at(self, position: int) -> _Table:
        return _Table(_flatbuffers_table()(self._t.Bytes, position))


def _flatbuffers_table() -> Any:
    try:
        from flatbuffers.table import Table  # type: ignore[import-untyped]
    except ImportError:
        raise DependencyError("flatbuffers", "tflite", "reading TFLite metadata") from None
    return Table


def read_tflite_metadata(data: bytes) -> TFLiteMetadata:
    """Read the metadata of a ``.tflite`` file's contents; empty where the file has none.

    Raises:
        DependencyError: the ``flatbuffers`` package is missing.
    """
    _flatbuffers_table()
    try:
        return _read(data)
    except (IndexError, ValueError, struct.error) as exc:  # a damaged or unusual flatbuffer
        log.warning("cannot read the TFLite metadata of this model (%s); running without it", exc)
        return TFLiteMetadata()


def _read(data: bytes) -> TFLiteMetadata:
    model = _Table.root(data)
    entries = model.tables(6)  # Model.metadata: [Metadata{name, buffer}]
    names = tuple(entry.string(0) or "" for entry in entries)
    if _METADATA_NAME not in names:
        return TFLiteMetadata(entries=names)
    buffer_index = entries[names.index(_METADATA_NAME)].integer(1, "<I")
    content = _buffer(model.tables(4)[buffer_index], data)  # Model.buffers
    return _parse_model_metadata(_Table.root(content), names)


def _buffer(buffer: _Table, data: bytes) -> bytes:
    """Return a buffer's bytes: inline, or at (offset, size) in the file for large models."""
    inline = buffer.raw(0)
    if inline:
        return inline
    offset, size = buffer.integer(1, "<Q"), buffer.integer(2, "<Q")
    return data[offset : offset + size]


def _parse_model_metadata(metadata: _Table, entries: tuple[str, ...]) -> TFLiteMetadata:
    subgraphs = metadata.tables(3)  # ModelMetadata.subgraph_metadata
    if not subgraphs:
        return TFLiteMetadata(entries=entries, name=metadata.string(0))
    inputs, outputs = subgraphs[0].tables(2), subgraphs[0].tables(3)
    mean, std = _normalization(inputs[0]) if inputs else (None, None)
    label_files = tuple(name for tensor in outputs for name in _label_files(tensor))
    return TFLiteMetadata(entries, metadata.string(0), mean, std, label_files)


def _normalization(tensor: _Table) -> tuple[tuple[float, ...] | None, tuple[float, ...] | None]:
    for unit in tensor.tables(4):  # TensorMetadata.process_units
        options = unit.table(1)  # ProcessUnit.options (field 0 is its union type)
        if unit.integer(0, "<B") == _NORMALIZATION_OPTIONS and options is not None:
            mean, std = options.floats(0), options.floats(1)
            if mean and std:
                return mean, std
    return None, None


def _label_files(tensor: _Table) -> list[str]:
    files = tensor.tables(6)  # TensorMetadata.associated_files: [AssociatedFile]
    return [
        f.string(0) or ""
        for f in files
        if f.integer(2, "<b") in _LABEL_FILE_TYPES and not f.string(3)  # no locale: the default
    ]
