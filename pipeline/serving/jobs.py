"""Small pipelines after the push, recorded in the run root's ML Metadata store.

`tfxp predict` and `tfxp evaluate` each run a short TFX pipeline of their own
(`<pipeline>-predict`, `<pipeline>-evaluate`) against the same store as
`tfxp run`, so `tfxp runs` and `tfxp lineage` show which served version
scored or evaluated which file.  The served version enters through an
Importer that names it (`served_version`, `served_base_path`).
"""
from __future__ import annotations

import dataclasses
import datetime
import os
from typing import Any, Optional

from pipeline.config import PipelineConfig
from pipeline.errors import TfxpError
from pipeline.layout import RunLayout
from pipeline.local.beam_mode import local_args

EXAMPLES_SPLIT = "data"


@dataclasses.dataclass
class Job:
    run_id: str
    directory: str  # ROOT/jobs/<run id>

    @property
    def examples_dir(self) -> str:
        return os.path.join(self.directory, "examples")

    @property
    def model_dir(self) -> str:
        """A Model artifact's layout (Format-Serving/) around the served version."""
        return os.path.join(self.directory, "model")


def new_job(layout: RunLayout, kind: str) -> Job:
    run_id = f"{kind}-{datetime.datetime.now().strftime('%Y%m%dT%H%M%S.%f')}"
    job = Job(run_id, layout.job(run_id))
    os.makedirs(job.directory, exist_ok=True)
    return job


def components(job: Job, version_dir: str, version: int, base_path: str) -> tuple[Any, Any]:
    """(examples, model): the job's rows and the served version as TFX artifacts."""
    from tfx.components import ImportExampleGen
    from tfx.dsl.components.common.importer import Importer
    from tfx.proto import example_gen_pb2
    from tfx.types import standard_artifacts
    from tfx.utils import path_utils

    serving = path_utils.serving_model_dir(job.model_dir)
    os.makedirs(os.path.dirname(serving), exist_ok=True)
    if not os.path.lexists(serving):
        os.symlink(os.path.abspath(version_dir), serving)
    examples = ImportExampleGen(
        input_base=job.examples_dir,
        input_config=example_gen_pb2.Input(splits=[
            example_gen_pb2.Input.Split(name="rows", pattern="*")]),
        # One output split; a single input split would otherwise be hashed into train/eval.
        output_config=example_gen_pb2.Output(split_config=example_gen_pb2.SplitConfig(splits=[
            example_gen_pb2.SplitConfig.Split(name=EXAMPLES_SPLIT, hash_buckets=1)])),
    ).with_id("JobExamples")
    model = Importer(
        source_uri=job.model_dir, artifact_type=standard_artifacts.Model,
        custom_properties={"served_version": str(version), "served_base_path": base_path},
    ).with_id("ServedModel")
    return examples, model


def run(cfg: PipelineConfig, layout: RunLayout, job: Job, kind: str, nodes: list,
        data_path: str, extra_facts: Optional[dict[str, Any]] = None) -> dict[str, list]:
    """Runs the nodes as `<pipeline>-<kind>` in the run root's store; node id -> outputs."""
    from tfx.orchestration import pipeline as tfx_pipeline

    from pipeline.lineage.provenance import record_run, run_provenance
    from pipeline.lineage.store import Store, open_store, sqlite_connection
    from pipeline.local.runner import LocalRunner

    connection = sqlite_connection(layout.metadata)
    pipeline = tfx_pipeline.Pipeline(
        pipeline_name=f"{cfg.pipeline_name}-{kind}", pipeline_root=layout.pipeline_root,
        components=nodes, enable_cache=False, metadata_connection_config=connection,
        beam_pipeline_args=local_args(cfg.beam_args))
    facts = {**run_provenance(cfg, data_path), **(extra_facts or {})}
    result = LocalRunner(run_id=job.run_id).run(pipeline)
    store = Store(open_store(connection))
    record_run(store, result.run_id, facts)
    failed = result.failed_node
    if failed is not None:
        raise TfxpError(f"{failed.node_id} failed: {_first_line(failed.error)}")
    return {n.node_id: store.output_artifacts(n.execution_id) for n in result.nodes
            if n.execution_id is not None}


def _first_line(e: Optional[BaseException]) -> str:
    text = str(e or "")
    return next((line.strip() for line in text.splitlines() if line.strip()),
                type(e).__name__)[:300]

