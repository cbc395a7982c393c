"""Serialized tf.Examples for a block of typed columns, built a field at a time with numpy.

The bytes are exactly `tf.train.Example.SerializeToString(deterministic=True)`
of the example CsvExampleGen builds from the same row: features in key byte
order; every column present, a missing cell as an empty list of the column's
kind, a column with no value at all (UNKNOWN) as an empty Feature.  Hashing
them therefore splits rows as TFX's _PartitionFn splits CsvExampleGen's.

Why not tfx_bsl's RecordBatchToExamplesEncoder: it fills a protobuf map and
serializes it in hash order, so its bytes differ row by row from the
deterministic ones, and re-serializing each of its examples in Python costs
about 70 us a row, 20x the rest of ingestion.

How: a row is a sequence of parts (tag bytes, varints, values), the same
sequence for every row; each part is a rows x width byte table (a constant,
a varint table, the float32 bytes, text padded to its longest value) with the
bytes each row uses.  The tables side by side, masked to the used bytes and
read row by row, are the serialized rows.  Text longer than 128 bytes is
spliced in with Arrow instead of padded.
"""
from __future__ import annotations

from typing import NamedTuple, Optional, Sequence, Union

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tfx_bsl.coders.csv_decoder import ColumnType

_PADDED_TEXT = 128  # longest text copied through a padded table
_CHUNK_BYTES = 1 << 20  # of the row-by-width table built at once (stays in cache)


class Column(NamedTuple):
    """One feature of a block: its name, kind, values (any value where missing) and gaps."""
    name: str
    kind: ColumnType
    values: Optional[Union[np.ndarray, pa.Array]] = None  # int64, float32 or text
    missing: Optional[np.ndarray] = None  # bool


class _Part(NamedTuple):
    table: Union[bytes, np.ndarray, "_PaddedText"]  # bytes: the same for every row
    sizes: Optional[np.ndarray] = None  # bytes each row uses; None: all of them


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        out.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            return bytes(out)


def varint_sizes(values: np.ndarray) -> np.ndarray:
    """Bytes in the protobuf varint of each value (int64 as two's complement uint64)."""
    rest = np.asarray(values).astype(np.uint64) >> np.uint64(7)
    sizes = np.ones(len(rest), np.int64)
    while rest.any():
        sizes += rest != 0
        rest >>= np.uint64(7)
    return sizes


def _varints(values: np.ndarray, present: Optional[np.ndarray] = None) -> _Part:
    """Varints, 7 bits a byte, low first; the top bit says another byte follows."""
    rest = np.asarray(values).astype(np.uint64)
    sizes = varint_sizes(rest)
    table = np.empty((len(rest), max(int(sizes.max(initial=1)), 1)), np.uint8)
    for k in range(table.shape[1]):
        more = rest > np.uint64(0x7F)
        table[:, k] = (rest & np.uint64(0x7F)) | (more.astype(np.uint64) << np.uint64(7))
        rest = rest >> np.uint64(7)
    if present is not None:
        sizes = np.where(present, sizes, 0)
    return _Part(table, None if (sizes == table.shape[1]).all() else sizes)


def _only(constant: bytes, present: np.ndarray) -> _Part:
    return _Part(constant, np.where(present, len(constant), 0))


class _PaddedText:
    """Text as a rows x width table of its bytes, gathered a chunk of rows at a time."""

    def __init__(self, values: pa.Array, width: int):
        self._starts = np.frombuffer(values.buffers()[1], np.int32)[
            values.offset:values.offset + len(values)]
        data = values.buffers()[2]
        self._data = np.frombuffer(data, np.uint8) if data is not None and data.size else (
            np.zeros(1, np.uint8))
        self.shape = (len(values), width)

    def __getitem__(self, rows: slice) -> np.ndarray:
        index = self._starts[rows, None] + np.arange(self.shape[1])
        return self._data[np.minimum(index, len(self._data) - 1)]


def _size(part: _Part, n: int) -> np.ndarray:
    if part.sizes is not None:
        return part.sizes
    return np.full(n, len(part.table) if isinstance(part.table, bytes) else part.table.shape[1])


def _feature(column: Column, n: int) -> tuple[list[Union[_Part, pa.Array]], np.ndarray]:
    """The parts of each row's Feature message, and its length."""
    present = np.ones(n, bool) if column.missing is None else ~np.asarray(column.missing)
    if column.kind == ColumnType.UNKNOWN:
        return [], np.zeros(n, np.int64)
    if column.kind == ColumnType.FLOAT:  # float_list = 2, packed value = 1
        floats = np.ascontiguousarray(column.values, dtype="<f4").view(np.uint8).reshape(-1, 4)
        inner = np.where(present, 6, 0)
        parts = [_Part(b"\x12"), _varints(inner), _only(b"\x0a\x04", present),
                 _Part(floats, np.where(present, 4, 0))]
    elif column.kind == ColumnType.INT:  # int64_list = 3, packed value = 1
        values = _varints(column.values, present)
        sizes = _size(values, n)
        inner = np.where(present, 2 + sizes, 0)
        parts = [_Part(b"\x1a"), _varints(inner), _only(b"\x0a", present),
                 _varints(sizes, present), values]
    else:  # bytes_list = 1, value = 1
        text = column.values if isinstance(column.values, pa.Array) else pa.array(column.values)
        text = text.cast(pa.binary())
        offsets = np.frombuffer(text.buffers()[1], np.int32)[text.offset:text.offset + n + 1]
        sizes = np.where(present, np.diff(offsets), 0)
        inner = np.where(present, 1 + varint_sizes(sizes) + sizes, 0)
        parts = [_Part(b"\x0a"), _varints(inner), _only(b"\x0a", present),
                 _varints(sizes, present)]
        if sizes.max(initial=0) <= _PADDED_TEXT:
            parts.append(_Part(_PaddedText(text, max(int(sizes.max(initial=0)), 1)), sizes))
        else:
            parts.append(pc.if_else(pa.array(present), text, pa.scalar(b"", pa.binary())))
    inner_size = sum(_size(p, n) if isinstance(p, _Part) else
                     pc.binary_length(p).to_numpy(zero_copy_only=False) for p in parts)
    return parts, inner_size


def _merged(parts: list[_Part]) -> list[_Part]:
    """Runs of constants as one constant."""
    merged: list[_Part] = []
    for part in parts:
        if (merged and isinstance(part.table, bytes) and part.sizes is None
                and isinstance(merged[-1].table, bytes) and merged[-1].sizes is None):
            merged[-1] = _Part(merged[-1].table + part.table)
        else:
            merged.append(part)
    return merged


def _assemble(parts: list[_Part], n: int) -> pa.Array:
    """Rows of the parts side by side, each row's used bytes only (binary array)."""
    parts = _merged(parts)
    widths = [len(p.table) if isinstance(p.table, bytes) else p.table.shape[1] for p in parts]
    starts = np.cumsum([0] + widths)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(sum(_size(p, n) for p in parts), out=offsets[1:])
    template = np.zeros(starts[-1], np.uint8)
    for part, start in zip(parts, starts):
        if isinstance(part.table, bytes):
            template[start:start + len(part.table)] = np.frombuffer(part.table, np.uint8)
    masked = any(p.sizes is not None for p in parts)
    out = np.empty(int(offsets[-1]), np.uint8)
    step = max(1, _CHUNK_BYTES // max(int(starts[-1]), 1))
    for first in range(0, n, step):
        rows = slice(first, min(n, first + step))
        table = np.tile(template, (rows.stop - rows.start, 1))
        used = np.ones(table.shape, bool) if masked else None
        for part, start, width in zip(parts, starts, widths):
            if not isinstance(part.table, bytes):
                table[:, start:start + width] = part.table[rows]
            if part.sizes is not None:
                used[:, start:start + width] = np.arange(width) < part.sizes[rows, None]
        out[offsets[rows.start]:offsets[rows.stop]] = table[used] if masked else table.ravel()
    return pa.Array.from_buffers(pa.large_binary(), n,
                                 [None, pa.py_buffer(offsets), pa.py_buffer(out)])


def serialize(columns: Sequence[Column], num_rows: int,
              order: Optional[np.ndarray] = None) -> pa.Array:
    """The rows as serialized tf.Examples (large_binary array), in `order` if given."""
    n = num_rows
    parts: list[Union[_Part, pa.Array]] = []
    body = np.zeros(n, np.int64)
    for column in sorted(columns, key=lambda c: c.name.encode()):
        if order is not None and column.values is not None:
            column = column._replace(
                values=column.values.take(pa.array(order)) if isinstance(
                    column.values, pa.Array) else np.asarray(column.values)[order],
                missing=None if column.missing is None else np.asarray(column.missing)[order])
        feature_parts, feature = _feature(column, n)
        name = column.name.encode()
        key = b"\x0a" + varint(len(name)) + name + b"\x12"  # map entry: key = 1, value = 2
        entry = len(key) + varint_sizes(feature) + feature
        parts += [_Part(b"\x0a"), _varints(entry), _Part(key), _varints(feature)]
        parts += feature_parts  # Features.feature = 1, one map entry
        body += 1 + varint_sizes(entry) + entry
    parts = [_Part(b"\x0a"), _varints(body)] + parts  # Example.features = 1
    pieces, run = [], []
    for part in parts:
        if isinstance(part, _Part):
            run.append(part)
        else:
            pieces += [_assemble(run, n), part.cast(pa.large_binary())]
            run = []
    if run:
        pieces.append(_assemble(run, n))
    if len(pieces) == 1:
        return pieces[0]
    return pc.binary_join_element_wise(*pieces, pa.scalar(b"", pa.large_binary()))



def as_bytes(records: pa.Array) -> list[bytes]:
    """The values of a large_binary array as Python bytes (to_pylist, faster)."""
    offsets = np.frombuffer(records.buffers()[1], np.int64)[
        records.offset:records.offset + len(records) + 1]
    first, last = int(offsets[0]), int(offsets[-1])
    blob = records.buffers()[2][first:last].to_pybytes() if last > first else b""
    bounds = (offsets - first).tolist()
    return [blob[a:b] for a, b in zip(bounds, bounds[1:])]


__all__ = ["Column", "as_bytes", "serialize", "varint_sizes"]
