"""`tfxp diff`: what changed from one run to another, read from ML Metadata.

Data (path, fingerprint, content digest), the curated and inferred schemas,
the configuration key by key, the code, the outcome and the metrics per slice
side by side: the questions asked when a model got better or worse.
"""
from __future__ import annotations

import json
from typing import Any, Optional

from pipeline.dag.schema import schema_diff
from pipeline.lineage.results import (
    evaluation,
    fmt_number,
    load_schema,
    slice_kinds,
    slice_label,
    sorted_slices,
    table_columns,
)
from pipeline.lineage.runs import run_record
from pipeline.lineage.store import Store


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
    def code_of(record: Any, digests: bool) -> dict[str, Any]:
        return {f"{n}.{k}": v for n, p in record.properties.items() for k, v in p.items()
                if (k == "code_digest") == digests
                and (digests or k.endswith("_fn") or k.startswith("module_"))}
    change("entry points", code_of(a, False), code_of(b, False))
    da, db = code_of(a, True), code_of(b, True)
    changed = sorted(k.rsplit(".", 1)[0] for k in set(da) | set(db) if da.get(k) != db.get(k))
    lines.append("  code digests: " + (f"CHANGED for {', '.join(changed)}" if changed
                                       else f"same ({len(da)} nodes)"))

    lines.append("Outcome")
    change("status", a.info.status, b.info.status)
    change("blessed", a.info.blessed, b.info.blessed)
    change("pushed version", a.info.pushed_version, b.info.pushed_version)

    lines += _metrics_lines(a, b)
    return "\n".join(lines)


def _metrics_lines(a: Any, b: Any) -> list[str]:
    """Metrics per slice side by side; `-` where a metric is undefined on a slice."""
    lines = ["Metrics per slice (A -> B)"]
    ma, _ = evaluation(a)
    mb, config_b = evaluation(b)
    if ma is None or mb is None:
        missing = [r.info.run_id for r, m in ((a, ma), (b, mb)) if m is None]
        lines.append(f"  not evaluated in {', '.join(missing)}")
        return lines
    keys = [()] + [k for kind in slice_kinds(mb.metrics, config_b)
                   for k in sorted_slices({**ma.metrics, **mb.metrics}, kind)]
    columns = [c for c in table_columns({**ma.metrics, **mb.metrics})
               if c.metric != "ExampleCount"]  # the label's task decides which
    lines.append(f"    {'slice':<32}" + "".join(f"{c.header:>22}" for c in columns))
    for key in keys:
        cells = []
        for c in columns:
            x, y = ma.metrics.get(key, {}).get(c.key), mb.metrics.get(key, {}).get(c.key)
            cells.append(f"{fmt_number(x)} -> {fmt_number(y)}".rjust(22))
        lines.append(f"    {slice_label(key)[:32]:<32}" + "".join(cells))
    return lines
