"""CSV blocks read by Arrow and typed exactly as TFX's CsvExampleGen types them.

Every column is read as text (no Arrow type inference, no null tokens), so the
cells are what Python's csv module gives CsvExampleGen, and the types follow
tfx_bsl's ColumnTypeInferrer: INT if every present value is a Python int
literal within int64, FLOAT if every one is a Python float literal, else
STRING; a column with no present value is UNKNOWN.  Python's literal syntax
(ASCII whitespace around, `_` between digits, a `+` sign, inf/nan) is matched
with regular expressions, not left to Arrow's parser (which also takes hex
ints and "nan(...)").  The numbers of a typed column are Arrow's parse of the
literal where Arrow takes it as it is, else of the literal without spaces,
`_` and `+`, else (inf, nan) Python's float(): the same values as int() and
float() give (the tests compare them on thousands of literals).

This module is the project's one CSV reader: ingestion, `tfxp schema`,
`tfxp predict` and `tfxp evaluate` read files through it, so a cell means the
same everywhere.  The dialect is RFC 4180 as R's `write.csv` and pandas
write it: `,` delimiter, `"` quotes (doubled inside quoted fields) in the
header and in values, quoted fields spanning lines, `\n` or `\r\n` line
ends, a UTF-8 byte order mark, blank lines skipped, and `.gz` files read
compressed.  A header cell with no name (the row-name column R and pandas
write) is named `unnamed_<position>`.  Where CsvExampleGen fails or garbles
rows (a lone `"` inside an unquoted field, bare `\r` line ends), Arrow reads
the quote as a character and `\r` as a line end.  A header or line that
cannot be read is a CsvFormatError naming the file, the line and the column.
"""
from __future__ import annotations

import csv
import gzip
import io
from typing import Iterator, Optional, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from tfx_bsl.coders.csv_decoder import ColumnType, _InferValueType

from components.csv_ingest.example_bytes import Column

BLOCK_SIZE = 32 << 20
# Python's bytes.strip() and int()/float() strip exactly these.
WHITESPACE = " \t\n\r\x0b\x0c"
_WS = r"[\t\n\v\f\r ]"
_DIGITS = "[0-9](?:_?[0-9])*"
INT_LITERAL = rf"^{_WS}*[+-]?{_DIGITS}{_WS}*$"
FLOAT_LITERAL = (rf"^{_WS}*[+-]?(?:(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})"
                 rf"(?:[eE][+-]?{_DIGITS})?|(?i:inf|infinity|nan)){_WS}*$")
# After _plain(), the literals Arrow parses to the same double as float().
_PLAIN_DECIMAL = r"^-?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE]-?[0-9]+)?$"


class CsvFormatError(ValueError):
    """A CSV this reader cannot read, named by file, line and (where known) column."""

    def __init__(self, path: str, line: Optional[int], problem: str):
        self.path, self.line, self.problem = path, line, problem
        where = f"{path}, line {line}" if line else path
        super().__init__(f"{where}: {problem}")


def open_binary(path: str) -> io.BufferedIOBase:
    """The file's bytes, decompressed where its name ends in .gz (local or remote)."""
    if "://" in path:  # gs://, s3://, ...: Beam's file systems (heavy: only then)
        from apache_beam.io.filesystem import CompressionTypes
        from apache_beam.io.filesystems import FileSystems
        raw = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    else:
        raw = open(path, "rb")
    return gzip.GzipFile(fileobj=raw, mode="rb") if path.lower().endswith(".gz") else raw


def open_text(path: str) -> io.TextIOWrapper:
    """The file as text: decompressed by its extension (.gz), a UTF-8 BOM dropped."""
    return io.TextIOWrapper(open_binary(path), encoding="utf-8-sig", newline="")


def read_header(path: str) -> list[str]:
    """The column names of the file's first record, unquoted as RFC 4180 says."""
    try:
        with open_text(path) as f:
            reader = csv.reader(f, strict=True)
            header = next(reader, None)
    except csv.Error as e:
        raise CsvFormatError(path, 1, f"the header cannot be read: {e}") from None
    except UnicodeDecodeError as e:
        raise CsvFormatError(path, 1, f"the header is not UTF-8 text ({e.reason} at byte "
                                      f"{e.start})") from None
    if not header:
        raise CsvFormatError(path, 1, "no header line (the file is empty or starts blank)")
    names = [name or f"unnamed_{i}" for i, name in enumerate(header, start=1)]
    first: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        if name in first:
            raise CsvFormatError(path, 1, f"column {i} repeats the name {name!r} of column "
                                          f"{first[name]}")
        first[name] = i
    return names


def read_batches(path: str, columns: Sequence[str],
                 block_size: int = BLOCK_SIZE) -> Iterator[pa.RecordBatch]:
    """The file's rows after its header, a block at a time, every column as text."""
    options = dict(
        read_options=pacsv.ReadOptions(column_names=list(columns), skip_rows=1,
                                       block_size=block_size, use_threads=False),
        parse_options=pacsv.ParseOptions(newlines_in_values=True, ignore_empty_lines=True),
        convert_options=pacsv.ConvertOptions(
            column_types={name: pa.string() for name in columns}, null_values=[],
            strings_can_be_null=False, quoted_strings_can_be_null=False))
    with open_binary(path) as f:
        try:
            reader = pacsv.open_csv(f, **options)
        except pa.ArrowInvalid as e:
            if not _has_rows(path):  # empty, or a header without a line end
                return
            raise _located(path, columns, e) from None
        while True:
            try:
                batch = reader.read_next_batch()
            except StopIteration:
                return
            except pa.ArrowInvalid as e:
                raise _located(path, columns, e) from None
            yield batch


def _located(path: str, columns: Sequence[str], error: Exception) -> CsvFormatError:
    """Arrow's parse error with the line it stopped at, found again with Python's csv."""
    try:
        with open_text(path) as f:
            reader = csv.reader(f, strict=True)
            next(reader, None)
            for record in reader:
                if record and len(record) != len(columns):
                    last = columns[min(len(record), len(columns)) - 1] if record else ""
                    return CsvFormatError(
                        path, reader.line_num,
                        f"{len(record)} fields where the header has {len(columns)} "
                        f"(the row ends after column {last!r})" if len(record) < len(columns)
                        else f"{len(record)} fields where the header has {len(columns)} "
                             f"(extra fields after column {columns[-1]!r})")
    except csv.Error as e:
        return CsvFormatError(path, reader.line_num, f"cannot be read: {e}")
    except UnicodeDecodeError as e:
        return CsvFormatError(path, None, f"not UTF-8 text ({e.reason})")
    return CsvFormatError(path, None, str(error).splitlines()[0])


def _has_rows(path: str) -> bool:
    with open_text(path) as f:
        f.readline()
        return any(line.strip() for line in f)


def missing(values: pa.Array, na_values: Optional[pa.Array]) -> pa.Array:
    """True where a cell is empty or, stripped, one of the missing-value tokens."""
    empty = pc.equal(values, "")
    if na_values is None or not len(na_values):
        return empty
    return pc.or_(empty, pc.is_in(pc.ascii_trim(values, characters=WHITESPACE),
                                  value_set=na_values))


def _plain(values: pa.Array) -> pa.Array:
    """Literals without what Python allows and Arrow does not: spaces, `_`, `+`."""
    return pc.replace_substring_regex(values, r"[\t\n\v\f\r _+]", "")


def value_type(values: pa.Array) -> ColumnType:
    """The type ColumnTypeInferrer gives a column of these present (non-empty) cells."""
    if not len(values):
        return ColumnType.UNKNOWN
    is_int = pc.match_substring_regex(values, INT_LITERAL)
    others = values.filter(pc.invert(is_int))
    if len(others) and not pc.all(pc.match_substring_regex(others, FLOAT_LITERAL)).as_py():
        return ColumnType.STRING
    kind = ColumnType.FLOAT if len(others) else ColumnType.INT
    ints = values.filter(is_int) if len(others) else values
    try:
        _cast(ints, pa.int64())
    except pa.ArrowInvalid:  # beyond int64: Python says STRING (or FLOAT, past 4300 digits)
        kind = max([kind] + [_InferValueType(v.encode()) for v in ints.to_pylist()])
    return kind


def _cast(literals: pa.Array, to: pa.DataType) -> pa.Array:
    """Python literals (validated) as numbers; Arrow's own parsing where it accepts them."""
    try:
        return pc.cast(literals, to)
    except pa.ArrowInvalid:
        return pc.cast(_plain(literals), to)


def to_int64(values: pa.Array) -> np.ndarray:
    """int(cell) of each cell of an INT column (cells that are int literals)."""
    return _cast(values, pa.int64()).to_numpy(zero_copy_only=False)


def to_float32(values: pa.Array) -> np.ndarray:
    """float(cell) of each cell of a FLOAT column, rounded to float32 as FloatList does."""
    try:
        doubles = pc.cast(values, pa.float64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:
        plain = _plain(values)
        decimal = pc.match_substring_regex(plain, _PLAIN_DECIMAL)
        doubles = pc.cast(pc.if_else(decimal, plain, "0"), pa.float64()).to_numpy(
            zero_copy_only=False).copy()
        others = np.flatnonzero(~decimal.to_numpy(zero_copy_only=False))
        doubles[others] = [float(v) for v in values.take(others).to_pylist()]
    with np.errstate(over="ignore"):  # beyond float32: inf, as FloatList stores it
        return doubles.astype(np.float32)


def typed(name: str, kind: ColumnType, values: pa.Array, gaps: pa.Array) -> Column:
    """A text column of a block as a Column of its inferred kind."""
    missing = gaps.to_numpy(zero_copy_only=False)
    if kind == ColumnType.UNKNOWN:
        return Column(name, kind)
    if kind == ColumnType.STRING:
        return Column(name, kind, values, missing)
    filled = pc.if_else(gaps, "0", values) if missing.any() else values
    numbers = to_int64(filled) if kind == ColumnType.INT else (
        to_float32(filled))
    return Column(name, kind, numbers, missing)


__all__ = ["BLOCK_SIZE", "CsvFormatError", "open_text", "read_header", "read_batches", "missing",
           "value_type", "to_int64", "to_float32", "typed"]
