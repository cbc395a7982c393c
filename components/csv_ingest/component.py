"""CsvIngest: CSV files to tf.Examples, with missing-value tokens and missing labels.

A FileBasedExampleGen with CsvExampleGen's driver and splits, whose executor
(`executor.py`) makes `na_values` tokens missing and leaves out rows without
a label, counting them.  Settings travel in ExampleGen's own `custom_config`.
"""
from __future__ import annotations

from typing import Optional, Sequence

from google.protobuf import any_pb2, struct_pb2
from tfx.components.example_gen.component import FileBasedExampleGen
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2

from components.csv_ingest import executor


def custom_config(na_values: Sequence[str], label_column: Optional[str],
                  label_missing: str) -> example_gen_pb2.CustomConfig:
    struct = struct_pb2.Struct()
    struct.update({"na_values": list(na_values), "label_missing": label_missing,
                   **({"label_column": label_column} if label_column else {})})
    packed = any_pb2.Any()
    packed.Pack(struct)
    return example_gen_pb2.CustomConfig(custom_config=packed)


class CsvIngest(FileBasedExampleGen):
    """CsvExampleGen that knows which cells are missing and which column is the label."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(executor.Executor)

    def __init__(self, input_base: str,
                 input_config: Optional[example_gen_pb2.Input] = None,
                 output_config: Optional[example_gen_pb2.Output] = None, *,
                 na_values: Sequence[str] = (), label_column: Optional[str] = None,
                 label_missing: str = "drop"):
        if label_missing not in ("drop", "reject"):
            raise ValueError(f"label_missing: 'drop' or 'reject', got {label_missing!r}")
        super().__init__(input_base=input_base, input_config=input_config,
                         output_config=output_config,
                         custom_config=custom_config(na_values, label_column, label_missing))
