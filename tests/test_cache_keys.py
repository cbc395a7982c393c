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
from typing import Any, Optional

import pytest
from tfx.dsl.compiler import compiler
from tfx.orchestration.local import runner_utils

from pipeline.config import PipelineConfig, load_config
from pipeline.pipeline import create_pipeline

RESOLVER = "tfx.dsl.components.common.resolver.Resolver"
DATA = {"CsvExampleGen", "StatisticsGen", "SchemaGen", "ImportSchemaGen", "ExampleValidator",
        "DataGate", "DriftCheck"}
MODEL = {"Transform", "Trainer", "Evaluator", "ServingCheck", "Pusher"}
EVERY = DATA | MODEL
# Everything that reads the data (the curated schema is read from its own file).
FROM_DATA = EVERY - {"ImportSchemaGen"}


def compiled(cfg: PipelineConfig) -> tuple[list[Any], dict[str, str]]:
    """The IR's nodes in order, and each node's own part of its cache key."""
    ir = compiler.Compiler().compile(create_pipeline(
        cfg, pipeline_root="/nonexistent/root", serving_dir="/nonexistent/serving"))
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


def reruns(before: PipelineConfig, after: PipelineConfig) -> set[str]:
    """The nodes a run with `after` executes where one with `before` left everything cached."""
    nodes, old = compiled(before)
    new_nodes, new = compiled(after)
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
