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
    unlabelled: int = 0  # rows left out because their label cell is missing
    label_column: str = ""
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
    """Evaluates a served version on new data; `.decayed` says whether to exit 5.

    Rows are read by the version's input contract: with the label column, the
    columns its transform signature (what TFMA calls) parses; without it, the
    columns its serving signature parses and the drift check's columns.
    """
    import tensorflow_data_validation as tfdv

    chosen = versions.resolve(layout.serving, version, label)
    contract = rows.version_contract(versions.version_path(layout.serving, chosen),
                                     cfg.label.column, cfg.data.na_values)
    names = rows.header(csv_path)
    label_column = contract.label or cfg.label.column
    labelled = label_column in names
    if labelled:
        columns = list(contract.evaluation)
    else:
        by_name = {c.name: c for c in contract.evaluation + contract.serving}
        wanted = [c.name for c in contract.serving] + [
            c for c in cfg.drift_check.thresholds if c in by_name and c in names]
        columns = [by_name[c] for c in dict.fromkeys(wanted)]
    rows.require_columns(csv_path, names, contract, columns, chosen)
    job = jobs.new_job(layout, "evaluate")
    read = _write_examples(csv_path, names, contract, columns, chosen,
                           label_column if labelled else None, job.examples_dir)
    total, kept, bad, unlabelled = read
    if not kept:
        from pipeline.errors import DataRejected
        reason = (f"{unlabelled} without a label" if unlabelled else
                  str(bad[0]) if bad else "no rows")
        raise DataRejected(f"{csv_path}: no row could be read ({reason})")
    store, push_run = _push_run(layout, chosen)
    result = Evaluation(job.run_id, chosen, push_run, total, bad, labelled,
                        unlabelled=unlabelled, label_column=label_column)
    examples, model = jobs.components(job, versions.version_path(layout.serving, chosen),
                                      chosen, layout.serving)
    facts = {"served_version": chosen, "served_label": label or "",
             "input_contract": contract.source}
    if labelled:
        _with_labels(cfg, layout, job, csv_path, examples, model, store, result, facts)
    else:
        schema = tfdv.load_schema_text(cfg.schema_path)
        _without_labels(cfg, layout, job, csv_path, examples, store, result, schema, facts)
    return result


def _write_examples(csv_path: str, names: list[str], contract, columns, version: int,
                    label: Optional[str], out_dir: str
                    ) -> tuple[int, int, list[rows.BadRow], int]:
    """The readable rows as gzipped TFRecords for ImportExampleGen; (rows, kept, bad,
    rows without a label)."""
    import tensorflow as tf
    os.makedirs(out_dir, exist_ok=True)
    total = kept = unlabelled = 0
    bad: list[rows.BadRow] = []
    with tf.io.TFRecordWriter(os.path.join(out_dir, "data.tfrecord.gz"),
                              options="GZIP") as writer:
        for block in rows.blocks(csv_path, names, contract, columns, version, label=label):
            total += block.text.num_rows
            unlabelled += block.unlabelled
            bad += block.bad
            for record in block.records():
                writer.write(record)
            kept += len(block.kept)
    return total, kept, bad, unlabelled


def _with_labels(cfg, layout, job, csv_path, examples, model, store, result, facts) -> None:
    from tfx.components import Evaluator

    from pipeline.lineage import results, runs
    evaluator = Evaluator(examples=examples.outputs["examples"], model=model.outputs["result"],
                          example_splits=[jobs.EXAMPLES_SPLIT],
                          eval_config=monitoring_eval_config(cfg)).with_id("Evaluator")
    outputs = jobs.run(cfg, layout, job, "evaluate", [examples, model, evaluator],
                       os.path.abspath(csv_path), facts)
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


def _without_labels(cfg, layout, job, csv_path, examples, store, result, schema, facts
                    ) -> None:
    import tensorflow_data_validation as tfdv
    from tfx.components import StatisticsGen

    from components.drift_check.component import compare
    stats = StatisticsGen(examples=examples.outputs["examples"]).with_id("StatisticsGen")
    outputs = jobs.run(cfg, layout, job, "drift", [examples, stats],
                       os.path.abspath(csv_path), facts)
    [current] = outputs["StatisticsGen"]["statistics"]
    baseline = _training_statistics(store, result.push_run, cfg.drift_check.split)
    if baseline is None:
        raise StoreError(f"no training statistics for version {result.version} in the store "
                         f"under {layout.root}; nothing to compare the data with")
    new = tfdv.load_stats_binary(
        os.path.join(current.uri, f"Split-{jobs.EXAMPLES_SPLIT}", "FeatureStats.pb"))
    result.measured, result.drift, _ = compare(new, baseline, schema,
                                               dict(cfg.drift_check.thresholds))
