"""TFX's StatisticsGen, Transform and Evaluator executors, reading tf.Examples in
batches (components.batched_read.tfxio); otherwise TFX's own, unchanged.

`pipeline.pipeline` gives the three nodes these executors, locally and in the
Kubeflow image alike, so both read the same way.
"""
from __future__ import annotations

from typing import Any

from tfx import types
from tfx.components.evaluator import executor as evaluator_executor
from tfx.components.statistics_gen import executor as statistics_gen_executor
from tfx.components.transform import executor as transform_executor

from components.batched_read.tfxio import reading_in_batches


class _ReadsInBatches:
    """Runs the TFX executor it precedes (in the bases) with batched reading."""

    def Do(self, input_dict: dict[str, list[types.Artifact]],
           output_dict: dict[str, list[types.Artifact]], exec_properties: dict[str, Any]) -> None:
        with reading_in_batches():
            super().Do(input_dict, output_dict, exec_properties)


class StatisticsGenExecutor(_ReadsInBatches, statistics_gen_executor.Executor):
    pass


class TransformExecutor(_ReadsInBatches, transform_executor.Executor):
    pass


class EvaluatorExecutor(_ReadsInBatches, evaluator_executor.Executor):
    pass
