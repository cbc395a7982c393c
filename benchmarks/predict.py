"""`tfxp predict` at a given number of rows: wall time with the process start, rows/s,
peak memory of the process tree.

The rows are the taxi CSV resampled (with a fixed seed) to each size, label
column included (predict ignores what the version does not read); the model
is the one the bench's own cold run pushed.  Flat memory means about the same
peak at 100k and 1M rows: the file is streamed in blocks through the signature.
"""
from __future__ import annotations

import os
import sys
from typing import Any, Callable, Optional

# The figures the data-contract work set: rows/s wall at 1M rows, and peak memory.
MIN_ROWS_PER_SECOND = 50_000
MAX_PEAK_GIB = 1.5


def predict_rows(root: str, source: str, sizes: list[int], work: str,
                 config: Optional[str], resample: Callable, timed_process: Callable
                 ) -> dict[str, Any]:
    """One `tfxp predict` per size: {"<n>": {rows, seconds, rows_per_second, peak_mib}}."""
    tfxp = os.path.join(os.path.dirname(sys.executable), "tfxp")
    out: dict[str, Any] = {}
    for n in sizes:
        data, rows = resample(source, n, 1.0, os.path.join(work, f"predict-{n}"), seed=2)
        cmd = [tfxp, "predict", "--root", root, "--data", data] + (
            ["--config", config] if config else [])
        run = timed_process(cmd)
        print(f"[predict {rows} rows] exit {run['exit_code']} {run['seconds']:.1f}s "
              f"peak {run['peak_mib']:.0f} MiB", flush=True)
        if run["exit_code"] not in (0, 3):  # 3: some rows refused, the rest scored
            print(run["output"][-3000:], file=sys.stderr)
        out[str(rows)] = {"rows": rows, "exit_code": run["exit_code"],
                          "seconds": run["seconds"],
                          "rows_per_second": rows / run["seconds"] if run["seconds"] else 0.0,
                          "peak_mib": run["peak_mib"]}
    return out


def predict_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Throughput at the largest size, memory at every size and flat between them."""
    if not results:
        return [{"target": f"predict >= {MIN_ROWS_PER_SECOND // 1000}k rows/s, peak <= "
                           f"{MAX_PEAK_GIB:g} GiB, flat", "figure": "not run", "passed": None}]
    runs = [results[k] for k in sorted(results, key=int)]
    largest = runs[-1]
    peaks = [r["peak_mib"] / 1024 for r in runs]
    ok = all(r["exit_code"] in (0, 3) for r in runs)
    figure = (f"{largest['rows_per_second'] / 1000:.0f}k rows/s at {largest['rows']:,} rows; "
              f"peak " + " / ".join(f"{p:.2f}" for p in peaks) + " GiB at "
              + " / ".join(f"{r['rows']:,}" for r in runs) + " rows")
    flat = max(peaks) <= 1.25 * min(peaks) + 0.1  # 10x the rows, about the same memory
    return [{"target": f"predict >= {MIN_ROWS_PER_SECOND // 1000}k rows/s, peak <= "
                       f"{MAX_PEAK_GIB:g} GiB, flat",
             "figure": figure,
             "passed": ok and largest["rows_per_second"] >= MIN_ROWS_PER_SECOND
             and max(peaks) <= MAX_PEAK_GIB and flat}]


__all__ = ["predict_rows", "predict_targets"]
