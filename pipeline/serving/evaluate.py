"""`tfxp evaluate`: has a served version decayed on new data?

With labels: TFX's Evaluator (TFMA) runs the pipeline's own EvalConfig (same
metrics, same slices; the push gate's thresholds left out, since there is no
baseline here) on the new rows with the served version, in a small pipeline
recorded in the run root's store.  Its metrics are set beside the version's
metrics at push time and checked against `monitoring.thresholds`.

Without labels (the label column absent from the CSV): StatisticsGen runs on
the rows and TFDV compares them with the statistics of the data that trained
the version, with `drift_check.thresholds`, naming each feature that moved.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

from pipeline.config import PipelineConfig, Threshold, metric_key
from pipeline.errors import StoreError
from pipeline.layout import RunLayout
from pipeline.serving import jobs, rows, versions

SliceKey = tuple


@dataclasses.dataclass
class Check:
    threshold: Threshold
    slice: SliceKey
    value: Optional[float]
    at_push: Optional[float]
    crossed: bool

    def __str__(self) -> str:
        from pipeline.lineage.results import fmt_number, slice_label
        t = self.threshold
        bound = ", ".join(f"{k} {getattr(t, k):g}" for k in
                          ("lower", "upper", "max_decrease", "max_increase")
                          if getattr(t, k) is not None)
        return (f"{t.metric} on {slice_label(self.slice)}: {fmt_number(self.value)} "
                f"(at push {fmt_number(self.at_push)}; {bound})")


@dataclasses.dataclass
class Evaluation:
    run_id: str
    version: int
    push_run: Optional[str]
    rows: int
    bad: list[rows.BadRow]
    labelled: bool
    metrics: dict[SliceKey, dict[str, float]] = dataclasses.field(default_factory=dict)
    at_push: dict[SliceKey, dict[str, float]] = dataclasses.field(default_factory=dict)
    checks: list[Check] = dataclasses.field(default_factory=list)
    drift: list = dataclasses.field(default_factory=list)  # drift_check Drift, over threshold
    measured: list = dataclasses.field(default_factory=list)  # every drift measurement

    @property
    def decayed(self) -> bool:
        return any(c.crossed for c in self.checks) or bool(self.drift)


def _push_run(layout: RunLayout, version: int):
    """(store, run id) of the run that pushed the version, or (store, None)."""
    from pipeline.lineage.store import open_store_from
    try:
        store = open_store_from(layout.root)
    except StoreError:
        return None, None
    run_id, _ = versions.push_records(store, [version]).get(version, (None, {}))
    return store, run_id


def monitoring_eval_config(cfg: PipelineConfig):
    """The pipeline's EvalConfig without the push gate's thresholds."""
    from pipeline.dag.evaluation import eval_config
    config = eval_config(cfg.evaluation, cfg.model_inputs())
    for model_spec in config.model_specs:
        model_spec.ClearField("example_weight_key")  # every row of the CSV, unsampled
    for spec in config.metrics_specs:
        for metric in spec.metrics:
            metric.ClearField("per_slice_thresholds")
            metric.ClearField("threshold")
            metric.ClearField("cross_slice_thresholds")
    return config


def _slices(t: Threshold, metrics: dict[SliceKey, dict[str, float]]) -> list[SliceKey]:
    if isinstance(t.slice, dict):
        want = sorted(t.slice.items())
        return [k for k in metrics if sorted((f, str(v)) for f, v in k) == want]
    return [k for k in metrics if sorted(f for f, _ in k) == sorted(t.slice)]


def check(thresholds: list[Threshold], metrics: dict[SliceKey, dict[str, float]],
          at_push: dict[SliceKey, dict[str, float]]) -> list[Check]:
    """Every threshold on every slice it names, against the metrics at push time."""
    from pipeline.lineage.results import finite
    out = []
    for t in thresholds:
        key = metric_key(t.metric)
        for where in _slices(t, metrics):
            value = metrics[where].get(key)
            before = at_push.get(where, {}).get(key)
            if not finite(value):
                continue
            crossed = ((t.lower is not None and value < t.lower)
                       or (t.upper is not None and value > t.upper))
            if finite(before):
                crossed |= ((t.max_decrease is not None and value < before - t.max_decrease)
                            or (t.max_increase is not None and value > before + t.max_increase))
            out.append(Check(t, where, value, before, bool(crossed)))
    return out


def evaluate(cfg: PipelineConfig, layout: RunLayout, csv_path: str,
             version: Optional[str] = None, label: Optional[str] = None) -> Evaluation:
    """Evaluates a served version on new data; `.decayed` says whether to exit 5."""
    import tensorflow_data_validation as tfdv

    chosen = versions.resolve(layout.serving, version, label)
    schema = tfdv.load_schema_text(cfg.schema_path)
    header, _, f = rows.open_csv(csv_path)
    f.close()
    inputs = cfg.model_inputs()
    labelled = inputs.label.column in header
    # The transform signature TFMA calls parses every column of the schema.
    names = [f.name for f in schema.feature] if labelled else [
        c for c in inputs.serving_columns() + list(cfg.drift_check.thresholds)
        if c in {f.name for f in schema.feature}]
    job = jobs.new_job(layout, "evaluate")
    converted = rows.to_examples(csv_path, schema, list(dict.fromkeys(names)), job.examples_dir)
    if not converted.good:
        from pipeline.errors import DataRejected
        raise DataRejected(f"{csv_path}: no row could be read "
                           f"({converted.bad[0] if converted.bad else 'no rows'})")
    store, push_run = _push_run(layout, chosen)
    result = Evaluation(job.run_id, chosen, push_run, converted.rows, converted.bad, labelled)
    examples, model = jobs.components(job, versions.version_path(layout.serving, chosen),
                                      chosen, layout.serving)
    if labelled:
        _with_labels(cfg, layout, job, csv_path, examples, model, store, result)
    else:
        _without_labels(cfg, layout, job, csv_path, examples, store, result, schema)
    return result


def _with_labels(cfg, layout, job, csv_path, examples, model, store, result) -> None:
    from tfx.components import Evaluator

    from pipeline.lineage import results, runs
    evaluator = Evaluator(examples=examples.outputs["examples"], model=model.outputs["result"],
                          example_splits=[jobs.EXAMPLES_SPLIT],
                          eval_config=monitoring_eval_config(cfg)).with_id("Evaluator")
    outputs = jobs.run(cfg, layout, job, "evaluate", [examples, model, evaluator],
                       os.path.abspath(csv_path))
    [evaluation] = outputs["Evaluator"]["evaluation"]
    result.metrics = results.read_evaluation(evaluation.uri).metrics
    if store is not None and result.push_run:
        pushed, _ = results.evaluation(runs.run_record(store, result.push_run))
        result.at_push = pushed.metrics if pushed is not None else {}
    result.checks = check(list(cfg.monitoring.thresholds), result.metrics, result.at_push)


def _training_statistics(store, push_run: Optional[str], split: str):
    import tensorflow_data_validation as tfdv

    from pipeline.lineage import runs
    if store is None or not push_run:
        return None
    a = runs.run_record(store, push_run).first("ExampleStatistics", "statistics")
    path = os.path.join(a.uri, f"Split-{split}", "FeatureStats.pb") if a is not None else ""
    return tfdv.load_stats_binary(path) if path and os.path.exists(path) else None


def _without_labels(cfg, layout, job, csv_path, examples, store, result, schema) -> None:
    import tensorflow_data_validation as tfdv
    from tfx.components import StatisticsGen

    from components.drift_check.component import compare
    stats = StatisticsGen(examples=examples.outputs["examples"]).with_id("StatisticsGen")
    outputs = jobs.run(cfg, layout, job, "drift", [examples, stats],
                       os.path.abspath(csv_path))
    [current] = outputs["StatisticsGen"]["statistics"]
    baseline = _training_statistics(store, result.push_run, cfg.drift_check.split)
    if baseline is None:
        raise StoreError(f"no training statistics for version {result.version} in the store "
                         f"under {layout.root}; nothing to compare the data with")
    new = tfdv.load_stats_binary(
        os.path.join(current.uri, f"Split-{jobs.EXAMPLES_SPLIT}", "FeatureStats.pb"))
    result.measured, result.drift, _ = compare(new, baseline, schema,
                                               dict(cfg.drift_check.thresholds))
