"""Gzipped TFRecord files written a batch of records at a time.

A batch is framed at once (each record: its length as 8 bytes, the masked
CRC32C of those, the data, the masked CRC32C of the data) and compressed in
one zlib call on a background thread, so compression, most of the cost of
writing, overlaps the reading and encoding of the next block.  TF's own
TFRecordWriter compresses record by record in the calling thread, and holds
the GIL between records, so a thread would not help it.  The file is one gzip
member, as TF's GZIP writer makes; it is opened through tfx.dsl.io.fileio
(local disk, gs://).
"""
from __future__ import annotations

import zlib
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Optional

import google_crc32c
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tfx.dsl.io import fileio


def _crc32c_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0x82F63B78), table >> 1)
    return table.astype(np.uint32)


_TABLE = _crc32c_table()
_NOTHING = pa.scalar(b"", pa.large_binary())


def masked(crc: np.ndarray) -> np.ndarray:
    """TFRecord's masked CRC: rotated right by 15 bits, plus a constant (mod 2**32)."""
    crc = np.asarray(crc, np.uint32)
    return ((crc >> np.uint32(15)) | (crc << np.uint32(17))) + np.uint32(0xA282EAD8)


crc32c = google_crc32c.value  # of bytes: int


def _rows(table: np.ndarray) -> pa.Array:
    n, width = table.shape
    offsets = np.arange(n + 1, dtype=np.int64) * width
    return pa.Array.from_buffers(pa.large_binary(), n, [
        None, pa.py_buffer(offsets), pa.py_buffer(np.ascontiguousarray(table))])


def frame(records: pa.Array, crcs: np.ndarray) -> memoryview:
    """The records as TFRecords, given each record's CRC32C."""
    records = records.cast(pa.large_binary())
    lengths = pc.binary_length(records).to_numpy(zero_copy_only=False).astype("<u8")
    length_bytes = lengths.view(np.uint8).reshape(-1, 8)
    length_crc = np.full(len(lengths), 0xFFFFFFFF, np.uint32)
    for k in range(8):
        length_crc = _TABLE[(length_crc ^ length_bytes[:, k]) & np.uint32(0xFF)] ^ (
            length_crc >> np.uint32(8))
    length_crc ^= np.uint32(0xFFFFFFFF)
    header = np.concatenate(
        [length_bytes, masked(length_crc).astype("<u4").view(np.uint8).reshape(-1, 4)], axis=1)
    footer = masked(crcs).astype("<u4").view(np.uint8).reshape(-1, 4)
    framed = pc.binary_join_element_wise(_rows(header), records, _rows(footer), _NOTHING)
    end = int(np.frombuffer(framed.buffers()[1], np.int64)[framed.offset + len(framed)])
    return memoryview(framed.buffers()[2])[:end]


class Writer:
    """A gzipped TFRecord file; `write` returns while the previous batch compresses."""

    def __init__(self, path: str, level: int = 6):
        self._file = fileio.open(path, "wb")
        self._zip = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip
        self._thread = ThreadPoolExecutor(max_workers=1)
        self._pending: Optional[Future] = None

    def _compress(self, data: memoryview) -> None:
        self._file.write(self._zip.compress(data))

    def _wait(self) -> None:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending.result()

    def write(self, records: pa.Array, crcs: np.ndarray) -> None:
        """Appends records (binary array), given the CRC32C of each."""
        if not len(records):
            return
        data = frame(records, crcs)
        self._wait()  # at most one batch compressing, one being framed
        self._pending = self._thread.submit(self._compress, data)

    def close(self) -> None:
        try:
            self._wait()
            self._file.write(self._zip.flush())
        finally:
            self._thread.shutdown()
            self._file.close()


__all__ = ["Writer", "crc32c", "frame", "masked"]
