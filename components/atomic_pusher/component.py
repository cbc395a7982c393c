"""AtomicPusher: TFX's Pusher with an executor that publishes atomically.

Besides the Pusher's own inputs it takes, optionally, what belongs beside a
published version: the examples (warm-up requests), the training statistics
(the drift baseline on every path, read back from the served version), the
curated schema and the model evaluation (the model card).
"""
from typing import Any, Optional

from tfx import types
from tfx.dsl.components.base import base_component, executor_spec
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter
from tfx.types.system_executions import Deploy
from tfx.utils import json_utils

from components.atomic_pusher.executor import Executor

EXAMPLES_KEY = "examples"
STATISTICS_KEY = "statistics"
SCHEMA_KEY = "schema"
EVALUATION_KEY = "evaluation"


class AtomicPusherSpec(ComponentSpec):
    PARAMETERS = {
        **standard_component_specs.PusherSpec.PARAMETERS,
        # Facts about the run for files written beside the version (JSON).
        "version_facts": ExecutionParameter(type=str, optional=True),
        # Dotted path of fn(staging_dir, version, input_dict, facts) writing more
        # files beside the version (e.g. the model card); loaded like a run_fn.
        "stage_fn": ExecutionParameter(type=str, optional=True),
    }
    INPUTS = {
        **standard_component_specs.PusherSpec.INPUTS,
        EXAMPLES_KEY: ChannelParameter(type=standard_artifacts.Examples, optional=True),
        STATISTICS_KEY: ChannelParameter(type=standard_artifacts.ExampleStatistics,
                                         optional=True),
        SCHEMA_KEY: ChannelParameter(type=standard_artifacts.Schema, optional=True),
        EVALUATION_KEY: ChannelParameter(type=standard_artifacts.ModelEvaluation,
                                         optional=True),
    }
    OUTPUTS = standard_component_specs.PusherSpec.OUTPUTS
    TYPE_ANNOTATION = Deploy


class AtomicPusher(base_component.BaseComponent):
    SPEC_CLASS = AtomicPusherSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(Executor)

    def __init__(self, model: types.BaseChannel,
                 push_destination: pusher_pb2.PushDestination,
                 model_blessing: Optional[types.BaseChannel] = None,
                 infra_blessing: Optional[types.BaseChannel] = None,
                 examples: Optional[types.BaseChannel] = None,
                 statistics: Optional[types.BaseChannel] = None,
                 schema: Optional[types.BaseChannel] = None,
                 evaluation: Optional[types.BaseChannel] = None,
                 version_facts: Optional[str] = None,
                 stage_fn: Optional[str] = None,
                 custom_config: Optional[dict[str, Any]] = None):
        pushed_model = types.Channel(type=standard_artifacts.PushedModel)
        super().__init__(spec=AtomicPusherSpec(
            model=model, model_blessing=model_blessing, infra_blessing=infra_blessing,
            examples=examples, statistics=statistics, schema=schema, evaluation=evaluation,
            push_destination=push_destination, version_facts=version_facts, stage_fn=stage_fn,
            custom_config=json_utils.dumps(custom_config),
            pushed_model=pushed_model))
