"""CSV rows to tf.Examples, typed by the schema, one bad row at a time.

A row whose value cannot be what the schema says (text in a numeric column,
no value where the schema fixes one) is reported by its row number and the
feature, and left out; the good rows go on.  Empty strings stay strings and
empty numbers are left absent, as CsvExampleGen decodes them, so a row
scores here exactly as it would have in training.
"""
from __future__ import annotations

import csv
import dataclasses
import os
from typing import Iterator

from pipeline.errors import DataRejected

# The row number travels with each example (the model's parsing ignores
# features it does not read) so a prediction finds its row again.
ROW_FEATURE = "__tfxp_row__"


@dataclasses.dataclass(frozen=True)
class BadRow:
    row: int  # 1-based, the header not counted
    feature: str
    problem: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.feature}: {self.problem}"


@dataclasses.dataclass
class Column:
    name: str
    kind: str  # INT | FLOAT | BYTES
    required: bool  # a fixed-length feature: the model cannot parse a row without it


def columns(schema, names: list[str]) -> list[Column]:
    """The schema's type of each named column."""
    from tensorflow_metadata.proto.v0 import schema_pb2
    by_name = {f.name: f for f in schema.feature}
    out = []
    for name in names:
        feature = by_name.get(name)
        if feature is None:
            raise DataRejected(f"{name} is not in the schema")
        out.append(Column(name, schema_pb2.FeatureType.Name(feature.type),
                          feature.HasField("shape")))
    return out


def _value(column: Column, text: str):
    if column.kind == "BYTES":
        return text.encode()
    if text == "":
        if column.required:
            raise ValueError("no value, and the schema requires one")
        return None
    try:
        return int(text) if column.kind == "INT" else float(text)
    except ValueError:
        kind = "an integer" if column.kind == "INT" else "a number"
        raise ValueError(f"{text[:40]!r} is not {kind}") from None


def example(row: dict[str, str], cols: list[Column], number: int) -> bytes:
    """One serialized tf.Example; raises BadRow for the first value that cannot be typed."""
    import tensorflow as tf
    features = {ROW_FEATURE: tf.train.Feature(int64_list=tf.train.Int64List(value=[number]))}
    for c in cols:
        try:
            value = _value(c, row.get(c.name) or "")
        except ValueError as e:
            raise _Bad(BadRow(number, c.name, str(e))) from None
        if value is None:
            continue
        if c.kind == "BYTES":
            features[c.name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        elif c.kind == "INT":
            features[c.name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        else:
            features[c.name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


class _Bad(Exception):
    def __init__(self, bad: BadRow):
        super().__init__(str(bad))
        self.bad = bad


def open_csv(path: str) -> tuple[list[str], Iterator[dict[str, str]], object]:
    """(header, rows, file) of a CSV; the caller closes the file."""
    if not os.path.isfile(path):
        raise DataRejected(f"{path}: no such CSV file")
    f = open(path, newline="")
    reader = csv.DictReader(f)
    return list(reader.fieldnames or []), reader, f


@dataclasses.dataclass
class Converted:
    rows: int  # data rows read
    good: int
    bad: list[BadRow]
    path: str


def to_examples(csv_path: str, schema, names: list[str], out_dir: str) -> Converted:
    """Streams the CSV into <out_dir>/data.tfrecord.gz; the bad rows are listed, not written."""
    import tensorflow as tf
    cols = columns(schema, names)
    header, reader, f = open_csv(csv_path)
    missing = [c.name for c in cols if c.name not in header]
    if missing:
        f.close()
        raise DataRejected(f"{csv_path}: no column {', '.join(missing)}; every row needs "
                           f"{', '.join(names)}")
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "data.tfrecord.gz")
    bad: list[BadRow] = []
    good = rows = 0
    with f, tf.io.TFRecordWriter(path, options="GZIP") as writer:
        for rows, row in enumerate(reader, start=1):
            try:
                writer.write(example(row, cols, rows))
                good += 1
            except _Bad as e:
                bad.append(e.bad)
    return Converted(rows, good, bad, path)
