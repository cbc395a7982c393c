"""`tfxp schema`: draft a schema for a dataset from its data.

The draft is SchemaGen's own output: the pipeline's data stage (CsvExampleGen,
StatisticsGen, SchemaGen) runs alone, so the draft sees the data exactly as the
pipeline's validator will (an empty CSV cell is a present feature with no
value, not a missing one).  Then come the TRAINING / SERVING environments the
pipeline needs (`pipeline.schema`).  A person curates the draft into
schemas/<dataset>/schema.pbtxt.
"""
from __future__ import annotations

import os
from typing import Optional

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2

from pipeline.config import PipelineConfig
from pipeline.errors import ConfigError
from pipeline.layout import RunLayout
from pipeline.lineage.store import open_store, output_artifacts, sqlite_connection
from pipeline.local.runner import LocalRunner
from pipeline.pipeline import create_schema_draft_pipeline
from pipeline.schema import add_environments


def draft_schema(cfg: PipelineConfig, layout: RunLayout, data_path: Optional[str] = None
                 ) -> schema_pb2.Schema:
    """Runs the data stage under `layout` (its own root) and returns SchemaGen's schema."""
    os.makedirs(layout.root, exist_ok=True)
    connection = sqlite_connection(layout.metadata)
    run = LocalRunner().run(create_schema_draft_pipeline(
        cfg, pipeline_root=layout.pipeline_root, data_path=data_path,
        metadata_connection_config=connection))
    if run.error is not None:
        raise run.error
    [artifact] = output_artifacts(open_store(connection),
                                  run.node("SchemaGen").execution_id)["schema"]
    schema = tfdv.load_schema_text(os.path.join(artifact.uri, "schema.pbtxt"))
    present = {f.name for f in schema.feature}
    missing = [c for c in cfg.model_inputs().raw_columns() if c not in present]
    if missing:
        raise ConfigError(f"configured columns not found in the data: {', '.join(missing)}")
    return add_environments(schema, cfg)
