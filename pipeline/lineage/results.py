"""What a run produced, read back from the artifacts ML Metadata names.

The metrics per slice, the threshold failures and the blessing (TFMA), the
statistics, anomalies and schemas of the data (TFDV): read from the URIs the
store gives for a run's executions, cached ones included (a cached step's
outputs are that run's inputs too).  Whatever is absent (a run that stopped
at the data gate, a deleted artifact) is None or empty, never raised.  The
metrics table every report shows is defined here, once.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import TYPE_CHECKING, Any, NamedTuple, Optional

from ml_metadata.proto import metadata_store_pb2 as mlmd

from pipeline.config import KNOWN_METRICS
from pipeline.lineage.runs import RunRecord, uri_exists
from pipeline.lineage.store import custom

if TYPE_CHECKING:
    from tensorflow_metadata.proto.v0 import schema_pb2

SliceKey = tuple[tuple[str, Any], ...]  # () is the whole eval split


class Column(NamedTuple):
    """One column of the metrics table."""

    metric: str  # the TFMA metric class
    key: str  # the key TFMA stores its value under
    header: str


# A per-class metric of a multi-class label is stored as `<key>@classId:<i>`,
# and its worst class as `<key>@worst` (the lowest, or the highest for an
# error rate).
WORST = "worst"
_HIGHER_IS_WORSE = {"fall_out", "miss_rate", "false_positives", "false_negatives"}

# The metrics table of a binary label (the taxi's), in column order.
TABLE_METRICS = tuple(Column(metric, KNOWN_METRICS[metric], header) for metric, header in (
    ("ExampleCount", "n"), ("AUC", "AUC"), ("BinaryAccuracy", "accuracy"),
    ("Calibration", "Calibration"), ("FallOut", "FPR"), ("MissRate", "FNR")))
# Every column any task's table may show; a table shows those it has values for.
ALL_COLUMNS = TABLE_METRICS + (
    Column("Precision", "precision", "precision"), Column("Recall", "recall", "recall"),
    Column("SparseCategoricalAccuracy", "sparse_categorical_accuracy", "accuracy"),
    Column("Precision", f"precision@{WORST}", "min prec"),
    Column("Recall", f"recall@{WORST}", "min rec"),
    Column("FallOut", f"fall_out@{WORST}", "max FPR"),
    Column("MissRate", f"miss_rate@{WORST}", "max FNR"),
    Column("MeanSquaredError", "mean_squared_error", "MSE"),
    Column("MeanAbsoluteError", "mean_absolute_error", "MAE"),
    Column("MeanLabel", "mean_label", "mean y"),
    Column("MeanPrediction", "mean_prediction", "mean pred"),
)
# The fairness charts: (metric key, TFMA metric class, title); a chart is drawn
# for those the evaluation has.
CHART_METRICS = (("fall_out", "FallOut", "false positive rate"),
                 ("miss_rate", "MissRate", "false negative rate"))
ALL_CHARTS = CHART_METRICS + (
    (f"fall_out@{WORST}", "FallOut", "false positive rate, worst class"),
    (f"miss_rate@{WORST}", "MissRate", "false negative rate, worst class"),
    ("mean_absolute_error", "MeanAbsoluteError", "mean absolute error"))


def _present(metrics: dict["SliceKey", dict[str, float]], key: str) -> bool:
    return any(key in m for m in metrics.values())


def table_columns(metrics: dict["SliceKey", dict[str, float]]) -> list[Column]:
    """The table's columns for these metrics (whatever the task), one per header."""
    cols, headers = [], set()
    for c in ALL_COLUMNS:
        if _present(metrics, c.key) and c.header not in headers:
            cols.append(c)
            headers.add(c.header)
    return cols


def chart_metrics(metrics: dict["SliceKey", dict[str, float]]
                  ) -> list[tuple[str, str, str]]:
    """The per-slice charts these metrics allow: error rates, or a regression's error."""
    return [c for c in ALL_CHARTS if _present(metrics, c[0])]


@dataclasses.dataclass
class Evaluation:
    metrics: dict[SliceKey, dict[str, float]]
    blessed: Optional[bool]
    failures: list[str]  # one readable line per failed threshold


def _slice_key(raw: Any) -> SliceKey:
    return tuple((str(k), v.decode() if isinstance(v, bytes) else v) for k, v in raw)


def slice_label(key: SliceKey) -> str:
    return "overall" if not key else ", ".join(f"{k}={v}" for k, v in key)


def read_evaluation(evaluation_uri: str, blessing_uri: Optional[str] = None
                    ) -> Evaluation:
    """Metrics per slice and threshold failures from an Evaluator's outputs."""
    import tensorflow_model_analysis as tfma

    result = tfma.load_eval_result(evaluation_uri)
    metrics: dict[SliceKey, dict[str, float]] = {}
    for raw_key, by_output in result.slicing_metrics:
        values: dict[str, float] = {}
        per_class: dict[str, list[float]] = {}
        for by_sub_key in by_output.values():
            for sub_key, by_name in by_sub_key.items():
                for name, value in by_name.items():
                    number = value.get("doubleValue") if isinstance(value, dict) else None
                    if number is None:
                        continue
                    if sub_key:
                        values[f"{name}@{sub_key}"] = float(number)
                        per_class.setdefault(name, []).append(float(number))
                    else:
                        values[name] = float(number)
        for name, found in per_class.items():
            found = [x for x in found if finite(x)]
            if found:
                values[f"{name}@{WORST}"] = (max if name in _HIGHER_IS_WORSE else min)(found)
        metrics[_slice_key(raw_key)] = values

    failures = []
    blessed = None
    validation = tfma.load_validation_result(evaluation_uri)
    if validation is not None:
        blessed = bool(validation.validation_ok)
        for per_slice in validation.metric_validations_per_slice:
            where = slice_label(_slice_key(
                (s.column, s.bytes_value or s.int64_value or s.float_value)
                for s in per_slice.slice_key.single_slice_keys))
            for f in per_slice.failures:
                value = f.metric_value.double_value.value
                failures.append(f"{f.metric_key.name} on {where}: {value:.4g}"
                                f" ({f.message or 'threshold not met'})")
        for missing in validation.missing_slices:
            failures.append(
                f"slice {list(missing.feature_keys) or 'overall'} missing from eval data")
    if blessing_uri and os.path.exists(os.path.join(blessing_uri, "BLESSED")):
        blessed = True
    elif blessing_uri and os.path.exists(os.path.join(blessing_uri, "NOT_BLESSED")):
        blessed = False
    return Evaluation(metrics=metrics, blessed=blessed, failures=failures)


def finite(x: Optional[float]) -> bool:
    return x is not None and not math.isnan(x)


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


def thresholds(eval_config: Any, metric_class: str, key: SliceKey
               ) -> tuple[Optional[float], Optional[float]]:
    """(lower, upper) value bounds TFMA applies to this metric on this slice."""
    from tensorflow_model_analysis.slicer import slicer_lib

    from pipeline.dag.evaluation import configured_name
    lower = upper = None
    if eval_config is None:
        return lower, upper
    for spec in eval_config.metrics_specs:
        for metric in spec.metrics:
            if configured_name(metric) != metric_class:
                continue
            for pst in metric.per_slice_thresholds:
                applies = any(slicer_lib.SingleSliceSpec(spec=s).is_slice_applicable(key)
                              for s in pst.slicing_specs)
                bound = pst.threshold.value_threshold
                if applies and pst.threshold.HasField("value_threshold"):
                    if bound.HasField("lower_bound"):
                        lower = bound.lower_bound.value
                    if bound.HasField("upper_bound"):
                        upper = bound.upper_bound.value
    return lower, upper


def slice_kinds(metrics: dict[SliceKey, dict[str, float]], eval_config: Any
                ) -> list[list[str]]:
    """The slicing specs of the evaluation, in configured order (overall excluded)."""
    kinds: list[list[str]] = []
    if eval_config is not None:
        for s in eval_config.slicing_specs:
            keys = list(s.feature_keys) or list(s.feature_values)
            if keys and keys not in kinds:
                kinds.append(keys)
    for key in metrics:
        names = [k for k, _ in key]
        if names and names not in kinds:
            kinds.append(names)
    return kinds


def sorted_slices(metrics: dict[SliceKey, dict[str, float]], kind: list[str]) -> list[SliceKey]:
    """The slices of one kind, numbers in numeric order (hour 2 before hour 10)."""
    keys = [k for k in metrics if [f for f, _ in k] == kind]

    def order(k):
        return [(0, float(v)) if isinstance(v, (int, float)) else (1, str(v)) for _, v in k]
    return sorted(keys, key=order)


def fmt_number(x: Optional[float]) -> str:
    """Three decimals, '-' for a metric TFMA could not compute on a slice."""
    return f"{x:.3f}" if finite(x) else "-"


def fmt_metric(x: Optional[float], metric: str) -> str:
    """A table cell: counts whole, other metrics as `fmt_number`."""
    if metric == "ExampleCount" and finite(x):
        return f"{x:.0f}"
    return fmt_number(x)
