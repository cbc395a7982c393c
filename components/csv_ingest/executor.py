"""CsvIngest executor: TFX's CsvExampleGen with missing values and labels handled.

The output is CsvExampleGen's (same column types, same features, every row in
the same split) with two steps added:
  1. a cell equal to one of `na_values` (e.g. "NA", "?") is a missing value,
     so a numeric column with such tokens stays numeric, never a category;
  2. a row whose label cell is missing is left out and counted; the count is
     the `dropped_label_rows` custom property of the examples artifact, or,
     with `label_missing: reject`, any such row rejects the data.
The user's file is never edited.

The examples are made columnar, a block of rows at a time (columnar.py),
rather than by TFX's per-row path (tests/csv_ingest_rowwise.py keeps it as the
tests' reference), which parses and builds every example in Python and, on
the in-memory Beam runner, holds the whole data set in memory (type inference
is a side input of the conversion, and WriteSplit reshuffles everything before
writing).  The artifact's split names, payload
and file format properties are set by TFX's executor as before; the splits
are written by the Beam transform itself, so TFX's WriteSplit gets nothing.
"""
from __future__ import annotations

import os
import uuid
from typing import Any, Optional

import apache_beam as beam
import numpy as np
from google.protobuf import json_format, struct_pb2
from tfx import types
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.example_gen.csv_example_gen import executor as csv_executor
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import proto_utils

from components.csv_ingest import arrow_csv
from components.csv_ingest.columnar import COUNT_PREFIX, CsvToSplits, Plan
from components.rejected import DataRejectedError

DROPPED_PROPERTY = "dropped_label_rows"


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


def read_counts(counts_dir: str) -> int:
    total = 0
    for name in fileio.glob(os.path.join(counts_dir, COUNT_PREFIX + "*")):
        with fileio.open(name) as f:
            total += sum(int(line) for line in f.read().split())
    return total


def record_dropped(output_dict: dict[str, list[types.Artifact]],
                   exec_properties: dict[str, Any], dropped: int) -> None:
    """The dropped-row count on the artifact; with label_missing: reject, any rejects."""
    examples = artifact_utils.get_single_instance(
        output_dict[standard_component_specs.EXAMPLES_KEY])
    examples.set_int_custom_property(DROPPED_PROPERTY, dropped)
    found = settings(exec_properties)
    if dropped and found.get("label_missing") == "reject":
        raise DataRejectedError([(
            "input", found.get("label_column", "label"),
            f"{dropped} rows have no label (label.missing: reject; "
            f"'drop' leaves them out and counts them)")])


class Executor(csv_executor.Executor):
    """CsvExampleGen's executor, columnar, with na_values and missing labels applied."""

    block_size: int = arrow_csv.BLOCK_SIZE
    _examples: Optional[list[types.Artifact]] = None
    _work_dir: Optional[str] = None

    def GetInputSourceToExamplePTransform(self) -> beam.PTransform:
        raise NotImplementedError("CsvIngest writes its splits itself (GenerateExamplesByBeam)")

    def GenerateExamplesByBeam(self, pipeline: beam.Pipeline,
                               exec_properties: dict[str, Any]) -> dict[str, beam.PCollection]:
        """Adds the ingestion of every input split to the pipeline; returns no
        PCollection, so the base executor's WriteSplit writes nothing."""
        input_config = example_gen_pb2.Input()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.INPUT_CONFIG_KEY], input_config)
        output_config = example_gen_pb2.Output()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.OUTPUT_CONFIG_KEY], output_config)
        names = example_gen_utils.generate_output_split_names(input_config, output_config)
        dirs = [artifact_utils.get_split_uri(self._examples, name) for name in names]
        for split_dir in dirs:
            fileio.makedirs(split_dir)
        found = settings(exec_properties)
        plan = Plan((), tuple(found.get("na_values", [])), found.get("label_column"),
                    self.block_size)
        base = exec_properties[standard_component_specs.INPUT_BASE_KEY]
        split_config = output_config.split_config
        if split_config.splits:
            buckets = list(np.cumsum([s.hash_buckets for s in split_config.splits]))
            jobs = [(input_config.splits[0], dirs, [int(b) for b in buckets])]
        else:
            jobs = [(split, [d], [1]) for split, d in zip(input_config.splits, dirs)]
        for split, split_dirs, buckets in jobs:
            _ = pipeline | f"Ingest[{split.name}]" >> CsvToSplits(
                os.path.join(base, split.pattern), plan, split_dirs, buckets, split_config,
                self._work_dir)
        return {}

    def Do(self, input_dict: dict[str, list[types.Artifact]],
           output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        payload = exec_properties.get(standard_component_specs.OUTPUT_DATA_FORMAT_KEY)
        if payload not in (None, example_gen_pb2.FORMAT_UNSPECIFIED,
                           example_gen_pb2.FORMAT_TF_EXAMPLE):
            raise ValueError(f"CsvIngest writes tf.Examples, not payload format {payload}")
        file_format = exec_properties.get(standard_component_specs.OUTPUT_FILE_FORMAT_KEY)
        if file_format not in (None, example_gen_pb2.FILE_FORMAT_UNSPECIFIED,
                               example_gen_pb2.FORMAT_TFRECORDS_GZIP):
            raise ValueError(f"CsvIngest writes gzipped TFRecords, not file format {file_format}")
        self._examples = output_dict[standard_component_specs.EXAMPLES_KEY]
        self._work_dir = os.path.join(self._get_tmp_dir(), f"csv-ingest-{uuid.uuid4().hex}")
        fileio.makedirs(self._work_dir)
        try:
            super().Do(input_dict, output_dict, exec_properties)
            dropped = read_counts(self._work_dir)
        finally:
            fileio.rmtree(self._work_dir)
        record_dropped(output_dict, exec_properties, dropped)


__all__ = ["Executor", "COUNT_PREFIX", "DROPPED_PROPERTY", "settings", "read_counts",
           "record_dropped"]
