"""One run, read back from ML Metadata: its artifacts, a diff with another run,
and a self-contained HTML report.

Statistics, anomalies and schemas are read with TFDV and the TFMA result with
TFMA, from the URIs the store names for the run's executions (cached ones
included: a cached step's outputs are that run's inputs too).  Whatever is
absent (a run that stopped at the data gate, a deleted artifact) is reported
as such, never raised.
"""
from __future__ import annotations

import dataclasses
import html
import json
import os
from typing import TYPE_CHECKING, Any, Optional

from ml_metadata.proto import metadata_store_pb2 as mlmd

from pipeline.lineage import RunInfo, Store, StoreError, custom
from pipeline.lineage_render import page, table, trace_section
from pipeline.results import Evaluation, SliceKey, finite, slice_label

if TYPE_CHECKING:
    from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

CHART_METRICS = (("fall_out", "FallOut", "false positive rate"),
                 ("miss_rate", "MissRate", "false negative rate"))
TABLE_METRICS = (("example_count", "n"), ("auc", "AUC"), ("binary_accuracy", "accuracy"),
                 ("calibration", "calibration"), ("fall_out", "FPR"), ("miss_rate", "FNR"))


@dataclasses.dataclass
class RunRecord:
    """A run's outputs by artifact type, with the executions that wrote them."""

    info: RunInfo
    artifacts: dict[str, list[tuple[str, mlmd.Artifact]]]  # type -> [(node.key, artifact)]
    properties: dict[str, dict[str, Any]]  # node id -> execution properties

    def all(self, kind: str, key: str = "", has: str = "", lacks: str = ""
            ) -> list[tuple[str, mlmd.Artifact]]:
        """Outputs of a type, by output key and by a property their execution has or lacks
        (e.g. ImportSchemaGen's `schema_file`), in execution order."""
        out = []
        for label, a in self.artifacts.get(kind, []):
            node, _, out_key = label.partition(".")
            props = self.properties.get(node, {})
            if ((not key or out_key == key) and (not has or has in props)
                    and (not lacks or lacks not in props)):
                out.append((label, a))
        return out

    def first(self, kind: str, key: str = "", has: str = "", lacks: str = ""
              ) -> Optional[mlmd.Artifact]:
        found = self.all(kind, key, has, lacks)
        return found[0][1] if found else None

    def uri(self, kind: str, key: str = "", has: str = "", lacks: str = "") -> Optional[str]:
        a = self.first(kind, key, has, lacks)
        return a.uri if a is not None and a.uri and _exists(a.uri) else None


def _exists(uri: str) -> bool:
    if "://" not in uri:
        return os.path.exists(uri)
    from tfx.dsl.io import fileio
    return fileio.exists(uri)


def run_record(store: Store, run_spec: Optional[str]) -> RunRecord:
    context = store.find_run(run_spec)
    info = store.run_info(context)
    executions = store.store.get_executions_by_context(context.id)
    names = store.node_ids(e.id for e in executions)
    outputs = store.outputs(e.id for e in executions)
    ids = [aid for outs in outputs.values() for _, aid in outs]
    by_id = {a.id: a for a in store.store.get_artifacts_by_id(ids)} if ids else {}
    artifacts: dict[str, list[tuple[str, mlmd.Artifact]]] = {}
    for eid, outs in outputs.items():
        for key, aid in outs:
            if aid in by_id:
                artifacts.setdefault(store.type_name(by_id[aid].type_id), []).append(
                    (f"{names.get(eid, '?')}.{key}", by_id[aid]))
    properties = {names.get(e.id, e.name): {k: custom(e, k) for k in e.custom_properties}
                  for e in executions}
    return RunRecord(info, artifacts, properties)


# --------------------------------------------------------------------------- reading artifacts


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
    if a is None or not _exists(a.uri):
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
        if not a.uri or not _exists(a.uri):
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
    from pipeline.schema_draft import schema_diff
    curated = load_schema(record.uri("Schema", "schema", has="schema_file"))
    inferred = load_schema(record.uri("Schema", "schema", lacks="schema_file"))
    if curated is None or inferred is None:
        return None
    return schema_diff(curated, inferred)


def evaluation(record: RunRecord) -> tuple[Optional[Evaluation], Any]:
    """(metrics per slice and failures, the TFMA EvalConfig used) or (None, None)."""
    from pipeline.results import read_evaluation
    import tensorflow_model_analysis as tfma
    uri = record.uri("ModelEvaluation")
    if not uri:
        return None, None
    result = read_evaluation(uri, record.uri("ModelBlessing"))
    return result, tfma.load_eval_result(uri).config


def thresholds(eval_config, metric_class: str, key: SliceKey) -> tuple[Optional[float], Optional[float]]:
    """(lower, upper) value bounds TFMA applies to this metric on this slice."""
    from tensorflow_model_analysis.slicer import slicer_lib
    lower = upper = None
    if eval_config is None:
        return lower, upper
    for spec in eval_config.metrics_specs:
        for metric in spec.metrics:
            if metric.class_name != metric_class:
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


def slice_kinds(metrics: dict[SliceKey, dict[str, float]], eval_config) -> list[list[str]]:
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


# --------------------------------------------------------------------------- diff


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    return {prefix: value}


def diff_runs(store: Store, run_a: Optional[str], run_b: Optional[str]) -> str:
    """What changed from run A to run B: data, schema, config, code, outcome, metrics."""
    a = run_record(store, run_a or "previous")
    b = run_record(store, run_b or "latest")
    pa, pb = a.info.provenance, b.info.provenance
    lines = [f"A: {a.info.run_id} ({a.info.status})", f"B: {b.info.run_id} ({b.info.status})"]

    def change(label: str, x: Any, y: Any) -> None:
        if x == y:
            lines.append(f"  {label}: same ({x})")
        else:
            lines.append(f"  {label}: CHANGED\n      A: {x}\n      B: {y}")

    lines.append("Data")
    ga = next((p for p in a.properties.values() if "input_base" in p), {})
    gb = next((p for p in b.properties.values() if "input_base" in p), {})
    change("ExampleGen input_base", ga.get("input_base"), gb.get("input_base"))
    change("data path", pa.get("data_path", "not recorded"), pb.get("data_path", "not recorded"))
    change("fingerprint", ga.get("input_fingerprint"), gb.get("input_fingerprint"))
    change("content digest", pa.get("data_digest") or "not recorded",
           pb.get("data_digest") or "not recorded")
    ea = a.first("Examples", "examples", has="input_base")
    eb = b.first("Examples", "examples", has="input_base")
    change("examples artifact", ea.id if ea else None, eb.id if eb else None)

    lines.append("Schema")
    sa = a.first("Schema", "schema", has="schema_file")
    sb = b.first("Schema", "schema", has="schema_file")
    change("curated schema artifact", sa.id if sa else None, sb.id if sb else None)
    from pipeline.schema_draft import schema_diff
    for label, how in (("curated", {"has": "schema_file"}),
                       ("inferred from the data", {"lacks": "schema_file"})):
        xa = load_schema(a.uri("Schema", "schema", **how))
        xb = load_schema(b.uri("Schema", "schema", **how))
        if xa is None or xb is None:
            lines.append(f"  {label}: not available in both runs")
            continue
        d = schema_diff(xa, xb)
        lines.append(f"  {label}: " + ("no differences" if not d else "A -> B:"))
        lines += [f"      {x}" for x in d]

    lines.append("Config")
    if pa.get("config") and pb.get("config"):
        fa, fb = _flatten(json.loads(pa["config"])), _flatten(json.loads(pb["config"]))
        changed = sorted(k for k in set(fa) | set(fb) if fa.get(k) != fb.get(k))
        lines.append("  same" if not changed else f"  {len(changed)} key(s) changed")
        lines += [f"      {k}: {fa.get(k)!r} -> {fb.get(k)!r}" for k in changed]
    else:
        lines.append("  not recorded for " + " and ".join(
            r.info.run_id for r in (a, b) if not r.info.provenance.get("config")))

    lines.append("Code")
    for k in ("project_version", "git_commit", "tfx_version"):
        change(k, pa.get(k, "not recorded"), pb.get(k, "not recorded"))
    entry_a = {f"{n}.{k}": v for n, p in a.properties.items() for k, v in p.items()
               if k.endswith("_fn") or k.startswith("module_")}
    entry_b = {f"{n}.{k}": v for n, p in b.properties.items() for k, v in p.items()
               if k.endswith("_fn") or k.startswith("module_")}
    change("entry points", entry_a, entry_b)

    lines.append("Outcome")
    change("status", a.info.status, b.info.status)
    change("blessed", a.info.blessed, b.info.blessed)
    change("pushed version", a.info.pushed_version, b.info.pushed_version)

    lines.append("Metrics per slice (A -> B)")
    ma, _ = evaluation(a)
    mb, config_b = evaluation(b)
    if ma is None or mb is None:
        missing = [r.info.run_id for r, m in ((a, ma), (b, mb)) if m is None]
        lines.append(f"  not evaluated in {', '.join(missing)}")
    else:
        keys = [()] + [k for kind in slice_kinds(mb.metrics, config_b)
                       for k in sorted_slices({**ma.metrics, **mb.metrics}, kind)]
        lines.append(f"    {'slice':<32}" + "".join(f"{h:>22}" for _, h in TABLE_METRICS[1:]))
        for key in keys:
            cells = []
            for name, _ in TABLE_METRICS[1:]:
                x, y = ma.metrics.get(key, {}).get(name), mb.metrics.get(key, {}).get(name)
                cells.append(f"{fmt_number(x)} -> {fmt_number(y)}".rjust(22))
            lines.append(f"    {slice_label(key)[:32]:<32}" + "".join(cells))
    return "\n".join(lines)


def fmt_number(x: Optional[float]) -> str:
    """Three decimals, '-' for a metric TFMA could not compute on a slice."""
    return f"{x:.3f}" if finite(x) else "-"


# --------------------------------------------------------------------------- charts


def bar_chart(labels: list[str], values: list[Optional[float]], *, title: str,
              marks: Optional[list[Optional[float]]] = None, width: int = 360,
              bar_h: int = 14, maximum: Optional[float] = None) -> str:
    """Horizontal bars as inline SVG; `marks` draws a threshold per bar in red."""
    e = html.escape
    finite_values = [v for v in values if finite(v)]
    top = maximum or max(finite_values + [m for m in (marks or []) if m is not None] + [1e-9])
    label_w, plot_w = 130, width - 180
    height = 24 + bar_h * len(labels) + 16
    out = [f'<svg width="{width}" height="{height}" '
           f'font-family="sans-serif" font-size="10"><text x="2" y="12" font-weight="bold">'
           f'{e(title)}</text>']
    for i, (label, v) in enumerate(zip(labels, values)):
        y = 20 + i * bar_h
        out.append(f'<text x="{label_w - 4}" y="{y + bar_h - 4}" text-anchor="end">'
                   f'{e(str(label)[:22])}</text>')
        if finite(v):
            w = max(0.5, plot_w * v / top)
            out.append(f'<rect x="{label_w}" y="{y + 2}" width="{w:.1f}" height="{bar_h - 4}" '
                       f'fill="#6b8fc9"><title>{e(str(label))}: {v:.4g}</title></rect>'
                       f'<text x="{label_w + w + 3:.1f}" y="{y + bar_h - 4}">{v:.3g}</text>')
        else:
            out.append(f'<text x="{label_w + 3}" y="{y + bar_h - 4}" fill="#999">no value</text>')
        mark = (marks or [None] * len(labels))[i]
        if mark is not None:
            x = label_w + plot_w * mark / top
            out.append(f'<line x1="{x:.1f}" y1="{y}" x2="{x:.1f}" y2="{y + bar_h}" stroke="#c00" '
                       f'stroke-width="2"><title>threshold {mark:g}</title></line>')
    out.append("</svg>")
    return "".join(out)


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


# --------------------------------------------------------------------------- report


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
            body.append(f'<p><span class="ok">{e(split)}: none</span> against the curated schema.</p>')

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
        stopped = [n.node_id for n in info.nodes if n.state in ("failed", "not run")]
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
        for key in [()] + [k for kind in kinds for k in sorted_slices(result.metrics, kind)]:
            values = result.metrics.get(key, {})
            rows.append([slice_label(key)] + [fmt_number(values.get(m)) if m != "example_count"
                                              else f"{values.get(m, 0):.0f}"
                                              for m, _ in TABLE_METRICS])
        body.append(table(["slice"] + [h for _, h in TABLE_METRICS], rows,
                          numeric=range(1, len(TABLE_METRICS) + 1)))
        body.append("<h2>Fairness: error rates per slice</h2><p>Bars are the rates on the "
                    "eval split; red marks are the configured upper bounds a slice must stay "
                    "under to be blessed.</p>")
        charts = []
        for kind in kinds:
            keys = sorted_slices(result.metrics, kind)
            for metric, cls, title in CHART_METRICS:
                labels = [", ".join(str(v) for _, v in k) for k in keys]
                values = [result.metrics[k].get(metric) for k in keys]
                marks = [thresholds(config, cls, k)[1] for k in keys]
                overall = result.metrics.get((), {}).get(metric)
                charts.append(f'<div class="chart">' + bar_chart(
                    labels, values, title=f"{title} by {'/'.join(kind)}"
                    + (f" (overall {overall:.3f})" if finite(overall) else ""),
                    marks=marks, maximum=1.0) + "</div>")
        body.append('<div class="charts">' + "".join(charts) + "</div>")

    body.append("<h2>Lineage</h2>")
    try:
        body += trace_section(store.trace(info.run_id))
    except StoreError as err:
        body.append(f'<div class="warn">{e(str(err))}</div>')
    return page(f"Run {info.run_id}", body)


def report_path(root: str, run_id: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
    return os.path.join(root, "reports", f"run-{safe}.html")


def write_report(store: Store, run_spec: Optional[str], path: Optional[str] = None,
                 root: Optional[str] = None) -> str:
    """Writes the report (by default ROOT/reports/run-<id>.html) and returns its path."""
    run_id = store.find_run(run_spec).name
    if path is None:
        if root is None:
            raise StoreError("give --output: the store is not under a run root")
        path = report_path(root, run_id)
    text = report_html(store, run_id)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path
