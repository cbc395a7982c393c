"""`tfxp schema`: draft a schema for a dataset from its data.

The draft is SchemaGen's own output: the pipeline's data stage (CsvExampleGen,
StatisticsGen, SchemaGen) runs alone, so the draft sees the data exactly as the
pipeline's validator will (an empty CSV cell is a present feature with no
value, not a missing one).  Then come the TRAINING / SERVING environments the
pipeline needs (`pipeline.dag.schema`).  A person curates the draft into
schemas/<dataset>/schema.pbtxt.
"""
from __future__ import annotations

import glob
import os
from typing import Optional

import pyarrow.compute as pc
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import schema_pb2

from components.csv_ingest import arrow_csv
from pipeline.config import PipelineConfig
from pipeline.dag.schema import add_environments
from pipeline.errors import ConfigError
from pipeline.layout import RunLayout
from pipeline.lineage.store import open_store, output_artifacts, sqlite_connection
from pipeline.local.beam_mode import choose_for, local_args
from pipeline.local.inputs import local_data_sources, local_example_gen_input
from pipeline.local.runner import LocalRunner
from pipeline.pipeline import create_schema_draft_pipeline


def draft_schema(cfg: PipelineConfig, layout: RunLayout, data_path: Optional[str] = None
                 ) -> schema_pb2.Schema:
    """Runs the data stage under `layout` (its own root) and returns SchemaGen's schema."""
    os.makedirs(layout.root, exist_ok=True)
    connection = sqlite_connection(layout.metadata)
    mode = choose_for(cfg, cfg.data_files(data_path))
    run = LocalRunner().run(create_schema_draft_pipeline(
        cfg, pipeline_root=layout.pipeline_root,
        sources=local_data_sources(cfg, data_path),
        metadata_connection_config=connection, beam_args=local_args(cfg.beam_args, mode.args),
        step_beam_args=mode.step_args))
    if run.error is not None:
        raise run.error
    [artifact] = output_artifacts(open_store(connection),
                                  run.node("SchemaGen").execution_id)["schema"]
    schema = tfdv.load_schema_text(os.path.join(artifact.uri, "schema.pbtxt"))
    present = [f.name for f in schema.feature]
    missing = [c for c in cfg.model_inputs().raw_columns() if c not in present]
    if missing:
        shown = ", ".join(present[:30]) + (" ..." if len(present) > 30 else "")
        raise ConfigError(f"configured columns not found in the data: {', '.join(missing)} "
                          f"(the data's columns: {shown})")
    return optional_features(add_environments(schema, cfg), cfg)


def optional_features(schema: schema_pb2.Schema, cfg: PipelineConfig) -> schema_pb2.Schema:
    """The model's input columns drafted without a fixed shape.

    SchemaGen fixes a column's shape when every row it saw had a value, and a
    fixed shape makes a missing value unparseable: a row with an empty cell
    could then never be scored, though Transform imputes it.  Without the
    shape, the column is parsed as a list that may be empty, imputed by
    models/preprocessing.py.  The label keeps its shape.
    """
    features = set(cfg.model_inputs().serving_columns())
    for feature in schema.feature:
        if feature.name in features:
            feature.ClearField("shape")
    return schema


def non_numeric_tokens(cfg: PipelineConfig, schema: schema_pb2.Schema,
                       data_path: Optional[str] = None, max_rows: int = 200_000
                       ) -> dict[str, list[str]]:
    """Columns the draft types as strings although most of their cells are
    numbers, with the tokens that made them strings (e.g. {"bill_mm": ["NA"]}).

    Read from the CSV files themselves (at most `max_rows` rows): statistics
    keep only the most frequent values, and one "?" is enough to make a
    column a string.
    """
    strings = {f.name for f in schema.feature if f.type == schema_pb2.BYTES}
    if not strings:
        return {}
    base, config = local_example_gen_input(cfg, data_path)
    if "://" in base:
        return {}
    numbers: dict[str, int] = dict.fromkeys(strings, 0)
    tokens: dict[str, dict[str, int]] = {name: {} for name in strings}
    rows = 0
    for name in sorted(glob.glob(os.path.join(base, config.splits[0].pattern))):
        columns = arrow_csv.read_header(name)
        for batch in arrow_csv.read_batches(name, columns):
            batch = batch.slice(0, max(0, max_rows - rows))
            rows += batch.num_rows
            for column in strings & set(columns):
                values = pc.ascii_trim(batch.column(columns.index(column)),
                                       characters=arrow_csv.WHITESPACE)
                values = values.filter(pc.not_equal(values, ""))
                number = pc.match_substring_regex(values, arrow_csv.FLOAT_LITERAL)
                numbers[column] += pc.sum(number).as_py() or 0
                others = values.filter(pc.invert(number))
                for item in pc.value_counts(others).to_pylist() if len(others) else []:
                    token, count = item["values"], item["counts"]
                    tokens[column][token] = tokens[column].get(token, 0) + count
            if rows >= max_rows:
                break
    found = {}
    for column in sorted(strings):
        others = sum(tokens[column].values())
        if numbers[column] and numbers[column] >= others:
            found[column] = sorted(tokens[column], key=lambda t: -tokens[column][t])
    return found


def token_notes(cfg: PipelineConfig, schema: schema_pb2.Schema,
                data_path: Optional[str] = None) -> list[str]:
    """What `tfxp schema` says about numeric columns drafted as strings."""
    found = non_numeric_tokens(cfg, schema, data_path)
    if not found:
        return []
    lines = ["Columns inferred as strings because of non-numeric tokens in numbers:"]
    for column, tokens in found.items():
        shown = ", ".join(repr(t) for t in tokens[:8]) + (" ..." if len(tokens) > 8 else "")
        lines.append(f"  {column}: {shown}")
    every = sorted({t for tokens in found.values() for t in tokens})[:8]
    lines.append(f"If these mark missing values, add them to the config "
                 f"(data.na_values: {every!r}) and draft again: the columns become numbers.")
    return lines
