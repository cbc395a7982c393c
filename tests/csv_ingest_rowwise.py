"""The per-row CsvIngest executor that components/csv_ingest/executor.py replaced,
kept beside the tests as the reference they compare it with.

TFX's CsvExampleGen Beam path (Python csv parsing, a global type-inference
combine used as a side input, tf.Example built per row, WriteSplit's
Reshuffle) with the two CsvIngest steps: `na_values` tokens made empty before
types are inferred, rows without a label left out and counted.  It holds the
whole data set in memory on the in-memory Beam runner; the tests check that
the columnar executor writes the same examples to the same splits, and the
measurements compare the two.
"""
from __future__ import annotations

import functools
import os
import uuid
from typing import Any, Optional

import apache_beam as beam
from tfx import types
from tfx.components.example_gen.csv_example_gen import executor as csv_executor
from tfx.dsl.io import fileio
from tfx.types import standard_component_specs
from tfx.utils import io_utils
from tfx_bsl.coders import csv_decoder

from components.csv_ingest.executor import COUNT_PREFIX, read_counts, record_dropped, settings


def mark_missing(cells: list[bytes], na_values: frozenset[bytes]) -> list[bytes]:
    """The parsed row with every missing-value token made an empty cell."""
    return [b"" if cell.strip() in na_values else cell for cell in cells]


class CsvToExampleWithMissing(beam.PTransform):
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
                         os.path.join(self._counts_dir, COUNT_PREFIX + uuid.uuid4().hex),
                         shard_name_template=""))
        column_infos = beam.pvalue.AsSingleton(
            rows | "InferTypes" >> beam.CombineGlobally(
                csv_decoder.ColumnTypeInferrer(columns, skip_blank_lines=True)))
        return rows | "ToExample" >> beam.ParDo(
            csv_executor._ParsedCsvToTfExample(), column_infos)


class RowwiseExecutor(csv_executor.Executor):
    """CsvExampleGen's executor with na_values and missing labels applied, row by row."""

    _counts_dir: Optional[str] = None

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        return functools.partial(CsvToExampleWithMissing, counts_dir=self._counts_dir)

    def Do(self, input_dict: dict[str, list[types.Artifact]],
           output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        self._counts_dir = os.path.join(self._get_tmp_dir(), f"csv-ingest-{uuid.uuid4().hex}")
        fileio.makedirs(self._counts_dir)
        super().Do(input_dict, output_dict, exec_properties)
        dropped = read_counts(self._counts_dir)
        fileio.rmtree(self._counts_dir)
        record_dropped(output_dict, exec_properties, dropped)


__all__ = ["RowwiseExecutor", "CsvToExampleWithMissing", "mark_missing"]
