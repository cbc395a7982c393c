"""CsvIngest executor: TFX's CSV ExampleGen with missing values and labels handled.

Two steps are added to CsvExampleGen's Beam pipeline, between parsing the
lines and inferring the column types:
  1. a cell equal to one of `na_values` (e.g. "NA", "?") becomes empty, so a
     numeric column with such tokens is inferred as a number and the token
     is a missing value, never a category;
  2. a row whose label cell is empty is left out and counted; the count is
     the `dropped_label_rows` custom property of the examples artifact, or,
     with `label_missing: reject`, any such row rejects the data.
The user's file is never edited.
"""
from __future__ import annotations

import functools
import os
import uuid
from typing import Any, Optional

import apache_beam as beam
from google.protobuf import json_format, struct_pb2
from tfx import types
from tfx.components.example_gen.csv_example_gen import executor as csv_executor
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils
from tfx_bsl.coders import csv_decoder

from components.data_gate.component import DataRejectedError

DROPPED_PROPERTY = "dropped_label_rows"
_COUNT_PREFIX = "dropped-label-rows-"


def settings(exec_properties: dict[str, Any]) -> dict[str, Any]:
    """na_values, label_column and label_missing from the component's custom_config."""
    raw = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
    if not raw:
        return {}
    config = example_gen_pb2.CustomConfig()
    proto_utils.json_to_proto(raw, config)
    struct = struct_pb2.Struct()
    if not config.custom_config.Unpack(struct):
        return {}
    return json_format.MessageToDict(struct)


def mark_missing(cells: list[bytes], na_values: frozenset[bytes]) -> list[bytes]:
    """The parsed row with every missing-value token made an empty cell."""
    return [b"" if cell.strip() in na_values else cell for cell in cells]


class _CsvToExampleWithMissing(beam.PTransform):
    """CSV files of one input split to tf.Examples, missing values made missing."""

    def __init__(self, exec_properties: dict[str, Any], split_pattern: str,
                 counts_dir: Optional[str] = None):
        super().__init__()
        self._pattern = os.path.join(
            exec_properties[standard_component_specs.INPUT_BASE_KEY], split_pattern)
        found = settings(exec_properties)
        self._na_values = frozenset(v.encode() for v in found.get("na_values", []))
        self._label = found.get("label_column")
        self._counts_dir = counts_dir

    def expand(self, pipeline: beam.Pipeline) -> beam.PCollection:
        files = fileio.glob(self._pattern)
        if not files:
            raise RuntimeError(f"split pattern {self._pattern} does not match any files")
        columns = io_utils.load_csv_column_names(files[0])
        for name in files[1:]:
            if io_utils.load_csv_column_names(name) != columns:
                raise RuntimeError(f"files matching {self._pattern} have different headers")
        rows = (pipeline
                | "Files" >> beam.Create(files)
                | "ReadRecords" >> beam.ParDo(csv_executor._ReadCsvRecordsFromTextFile())
                | "Parse" >> beam.ParDo(csv_decoder.ParseCSVLine(delimiter=","))
                | "Cells" >> beam.Keys()
                | "MarkMissing" >> beam.Map(mark_missing, self._na_values))
        if self._label in columns:
            index = columns.index(self._label)
            rows, dropped = rows | "LabelPresent" >> beam.Partition(
                lambda cells, _: 0 if not cells or cells[index] else 1, 2)
            if self._counts_dir:
                _ = (dropped
                     | "CountDropped" >> beam.combiners.Count.Globally()
                     | "WriteCount" >> beam.io.WriteToText(
                         os.path.join(self._counts_dir, _COUNT_PREFIX + uuid.uuid4().hex),
                         shard_name_template=""))
        column_infos = beam.pvalue.AsSingleton(
            rows | "InferTypes" >> beam.CombineGlobally(
                csv_decoder.ColumnTypeInferrer(columns, skip_blank_lines=True)))
        return rows | "ToExample" >> beam.ParDo(
            csv_executor._ParsedCsvToTfExample(), column_infos)


def read_counts(counts_dir: str) -> int:
    total = 0
    for name in fileio.glob(os.path.join(counts_dir, _COUNT_PREFIX + "*")):
        with fileio.open(name) as f:
            total += sum(int(line) for line in f.read().split())
    return total


class Executor(csv_executor.Executor):
    """CsvExampleGen's executor with na_values and missing labels applied."""

    _counts_dir: Optional[str] = None

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return functools.partial(_CsvToExampleWithMissing, counts_dir=self._counts_dir)

    def Do(self, input_dict: dict[str, list[types.Artifact]],
           output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        self._counts_dir = os.path.join(self._get_tmp_dir(), f"csv-ingest-{uuid.uuid4().hex}")
        fileio.makedirs(self._counts_dir)
        super().Do(input_dict, output_dict, exec_properties)
        dropped = read_counts(self._counts_dir)
        fileio.rmtree(self._counts_dir)
        examples = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.EXAMPLES_KEY])
        examples.set_int_custom_property(DROPPED_PROPERTY, dropped)
        found = settings(exec_properties)
        if dropped and found.get("label_missing") == "reject":
            raise DataRejectedError([(
                "input", found.get("label_column", "label"),
                f"{dropped} rows have no label (label.missing: reject; "
                f"'drop' leaves them out and counts them)")])


__all__ = ["Executor", "DROPPED_PROPERTY", "mark_missing", "settings"]
