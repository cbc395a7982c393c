"""`create_pipeline(cfg, ...)`: the only place the DAG is built.

Runners (local Beam, Kubeflow) decide where artifacts and metadata live and
how Beam runs; they never add or remove components.  Model code and custom
components are referenced by dotted path / class, so the same definition works
from this checkout and inside the pipeline image.
"""
from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional, TypeVar

from ml_metadata.proto import metadata_store_pb2
from tfx.components import (
    Evaluator,
    ExampleValidator,
    SchemaGen,
    StatisticsGen,
    Trainer,
    Transform,
    Tuner,
)
from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.dsl.components.base import executor_spec
from tfx.dsl.components.common.resolver import Resolver
from tfx.orchestration.pipeline import Pipeline
from tfx.proto import example_gen_pb2, pusher_pb2, trainer_pb2
from tfx.types import standard_artifacts
from tfx.types.channel import Channel

from components.atomic_pusher.component import AtomicPusher
from components.atomic_pusher.served import ServedModelStrategy, ServedStatisticsStrategy
from components.batched_read.executors import (
    EvaluatorExecutor,
    StatisticsGenExecutor,
    TransformExecutor,
)
from components.csv_ingest.component import CsvIngest
from components.data_gate.component import DataGate
from components.data_gate.label_classes import label_rule
from components.drift_check.component import DriftCheck
from components.eval_sample.component import EvalSample
from components.serving_check.component import ServingCheck
from models.tuning import GATE_KEY, TUNING_KEY
from pipeline.config import IN_MEMORY_BEAM_ARGS, PipelineConfig
from pipeline.dag.digest import (
    CODE_DIGEST,
    FUNCTION_PROPERTIES,
    MODULE_PROPERTIES,
    PROJECT_PACKAGES,
    code_digest,
)
from pipeline.dag.evaluation import SAMPLE_WEIGHT, eval_config

PREPROCESSING_FN = "models.preprocessing.preprocessing_fn"
RUN_FN = "models.model.run_fn"
TUNER_FN = "models.tuning.tuner_fn"
# The Evaluator's `custom_extractors`.
EXTRACTORS = "models.extractors"
# Written into every version before it appears: its model card. Not part of the
# Pusher's code digest: a new card writer alone does not publish a model again.
STAGE_FN = "pipeline.facts.model_card.stage"
# The steps that scan every example, with the executors that read them in batches.
BATCHED_EXECUTORS = {StatisticsGen: StatisticsGenExecutor, Transform: TransformExecutor,
                     Evaluator: EvaluatorExecutor}
BatchedNode = TypeVar("BatchedNode", StatisticsGen, Transform, Evaluator)


@dataclasses.dataclass(frozen=True)
class Sources:
    """Where a run reads its data and curated schema, as the machine that runs it
    sees them, and what the schema says that the DAG needs.

    `create_pipeline` takes them as given and reads no file of this machine: the
    local runner checks its paths (`pipeline.local.inputs.local_sources`), the
    compiler names them inside the image (`pipeline.kubeflow.compiler.cluster_sources`).
    """

    input_base: str  # ExampleGen's input_base: a directory or an object-store prefix
    pattern: str  # the file (or glob) under it
    schema_file: str
    # A multi-class label's class count (from the curated schema); None otherwise.
    num_label_classes: Optional[int] = None
    # The data path as the user gave it (`tfxp run --data`), for the model card.
    given_data_path: Optional[str] = None

    @classmethod
    def as_written(cls, cfg: PipelineConfig, data_path: Optional[str] = None,
                   schema_path: Optional[str] = None) -> "Sources":
        """The config's paths read by their form alone: a directory when
        `data.pattern` is set, the path is a URI or ends in '/', else a file."""
        base, pattern = split_data_path(cfg.resolve(data_path or cfg.data.path),
                                        cfg.data.pattern)
        return cls(base, pattern, schema_path or cfg.schema_path,
                   given_data_path=data_path)


def split_data_path(path: str, pattern: Optional[str], is_dir: Optional[bool] = None
                    ) -> tuple[str, str]:
    """(input_base, pattern) of a CSV file or a directory of CSVs; `is_dir` where
    the caller has looked, else by the path's form."""
    if is_dir is None:
        is_dir = bool(pattern) or "://" in path or path.endswith("/")
    if is_dir:
        return path, pattern or "*"
    return os.path.dirname(path), os.path.basename(path)


def example_gen_input(sources: Sources) -> tuple[str, example_gen_pb2.Input]:
    """ExampleGen's input_base and its one split's file pattern."""
    return sources.input_base, example_gen_pb2.Input(splits=[
        example_gen_pb2.Input.Split(name="single_split", pattern=sources.pattern)])


def read_in_batches(node: BatchedNode) -> BatchedNode:
    """`node` with TFX's executor reading tf.Examples a batch at a time
    (components/batched_read): the steps that scan every example spent most of
    their time in Beam's per-record TFRecord reader."""
    node.executor_spec = executor_spec.BeamExecutorSpec(BATCHED_EXECUTORS[type(node)])
    return node


def data_components(cfg: PipelineConfig, sources: Sources
                    ) -> tuple[CsvIngest, StatisticsGen, SchemaGen]:
    """How data enters: CSV to split tf.Examples, statistics, an inferred schema.

    CsvIngest is CsvExampleGen (and keeps its node id) with `data.na_values`
    read as missing and rows without a label dropped and counted, or rejected.
    """
    input_base, input_config = example_gen_input(sources)
    example_gen = CsvIngest(
        input_base=input_base,
        input_config=input_config,
        output_config=example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
            example_gen_pb2.SplitConfig.Split(name=name, hash_buckets=buckets)
            for name, buckets in cfg.data.split.items()])),
        na_values=cfg.data.na_values,
        label_column=cfg.label.column,
        label_missing=cfg.label.missing).with_id("CsvExampleGen")
    statistics_gen = read_in_batches(StatisticsGen(
        examples=example_gen.outputs["examples"]))
    # What the data says now: a draft for new datasets, a diff for curated ones.
    inferred_schema = SchemaGen(
        statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True)
    return example_gen, statistics_gen, inferred_schema


def create_schema_draft_pipeline(
    cfg: PipelineConfig,
    *,
    pipeline_root: str,
    data_path: Optional[str] = None,
    sources: Optional[Sources] = None,
    metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None,
    beam_args: Optional[list[str]] = None,
    step_beam_args: Optional[dict[str, list[str]]] = None,
) -> Pipeline:
    """The data stage alone, for drafting a schema before one is curated."""
    sources = sources or Sources.as_written(cfg, data_path)
    return with_step_args(Pipeline(
        pipeline_name=f"{cfg.pipeline_name}-schema-draft",
        pipeline_root=pipeline_root,
        components=list(data_components(cfg, sources)),
        enable_cache=cfg.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=pipeline_beam_args(cfg, beam_args)), step_beam_args)


def pipeline_beam_args(cfg: PipelineConfig, beam_args: Optional[list[str]]) -> list[str]:
    """The Beam args given, else the config's, else in-memory."""
    return list(beam_args if beam_args is not None else cfg.beam_args or IN_MEMORY_BEAM_ARGS)


def with_step_args(tfx_pipeline: Pipeline,
                   step_beam_args: Optional[dict[str, list[str]]]) -> Pipeline:
    """Beam args added, after the pipeline's, to the nodes they name (by node id)."""
    for node in tfx_pipeline.components:
        if node.id in (step_beam_args or {}):
            node.with_beam_pipeline_args(step_beam_args[node.id])
    return tfx_pipeline


def create_pipeline(
    cfg: PipelineConfig,
    *,
    pipeline_root: str,
    serving_dir: str,
    data_path: Optional[str] = None,
    schema_path: Optional[str] = None,
    sources: Optional[Sources] = None,
    metadata_connection_config: Optional[metadata_store_pb2.ConnectionConfig] = None,
    beam_args: Optional[list[str]] = None,
    step_beam_args: Optional[dict[str, list[str]]] = None,
) -> Pipeline:
    """The full DAG: data in, validated, transformed, trained, evaluated, pushed.

    `step_beam_args` (by node id) are added after the run's `beam_args` for
    those nodes: a local run gives the steps that read every example worker
    processes where the data is large enough (pipeline/local/beam_mode.py).
    `sources` (default: the config's paths as written) are taken as given:
    nothing here reads or checks a file of this machine.
    """
    sources = sources or Sources.as_written(cfg, data_path, schema_path)
    schema_file = sources.schema_file
    inputs = cfg.model_inputs()
    custom_config = inputs.to_custom_config()

    example_gen, statistics_gen, inferred_schema = data_components(cfg, sources)
    schema = ImportSchemaGen(schema_file=schema_file)
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs["statistics"],
        schema=schema.outputs["schema"])
    data_gate = data_gate_component(cfg, sources, example_validator, statistics_gen)
    # Checks that must pass before Transform may run.
    gates: list = [data_gate]

    drift_nodes = drift_components(cfg, statistics_gen, schema, data_gate)
    gates += drift_nodes[-1:]  # the DriftCheck, when there is one

    transform = transform_component(example_gen, schema, custom_config)
    for gate in gates:
        transform.add_upstream_node(gate)

    tuning_nodes = tuner_components(cfg, example_gen, transform, schema, custom_config)
    hyperparameters = tuning_nodes[0].outputs["best_hyperparameters"] if tuning_nodes else None

    trainer = Trainer(
        run_fn=RUN_FN,
        examples=example_gen.outputs["examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema.outputs["schema"],
        hyperparameters=hyperparameters,
        train_args=trainer_pb2.TrainArgs(num_steps=cfg.training.train_steps),
        eval_args=trainer_pb2.EvalArgs(num_steps=cfg.training.eval_steps),
        custom_config=custom_config)

    baseline = served_model_baseline(trainer)

    sample_nodes = eval_sample_components(cfg, example_gen)
    eval_examples = (sample_nodes[0].outputs["sample"] if sample_nodes
                     else example_gen.outputs["examples"])

    evaluator = read_in_batches(Evaluator(
        examples=eval_examples,
        model=trainer.outputs["model"],
        baseline_model=baseline.outputs["model"],
        eval_config=eval_config(cfg.evaluation, inputs,
                                sources.num_label_classes),
        module_path=EXTRACTORS))

    serving_nodes = serving_check_components(cfg, trainer, example_gen)
    infra_blessing = serving_nodes[0].outputs["blessing"] if serving_nodes else None

    pusher = pusher_component(cfg, serving_dir, sources, trainer, evaluator, infra_blessing,
                              statistics_gen, schema, example_gen)

    tfx_pipeline = Pipeline(
        pipeline_name=cfg.pipeline_name,
        pipeline_root=pipeline_root,
        components=[example_gen, statistics_gen, inferred_schema, schema,
                    example_validator, data_gate, *drift_nodes, transform, *tuning_nodes, trainer,
                    baseline, *sample_nodes, evaluator, *serving_nodes, pusher],
        enable_cache=cfg.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=pipeline_beam_args(cfg, beam_args))
    add_code_digests(with_step_args(tfx_pipeline, step_beam_args))
    return tfx_pipeline


# --------------------------------------------------------------------------- nodes

def data_gate_component(cfg: PipelineConfig, sources: Sources,
                        example_validator: ExampleValidator,
                        statistics_gen: StatisticsGen) -> DataGate:
    """Stops the run on anomalies against the curated schema, or a label that lacks
    its classes in a split."""
    label = cfg.label
    return DataGate(anomalies=example_validator.outputs["anomalies"],
                    statistics=statistics_gen.outputs["statistics"],
                    # A label needs its classes in every split.
                    label=label_rule(label.column, label.task, label.threshold,
                                     label.relative_to, label.positive,
                                     sources.num_label_classes))


def served_model_baseline(trainer: Trainer) -> Resolver:
    """The model now served, unless it is the candidate itself: an unchanged
    re-run then has the inputs of the run that pushed, and is cached."""
    return Resolver(
        strategy_class=ServedModelStrategy,
        pushed_model=Channel(type=standard_artifacts.PushedModel),
        model=Channel(type=standard_artifacts.Model),
        candidate=trainer.outputs["model"],
    ).with_id("served_model_resolver")


def transform_component(example_gen: CsvIngest, schema: ImportSchemaGen,
                        custom_config: dict) -> Transform:
    """Transform: analyzes the train split; the Trainer applies its graph as it reads."""
    return read_in_batches(Transform(
        examples=example_gen.outputs["examples"],
        schema=schema.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN,
        # Features and label: what preprocessing_fn reads. Not `training`, so a
        # Trainer setting leaves Transform's cache key, and its result, alone.
        custom_config={k: v for k, v in custom_config.items() if k != "training"},
        # StatisticsGen already describes the raw data; Transform's own pre-
        # and post-transform statistics would add a second full pass.
        disable_statistics=True,
        # The analyzer cache pays where a run feeds the last one's back in over
        # span-partitioned data; nothing here does, and writing it was a third
        # of Transform's time (35 s to 25 s on the taxi data).
        disable_analyzer_cache=True,
        # Transform analyzes; the Trainer (and Tuner) apply its graph to the raw
        # examples as they read them (models.model.input_fn). A materialized copy
        # would transform and write every row, where training reads
        # train_steps x batch_size of them.
        materialize=False))


def pusher_component(cfg: PipelineConfig, serving_dir: str, sources: Sources, trainer: Trainer,
                     evaluator: Evaluator, infra_blessing: Optional[Channel],
                     statistics_gen: StatisticsGen, schema: ImportSchemaGen,
                     example_gen: CsvIngest) -> AtomicPusher:
    """The atomic push of a blessed model, its card and training statistics beside it."""
    return AtomicPusher(
        model=trainer.outputs["model"],
        model_blessing=evaluator.outputs["blessing"],
        infra_blessing=infra_blessing,
        # Written beside the version: its training statistics (the drift
        # baseline while it is served).
        statistics=statistics_gen.outputs["statistics"],
        schema=schema.outputs["schema"],
        examples=example_gen.outputs["examples"],
        evaluation=evaluator.outputs["evaluation"],
        version_facts=version_facts(cfg, sources.given_data_path),
        stage_fn=STAGE_FN,
        push_destination=pusher_pb2.PushDestination(
            filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=serving_dir)),
        # models.config (labels) and retention after each push.
        custom_config={"model_name": cfg.serving.model_name,
                       "keep_versions": cfg.serving.keep_versions},
    ).with_id("Pusher")


# --------------------------------------------------------------------------- optional branches
# Each returns the nodes it adds (none when switched off), in DAG order.

def drift_components(cfg: PipelineConfig, statistics_gen: StatisticsGen,
                     schema: ImportSchemaGen, data_gate: DataGate) -> list:
    """The drift check against the statistics that trained the model now served
    (none on a first run, or when they are this run's own statistics)."""
    if not cfg.drift_check.enabled:
        return []
    drift_baseline = Resolver(
        strategy_class=ServedStatisticsStrategy,
        pushed_model=Channel(type=standard_artifacts.PushedModel),
        statistics=Channel(type=standard_artifacts.ExampleStatistics),
        current=statistics_gen.outputs["statistics"],
    ).with_id("drift_baseline_resolver")
    drift_check = DriftCheck(
        statistics=statistics_gen.outputs["statistics"],
        schema=schema.outputs["schema"],
        baseline_statistics=drift_baseline.outputs["statistics"],
        thresholds=json.dumps(cfg.drift_check.thresholds, sort_keys=True),
        action=cfg.drift_check.action,
        split=cfg.drift_check.split)
    # Schema anomalies are reported first; drift is judged on valid data.
    drift_check.add_upstream_node(data_gate)
    return [drift_baseline, drift_check]


def tuner_components(cfg: PipelineConfig, example_gen: CsvIngest, transform: Transform,
                     schema: ImportSchemaGen, custom_config: dict) -> list:
    """A search over the training keys; the Trainer trains with the best trial."""
    if not cfg.tuning.enabled:
        return []
    return [Tuner(
        tuner_fn=TUNER_FN,
        examples=example_gen.outputs["examples"],
        transform_graph=transform.outputs["transform_graph"],
        schema=schema.outputs["schema"],
        train_args=trainer_pb2.TrainArgs(num_steps=cfg.tuning.train_steps),
        eval_args=trainer_pb2.EvalArgs(num_steps=cfg.tuning.eval_steps),
        custom_config={**custom_config,
                       TUNING_KEY: cfg.tuning.model_dump(mode="json"),
                       # Each trial is judged by the bounds of the push gate.
                       GATE_KEY: [t.model_dump(mode="json")
                                  for t in cfg.evaluation.thresholds]})]


def eval_sample_components(cfg: PipelineConfig, example_gen: CsvIngest) -> list:
    """Large slices sampled for the Evaluator (`evaluation.sample_above`)."""
    if cfg.evaluation.sample_above is None:
        return []
    return [EvalSample(
        examples=example_gen.outputs["examples"],
        slices=json.dumps(cfg.evaluation.slices),
        above=cfg.evaluation.sample_above,
        weight_feature=SAMPLE_WEIGHT)]


def serving_check_components(cfg: PipelineConfig, trainer: Trainer,
                             example_gen: CsvIngest) -> list:
    """The model called as TF Serving calls it; the defaults for the signature name
    and its input/output keys are those of models/signatures.py."""
    if not cfg.serving_check.enabled:
        return []
    sc = cfg.serving_check
    return [ServingCheck(
        model=trainer.outputs["model"],
        examples=example_gen.outputs["examples"],
        label_column=cfg.label.column,
        task=cfg.label.task,
        split="eval",
        batch_size=sc.batch_size,
        repeats=sc.repeats,
        max_p50_ms_single=sc.max_p50_ms_single,
        max_p50_ms_batch=sc.max_p50_ms_batch)]


def version_facts(cfg: PipelineConfig, data_path: Optional[str] = None) -> str:
    """What the model card states that no artifact holds, as the Pusher's JSON property.

    The data path is the one given (`tfxp run --data`) or the config's as written,
    never a path resolved on the compiling machine.
    """
    label = cfg.label
    return json.dumps({
        "pipeline_name": cfg.pipeline_name,
        "model_name": cfg.serving.model_name,
        "task": label.describe(),
        "label": label.model_dump(mode="json"),
        "features": cfg.features.by_kind(),
        "data_path": data_path or cfg.data.path,
        "split": dict(cfg.data.split),
        "training": cfg.training.model_dump(mode="json"),
        "model_card": cfg.model_card.model_dump(mode="json"),
    }, sort_keys=True)


def code_entries(tfx_pipeline: Pipeline) -> dict[str, list[str]]:
    """Node id -> the project code it runs (modules and packages, see pipeline.dag.digest).

    A custom component runs its own package (`components.<name>`); a node
    given model code by dotted path (`preprocessing_fn`, `run_fn`, ...) runs
    that module (as does an Evaluator whose metrics name a project module); and
    every node downstream of one runs what its upstream ran,
    since its inputs are made by that code.
    """
    entries: dict[str, set[str]] = {}
    for node in tfx_pipeline.components:  # topologically sorted
        if isinstance(node, Resolver):
            continue  # never cached: resolved afresh on every run
        own: set[str] = set()
        for module in (type(node).__module__, executor_module(node)):
            if module.startswith("components."):
                own.add(".".join(module.split(".")[:2]))
        for key in FUNCTION_PROPERTIES + MODULE_PROPERTIES:
            value = node.exec_properties.get(key)
            if isinstance(value, str) and value:
                own.add(value if key in MODULE_PROPERTIES else value.rpartition(".")[0])
        own.update(metric_modules(node.exec_properties.get("eval_config")))
        inherited = set().union(*(entries.get(up.id, set()) for up in node.upstream_nodes))
        found = own | {e for e in inherited if not e.startswith("components.")}
        if found:
            entries[node.id] = found
    return {node_id: sorted(found) for node_id, found in entries.items()}


def executor_module(node: object) -> str:
    """The module of a node's executor class ('' for a node without one)."""
    executor = getattr(getattr(node, "executor_spec", None), "executor_class", None)
    return executor.__module__ if executor else ""


def metric_modules(config: Optional[str]) -> set[str]:
    """Project modules an EvalConfig (as TFX holds it: JSON) names metric classes from."""
    if not config:
        return set()
    specs = json.loads(config)
    return {metric["module"] for spec in specs.get("metrics_specs", [])
            for metric in spec.get("metrics", [])
            if metric.get("module", "").partition(".")[0] in PROJECT_PACKAGES}


def add_code_digests(tfx_pipeline: Pipeline) -> None:
    """Each node's code digest into its execution properties: part of its cache key."""
    by_id = {node.id: node for node in tfx_pipeline.components}
    for node_id, entries in code_entries(tfx_pipeline).items():
        by_id[node_id].exec_properties[CODE_DIGEST] = code_digest(*entries)
