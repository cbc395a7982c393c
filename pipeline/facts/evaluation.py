"""What an Evaluator's outputs say, in the words every report uses.

Read from the files TFMA writes (metrics per slice, the validation result, the
configuration it evaluated with), not from ML Metadata: the Pusher's model
card writer reads them where it runs (in the Kubeflow pod too), and the
readers of a run (`pipeline.lineage.results`, the report, `tfxp diff`,
`tfxp versions`) read them through it. The metrics table every report shows,
the bounds against their values, undefined metrics (`-`) and a multi-class
label's classes are defined here, once.
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, NamedTuple, Optional

from pipeline.config import KNOWN_METRICS

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
    # A multi-class label: class index -> name (the label vocabulary the model
    # carries), the class each `<key>@worst` value belongs to, and the eval
    # examples of each class (from the confusion matrix plot), per slice.
    classes: dict[int, str] = dataclasses.field(default_factory=dict)
    worst_class: dict[SliceKey, dict[str, int]] = dataclasses.field(default_factory=dict)
    class_counts: dict[SliceKey, dict[int, float]] = dataclasses.field(default_factory=dict)
    # (metric key, slice, is_diff) of every bound TFMA found unmet; the baseline
    # model compared with (None on a first run).
    failed: set[tuple[str, SliceKey, bool]] = dataclasses.field(default_factory=set)
    baseline: Optional[str] = None

    def class_name(self, index: int) -> str:
        return self.classes.get(index, f"class {index}")


def _slice_key(raw: Any) -> SliceKey:
    return tuple((str(k), v.decode() if isinstance(v, bytes) else v) for k, v in raw)


def slice_label(key: SliceKey) -> str:
    return "overall" if not key else ", ".join(f"{k}={v}" for k, v in key)


# A binary slice without positives (or negatives) is known from a metric whose
# denominator is the positives (negatives): TFMA returns NaN for it.
_NO_POSITIVES = ("miss_rate", "recall", "calibration")
_NO_NEGATIVES = ("fall_out", "specificity")
# Undefined on a slice with one class; TFMA reports 0.0 (it sums NaN terms as 0).
_NEEDS_BOTH_CLASSES = ("auc", "auc_precision_recall")


def one_class(values: dict[str, float]) -> bool:
    """Whether a binary slice's own metrics show one class only (no positive or no
    negative label), as far as the metrics computed tell."""
    def nan(key: str) -> bool:
        return key in values and math.isnan(values[key])
    mean = values.get("mean_label")
    return (any(nan(k) for k in _NO_POSITIVES + _NO_NEGATIVES)
            or (mean is not None and mean in (0.0, 1.0)))


def _mark_undefined(values: dict[str, float]) -> None:
    """AUC on a one-class slice becomes NaN: undefined, printed `-`, not 0."""
    if one_class(values):
        for key in _NEEDS_BOTH_CLASSES:
            if key in values:
                values[key] = math.nan


def _slice_values(by_output: Any) -> tuple[dict[str, float], dict[str, int]]:
    """One slice's metrics by key, and the class of each `<name>@worst`."""
    values: dict[str, float] = {}
    per_class: dict[str, list[tuple[float, int]]] = {}
    for by_sub_key in by_output.values():
        for sub_key, by_name in by_sub_key.items():
            for name, value in by_name.items():
                number = value.get("doubleValue") if isinstance(value, dict) else None
                if number is None:
                    continue
                if sub_key:
                    values[f"{name}@{sub_key}"] = float(number)
                    if sub_key.startswith("classId:"):
                        index = int(sub_key.split(":", 1)[1])
                        per_class.setdefault(name, []).append((float(number), index))
                else:
                    values[name] = float(number)
    worst: dict[str, int] = {}
    for name, found in per_class.items():
        found = [x for x in found if finite(x[0])]
        if found:
            pick = max if name in _HIGHER_IS_WORSE else min
            value, index = pick(found, key=lambda x: x[0])
            values[f"{name}@{WORST}"] = value
            if sum(x[0] == value for x in found) == 1:  # a tie names no class
                worst[f"{name}@{WORST}"] = index
    _mark_undefined(values)
    return values, worst


def _class_counts(result: Any) -> dict[SliceKey, dict[int, float]]:
    """Eval examples of each actual class per slice, from the confusion matrix plot."""
    out: dict[SliceKey, dict[int, float]] = {}
    for raw_key, by_output in result.plots or []:
        for by_sub_key in by_output.values():
            for by_name in by_sub_key.values():
                plot = by_name.get("multiClassConfusionMatrixAtThresholds")
                if not plot or not plot.get("matrices"):
                    continue
                counts: dict[int, float] = {}
                for entry in plot["matrices"][0].get("entries", []):
                    actual = int(entry.get("actualClassId", 0))
                    counts[actual] = counts.get(actual, 0.0) + float(
                        entry.get("numWeightedExamples", 0.0))
                out[_slice_key(raw_key)] = counts
    return out


def model_locations(evaluation_uri: str) -> tuple[Optional[str], Optional[str]]:
    """(candidate, baseline) model locations the Evaluator compared."""
    path = os.path.join(evaluation_uri, "eval_config.json")
    if not os.path.exists(path):
        return None, None
    with open(path) as f:
        written = json.load(f)
    specs = written.get("evalConfig", {}).get("modelSpecs", [])
    baseline_names = {s.get("name", "") for s in specs if s.get("isBaseline")}
    locations = written.get("modelLocations", {})
    baseline = next((v for k, v in locations.items() if k in baseline_names), None)
    candidate = next((v for k, v in locations.items() if k not in baseline_names), None)
    return candidate, baseline


def label_classes(model_dir: Optional[str]) -> dict[int, str]:
    """Class index -> name, from the label vocabulary the SavedModel carries as an asset."""
    from models.features import LABEL_VOCABULARY
    if not model_dir:
        return {}
    path = os.path.join(model_dir, "assets", LABEL_VOCABULARY)
    if not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as f:
        return {i: line.rstrip("\n") for i, line in enumerate(f)}


def _failure_line(name: str, where: str, value: float, message: str,
                  shown: Optional[float]) -> str:
    """A failed threshold; an undefined value says so (TFMA's number in brackets)."""
    if shown is not None and not finite(shown):
        text = "undefined" + ("" if math.isnan(value) else f" (TFMA computes {value:.4g})")
    else:
        text = f"{value:.4g}"
    return f"{name} on {where}: {text} ({message or 'threshold not met'})"


def read_evaluation(evaluation_uri: str, blessing_uri: Optional[str] = None
                    ) -> Evaluation:
    """Metrics per slice and threshold failures from an Evaluator's outputs."""
    import tensorflow_model_analysis as tfma

    result = tfma.load_eval_result(evaluation_uri)
    metrics: dict[SliceKey, dict[str, float]] = {}
    worst: dict[SliceKey, dict[str, int]] = {}
    for raw_key, by_output in result.slicing_metrics:
        key = _slice_key(raw_key)
        metrics[key], worst[key] = _slice_values(by_output)
    evaluation = Evaluation(metrics=metrics, blessed=None, failures=[], worst_class=worst,
                            baseline=model_locations(evaluation_uri)[1])
    if any(worst.values()):
        evaluation.class_counts = _class_counts(result)
        evaluation.classes = label_classes(model_locations(evaluation_uri)[0])

    validation = tfma.load_validation_result(evaluation_uri)
    if validation is not None:
        evaluation.blessed = bool(validation.validation_ok)
        for per_slice in validation.metric_validations_per_slice:
            key = _slice_key((s.column, s.bytes_value or s.int64_value or s.float_value)
                             for s in per_slice.slice_key.single_slice_keys)
            for f in per_slice.failures:
                evaluation.failed.add((f.metric_key.name, key, f.metric_key.is_diff))
                shown = metrics.get(key, {}).get(f.metric_key.name)
                evaluation.failures.append(_failure_line(
                    f.metric_key.name, slice_label(key), f.metric_value.double_value.value,
                    f.message, None if f.metric_key.is_diff else shown))
        for missing in validation.missing_slices:
            evaluation.failures.append(
                f"slice {list(missing.feature_keys) or 'overall'} missing from eval data")
    if blessing_uri and os.path.exists(os.path.join(blessing_uri, "BLESSED")):
        evaluation.blessed = True
    elif blessing_uri and os.path.exists(os.path.join(blessing_uri, "NOT_BLESSED")):
        evaluation.blessed = False
    return evaluation


def worst_with_class(evaluation: Evaluation, key: SliceKey, column: Column) -> str:
    """A `<metric>@worst` cell with the class it belongs to: `0.238 (Good)`."""
    value = evaluation.metrics.get(key, {}).get(column.key)
    index = evaluation.worst_class.get(key, {}).get(column.key)
    text = fmt_metric(value, column.metric)
    if index is None or not finite(value):
        return text
    return f"{text} ({evaluation.class_name(index)})"


def metric_cells(evaluation: Evaluation, key: SliceKey, columns: list[Column]) -> list[str]:
    """One table row's cells; a worst-class cell names its class."""
    return [worst_with_class(evaluation, key, c) for c in columns]


PER_CLASS_HEADER = ["class", "n", "precision", "recall", "FNR"]


def per_class_rows(evaluation: Evaluation, key: SliceKey = ()) -> list[list[str]]:
    """class, eval examples, precision, recall, false negative rate: one row per class
    of a multi-class label (empty for any other task)."""
    values = evaluation.metrics.get(key, {})
    indices = sorted({int(k.rsplit(":", 1)[1]) for k in values if "@classId:" in k})
    counts = evaluation.class_counts.get(key, {})
    rows = []
    for i in indices:
        n = counts.get(i)
        rows.append([evaluation.class_name(i), fmt_count(n) if n is not None else "-"] + [
            fmt_number(values.get(f"{name}@classId:{i}"))
            for name in ("precision", "recall", "miss_rate")])
    return rows


def finite(x: Optional[float]) -> bool:
    return x is not None and not math.isnan(x)


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


def fmt_count(x: Optional[float]) -> str:
    """A count as a whole number; '-' when unknown."""
    return f"{x:.0f}" if finite(x) else "-"


def fmt_metric(x: Optional[float], metric: str) -> str:
    """A table cell: counts whole, other metrics as `fmt_number` ('-' when undefined)."""
    if metric == "ExampleCount":
        return fmt_count(x)
    return fmt_number(x)


# --------------------------------------------------------------------------- the search


def _values_text(values: dict[str, Any]) -> str:
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                     for k, v in sorted(values.items()))


def tuning_lines(record: dict[str, Any]) -> list[str]:
    """How a search fared against the push gate (the Tuner's record, see
    models.tuning.gate_record): trials that met it, the chosen one, and the best
    overall with what it missed where that is another trial."""
    from models.tuning import best_overall
    found = record.get("trials") or []
    if not found:
        return ["Tuner: no trial completed."]
    objective = str(record.get("objective", "score")).replace("_", " ")
    passed = [t for t in found if not t["failures"]]
    chosen = next((t for t in found if t["trial_id"] == record.get("chosen")), found[0])
    best = best_overall(record) or chosen

    def trial(t: dict[str, Any]) -> str:
        return (f"trial {t['trial_id']}, {objective} {t['score']:.4f} with "
                f"{_values_text(t['values'])}")
    rows = record.get("rows")
    on = f"the validation data ({rows:,} eval rows)" if rows else "the validation data"
    lines = [f"Tuner: {len(found)} trials, {len(passed) or 'none'} met the gate on {on}."]
    if passed:
        lines.append(f"    chosen: {trial(chosen)} (the Trainer used these)")
        if best["trial_id"] != chosen["trial_id"]:
            lines.append(f"    best overall: {trial(best)}; it missed:")
            lines += [f"        {f}" for f in best["failures"]]
    else:
        lines.append(f"    the Trainer used the best: {trial(chosen)}; "
                     "it missed in validation:")
        lines += [f"        {f}" for f in chosen["failures"]]
    if record.get("not_judged"):
        lines.append("    not judged on trials: " + "; ".join(record["not_judged"]))
    return lines


# A worst-class column as a person reads it.
WORST_WORDS = {f"precision@{WORST}": "min precision", f"recall@{WORST}": "min recall",
               f"fall_out@{WORST}": "max FPR", f"miss_rate@{WORST}": "max FNR"}


def worst_classes_line(evaluation: Evaluation, key: SliceKey = ()) -> Optional[str]:
    """`worst class overall: min recall 0.238 (Good), ...`; None for a label without classes."""
    parts = []
    for metric_key, words in WORST_WORDS.items():
        index = evaluation.worst_class.get(key, {}).get(metric_key)
        value = evaluation.metrics.get(key, {}).get(metric_key)
        if index is not None and finite(value):
            parts.append(f"{words} {value:.3f} ({evaluation.class_name(index)})")
    if not parts:
        return None
    return f"worst class {slice_label(key)}: " + ", ".join(parts)


@dataclasses.dataclass
class ThresholdCheck:
    """One configured bound on one slice, and whether the model met it."""

    metric: str
    slice: str
    bound: str
    value: Optional[float]
    passed: Optional[bool]  # None: not applied (a change bound without a baseline)


def _bound_text(t: Any) -> str:
    v = t.value_threshold
    return " and ".join(([f">= {v.lower_bound.value:g}"] if v.HasField("lower_bound") else [])
                        + ([f"<= {v.upper_bound.value:g}"] if v.HasField("upper_bound")
                           else []))


def threshold_checks(evaluation: Evaluation, eval_config: Any) -> list[ThresholdCheck]:
    """Every configured bound on every slice it applies to, met or not (TFMA's verdict)."""
    from tensorflow_model_analysis.slicer import slicer_lib

    from pipeline.config import metric_key
    from pipeline.dag.evaluation import configured_name
    if eval_config is None:
        return []
    checks = []
    ordered = [()] + [k for kind in slice_kinds(evaluation.metrics, eval_config)
                      for k in sorted_slices(evaluation.metrics, kind)]
    for spec in eval_config.metrics_specs:
        for metric in spec.metrics:
            name = configured_name(metric)
            key_name = metric_key(name)
            for pst in metric.per_slice_thresholds:
                t = pst.threshold
                for key in [k for k in ordered
                            if any(slicer_lib.SingleSliceSpec(spec=s).is_slice_applicable(k)
                                   for s in pst.slicing_specs)]:
                    found = evaluation.metrics.get(key, {})
                    # Per class (a multi-class label), TFMA checks every class: the worst.
                    value = found.get(key_name, found.get(f"{key_name}@{WORST}"))
                    if t.HasField("value_threshold"):
                        checks.append(ThresholdCheck(
                            name, slice_label(key), _bound_text(t), value,
                            (key_name, key, False) not in evaluation.failed))
                    if t.HasField("change_threshold"):
                        change = t.change_threshold.absolute.value
                        word = "decrease" if change < 0 else "increase"
                        checks.append(ThresholdCheck(
                            name, slice_label(key), f"{word} vs baseline <= {abs(change):g}",
                            value, (key_name, key, True) not in evaluation.failed
                            if evaluation.baseline else None))
    return checks
