"""`tfxp report`: one run as a self-contained HTML page.

First what a reader acts on: blessed or not and why, the metrics overall, per
slice and per class, every bound against its value, the hyperparameter search.
Then the data (statistics per feature with small charts, anomalies, the
inferred-vs-curated schema diff), the run's components, and the lineage graph:
read from ML Metadata and the artifacts it names (`pipeline.lineage.results`).
"""
from __future__ import annotations

import html
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from models.tuning import gate_record
from pipeline.errors import StoreError
from pipeline.layout import RunLayout
from pipeline.lineage.html import bar_chart, page, table, trace_section
from pipeline.lineage.model_card import card_paths, trained_with
from pipeline.lineage.results import (
    PER_CLASS_HEADER,
    Evaluation,
    anomalies,
    chart_metrics,
    evaluation,
    finite,
    fmt_number,
    metric_cells,
    per_class_rows,
    schema_changes,
    slice_kinds,
    slice_label,
    sorted_slices,
    statistics,
    table_columns,
    threshold_checks,
    thresholds,
    tuning_lines,
)
from pipeline.lineage.runs import RunRecord, run_record
from pipeline.lineage.store import FAILED, NOT_RUN, Store, custom

if TYPE_CHECKING:
    from tensorflow_metadata.proto.v0 import statistics_pb2


def feature_chart(feature: "statistics_pb2.FeatureNameStatistics") -> str:
    """A numeric histogram or the most frequent values of one feature."""
    which = feature.WhichOneof("stats")
    if which == "num_stats":
        hist = next((h for h in feature.num_stats.histograms if h.type == h.STANDARD), None)
        if hist is None or not hist.buckets:
            return ""
        labels = [f"{fmt_stat(b.low_value)}..{fmt_stat(b.high_value)}" for b in hist.buckets]
        # TFDV spreads a value over the buckets it touches: counts come out
        # fractional, and are shown whole.
        return bar_chart(labels, [round(b.sample_count) for b in hist.buckets],
                         title="histogram", width=300, bar_h=10, integer=True)
    if which == "string_stats":
        top = list(feature.string_stats.top_values)[:8]
        if not top:
            return ""
        return bar_chart([t.value for t in top], [round(t.frequency) for t in top],
                         title="most frequent values", width=300, bar_h=12, integer=True)
    return ""


def fmt_stat(x: float) -> str:
    """A statistic without scientific notation: whole numbers whole, others to 4 digits."""
    if float(x).is_integer():
        return f"{int(x):,}"
    if abs(x) >= 1000:
        return f"{x:,.1f}"
    return f"{x:.4f}".rstrip("0").rstrip(".") if abs(x) >= 0.0001 else f"{x:.2e}"


def feature_row(feature: "statistics_pb2.FeatureNameStatistics") -> list[Any]:
    """name, type, count, missing, mean, std, min, max, unique: one table row."""
    name = feature.path.step[-1] if feature.path.step else feature.name
    which = feature.WhichOneof("stats")
    common = (getattr(feature, which).common_stats if which in ("num_stats", "string_stats")
              else None)
    count = common.num_non_missing if common else 0
    missing = common.num_missing if common else 0
    total = count + missing
    row = [name, feature.Type.Name(feature.type), f"{int(count):,}",
           f"{100 * missing / total:.1f}%" if total else "-"]
    if which == "num_stats":
        s = feature.num_stats
        row += [fmt_stat(s.mean), fmt_stat(s.std_dev), fmt_stat(s.min), fmt_stat(s.max), ""]
    elif which == "string_stats":
        row += ["", "", "", "", f"{int(feature.string_stats.unique):,}"]
    else:
        row += ["", "", "", "", ""]
    return row


def report_html(store: Store, run_spec: Optional[str]) -> str:
    """The whole report for one run as a single offline HTML page: what a reader
    acts on first (the verdict, the metrics, fairness against the bounds, the
    search), then the data, then how the run ran and its lineage."""
    record = run_record(store, run_spec)
    result, config = evaluation(record)
    body = _header(record)
    body += _summary_section(record, result, config)
    body += _fairness_section(result, config)
    body += _data_sections(record)
    body += _run_section(record)
    body += _lineage_section(store, record)
    return page(f"Run {record.info.run_id}", body)


def _header(record: RunRecord) -> list[str]:
    e = html.escape
    info = record.info
    blessed = {True: '<span class="ok">BLESSED</span>',
               False: '<span class="bad">NOT BLESSED</span>',
               None: "not evaluated"}[info.blessed]
    pushed = (f"pushed as version <b>{e(info.pushed_version)}</b>"
              + ("" if info.pushed_in_this_run else " (in an earlier run; reused from cache)")
              if info.pushed_version else "nothing pushed")
    return [f"<h1>Run {e(info.run_id)} of {e(info.pipeline)}</h1>",
            f"<p>Started {e(info.started)}, {info.seconds:.1f}s. Status: <b>"
            f"{e(info.status)}</b>. Model: {blessed}; {pushed}.</p>"]


def _verdict(record: RunRecord, result: Optional[Evaluation]) -> list[str]:
    """Blessed or not, and why."""
    e = html.escape
    if result is None:
        stopped = [n.node_id for n in record.info.nodes if n.state in (FAILED, NOT_RUN)]
        return ['<div class="warn">No evaluation: the run '
                + (f"stopped before it ({e(', '.join(stopped))})" if stopped
                   else "has no Evaluator output") + ".</div>"]
    if result.blessed:
        return ['<p class="ok">BLESSED: every threshold met.</p>']
    return (['<p class="bad">NOT BLESSED. Thresholds not met:</p><ul>']
            + [f"<li>{e(f)}</li>" for f in result.failures] + ["</ul>"])


def _summary_section(record: RunRecord, result: Optional[Evaluation], config: Any
                     ) -> list[str]:
    """The verdict, the metrics overall and per slice, per class, and the search."""
    body = ["<h2>Summary</h2>"] + _verdict(record, result)
    body += model_card_link(record) + hyperparameters_line(record) + tuning_section(record)
    if result is None:
        return body
    columns = table_columns(result.metrics)
    keys = [()] + [k for kind in slice_kinds(result.metrics, config)
                   for k in sorted_slices(result.metrics, kind)]
    body.append("<h3>Metrics on the eval split, overall and per slice</h3>"
                "<p>- : undefined on that slice (AUC with one class present, a rate or "
                "precision with nothing to divide by).</p>")
    body.append(table(["slice"] + [c.header for c in columns],
                      [[slice_label(k)] + metric_cells(result, k, columns) for k in keys],
                      numeric=range(1, len(columns) + 1)))
    per_class = per_class_rows(result)
    if per_class:
        body.append("<h3>Per class (overall)</h3>")
        body.append(table(PER_CLASS_HEADER, per_class, numeric=[1, 2, 3, 4]))
    return body


def _fairness_section(result: Optional[Evaluation], config: Any) -> list[str]:
    """Every configured bound on every slice, met or not, and the error rates charted."""
    if result is None:
        return []
    body = ["<h2>Fairness against the bounds</h2>"]
    checks = threshold_checks(result, config)
    if checks:
        body.append(table(["metric", "slice", "bound", "value", "result"], [
            [c.metric, c.slice, c.bound, fmt_number(c.value),
             {True: "pass", False: "FAIL", None: "not applied"}[c.passed]] for c in checks],
            numeric=[3]))
    body.append("<p>Bars are the rates (or a regression's error) on the eval split; red "
                "marks are the configured upper bounds a slice must stay under to be "
                "blessed.</p>")
    charts = []
    for kind in slice_kinds(result.metrics, config):
        keys = sorted_slices(result.metrics, kind)
        for metric, cls, title in chart_metrics(result.metrics):
            overall = result.metrics.get((), {}).get(metric)
            charts.append('<div class="chart">' + bar_chart(
                [", ".join(str(v) for _, v in k) for k in keys],
                [result.metrics[k].get(metric) for k in keys],
                title=f"{title} by {'/'.join(kind)}"
                + (f" (overall {overall:.3f})" if finite(overall) else ""),
                marks=[thresholds(config, cls, k)[1] for k in keys],
                maximum=1.0 if cls in ("FallOut", "MissRate") else None) + "</div>")
    body.append('<div class="charts">' + "".join(charts) + "</div>")
    return body


def _data_sections(record: RunRecord) -> list[str]:
    """Statistics per split and feature, anomalies, and the schema diff."""
    e = html.escape
    body = ["<h2>Data statistics</h2>"]
    examples = record.first("Examples", "examples")
    dropped = custom(examples, "dropped_label_rows") if examples is not None else None
    if dropped:
        body.append(f'<div class="warn">{int(dropped):,} rows without a label were left out '
                    f'at ingestion (label.missing: drop).</div>')
    stats = statistics(record)
    if not stats:
        body.append('<div class="warn">No statistics recorded for this run '
                    '(the step did not run or its output was deleted).</div>')
    for split, ds in stats.items():
        body.append(f"<h3>{e(split)} split: {int(ds.num_examples):,} examples</h3>")
        body.append(table(["feature", "type", "count", "missing", "mean", "std", "min", "max",
                           "unique"], [feature_row(f) for f in ds.features],
                          numeric=[2, 3, 4, 5, 6, 7, 8]))
        if split == next(iter(stats)):
            body.append('<div class="charts">' + "".join(
                f'<div class="chart"><b>{e(feature_row(f)[0])}</b><br>{feature_chart(f)}</div>'
                for f in ds.features if feature_chart(f)) + "</div>")
    return body + _anomalies_section(record) + _schema_section(record)


def _anomalies_section(record: RunRecord) -> list[str]:
    e = html.escape
    body = ["<h2>Anomalies</h2>"]
    found = anomalies(record)
    if not found:
        body.append('<div class="warn">No anomalies artifact for this run.</div>')
    for split, items in found.items():
        if items:
            body.append(f"<p class=\"bad\">{e(split)}: {len(items)} anomalies</p>"
                        + table(["feature", "anomaly"], items))
        else:
            body.append(f'<p><span class="ok">{e(split)}: none</span> against the curated '
                        'schema.</p>')
    return body


def _schema_section(record: RunRecord) -> list[str]:
    body = ["<h2>Schema: inferred from this data vs curated</h2>"]
    changes = schema_changes(record)
    if changes is None:
        body.append('<div class="warn">Curated or inferred schema not available.</div>')
    elif not changes:
        body.append("<p>No differences.</p>")
    else:
        body.append("<ul>" + "".join(f"<li>{html.escape(c)}</li>" for c in changes) + "</ul>")
    return body


def _run_section(record: RunRecord) -> list[str]:
    """The code and data the run used, and each component's state and time."""
    e = html.escape
    info = record.info
    body = ["<h2>The run</h2>"]
    if info.provenance:
        p = info.provenance
        body.append(f"<p>Code: project {e(p.get('project_version', ''))}, git "
                    f"{e(p.get('git_commit', ''))}, TFX {e(p.get('tfx_version', ''))}. "
                    f"Data: {e(p.get('data_path', ''))} {e(p.get('data_digest', ''))}. "
                    f"Config sha256 {e(p.get('config_sha256', '')[:16])}.</p>")
    body.append(table(["component", "state", "seconds", "class"],
                      [[n.node_id, n.state, f"{n.seconds:.1f}", n.component] for n in info.nodes],
                      numeric=[2]))
    return body


def _lineage_section(store: Store, record: RunRecord) -> list[str]:
    body = ["<h2>Lineage</h2>"]
    try:
        body += trace_section(store.trace(record.info.run_id))
    except StoreError as err:
        body.append(f'<div class="warn">{html.escape(str(err))}</div>')
    return body


def tuning_section(record: RunRecord) -> list[str]:
    """How the search fared against the gate, when the run had a Tuner."""
    best = record.first("HyperParameters", "best_hyperparameters")
    found = gate_record(best.uri) if best is not None else None
    if not found:
        return []
    return ["<h3>Hyperparameter search</h3><pre>"
            + html.escape("\n".join(tuning_lines(found))) + "</pre>"]


def model_card_link(record: RunRecord) -> list[str]:
    """A link to the model card the pushed version carries, if it has one."""
    pushed = record.first("PushedModel")
    destination = custom(pushed, "pushed_destination") if pushed is not None else None
    if not record.info.pushed_version or not destination:
        return []
    _, card = card_paths(destination)
    if not os.path.exists(card):
        return []
    return [f'<p>Model card of version {html.escape(record.info.pushed_version)}: '
            f'<a href="{html.escape(Path(card).as_uri())}">{html.escape(card)}</a></p>']


def hyperparameters_line(record: RunRecord) -> list[str]:
    """The values this run's model was trained with (the tuner's best trial, if tuned)."""
    model = record.first("Model", "model")
    used = trained_with(model.uri if model is not None else None)
    if not used:
        return []
    values = ", ".join(f"{k} {v}" for k, v in sorted(used["values"].items()))
    source = "the tuner's chosen trial" if used.get("tuned") else "the configuration"
    return [f"<p>Trained with ({html.escape(source)}): {html.escape(values)}.</p>"]


def write_report(store: Store, run_spec: Optional[str], path: Optional[str] = None,
                 root: Optional[str] = None) -> str:
    """Writes the report (by default ROOT/reports/run-<id>.html) and returns its path."""
    run_id = store.find_run(run_spec).name
    if path is None:
        if root is None:
            raise StoreError("give --output: the store is not under a run root")
        path = RunLayout.at(root).report(run_id)
    text = report_html(store, run_id)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path
