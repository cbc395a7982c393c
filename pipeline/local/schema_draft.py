"""Draft a schema for a dataset and compare it with the curated one.

The draft is SchemaGen's own output: the pipeline's data stage (CsvExampleGen,
StatisticsGen, SchemaGen) runs alone, so the draft sees the data exactly as the
pipeline's validator will (an empty CSV cell is a present feature with no
value, not a missing one).  Then come the TRAINING / SERVING environments the
pipeline needs: the label is not expected at serving time.  A person curates
the draft into schemas/<dataset>/schema.pbtxt.
"""
from __future__ import annotations

import os
from typing import Optional

import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2

from pipeline.config import PipelineConfig
from pipeline.pipeline import create_schema_draft_pipeline
from pipeline.results import open_store, output_artifacts, sqlite_connection
from pipeline.runners.local import LocalRunner

TRAINING = "TRAINING"
SERVING = "SERVING"


def add_environments(schema: schema_pb2.Schema, cfg: PipelineConfig) -> schema_pb2.Schema:
    """TRAINING and SERVING environments; label columns absent at serving."""
    del schema.default_environment[:]
    schema.default_environment.extend([TRAINING, SERVING])
    label_only = [cfg.label.column]
    if cfg.label.relative_to and cfg.label.relative_to not in cfg.features.all_keys():
        label_only.append(cfg.label.relative_to)
    for name in label_only:
        feature = tfdv.get_feature(schema, name)
        if SERVING not in feature.not_in_environment:
            feature.not_in_environment.append(SERVING)
    return schema


def draft_schema(cfg: PipelineConfig, workdir: str, data_path: Optional[str] = None
                 ) -> schema_pb2.Schema:
    """Runs the data stage under `workdir` and returns SchemaGen's schema."""
    os.makedirs(workdir, exist_ok=True)
    connection = sqlite_connection(os.path.join(workdir, "metadata.sqlite"))
    run = LocalRunner().run(create_schema_draft_pipeline(
        cfg, pipeline_root=os.path.join(workdir, "pipeline"), data_path=data_path,
        metadata_connection_config=connection))
    if run.error is not None:
        raise run.error
    [artifact] = output_artifacts(open_store(connection),
                                  run.node("SchemaGen").execution_id)["schema"]
    schema = tfdv.load_schema_text(os.path.join(artifact.uri, "schema.pbtxt"))
    present = {f.name for f in schema.feature}
    missing = [c for c in cfg.model_inputs().raw_columns() if c not in present]
    if missing:
        raise ValueError(f"configured columns not found in the data: {', '.join(missing)}")
    return add_environments(schema, cfg)

def _domain(schema: schema_pb2.Schema, feature: schema_pb2.Feature) -> set[str]:
    if feature.HasField("domain"):
        for d in schema.string_domain:
            if d.name == feature.domain:
                return set(d.value)
    if feature.HasField("string_domain"):
        return set(feature.string_domain.value)
    return set()


def schema_diff(curated: schema_pb2.Schema, draft: schema_pb2.Schema) -> list[str]:
    """What the draft says differently from the curated schema, feature by feature."""
    old = {f.name: f for f in curated.feature}
    new = {f.name: f for f in draft.feature}
    lines = []
    for name in sorted(set(old) | set(new)):
        if name not in new:
            lines.append(f"- {name}: in the curated schema, not in the data")
            continue
        if name not in old:
            lines.append(f"+ {name}: new column ({schema_pb2.FeatureType.Name(new[name].type)})")
            continue
        a, b = old[name], new[name]
        if a.type != b.type:
            lines.append(f"~ {name}: type {schema_pb2.FeatureType.Name(a.type)} -> "
                         f"{schema_pb2.FeatureType.Name(b.type)}")
        if a.presence.min_fraction != b.presence.min_fraction:
            lines.append(f"~ {name}: presence {a.presence.min_fraction:g} -> "
                         f"{b.presence.min_fraction:g}")
        if a.HasField("shape") != b.HasField("shape"):
            lines.append(f"~ {name}: {'fixed shape' if a.HasField('shape') else 'variable'} -> "
                         f"{'fixed shape' if b.HasField('shape') else 'variable'}")
        added = sorted(_domain(draft, b) - _domain(curated, a))
        removed = sorted(_domain(curated, a) - _domain(draft, b))
        if added:
            lines.append(f"~ {name}: new values {added[:10]}{' ...' if len(added) > 10 else ''}")
        if removed:
            lines.append(f"~ {name}: values not seen {removed[:10]}"
                         f"{' ...' if len(removed) > 10 else ''}")
    return lines
