"""CSV rows typed by a version's input contract, a block at a time.

The file is read by the project's one CSV reader (components/csv_ingest/
arrow_csv.py: quoting, BOM, line ends, .gz, the version's `na_values`), and
each row becomes the tf.Example bytes ingestion would have written for it
(components/csv_ingest/example_bytes.py), with the columns and types the
version's signatures parse (models/contract.py), never today's config.

A cell the version cannot read is reported by row and column, and its row
is left out; the other rows go on.  A missing cell (empty, or one of the
`na_values`) is fine where the version's parsing accepts it (Transform
imputes it); only a column it cannot parse without a value refuses the row.
"""
from __future__ import annotations

import dataclasses
from typing import Iterator, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tfx_bsl.coders.csv_decoder import ColumnType

from components.csv_ingest import arrow_csv
from components.csv_ingest.arrow_csv import typed
from components.csv_ingest.example_bytes import as_bytes, serialize
from models.contract import Column, InputContract
from pipeline.errors import DataError, TfxpError

_KIND = {"INT": ColumnType.INT, "FLOAT": ColumnType.FLOAT, "BYTES": ColumnType.STRING}
_NOT = {"INT": "an integer", "FLOAT": "a number"}
# Rows per Arrow block when scoring: small enough that memory stays flat.
BLOCK_BYTES = 4 << 20


@dataclasses.dataclass(frozen=True)
class BadRow:
    row: int  # 1-based, the header not counted
    feature: str
    problem: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.feature}: {self.problem}"


@dataclasses.dataclass
class Block:
    """One block of a CSV: its text, the rows kept and their serialized examples."""

    first_row: int  # number of the block's first row (1-based)
    text: pa.RecordBatch  # every column of the file, as read
    kept: np.ndarray  # indices (into the block) of the rows turned into examples
    examples: pa.Array  # large_binary, one per kept row
    bad: list[BadRow]
    unlabelled: int = 0  # rows left out because the label cell is missing

    def records(self) -> list[bytes]:
        return as_bytes(self.examples)


def version_contract(version_dir: str, label: str, na_values: Sequence[str]) -> InputContract:
    """The input contract of the version scored (recorded, else derived; `label` and
    `na_values` complete a derived one), or a TfxpError naming what is wrong."""
    from models.contract import ContractError, read
    try:
        return read(version_dir, label, na_values)
    except ContractError as e:
        raise TfxpError(str(e)) from None


def header(csv_path: str) -> list[str]:
    """The file's column names, or a DataError naming the file and line."""
    try:
        return arrow_csv.read_header(csv_path)
    except FileNotFoundError:
        raise DataError(f"{csv_path}: no such CSV file") from None
    except arrow_csv.CsvFormatError as e:
        raise DataError(str(e)) from None


def require_columns(csv_path: str, names: Sequence[str], contract: InputContract,
                    columns: Sequence[Column], version: int) -> None:
    """Stops before anything is read when the file lacks a column the version reads."""
    missing = [c.name for c in columns if c.name not in names]
    if missing:
        shown = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
        raise DataError(f"{csv_path}: no column {', '.join(missing)}, which version {version} "
                        f"reads (contract {contract.source}); the file's columns: {shown}")


def _problems(column: Column, values: pa.Array, gaps: pa.Array, version: int
              ) -> Optional[tuple[np.ndarray, list[str]]]:
    """(mask of rows with a cell the version cannot read, the words for each)."""
    if column.kind == "BYTES":
        bad = pc.and_(gaps, pa.scalar(not column.may_be_missing))
    else:
        # FLOAT_LITERAL takes integer literals too, as float() does.
        literal = pc.match_substring_regex(values, arrow_csv.INT_LITERAL if column.kind == "INT"
                                           else arrow_csv.FLOAT_LITERAL)
        unreadable = pc.and_(pc.invert(gaps), pc.invert(literal))
        bad = pc.or_(unreadable, pc.and_(gaps, pa.scalar(not column.may_be_missing)))
    mask = bad.to_numpy(zero_copy_only=False)
    over = np.zeros(len(values), bool)
    if column.kind == "INT":
        over = _int64_overflow(pc.if_else(pc.or_(bad, gaps), "0", values))
        mask = mask | over
    if not mask.any():
        return None
    words = []
    gap = gaps.to_numpy(zero_copy_only=False)
    for i in np.flatnonzero(mask):
        if over[i]:
            words.append("beyond the range of a 64-bit integer")
        elif gap[i]:
            words.append(f"no value, and version {version} cannot read a row without one")
        else:
            cell = values[int(i)].as_py()
            hint = ("" if arrow_csv.value_type(pa.array([cell])) != ColumnType.STRING
                    else "; if it marks a missing value, it belongs in data.na_values")
            words.append(f"{cell[:40]!r} is not {_NOT[column.kind]}{hint}")
    return mask, words


def _int64_overflow(values: pa.Array) -> np.ndarray:
    """Rows of an INT column whose literal is beyond int64 (Python reads them; TF cannot)."""
    out = np.zeros(len(values), bool)
    try:
        arrow_csv.to_int64(values)
        return out
    except (pa.ArrowInvalid, OverflowError):
        pass
    for i, cell in enumerate(values.to_pylist()):
        try:
            arrow_csv.to_int64(pa.array([cell]))
        except (pa.ArrowInvalid, OverflowError):
            out[i] = True
    return out


def blocks(csv_path: str, names: Sequence[str], contract: InputContract,
           columns: Sequence[Column], version: int, label: Optional[str] = None,
           block_size: int = BLOCK_BYTES) -> Iterator[Block]:
    """Each block's rows as the version's examples; bad rows named, not kept.

    With `label`, a row whose label cell is missing is counted (`unlabelled`)
    and left out before anything else is checked: that is its reason.
    """
    na_values = pa.array(contract.na_values, pa.string()) if contract.na_values else None
    index = {name: i for i, name in enumerate(names)}
    first = 1
    try:
        for batch in arrow_csv.read_batches(csv_path, names, block_size):
            n = batch.num_rows
            keep = np.ones(n, bool)
            unlabelled = 0
            if label is not None:
                no_label = arrow_csv.missing(batch.column(index[label]), na_values).to_numpy(
                    zero_copy_only=False)
                unlabelled = int(no_label.sum())
                keep &= ~no_label
            bad: list[BadRow] = []
            gaps = {}
            for column in columns:
                values = batch.column(index[column.name])
                gaps[column.name] = arrow_csv.missing(values, na_values)
                found = _problems(column, values, gaps[column.name], version)
                if found is None:
                    continue
                mask, words = found
                rows = np.flatnonzero(mask)
                for i, word in zip(rows, words):
                    if keep[i]:
                        bad.append(BadRow(first + int(i), column.name, word))
                keep[rows] = False
            kept = np.flatnonzero(keep)
            take = pa.array(kept)
            typed_columns = [typed(c.name, _KIND[c.kind], batch.column(index[c.name]).take(take),
                                   gaps[c.name].take(take)) for c in columns]
            bad.sort(key=lambda b: b.row)
            yield Block(first, batch, kept, serialize(typed_columns, len(kept)), bad,
                        unlabelled)
            first += n
    except arrow_csv.CsvFormatError as e:
        raise DataError(str(e)) from None


__all__ = ["BLOCK_BYTES", "BadRow", "Block", "blocks", "header", "require_columns"]
