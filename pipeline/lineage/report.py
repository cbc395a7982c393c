"""`tfxp report`: one run as a self-contained HTML page.

Statistics per feature with small charts, anomalies, the inferred-vs-curated
schema diff, metrics overall and per slice, the fairness error rates per
slice with their thresholds, the blessing and the push, and the lineage graph:
read from ML Metadata and the artifacts it names (`pipeline.lineage.results`).
"""
from __future__ import annotations

import html
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from pipeline.errors import StoreError
from pipeline.layout import RunLayout
from pipeline.lineage.html import bar_chart, page, table, trace_section
from pipeline.lineage.model_card import card_paths, trained_with
from pipeline.lineage.results import (
    anomalies,
    chart_metrics,
    evaluation,
    finite,
    fmt_metric,
    schema_changes,
    slice_kinds,
    slice_label,
    sorted_slices,
    statistics,
    table_columns,
    thresholds,
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
        labels = [f"{b.low_value:.3g}..{b.high_value:.3g}" for b in hist.buckets]
        return bar_chart(labels, [b.sample_count for b in hist.buckets], title="histogram",
                         width=300, bar_h=10)
    if which == "string_stats":
        top = list(feature.string_stats.top_values)[:8]
        if not top:
            return ""
        return bar_chart([t.value for t in top], [t.frequency for t in top],
                         title="most frequent values", width=300, bar_h=12)
    return ""


def feature_row(feature: "statistics_pb2.FeatureNameStatistics") -> list[Any]:
    """name, type, count, missing, mean, std, min, max, unique: one table row."""
    name = feature.path.step[-1] if feature.path.step else feature.name
    which = feature.WhichOneof("stats")
    common = (getattr(feature, which).common_stats if which in ("num_stats", "string_stats")
              else None)
    count = common.num_non_missing if common else 0
    missing = common.num_missing if common else 0
    total = count + missing
    row = [name, feature.Type.Name(feature.type), count,
           f"{100 * missing / total:.1f}%" if total else "-"]
    if which == "num_stats":
        s = feature.num_stats
        row += [f"{s.mean:.4g}", f"{s.std_dev:.4g}", f"{s.min:.4g}", f"{s.max:.4g}", ""]
    elif which == "string_stats":
        row += ["", "", "", "", feature.string_stats.unique]
    else:
        row += ["", "", "", "", ""]
    return row


def report_html(store: Store, run_spec: Optional[str]) -> str:
    """The whole report for one run as a single offline HTML page."""
    e = html.escape
    record = run_record(store, run_spec)
    info = record.info
    body = [f"<h1>Run {e(info.run_id)} of {e(info.pipeline)}</h1>"]
    blessed = {True: '<span class="ok">BLESSED</span>',
               False: '<span class="bad">NOT BLESSED</span>',
               None: "not evaluated"}[info.blessed]
    pushed = (f"pushed as version <b>{e(info.pushed_version)}</b>"
              + ("" if info.pushed_in_this_run else " (in an earlier run; reused from cache)")
              if info.pushed_version else "nothing pushed")
    body.append(f"<p>Started {e(info.started)}, {info.seconds:.1f}s. Status: <b>"
                f"{e(info.status)}</b>. Model: {blessed}; {pushed}.</p>")
    body += model_card_link(record) + hyperparameters_line(record)
    if info.provenance:
        p = info.provenance
        body.append(f"<p>Code: project {e(p.get('project_version', ''))}, git "
                    f"{e(p.get('git_commit', ''))}, TFX {e(p.get('tfx_version', ''))}. "
                    f"Data: {e(p.get('data_path', ''))} {e(p.get('data_digest', ''))}. "
                    f"Config sha256 {e(p.get('config_sha256', '')[:16])}.</p>")
    body.append(table(["component", "state", "seconds", "class"],
                      [[n.node_id, n.state, f"{n.seconds:.1f}", n.component] for n in info.nodes],
                      numeric=[2]))

    # Data
    body.append("<h2>Data statistics</h2>")
    examples = record.first("Examples", "examples")
    dropped = custom(examples, "dropped_label_rows") if examples is not None else None
    if dropped:
        body.append(f'<div class="warn">{int(dropped)} rows without a label were left out at '
                    f'ingestion (label.missing: drop).</div>')
    stats = statistics(record)
    if not stats:
        body.append('<div class="warn">No statistics recorded for this run '
                    '(the step did not run or its output was deleted).</div>')
    for split, ds in stats.items():
        body.append(f"<h3>{e(split)} split: {ds.num_examples} examples</h3>")
        body.append(table(["feature", "type", "count", "missing", "mean", "std", "min", "max",
                           "unique"], [feature_row(f) for f in ds.features],
                          numeric=[2, 3, 4, 5, 6, 7, 8]))
        if split == next(iter(stats)):
            body.append('<div class="charts">' + "".join(
                f'<div class="chart"><b>{e(feature_row(f)[0])}</b><br>{feature_chart(f)}</div>'
                for f in ds.features if feature_chart(f)) + "</div>")

    body.append("<h2>Anomalies</h2>")
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

    body.append("<h2>Schema: inferred from this data vs curated</h2>")
    changes = schema_changes(record)
    if changes is None:
        body.append('<div class="warn">Curated or inferred schema not available.</div>')
    elif not changes:
        body.append("<p>No differences.</p>")
    else:
        body.append("<ul>" + "".join(f"<li>{e(c)}</li>" for c in changes) + "</ul>")

    # Model
    body.append("<h2>Evaluation</h2>")
    result, config = evaluation(record)
    if result is None:
        stopped = [n.node_id for n in info.nodes if n.state in (FAILED, NOT_RUN)]
        body.append('<div class="warn">No evaluation: the run '
                    + (f"stopped before it ({e(', '.join(stopped))})" if stopped
                       else "has no Evaluator output") + ".</div>")
    else:
        verdict = ('<p class="ok">BLESSED: every threshold met.</p>' if result.blessed else
                   '<p class="bad">NOT BLESSED. Thresholds not met:</p><ul>'
                   + "".join(f"<li>{e(f)}</li>" for f in result.failures) + "</ul>")
        body.append(verdict)
        kinds = slice_kinds(result.metrics, config)
        rows = []
        columns = table_columns(result.metrics)
        for key in [()] + [k for kind in kinds for k in sorted_slices(result.metrics, kind)]:
            values = result.metrics.get(key, {})
            rows.append([slice_label(key)] + [fmt_metric(values.get(c.key), c.metric)
                                              for c in columns])
        body.append(table(["slice"] + [c.header for c in columns], rows,
                          numeric=range(1, len(columns) + 1)))
        body.append("<h2>Fairness: error rates per slice</h2><p>Bars are the rates (or a "
                    "regression's error) on the eval split; red marks are the configured "
                    "upper bounds a slice must stay under to be blessed.</p>")
        charts = []
        for kind in kinds:
            keys = sorted_slices(result.metrics, kind)
            for metric, cls, title in chart_metrics(result.metrics):
                labels = [", ".join(str(v) for _, v in k) for k in keys]
                values = [result.metrics[k].get(metric) for k in keys]
                marks = [thresholds(config, cls, k)[1] for k in keys]
                overall = result.metrics.get((), {}).get(metric)
                charts.append('<div class="chart">' + bar_chart(
                    labels, values, title=f"{title} by {'/'.join(kind)}"
                    + (f" (overall {overall:.3f})" if finite(overall) else ""),
                    marks=marks, maximum=1.0 if cls in ("FallOut", "MissRate") else None)
                    + "</div>")
        body.append('<div class="charts">' + "".join(charts) + "</div>")

    body.append("<h2>Lineage</h2>")
    try:
        body += trace_section(store.trace(info.run_id))
    except StoreError as err:
        body.append(f'<div class="warn">{e(str(err))}</div>')
    return page(f"Run {info.run_id}", body)


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
    source = "the tuner's best trial" if used.get("tuned") else "the configuration"
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
