"""A trace and a list of runs as text, JSON, Graphviz DOT and SVG.

The drawing is laid out here (columns by longest path from the data, rows
ordered by their inputs) and written as inline SVG, so an HTML page
(`pipeline.lineage.html`) opens offline with nothing to fetch and no Graphviz
binary is needed to see it.  DOT is offered as well for those who render with
Graphviz.
"""
from __future__ import annotations

import html
import json
from typing import Optional

from pipeline.lineage.runs import RunInfo
from pipeline.lineage.store import CACHED, EXECUTED, FAILED, NOT_RUN, RUNNING
from pipeline.lineage.trace import Node, Trace, layers

STATE_MARK = {EXECUTED: "ran", CACHED: "cached", FAILED: "FAILED", RUNNING: "RUNNING",
              NOT_RUN: "-"}
COLORS = {"execution": "#dbe8f7", "artifact": "#f4f1e6", "missing": "#f7d4d4",
          "failed": "#f7d4d4", "start": "#d9f0d3"}


def _short(type_name: str) -> str:
    return type_name.rsplit(".", 1)[-1]


def _when(run: Optional[str], this_run: Optional[str]) -> str:
    if not run:
        return ""
    return " in this run" if run == this_run else f" in run {run}"


# --------------------------------------------------------------------------- text


def trace_text(trace: Trace) -> str:
    """A person's answer to "where did this model come from"."""
    d, m, c = trace.data, trace.model, trace.code
    lines = [f"Lineage of the {trace.description}"]
    if trace.run:
        lines.append(f"  run: {trace.run}")
    if m:
        lines.append("Model")
        if m.get("pushed"):
            lines.append(f"  pushed as version {m['pushed_version']} to {m['pushed_destination']}")
        elif "pushed" in m:
            lines.append("  not pushed")
        if m.get("artifact"):
            lines.append(f"  model artifact {m['artifact']} ({m['state']}): {m['uri']}")
            lines.append(f"  trained by {m.get('trained_by')}{_when(m.get('run'), trace.run)}")
        if "blessed" in m:
            base = (f"against baseline model artifact {m['baseline_model']}"
                    if m.get("baseline_model") else "no baseline (first blessed model)")
            if m.get("baseline_model") and m.get("baseline_model") == m.get("artifact"):
                base += ", itself: it was blessed in an earlier run"
            lines.append(f"  {'BLESSED' if m['blessed'] else 'NOT BLESSED'} by "
                         f"{m.get('evaluated_by')} ({base}); metrics: ModelEvaluation artifact "
                         f"{m.get('evaluation')}")
    if d:
        lines.append("Data")
        lines.append(f"  input: {d.get('data_path') or d.get('input_base')}")
        if d.get("input_base"):
            patterns = [s.get("pattern") for s in (d.get("input_config") or {}).get("splits", [])]
            lines.append(f"  ExampleGen input_base {d['input_base']}, "
                         f"pattern {', '.join(patterns)}")
        lines.append(f"  fingerprint: {d.get('fingerprint')}")
        if d.get("content_digest"):
            lines.append(f"  content: {d['content_digest']}")
        lines.append(f"  span {d.get('span')}, version {d.get('version')}; split: "
                     + ", ".join(f"{s['name']} {s.get('hash_buckets')} buckets" for s in
                                 (d.get("split_config") or {}).get("split_config", {})
                                 .get("splits", [])))
        lines.append(f"  examples artifact {d['examples_artifact']} made by {d['produced_by']}"
                     f"{_when(d.get('run'), trace.run)}")
        for where, what in (d.get("anomalies") or {}).items():
            lines.append(f"  anomalies ({where}): {what}")
    schemas = trace.of_type("Schema")
    if schemas:
        lines.append("Schema")
        for s in schemas:
            lines.append(f"  {s.label} (artifact {s.id}): {s.uri}")
    lines.append("Code")
    if c.get("project_version"):
        lines.append(f"  project {c['project_version']}, git {c['git_commit']}, "
                     f"TFX {c['tfx_version']}, Python {c['python_version']}")
    for name, value in sorted(c.get("entry_points", {}).items()):
        lines.append(f"  {name} = {value}")
    if c.get("digests"):
        lines.append("  code digests: " + ", ".join(
            f"{name} {value}" for name, value in sorted(c["digests"].items())))
    for name, cls in sorted(c.get("components", {}).items()):
        lines.append(f"  {name}: {cls}")
    if trace.config:
        cfg = trace.config["values"]
        lines.append(f"Config (sha256 {trace.config['sha256'][:16]}): pipeline "
                     f"{cfg.get('pipeline_name')}, data {cfg.get('data', {}).get('path')}")
    lines.append("Steps (data first)")
    for n in trace.ordered():
        if n.kind == "execution":
            ins = ", ".join(f"{k}={trace.nodes[e].id}" for k, e in _inputs(trace, n))
            lines.append(f"  [{STATE_MARK.get(n.state, n.state)}] {n.label} "
                         f"(execution {n.id}{_when(n.run, trace.run)}) <- {ins or 'no inputs'}")
        else:
            flag = "" if n.state in ("present", "remote") else f"  [{n.state.upper()}]"
            lines.append(f"      {n.type} {n.id} {n.label}{flag}")
    if trace.problems:
        lines.append("Incomplete record")
        lines += [f"  - {p}" for p in trace.problems]
    return "\n".join(lines)


def _inputs(trace: Trace, execution: Node) -> list[tuple[str, str]]:
    return [(e.key, e.source) for e in trace.edges if e.target == execution.key]


def runs_text(runs: list[RunInfo]) -> str:
    """One block per run: when, how long, outcome, and each component's state."""
    if not runs:
        return "No runs in the store."
    lines = []
    for r in runs:
        blessed = {True: "blessed", False: "not blessed", None: "not evaluated"}[r.blessed]
        pushed = f"pushed {r.pushed_version}" if r.pushed_version else "nothing pushed"
        if r.pushed_version and not r.pushed_in_this_run:
            pushed += " (earlier, reused from cache)"
        outcome = f"{blessed}, {pushed}"
        served = r.provenance.get("served_version")
        if served:  # a job after the push: which version read which file
            label = r.provenance.get("served_label")
            outcome = (f"version {served}{f' ({label})' if label else ''} "
                       f"on {r.provenance.get('data_path')}")
        lines.append(f"{r.run_id}  {r.pipeline}  {r.status}  {r.seconds:.1f}s  {outcome}")
        code = r.provenance
        if code:
            lines.append(f"    code {code.get('project_version')} git {code.get('git_commit')}"
                         f"  config {code.get('config_sha256', '')[:12]}"
                         f"  data {code.get('data_path')}")
        for n in r.nodes:
            lines.append(f"    {n.node_id:<32} {n.state:<9} {n.seconds:7.1f}s")
    return "\n".join(lines)


# --------------------------------------------------------------------------- DOT


def _q(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def trace_dot(trace: Trace) -> str:
    """Graphviz: executions as boxes, artifacts as notes, missing ones in red."""
    out = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];',
           f"  label={_q(trace.description)}; labelloc=t;"]
    for n in trace.ordered():
        if n.kind == "execution":
            text = f"{n.label}\\n{_short(n.type)} #{n.id}\\n{n.state}"
            fill = COLORS["failed"] if n.state == FAILED else COLORS["execution"]
            out.append(f"  {n.key} [shape=box, style=filled, fillcolor={_q(fill)}, "
                       f"label={_q(text)}];")
        else:
            text = f"{n.type} #{n.id}\\n{n.label}" + ("" if n.state != "missing" else "\\nMISSING")
            fill = (COLORS["missing"] if n.state == "missing" else
                    COLORS["start"] if n.id in trace.start else COLORS["artifact"])
            out.append(f"  {n.key} [shape=note, style=filled, fillcolor={_q(fill)}, "
                       f"label={_q(text)}, tooltip={_q(n.uri or '')}];")
    for e in trace.edges:
        out.append(f"  {e.source} -> {e.target} [label={_q(e.key)}, fontsize=8];")
    out.append("}")
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- SVG

W, H, GAP_X, GAP_Y = 170, 46, 40, 14


def trace_svg(trace: Trace) -> str:
    """The trace drawn left (data) to right (served model) as inline SVG."""
    depth = layers(trace)
    columns: dict[int, list[Node]] = {}
    for n in trace.ordered():
        columns.setdefault(depth[n.key], []).append(n)
    preds: dict[str, list[str]] = {}
    for e in trace.edges:
        preds.setdefault(e.target, []).append(e.source)
    row: dict[str, float] = {}
    for col in sorted(columns):
        nodes = columns[col]
        nodes.sort(key=lambda n: (sum(row.get(p, 0) for p in preds.get(n.key, []))
                                  / max(1, len(preds.get(n.key, []))), n.id))
        for i, n in enumerate(nodes):
            row[n.key] = i
    pos = {k: (20 + depth[k] * (W + GAP_X), 40 + row[k] * (H + GAP_Y)) for k in trace.nodes}
    width = 40 + (max(depth.values(), default=0) + 1) * (W + GAP_X)
    height = 60 + (max((len(c) for c in columns.values()), default=1)) * (H + GAP_Y)
    e = html.escape
    parts = [f'<svg class="lineage" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif" '
             f'font-size="11">',
             '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" '
             'markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#667"/>'
             '</marker></defs>',
             f'<text x="20" y="22" font-size="13" font-weight="bold">{e(trace.description)}</text>']
    for edge in trace.edges:
        (x1, y1), (x2, y2) = pos[edge.source], pos[edge.target]
        x1, y1, y2 = x1 + W, y1 + H / 2, y2 + H / 2
        mid = (x1 + x2) / 2
        parts.append(f'<path d="M{x1},{y1} C{mid},{y1} {mid},{y2} {x2},{y2}" fill="none" '
                     f'stroke="#889" marker-end="url(#arrow)"><title>{e(edge.key)}</title></path>')
    for n in trace.nodes.values():
        x, y = pos[n.key]
        if n.kind == "execution":
            fill = COLORS["failed"] if n.state == FAILED else COLORS["execution"]
            title, sub = n.label, f"{_short(n.type)} #{n.id} · {n.state}"
            rx = 2
        else:
            fill = (COLORS["missing"] if n.state == "missing" else
                    COLORS["start"] if n.id in trace.start else COLORS["artifact"])
            title = f"{n.type} #{n.id}"
            sub = n.label + (" · MISSING" if n.state == "missing" else "")
            rx = 12
        tip = "\n".join([f"{n.kind} {n.id}", n.uri or "", f"run {n.run}" if n.run else ""]
                        + [f"{k}: {v}" for k, v in sorted(n.properties.items())
                           if len(str(v)) < 200])
        parts.append(f'<g><title>{e(tip)}</title><rect x="{x}" y="{y}" width="{W}" height="{H}" '
                     f'rx="{rx}" fill="{fill}" stroke="#556"/>'
                     f'<text x="{x + 8}" y="{y + 18}" font-weight="bold">{e(title[:26])}</text>'
                     f'<text x="{x + 8}" y="{y + 35}" fill="#333">{e(sub[:30])}</text></g>')
    parts.append("</svg>")
    return "".join(parts)


def trace_json(trace: Trace) -> str:
    return json.dumps(trace.to_dict(), indent=2, default=str)
