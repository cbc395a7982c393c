"""What `make bench` prints and draws: the tables, the issue's targets with their
verdicts, and the chart of time against data size (benchmarks.chart)."""
from __future__ import annotations

import argparse
from typing import Any, Optional

from benchmarks.chart import Series, stacked, svg_chart

MIB_PER_GIB = 1024.0
# Runs timed as complete: pushed (0), or every step run and the model not
# blessed (4): on resampled data a fairness bound may fail; the cost is the same.
COMPLETED = (0, 4)


def completed(run: dict[str, Any]) -> bool:
    return run["exit_code"] in COMPLETED


class Verdicts(list):
    """Targets as the bench reports them: {target, figure, passed (None: not run)}."""

    def add(self, name: str, figure: str, passed: Optional[bool]) -> None:
        self.append({"target": name, "figure": figure, "passed": passed})


def ratio(a: float, b: float) -> float:
    return a / b if b and b == b else float("nan")


def print_components(columns: dict[str, dict[str, Any]]) -> None:
    """One row per component (in the order ours ran, then the peer's others):
    seconds and peak MiB per column."""
    ordered = sorted(columns, key=lambda k: not k.startswith("ours"))
    comps = list(dict.fromkeys(c for k in ordered for c in columns[k]["components"]))
    print(f"  {'component':<32}" + "".join(f"{k + ' s':>14}{'MiB':>7}" for k in columns))
    rows = [(c, [(t["components"].get(c), t["component_peak_mib"].get(c))
                 for t in columns.values()]) for c in comps]
    rows.append(("(no component running)", [(t["outside_components"]["seconds"],
                                              t["outside_components"]["peak_mib"])
                                             for t in columns.values()]))
    for name, cells in rows:
        print(f"  {name:<32}" + "".join(f"{s:>14.1f}{m:>7.0f}" if s is not None
                                        else f"{'-':>14}{'-':>7}" for s, m in cells))


def targets(table: dict[str, Any], scaled: dict[str, Any], quality: dict[str, Any],
            latency: dict[str, float]) -> list[dict[str, Any]]:
    """Each target with its figure and whether it is met (None: not run)."""
    cold = table["ours_cold"]["seconds"]
    out = Verdicts()
    add = out.add

    name = "cold run <= 0.3x TFX's example, AUC >= example's - 0.005"
    if "peer" in table:
        x, ours, peer = ratio(cold, table["peer"]["seconds"]), quality["ours_auc"], \
            quality["peer_auc"]
        add(name, f"{x:.2f}x, AUC {ours:.4f} vs {peer:.4f}", x <= 0.3 and ours >= peer - 0.005)
    else:
        add(name, "not run", None)
    for key, bound, mem in (("x100", 5.0, 2.5), ("x10", 2.0, None)):
        name = f"{key[1:]}x data <= {bound:g}x cold" + (f", peak RSS <= {mem:g} GiB" if mem else "")
        run = scaled.get(key)
        if run is None:
            add(name, "not run", None)
        elif not completed(run):
            add(name, f"failed (exit {run['exit_code']})", False)
        else:
            x, gib = ratio(run["seconds"], cold), run["peak_mib"] / MIB_PER_GIB
            add(name, f"{x:.2f}x" + (f", peak {gib:.2f} GiB" if mem else "")
                + (" (not blessed)" if run["exit_code"] else ""),
                x <= bound and (mem is None or gib <= mem))
    x = ratio(table["ours_cached"]["seconds"], cold)
    add("unchanged re-run <= 0.15x cold", f"{x:.2f}x", x <= 0.15)
    p50 = latency["batch1_p50_ms"]
    add("serving batch-1 p50 <= 0.5 ms", f"{p50:.2f} ms", p50 <= 0.5)
    return out


def status(run: dict[str, Any]) -> str:
    """How a run ended, in words: what the table says of a run that did not complete."""
    if run.get("timed_out"):
        how = f"killed after {run['seconds']:.0f} s"
    elif run["exit_code"] == -9:
        how = "killed (signal 9: out of memory?)"
    elif run["exit_code"] in COMPLETED:
        how = "pushed" if run["exit_code"] == 0 else "not blessed"
    else:
        how = f"failed (exit {run['exit_code']})"
    return how + (f", reached {run['reached']}" if run.get("reached") and not completed(run)
                  else "")


# At 100x the data, the steps that read every example, each at most this long.
SCAN_STEP_SECONDS = 15.0


def scale_targets(table: dict[str, Any], scaled: dict[str, Any],
                  peer_scaled: dict[str, Any]) -> list[dict[str, Any]]:
    """Against TFX's example at the same size; 1000x on one machine; the scan steps at 100x."""
    out = Verdicts()
    add = out.add

    for key in sorted(peer_scaled, key=lambda k: float(k[1:])):
        name = f"{key[1:]}x: <= 0.25x TFX's example at {key[1:]}x, AUC >= its - 0.005"
        ours, peer = scaled.get(key), peer_scaled[key]
        if ours is None:
            add(name, "ours not run", None)
        elif not completed(ours):
            add(name, f"ours {status(ours)}", False)
        elif not completed(peer):
            add(name, f"{ours['seconds']:.0f} s; the example {status(peer)}", None)
        else:
            x = ratio(ours["seconds"], peer["seconds"])
            a, b = ours.get("auc"), peer.get("auc")
            auc_ok = a is not None and b is not None and a >= b - 0.005
            add(name, f"{x:.2f}x ({ours['seconds']:.0f} s vs {peer['seconds']:.0f} s), AUC "
                + (f"{a:.4f} vs {b:.4f}" if a is not None and b is not None else "not scored"),
                x <= 0.25 and auc_ok)
    name = "1000x: blessed and pushed, <= 20 min, peak <= 3 GiB"
    run = scaled.get("x1000")
    if run is None:
        add(name, "not run", None)
    else:
        gib = run["peak_mib"] / MIB_PER_GIB
        add(name, f"{run['seconds'] / 60:.1f} min, peak {gib:.2f} GiB, {status(run)}",
            run["exit_code"] == 0 and run["seconds"] <= 1200 and gib <= 3.0)
    name = f"100x: StatisticsGen and Transform <= {SCAN_STEP_SECONDS:g} s each"
    run = scaled.get("x100")
    steps = {c: run["components"].get(c) for c in ("StatisticsGen", "Transform")} if run else {}
    if not run or None in steps.values():
        add(name, "not run", None)
    else:
        add(name, ", ".join(f"{c} {v:.1f} s" for c, v in steps.items()),
            all(v <= SCAN_STEP_SECONDS for v in steps.values()))
    return out


def growth_chart(results: dict[str, Any], top: int = 5) -> str:
    """Against rows, two panels: wall seconds (ours, the peer, our costliest
    components) and the peak memory of the process tree (ours, the peer)."""
    table, rows = results["table"], results["rows"]

    def points(base: Optional[dict], scaled: dict[str, Any], pick) -> list[tuple[float, float]]:
        found = [(rows, pick(base))] if base else []
        return found + [(r["rows"], pick(r)) for r in scaled.values() if completed(r)]

    ours = [table["ours_cold"]] + [r for r in results["scaled"].values() if completed(r)]
    cost: dict[str, float] = {}
    for run in ours:
        for c, sec in run["components"].items():
            cost[c] = cost.get(c, 0.0) + sec
    has_peer = "peer" in table or bool(results["peer_scaled"])
    panels = []
    for pick, what, unit in ((lambda r: r["seconds"], "Wall time", "wall seconds"),
                             (lambda r: r["peak_mib"], "Peak memory", "peak MiB, process tree")):
        series = [Series("ours", points(table["ours_cold"], results["scaled"], pick))]
        if has_peer:
            series.append(Series("TFX example", points(
                table.get("peer"), results["peer_scaled"], pick)))
        if what == "Wall time":
            for c in sorted(cost, key=cost.get, reverse=True)[:top]:
                series.append(Series(f"ours, {c}", points(
                    table["ours_cold"], results["scaled"],
                    lambda r, c=c: r["components"].get(c, 0.0)), dashed=True))
        panels.append(svg_chart(
            series, f"{what} against data size ({results['cores']} cores; 1x: median of "
            f"{len(results['repeats'])}, other sizes: one run)", "rows of data (log scale)",
            f"{unit} (log scale)", y_unit="s" if what == "Wall time" else "MiB"))
    return stacked(panels)


def print_report(results: dict[str, Any], args: argparse.Namespace) -> None:
    table, quality, latency = results["table"], results["quality"], results["serving"]
    peer_s = table["peer"]["seconds"] if "peer" in table else float("nan")
    cold_s = table["ours_cold"]["seconds"]
    print(f"\nBenchmark on {results['cores']} cores, {results['rows']} rows, "
          f"median of {args.repeat} (peak MiB: the process tree's RSS):")
    print(f"{'':<14}{'wall s':>9}{'x peer':>8}{'x cold':>8}{'peak MiB':>10}"
          f"{'1 proc MiB':>12}   runs")
    for k, t in table.items():
        print(f"{k:<14}{t['seconds']:>9.1f}{ratio(t['seconds'], peer_s):>8.2f}"
              f"{ratio(t['seconds'], cold_s):>8.2f}{t['peak_mib']:>10.0f}"
              f"{t['max_process_mib']:>12.0f}   {t['all_seconds']}")
    print("\nPer component (median s, peak MiB):")
    print_components(table)
    for key in sorted(set(results["scaled"]) | set(results["peer_scaled"]),
                      key=lambda k: float(k[1:])):
        runs = {name: at[key] for name, at in (("ours", results["scaled"]),
                                                ("peer", results["peer_scaled"])) if key in at}
        print(f"\nScale {key} ({next(iter(runs.values()))['rows']:,} rows, one run each):")
        print(f"{'':<14}{'wall s':>9}{'x cold':>8}{'peak MiB':>10}{'1 proc MiB':>12}"
              f"{'AUC':>8}   how it ended")
        for name, r in runs.items():
            auc = f"{r['auc']:.4f}" if r.get("auc") is not None else "-"
            print(f"{name:<14}{r['seconds']:>9.1f}{ratio(r['seconds'], cold_s):>8.2f}"
                  f"{r['peak_mib']:>10.0f}{r['max_process_mib']:>12.0f}{auc:>8}   {status(r)}")
        print_components(runs)
    print(f"\nEval AUC on the same {quality['eval_examples']} eval examples: "
          f"ours {quality['ours_auc']:.4f}" + (
              f", peer {quality['peer_auc']:.4f}" if quality["peer_auc"] is not None else ""))
    print("Serving signature: " + ", ".join(f"{k} {v:.2f}" for k, v in latency.items()))
    print("Targets:")
    for t in results["targets"]:
        verdict = {True: "pass", False: "FAIL", None: ""}[t["passed"]]
        print(f"  {t['target']:<58} {t['figure']:<30} {verdict}".rstrip())
