"""What a run produced, read back from the artifacts ML Metadata names.

The metrics per slice, the threshold failures and the blessing (TFMA), the
statistics, anomalies and schemas of the data (TFDV): read from the URIs the
store gives for a run's executions, cached ones included (a cached step's
outputs are that run's inputs too).  Whatever is absent (a run that stopped
at the data gate, a deleted artifact) is None or empty, never raised.  The
metrics table every report shows is defined once, in `pipeline.facts.evaluation`.
"""
from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Optional

from ml_metadata.proto import metadata_store_pb2 as mlmd

from pipeline.facts.evaluation import (
    ALL_CHARTS,
    ALL_COLUMNS,
    CHART_METRICS,
    PER_CLASS_HEADER,
    TABLE_METRICS,
    WORST,
    WORST_WORDS,
    Column,
    Evaluation,
    SliceKey,
    ThresholdCheck,
    chart_metrics,
    finite,
    fmt_count,
    fmt_metric,
    fmt_number,
    label_classes,
    metric_cells,
    model_locations,
    one_class,
    per_class_rows,
    read_evaluation,
    slice_kinds,
    slice_label,
    sorted_slices,
    table_columns,
    threshold_checks,
    thresholds,
    tuning_lines,
    worst_classes_line,
    worst_with_class,
)
from pipeline.lineage.runs import RunRecord, uri_exists
from pipeline.lineage.store import custom

if TYPE_CHECKING:
    from tensorflow_metadata.proto.v0 import schema_pb2

# What an Evaluator's outputs say is read in pipeline.facts.evaluation (the model
# card writer reads it where it runs); the readers here take it from this module.
__all__ = [
    "ALL_CHARTS",
    "ALL_COLUMNS",
    "CHART_METRICS",
    "Column",
    "Evaluation",
    "PER_CLASS_HEADER",
    "SliceKey",
    "TABLE_METRICS",
    "ThresholdCheck",
    "WORST",
    "WORST_WORDS",
    "chart_metrics",
    "finite",
    "fmt_count",
    "fmt_metric",
    "fmt_number",
    "label_classes",
    "metric_cells",
    "model_locations",
    "one_class",
    "per_class_rows",
    "read_evaluation",
    "slice_kinds",
    "slice_label",
    "sorted_slices",
    "table_columns",
    "threshold_checks",
    "thresholds",
    "tuning_lines",
    "worst_classes_line",
    "worst_with_class",
    "anomalies", "evaluation", "load_schema", "schema_changes", "statistics",
]

# --------------------------------------------------------------------------- the data


def _splits(artifact: mlmd.Artifact) -> list[str]:
    try:
        return json.loads(custom(artifact, "split_names") or "[]")
    except ValueError:
        return []


def statistics(record: RunRecord) -> dict[str, Any]:
    """split -> DatasetFeatureStatistics of the data as ExampleGen split it."""
    import tensorflow_data_validation as tfdv
    a = record.first("ExampleStatistics", "statistics")  # not Transform's pre/post stats
    out = {}
    if a is None or not uri_exists(a.uri):
        return out
    for split in _splits(a):
        path = os.path.join(a.uri, f"Split-{split}", "FeatureStats.pb")
        if os.path.exists(path):
            out[split] = tfdv.load_stats_binary(path).datasets[0]
    return out


def anomalies(record: RunRecord) -> dict[str, list[tuple[str, str]]]:
    """"<node> <split>" -> [(feature, description)] from every data check's
    `anomalies` output (the ExampleValidator's, and any other check's)."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2
    out: dict[str, list[tuple[str, str]]] = {}
    for label, a in record.all("ExampleAnomalies", "anomalies"):
        if not a.uri or not uri_exists(a.uri):
            continue
        node = label.split(".", 1)[0]
        for split in _splits(a) or [""]:
            path = os.path.join(a.uri, f"Split-{split}" if split else "", "SchemaDiff.pb")
            if os.path.exists(path):
                found = anomalies_pb2.Anomalies.FromString(open(path, "rb").read())
                out[f"{node} {split}".strip()] = sorted(
                    (f, info.description or info.short_description)
                    for f, info in found.anomaly_info.items())
    return out


def load_schema(uri: Optional[str]) -> Optional["schema_pb2.Schema"]:
    """The schema.pbtxt of a Schema artifact, or None if absent (deleted, never made)."""
    import tensorflow_data_validation as tfdv
    if not uri:
        return None
    path = os.path.join(uri, "schema.pbtxt")
    return tfdv.load_schema_text(path) if os.path.exists(path) else None


def schema_changes(record: RunRecord) -> Optional[list[str]]:
    """How the schema inferred from this run's data differs from the curated one."""
    from pipeline.dag.schema import schema_diff
    curated = load_schema(record.uri("Schema", "schema", has="schema_file"))
    inferred = load_schema(record.uri("Schema", "schema", lacks="schema_file"))
    if curated is None or inferred is None:
        return None
    return schema_diff(curated, inferred)


# --------------------------------------------------------------------------- the model


def evaluation(record: RunRecord) -> tuple[Optional[Evaluation], Any]:
    """(metrics per slice and failures, the TFMA EvalConfig used) or (None, None)."""
    import tensorflow_model_analysis as tfma

    uri = record.uri("ModelEvaluation")
    if not uri:
        return None, None
    result = read_evaluation(uri, record.uri("ModelBlessing"))
    return result, tfma.load_eval_result(uri).config


