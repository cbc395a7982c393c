"""Readable text for a person at the end of `tfxp run`."""
from __future__ import annotations

import os
from typing import Optional

from ml_metadata.proto import metadata_store_pb2 as mlmd

from components.csv_ingest.executor import DROPPED_PROPERTY
from models.tuning import TUNING_OBJECTIVE, gate_record
from pipeline.config import PipelineConfig
from pipeline.errors import StoreError
from pipeline.lineage.results import (
    Column,
    SliceKey,
    finite,
    fmt_metric,
    slice_label,
    table_columns,
    tuning_lines,
    worst_classes_line,
)
from pipeline.lineage.store import CACHED, EXECUTED, custom, open_store_from
from pipeline.local.run import Outcome
from pipeline.local.runner import NodeResult

MAX_ROWS_PER_KIND = 8


def progress_line(event: str, node: NodeResult) -> str:
    """One line per node as it starts or ends: state and seconds."""
    if event == "start":
        return f"  > {node.node_id} ..."
    return f"  {'x' if node.error else '='} {node.node_id:<32} {node.state:<9} {node.seconds:6.1f}s"


def _row(label: str, values: dict[str, float], cols: list[Column], width: int) -> str:
    return (f"    {label:<{width}} "
            + " ".join(f"{fmt_metric(values.get(c.key), c.metric):>9}" for c in cols))


def metrics_table(metrics: dict[SliceKey, dict[str, float]], cfg: PipelineConfig) -> list[str]:
    """Overall and per-slice rows; a kind with many slices shows its range."""
    cols = table_columns(metrics)
    width = 28
    lines = [f"    {'slice':<{width}} " + " ".join(f"{c.header:>9}" for c in cols)]
    if () in metrics:
        lines.append(_row("overall", metrics[()], cols, width))
    for spec in cfg.evaluation.slices:
        keys = sorted((k for k in metrics if [f for f, _ in k] == spec),
                      key=lambda k: [v for _, v in k])
        if len(keys) <= MAX_ROWS_PER_KIND:
            lines += [_row(slice_label(k), metrics[k], cols, width) for k in keys]
            continue
        for bound, pick in (("min", min), ("max", max)):
            values = {}
            for c in cols:
                found = [metrics[k][c.key] for k in keys if finite(metrics[k].get(c.key))]
                if found:
                    values[c.key] = pick(found)
            lines.append(_row(f"{'/'.join(spec)} ({len(keys)}) {bound}", values, cols, width))
    return lines


def _drift_lines(outcome: Outcome) -> list[str]:
    if outcome.drift_baseline is None:
        return []
    if not outcome.drift_baseline:
        return ["Drift check: no model served yet (or it was trained on this very data), "
                "nothing to compare with."]
    if not outcome.drift:
        return ["No drift against the data that trained the served model."]
    return (["DRIFT WARNING: the data moved away from the data that trained the served "
             "model (drift_check.action: warn):"] + [f"    {d}" for d in outcome.drift])


def _output(outcome: Outcome, node_id: str, key: str) -> Optional[mlmd.Artifact]:
    """One output artifact of a node of this run, or None if it has none or the store
    cannot be read (a summary line never fails the run's summary)."""
    node = next((n for n in outcome.run.nodes if n.node_id == node_id), None)
    if node is None or node.execution_id is None:
        return None
    try:
        found = open_store_from(outcome.paths.root).output_artifacts(node.execution_id)
    except StoreError:
        return None
    artifacts = found.get(key) or []
    return artifacts[0] if len(artifacts) == 1 else None


def dropped_label_rows(outcome: Outcome) -> Optional[int]:
    """Rows ingestion left out for having no label (None if unknown)."""
    examples = _output(outcome, "CsvExampleGen", "examples")
    value = custom(examples, DROPPED_PROPERTY) if examples is not None else None
    return None if value is None else int(value)


def _label_lines(outcome: Outcome, cfg: PipelineConfig) -> list[str]:
    dropped = dropped_label_rows(outcome)
    if not dropped:
        return []
    return [f"{dropped} rows without a label in {cfg.label.column!r} were left out "
            f"(label.missing: drop)."]


def _tuning_lines(outcome: Outcome, cfg: PipelineConfig) -> list[str]:
    if outcome.tuning is None:
        return []
    best = _output(outcome, "Tuner", "best_hyperparameters")
    record = gate_record(best.uri) if best is not None else None
    if record is not None:
        return tuning_lines(record)
    if not outcome.tuning:
        return ["Tuner: no trial completed."]
    top = outcome.tuning[0]
    objective = TUNING_OBJECTIVE[cfg.label.task][0].replace("_", " ")
    values = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                       for k, v in sorted(top.items()) if k not in ("trial_id", "score"))
    return [f"Tuner: best of {len(outcome.tuning)} trials: {objective} {top['score']:.4f} "
            f"with {values} (the Trainer used these)."]


def summary(outcome: Outcome, cfg: PipelineConfig) -> str:
    """The end of `tfxp run`: what ran, the data verdict, the metrics, the push."""
    run = outcome.run
    executed = sum(n.state == EXECUTED for n in run.nodes)
    cached = sum(n.state == CACHED for n in run.nodes)
    total = sum(n.seconds for n in run.nodes)
    lines = ["", f"Run {run.run_id} of {run.pipeline_name}: {executed} executed, "
             f"{cached} from cache, {total:.1f}s"]
    if outcome.status == "data_rejected":
        lines.append("DATA REJECTED: the data does not match the schema; nothing was "
                     "trained or pushed.")
        lines += [f"    [{split}] {feature}: {text}" for split, feature, text in outcome.anomalies]
        lines.append(f"    schema: {cfg.schema_path}")
    elif outcome.status == "data_drift":
        lines.append("DATA DRIFT: the data moved away from the data that trained the served "
                     "model; nothing was trained or pushed.")
        lines += [f"    {d}" for d in outcome.drift]
        lines.append("    (drift_check.action: warn lets such runs through)")
    elif outcome.status == "error":
        failed = run.failed_node
        lines.append(f"ERROR in {failed.node_id if failed else 'the run'}: {outcome.reason} "
                     f"(tfxp -v run shows the details)")
    else:
        lines.append("Data accepted (no anomalies against the curated schema).")
        lines += _label_lines(outcome, cfg)
        lines += _drift_lines(outcome)
        if outcome.evaluation:
            sample = outcome.eval_sample
            if sample and sample[1] < sample[0]:
                lines.append(
                    f"Evaluation on a sample of the eval split: {sample[1]:,} of {sample[0]:,} "
                    f"examples (slices above {sample[2]:,} sampled, smaller ones whole; "
                    f"metrics weighted to stand for the whole split; "
                    f"evaluation.sample_above):")
            else:
                lines.append("Evaluation on the eval split:")
            lines += metrics_table(outcome.evaluation.metrics, cfg)
            worst = worst_classes_line(outcome.evaluation)
            lines += [f"    {worst}"] if worst else []
        lines += _tuning_lines(outcome, cfg)
        serving = outcome.serving_check
        serving_failed = serving is not None and not serving[0]
        if serving and not serving_failed:
            lines.append(f"Serving check passed: {serving[1]}")
        if outcome.status == "pushed":
            lines.append(f"BLESSED and pushed: {outcome.pushed_path}")
        elif outcome.status == "unchanged":
            lines.append(f"UNCHANGED: nothing to do; this model was pushed by an earlier run "
                         f"as {outcome.pushed_path}")
        elif outcome.status == "already_serving":
            lines.append(f"BLESSED; already serving version "
                         f"{os.path.basename(outcome.pushed_path or '')} (the same SavedModel): "
                         f"nothing pushed")
        else:
            if serving_failed:
                lines.append(f"NOT BLESSED: nothing pushed. The serving check failed: {serving[1]}")
            if not serving_failed or (outcome.evaluation and outcome.evaluation.blessed is False):
                lines.append("NOT BLESSED: nothing pushed. Thresholds not met:")
                failures = outcome.evaluation.failures if outcome.evaluation else []
                lines += [f"    {f}" for f in failures] or ["    (see the Evaluator output)"]
    lines.append(f"Root: {outcome.paths.root}  (metadata: {outcome.paths.metadata})")
    return "\n".join(lines)
