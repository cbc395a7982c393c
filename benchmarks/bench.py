"""`make bench`: this pipeline against TFX's own taxi example, side by side.

Every pipeline run is a fresh process (imports included, as a user sees it),
timed by wall clock; per-component times come from the ML Metadata store each
run writes; peak memory is the child's max RSS.  Both models are scored on the
same eval split (ExampleGen's hash split is the same for both: same CSV, same
default split) so quality is compared like for like.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Optional

from pipeline.layout import RunLayout

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

PEER_SCRIPT = """
import os, sys
os.environ['TF_USE_LEGACY_KERAS'] = '1'
import tfx
from tfx.examples.chicago_taxi_pipeline import taxi_pipeline_native_keras as peer
from tfx.orchestration.beam.beam_dag_runner import BeamDagRunner
root, data_dir = sys.argv[1], sys.argv[2]
example_dir = os.path.dirname(peer.__file__)
BeamDagRunner().run(peer._create_pipeline(
    pipeline_name='chicago_taxi_native_keras', pipeline_root=os.path.join(root, 'pipeline'),
    data_root=data_dir, module_file=os.path.join(example_dir, 'taxi_utils_native_keras.py'),
    serving_model_dir=os.path.join(root, 'serving'),
    metadata_path=os.path.join(root, 'metadata.sqlite'),
    beam_pipeline_args=peer._beam_pipeline_args))
"""


def timed_process(cmd: list[str]) -> dict[str, Any]:
    """Wall seconds, exit code and peak RSS (MiB) of one child process."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return {"seconds": time.monotonic() - started, "exit_code": proc.returncode,
            "peak_mib": usage.ru_maxrss / 1024, "output": output}


def component_seconds(metadata_path: str) -> dict[str, float]:
    """Per-node execution time of the newest run recorded in a store (ours or TFX's)."""
    from pipeline.lineage.store import Store, open_store, sqlite_connection
    store = Store(open_store(sqlite_connection(metadata_path, must_exist=True)))
    runs = store.run_contexts()
    if not runs:
        return {}
    return {n.node_id: n.seconds for n in store.run_info(runs[-1]).nodes
            if n.execution_id is not None}


def run_ours(root: str, data: str, config: Optional[str]) -> dict[str, Any]:
    cmd = [os.path.join(os.path.dirname(sys.executable), "tfxp"), "run", "--root", root,
           "--data", data] + (["--config", config] if config else [])
    result = timed_process(cmd)
    result["components"] = component_seconds(RunLayout.at(root).metadata)
    return result


def run_peer(root: str, data_dir: str) -> dict[str, Any]:
    result = timed_process([sys.executable, "-c", PEER_SCRIPT, root, data_dir])
    result["components"] = component_seconds(os.path.join(root, "metadata.sqlite"))
    return result


def newest_model(serving_dir: str) -> Optional[str]:
    if not os.path.isdir(serving_dir):
        return None
    versions = sorted((v for v in os.listdir(serving_dir) if v.isdigit()), key=int)
    return os.path.join(serving_dir, versions[-1]) if versions else None


def eval_examples(root: str) -> list[bytes]:
    """Serialized eval-split examples from our run's ExampleGen output."""
    import glob

    import tensorflow as tf
    files = glob.glob(os.path.join(RunLayout.at(root).pipeline_root, "CsvExampleGen",
                                   "examples", "*", "Split-eval", "*.gz"))
    return [r.numpy() for r in tf.data.TFRecordDataset(files, compression_type="GZIP")]


def _label(serialized: bytes, column: str, threshold: float, relative_to: Optional[str]) -> int:
    import tensorflow as tf
    f = tf.train.Example.FromString(serialized).features.feature

    def value(name):
        v = f[name].float_list.value or f[name].int64_list.value if name in f else []
        return float(v[0]) if v else 0.0
    bound = threshold * (value(relative_to) if relative_to else 1.0)
    return int(value(column) > bound)


def auc_on(model_dir: str, examples: list[bytes], labels: list[int]) -> float:
    import numpy as np
    import tensorflow as tf
    from sklearn.metrics import roc_auc_score
    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    scores = []
    for i in range(0, len(examples), 1000):
        out = serve(examples=tf.constant(examples[i:i + 1000]))
        scores.append(next(iter(out.values())).numpy().ravel())
    return float(roc_auc_score(labels, np.concatenate(scores)))


def serving_latency(model_dir: str, examples: list[bytes], repeats: int) -> dict[str, float]:
    import numpy as np
    import tensorflow as tf
    serve = tf.saved_model.load(model_dir).signatures["serving_default"]
    out = {}
    for batch in (1, 1000):
        data = tf.constant((examples * (1 + batch // max(len(examples), 1)))[:batch])
        serve(examples=data)  # warm-up
        times = []
        for _ in range(repeats if batch == 1 else max(repeats // 20, 5)):
            t = time.perf_counter()
            serve(examples=data)
            times.append((time.perf_counter() - t) * 1000)
        out[f"batch{batch}_p50_ms"] = float(np.percentile(times, 50))
        out[f"batch{batch}_p90_ms"] = float(np.percentile(times, 90))
        out[f"batch{batch}_examples_per_s"] = batch / (out[f"batch{batch}_p50_ms"] / 1000)
    return out


def resample(source: str, rows: Optional[int], scale: float, dest_dir: str, seed: int = 0) -> str:
    """`rows` rows (or `scale` x the source), drawn with a fixed seed."""
    with open(source) as f:
        header, *lines = f.read().splitlines()
    n = rows if rows else int(len(lines) * scale)
    rng = random.Random(seed)
    picked = rng.sample(lines, n) if n <= len(lines) else rng.choices(lines, k=n)
    os.makedirs(dest_dir, exist_ok=True)
    path = os.path.join(dest_dir, "data.csv")
    with open(path, "w") as f:
        f.write("\n".join([header] + picked) + "\n")
    return path


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rows", type=int, help="sample this many rows (tiny smoke runs)")
    parser.add_argument("--scales", default="10", help="comma list of data multiples, e.g. 10,100")
    parser.add_argument("--config", help="our pipeline config (default configs/taxi.yaml)")
    parser.add_argument("--latency-repeats", type=int, default=500)
    parser.add_argument("--workdir", help="keep runs here (default: a temp dir)")
    parser.add_argument("--output", default="bench-results/bench.json")
    parser.add_argument("--no-peer", dest="peer", action="store_false",
                        help="skip TFX's example (smoke runs of the benchmark itself)")
    args = parser.parse_args(argv)

    import pipeline  # noqa: F401
    from pipeline.config import load_config
    cfg = load_config(args.config)
    work = args.workdir or tempfile.mkdtemp(prefix="tfxp-bench-")
    source = cfg.resolve(cfg.data.path)
    data = resample(source, args.rows, 1.0, os.path.join(work, "data")) if args.rows else source
    data_dir = os.path.dirname(data)

    results: dict[str, Any] = {"cores": os.cpu_count(), "data": data,
                               "rows": sum(1 for _ in open(data)) - 1, "repeats": []}
    for i in range(args.repeat):
        rep: dict[str, Any] = {}
        if args.peer:
            rep["peer"] = run_peer(os.path.join(work, f"peer-{i}"), data_dir)
        root = os.path.join(work, f"ours-{i}")
        rep["ours_cold"] = run_ours(root, data, args.config)
        rep["ours_cached"] = run_ours(root, data, args.config)
        for r in rep.values():
            print(f"[{i}] exit {r['exit_code']} {r['seconds']:.1f}s "
                  f"peak {r['peak_mib']:.0f} MiB", flush=True)
            if r["exit_code"] != 0:
                print(r["output"][-3000:], file=sys.stderr)
                return 1
        results["repeats"].append(rep)

    scaled = {}
    for s in [float(x) for x in args.scales.split(",") if x]:
        big = resample(source, int(args.rows * s) if args.rows else None, s,
                       os.path.join(work, f"data-x{s:g}"), seed=1)
        run = run_ours(os.path.join(work, f"ours-x{s:g}"), big, args.config)
        scaled[f"x{s:g}"] = {k: v for k, v in run.items() if k != "output"}
        print(f"[x{s:g}] exit {run['exit_code']} {run['seconds']:.1f}s", flush=True)

    our_model = newest_model(RunLayout.under(os.path.join(work, "ours-0"), cfg).serving)
    peer_model = newest_model(os.path.join(work, "peer-0", "serving")) if args.peer else None
    examples = eval_examples(os.path.join(work, "ours-0"))
    labels = [_label(e, cfg.label.column, cfg.label.threshold, cfg.label.relative_to)
              for e in examples]
    quality = {"ours_auc": auc_on(our_model, examples, labels),
               "peer_auc": auc_on(peer_model, examples, labels) if args.peer else None,
               "eval_examples": len(examples)}
    latency = serving_latency(our_model, examples, args.latency_repeats)

    def summary_of(kind):
        runs = [r[kind] for r in results["repeats"]]
        comps = sorted({c for r in runs for c in r["components"]})
        return {"seconds": median([r["seconds"] for r in runs]),
                "all_seconds": [round(r["seconds"], 1) for r in runs],
                "peak_mib": max(r["peak_mib"] for r in runs),
                "components": {c: median([r["components"].get(c, 0.0) for r in runs])
                               for c in comps}}

    kinds = (["peer"] if args.peer else []) + ["ours_cold", "ours_cached"]
    table = {k: summary_of(k) for k in kinds}
    results.update(table=table, scaled=scaled, quality=quality, serving=latency)
    for rep in results["repeats"]:
        for r in rep.values():
            r.pop("output", None)

    peer_s = table["peer"]["seconds"] if args.peer else float("nan")
    cold_s = table["ours_cold"]["seconds"]
    print(f"\nBenchmark on {results['cores']} cores, {results['rows']} rows, "
          f"median of {args.repeat}:")
    print(f"{'':<14}{'wall s':>9}{'x peer':>8}{'peak MiB':>10}   runs")
    for k in kinds:
        t = table[k]
        print(f"{k:<14}{t['seconds']:>9.1f}{t['seconds'] / peer_s:>8.2f}{t['peak_mib']:>10.0f}"
              f"   {t['all_seconds']}")
    for k, r in scaled.items():
        print(f"ours {k:<9}{r['seconds']:>9.1f}{r['seconds'] / peer_s:>8.2f}{r['peak_mib']:>10.0f}"
              f"   ({r['seconds'] / cold_s:.2f}x our cold run)")
    print("\nPer component (median s):")
    comps = sorted({c for k in kinds for c in table[k]["components"]})
    print(f"  {'component':<32}{'peer':>8}{'ours':>8}{'cached':>8}")
    for c in comps:
        row = [table[k]["components"].get(c) if k in table else None
               for k in ("peer", "ours_cold", "ours_cached")]
        print(f"  {c:<32}" + "".join(f"{v:>8.1f}" if v is not None else f"{'-':>8}" for v in row))
    print(f"\nEval AUC on the same {quality['eval_examples']} eval examples: "
          f"ours {quality['ours_auc']:.4f}" + (
              f", peer {quality['peer_auc']:.4f} (parity: ours >= peer - 0.005: "
              f"{quality['ours_auc'] >= quality['peer_auc'] - 0.005})" if args.peer else ""))
    print("Serving signature: " + ", ".join(f"{k} {v:.2f}" for k, v in latency.items()))
    print(f"Targets: cold <= 0.5x peer: {cold_s / peer_s:.2f}; cached <= 0.1x cold: "
          f"{table['ours_cached']['seconds'] / cold_s:.2f}"
          + "".join(f"; {k} <= 3x cold: {r['seconds'] / cold_s:.2f}" for k, r in scaled.items())
          + f"; batch-1 p50 <= 0.5 ms: {latency['batch1_p50_ms']:.2f} ms")

    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output, "w") as f:
        json.dump(results, f, indent=2)
    print(f"\nWritten: {args.output}  (runs kept in {work})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
