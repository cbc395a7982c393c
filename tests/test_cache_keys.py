"""Each setting re-runs the nodes that read it and what follows them, nothing else:
the README's table "Which setting re-runs what", row by row.

TFX takes a node from cache when its cache key is one it has recorded
(tfx/orchestration/portable/cache_utils.py): a hash of its executor spec
(Beam's arguments included), its execution properties and its input
artifacts. So two configs compiled to IR say what a change re-runs without
running anything: the nodes whose executor spec or properties differ, and
every node that consumes an artifact one of those makes anew. A resolver
picks artifacts already recorded (the served model, its statistics), so it
passes nothing on."""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
from tfx.dsl.compiler import compiler
from tfx.orchestration.local import runner_utils

from pipeline.config import PipelineConfig, load_config
from pipeline.local.run import schema_in_cache_key
from pipeline.pipeline import create_pipeline

RESOLVER = "tfx.dsl.components.common.resolver.Resolver"
DATA = {"CsvExampleGen", "StatisticsGen", "SchemaGen", "ImportSchemaGen", "ExampleValidator",
        "DataGate", "DriftCheck"}
MODEL = {"Transform", "Trainer", "Evaluator", "ServingCheck", "Pusher"}
EVERY = DATA | MODEL
# Everything that reads the data (the curated schema is read from its own file).
FROM_DATA = EVERY - {"ImportSchemaGen"}


Compiled = tuple[list[Any], dict[str, str]]


def compiled(cfg: PipelineConfig, prepare: Optional[Callable[[Any], None]] = None) -> Compiled:
    """The IR's nodes in order, and each node's own part of its cache key; `prepare`
    gets the pipeline before it is compiled, as a runner does."""
    tfx_pipeline = create_pipeline(cfg, pipeline_root="/nonexistent/root",
                                   serving_dir="/nonexistent/serving")
    if prepare is not None:
        prepare(tfx_pipeline)
    ir = compiler.Compiler().compile(tfx_pipeline)
    deployment = runner_utils.extract_local_deployment_config(ir)
    nodes = [n.pipeline_node for n in ir.nodes]
    own = {}
    for node in nodes:
        key = hashlib.sha256(ir.pipeline_info.SerializeToString(deterministic=True))
        key.update(node.parameters.SerializeToString(deterministic=True))
        spec = runner_utils.extract_executor_spec(deployment, node.node_info.id)
        if spec is not None:
            key.update(spec.SerializeToString(deterministic=True))
        own[node.node_info.id] = key.hexdigest()
    return nodes, own


def rerun_between(before: Compiled, after: Compiled) -> set[str]:
    """The nodes a run of `after` executes where one of `before` left everything cached."""
    (nodes, old), (new_nodes, new) = before, after
    assert [n.node_info.id for n in nodes] == [n.node_info.id for n in new_nodes]
    found: set[str] = set()
    for node in new_nodes:  # topologically sorted
        node_id = node.node_info.id
        if node.node_info.type.name == RESOLVER:
            continue
        producers = {channel.producer_node_query.id for spec in node.inputs.inputs.values()
                     for channel in spec.channels}
        if old.get(node_id) != new[node_id] or producers & found:
            found.add(node_id)
    return found


def reruns(before: PipelineConfig, after: PipelineConfig) -> set[str]:
    return rerun_between(compiled(before), compiled(after))


@pytest.fixture(scope="module")
def base() -> PipelineConfig:
    return load_config()


def changed(overrides: dict[str, Any], base_overrides: Optional[dict[str, Any]] = None
            ) -> tuple[PipelineConfig, PipelineConfig]:
    return (load_config(overrides=base_overrides),
            load_config(overrides={**(base_overrides or {}), **overrides}))


TUNING_ON = {"tuning.enabled": True}
SAMPLING_ON = {"evaluation.sample_above": 1000}

# (setting changed, the config it is changed in, what re-runs): the README's table.
ROWS = [
    ({"pipeline_name": "another-pipeline"}, None, EVERY),
    ({"data.na_values": ["?"]}, None, FROM_DATA),
    ({"data.split": {"train": 3, "eval": 1}}, None, FROM_DATA),
    ({"label.missing": "reject"}, None, FROM_DATA),
    ({"label.threshold": 0.3}, None, {"DataGate"} | MODEL),
    ({"features.missing_indicators": True}, None, MODEL),
    ({"features.missing_indicators": True}, TUNING_ON, MODEL | {"Tuner"}),
    ({"training.train_steps": 999}, None, {"Trainer", "Evaluator", "ServingCheck", "Pusher"}),
    ({"training.learning_rate": 0.003}, TUNING_ON,
     {"Tuner", "Trainer", "Evaluator", "ServingCheck", "Pusher"}),
    ({"tuning.max_trials": 3}, TUNING_ON,
     {"Tuner", "Trainer", "Evaluator", "ServingCheck", "Pusher"}),
    ({"tuning.max_trials": 3}, None, set()),
    ({"evaluation.thresholds": [{"metric": "AUC", "lower": 0.8}]}, None,
     {"Evaluator", "Pusher"}),
    ({"evaluation.slices": [["payment_type"]],
      "evaluation.thresholds": [{"metric": "AUC", "lower": 0.9}]}, SAMPLING_ON,
     {"EvalSample", "Evaluator", "Pusher"}),
    ({"serving_check.repeats": 3}, None, {"ServingCheck", "Pusher"}),
    ({"drift_check.action": "warn"}, None, {"DriftCheck"}),
    ({"serving.keep_versions": 3}, None, {"Pusher"}),
    ({"model_card.owners": ["someone"]}, None, {"Pusher"}),
    ({"monitoring.thresholds": [{"metric": "AUC", "lower": 0.5}]}, None, set()),
    ({"kubeflow.image": "elsewhere:1"}, None, set()),
]


@pytest.mark.parametrize("overrides, base_overrides, expected", ROWS,
                         ids=[",".join(r[0]) + (" (tuning)" if r[1] == TUNING_ON else "")
                              for r in ROWS])
def test_a_setting_reruns_what_reads_it_and_what_follows(overrides, base_overrides, expected):
    before, after = changed(overrides, base_overrides)
    assert reruns(before, after) == expected


def test_nothing_changed_reruns_nothing(base):
    assert reruns(base, load_config()) == set()


def test_beam_arguments_rerun_everything_that_reads_the_data(base):
    # TFX puts the Beam arguments into every step's executor spec: part of its key.
    found = reruns(base, load_config(overrides={"beam_args": ["--direct_num_workers=1"]}))
    assert found == FROM_DATA


def test_an_edited_schema_reruns_what_reads_it(base, tmp_path):
    # TFX keys ImportSchemaGen by the schema's path; a local run adds its bytes.
    schema = tmp_path / "schema.pbtxt"
    schema.write_text(Path(base.schema_path).read_text())
    cfg = load_config(overrides={"schema": str(schema)})

    def prepare(tfx_pipeline):
        schema_in_cache_key(tfx_pipeline, str(schema))

    before = compiled(cfg, prepare)
    assert rerun_between(before, compiled(cfg, prepare)) == set()
    schema.write_text(schema.read_text() + "\n# curated further\n")
    assert rerun_between(before, compiled(cfg, prepare)) == \
        EVERY - {"CsvExampleGen", "StatisticsGen", "SchemaGen"}
