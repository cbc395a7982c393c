"""ServingCheck: the candidate model answers a TF Serving request correctly.

TFX's InfraValidator starts TF Serving in Docker or Kubernetes, which many
local setups lack. This component gives the same protection wherever the
pipeline runs: it loads the exported model, sends held-out raw examples to
its serving signature exactly as a TF Serving client would (serialized
tf.Example, label removed), checks the answers and the latency, and emits an
InfraBlessing that the Pusher requires.
"""
from typing import Optional

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.types import standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from components.serving_check import executor


class ServingCheckSpec(ComponentSpec):
    INPUTS = {
        "model": ChannelParameter(type=standard_artifacts.Model),
        "examples": ChannelParameter(type=standard_artifacts.Examples),
    }
    OUTPUTS = {
        "blessing": ChannelParameter(type=standard_artifacts.InfraBlessing),
    }
    PARAMETERS = {
        # The column a client never sends (removed from every request).
        "label_column": ExecutionParameter(type=str),
        # binary (default) | multiclass | regression: what the outputs must be.
        "task": ExecutionParameter(type=str, optional=True),
        "split": ExecutionParameter(type=str, optional=True),
        "batch_size": ExecutionParameter(type=int, optional=True),
        "repeats": ExecutionParameter(type=int, optional=True),
        "max_p50_ms_single": ExecutionParameter(type=float, optional=True),
        "max_p50_ms_batch": ExecutionParameter(type=float, optional=True),
        "signature_name": ExecutionParameter(type=str, optional=True),
        "input_key": ExecutionParameter(type=str, optional=True),
        "output_key": ExecutionParameter(type=str, optional=True),
    }


class ServingCheck(base_component.BaseComponent):
    """Blesses a model (InfraBlessing) only if its serving signature keeps the contract."""

    SPEC_CLASS = ServingCheckSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(executor.Executor)

    def __init__(self, model: types.BaseChannel, examples: types.BaseChannel,
                 label_column: str, *, task: str = "binary", split: str = "eval",
                 batch_size: int = 64,
                 repeats: int = 20, max_p50_ms_single: float = 100.0,
                 max_p50_ms_batch: float = 1000.0,
                 signature_name: str = executor.DEFAULT_SIGNATURE,
                 input_key: str = executor.DEFAULT_INPUT_KEY,
                 output_key: str = executor.DEFAULT_OUTPUT_KEY,
                 blessing: Optional[types.BaseChannel] = None):
        blessing = blessing or types.Channel(type=standard_artifacts.InfraBlessing)
        super().__init__(spec=ServingCheckSpec(
            model=model, examples=examples, blessing=blessing,
            label_column=label_column, task=task, split=split, batch_size=batch_size,
            repeats=repeats, max_p50_ms_single=float(max_p50_ms_single),
            max_p50_ms_batch=float(max_p50_ms_batch), signature_name=signature_name,
            input_key=input_key, output_key=output_key))
