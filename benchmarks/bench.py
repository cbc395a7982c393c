"""`make bench`: this pipeline against TFX's own taxi example, side by side.

Every pipeline run is a fresh process (imports included, as a user sees it),
timed by wall clock.  While it runs, the RSS of its whole process tree is
sampled (benchmarks.memory); per-component times come from the ML Metadata
store each run writes, and each component's peak memory is the peak of the
samples taken between its execution's start and end.  Both models are scored
on the same eval split (ExampleGen's hash split is the same for both: same
CSV, same default split) so quality is compared like for like.  `--scales`
(and `--peer-scales`) rerun on resampled data N times the size, once each,
both models are scored again on that size's eval split, and a chart of time
and memory against data size is written next to the JSON.  A scaled run of
the peer is killed after `--peer-timeout`; the table says how far it got.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any, Optional

from benchmarks.memory import TreeSampler, Window, outside_windows, peaks_by_window
from benchmarks.predict import predict_rows, predict_targets
from benchmarks.report import growth_chart, print_report, scale_targets, targets
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


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass  # it ended as the timer fired


def timed_process(cmd: list[str], timeout: Optional[float] = None) -> dict[str, Any]:
    """Wall seconds, exit code and memory of one child process and its descendants:
    the tree's sampled peak RSS, the largest single process (ru_maxrss), and
    `peak_mib`, the larger of the two (a spike between samples still counts).
    After `timeout` seconds the whole tree is killed and `timed_out` is set."""
    started, started_at = time.monotonic(), time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    timer = threading.Timer(timeout, _kill_group, (proc.pid,)) if timeout else None
    if timer:
        timer.start()
    with TreeSampler(proc.pid) as sampler:
        output = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
    if timer:
        timer.cancel()
    proc.returncode = os.waitstatus_to_exitcode(status)
    seconds = time.monotonic() - started
    largest = usage.ru_maxrss / 1024
    return {"seconds": seconds, "exit_code": proc.returncode,
            "timed_out": bool(timeout) and proc.returncode == -signal.SIGKILL
            and seconds >= timeout,
            "started_at": started_at, "peak_mib": max(sampler.peak_mib, largest),
            "tree_peak_mib": sampler.peak_mib, "max_process_mib": largest,
            "samples": sampler.samples, "output": output}


def _executions(metadata_path: str, since: float) -> tuple[Any, list]:
    """The store and the executions a process started at `since` recorded, in order."""
    from pipeline.lineage.store import Store, open_store, sqlite_connection
    if not os.path.isfile(metadata_path):
        return None, []
    store = Store(open_store(sqlite_connection(metadata_path, must_exist=True)))
    runs = store.run_contexts()
    if not runs:
        return store, []
    return store, sorted((e for e in store.tasks(store.store.get_executions_by_context(runs[-1].id))
                          if e.create_time_since_epoch >= since * 1000),
                         key=lambda e: (e.create_time_since_epoch, e.id))


def component_windows(store: Any, executions: list) -> dict[str, Window]:
    """Per-node (start, end) epoch seconds of `executions`; {} when there are none,
    e.g. a re-run that found nothing changed and launched no pipeline."""
    names = store.node_ids(e.id for e in executions) if executions else {}
    return {names.get(e.id, e.name): (e.create_time_since_epoch / 1000,
                                      e.last_update_time_since_epoch / 1000)
            for e in executions}


def reached(store: Any, executions: list) -> Optional[str]:
    """The last node of `executions` that completed: where a run that failed or was
    killed got to."""
    from ml_metadata.proto import metadata_store_pb2
    done = (metadata_store_pb2.Execution.COMPLETE, metadata_store_pb2.Execution.CACHED)
    finished = [e for e in executions if e.last_known_state in done]
    return store.node_ids([finished[-1].id]).get(finished[-1].id) if finished else None


def with_components(result: dict[str, Any], metadata_path: str) -> dict[str, Any]:
    """Adds per-component seconds and peak MiB to a timed run, where it got to, and the
    time and peak while no component ran (imports, orchestration, what runs after the
    pipeline), from the executions the run recorded (ours or TFX's store)."""
    store, executions = _executions(metadata_path, result["started_at"])
    windows = component_windows(store, executions)
    samples = result.pop("samples")
    result["components"] = {n: end - start for n, (start, end) in windows.items()}
    result["reached"] = reached(store, executions)
    result["component_peak_mib"] = peaks_by_window(samples, windows)
    result["outside_components"] = outside_windows(
        samples, windows, (result["started_at"], result["started_at"] + result["seconds"]))
    return result


def run_ours(root: str, data: str, config: Optional[str]) -> dict[str, Any]:
    cmd = [os.path.join(os.path.dirname(sys.executable), "tfxp"), "run", "--root", root,
           "--data", data] + (["--config", config] if config else [])
    return with_components(timed_process(cmd), RunLayout.at(root).metadata)


def run_peer(root: str, data_dir: str, timeout: Optional[float] = None) -> dict[str, Any]:
    result = timed_process([sys.executable, "-c", PEER_SCRIPT, root, data_dir], timeout)
    return with_components(result, os.path.join(root, "metadata.sqlite"))


def newest_model(serving_dir: str) -> Optional[str]:
    """The newest version models.config serves; TFX's own Pusher writes no config, so
    under its base path the newest version directory (what TF Serving loads by default)."""
    from components.atomic_pusher import served_state

    state = served_state.read(serving_dir)
    versions = state.served if state.config_text is not None else state.on_disk
    return state.version_path(versions[-1]) if versions else None


# Eval examples both models are scored on at a scale: enough for an AUC to three
# decimals, few enough that scoring stays seconds at 1000x.
EVAL_AT_SCALE = 50_000


def eval_examples(root: str, limit: Optional[int] = None) -> list[bytes]:
    """Serialized eval-split examples from our run's ExampleGen output (the first
    `limit` of them, in file order, when given)."""
    import glob

    import tensorflow as tf
    files = sorted(glob.glob(os.path.join(RunLayout.at(root).pipeline_root, "CsvExampleGen",
                                          "examples", "*", "Split-eval", "*.gz")))
    records = tf.data.TFRecordDataset(files, compression_type="GZIP")
    return [r.numpy() for r in (records.take(limit) if limit else records)]


def quality_at(examples: list[bytes], our_model: Optional[str], peer_model: Optional[str],
               cfg: Any) -> dict[str, Any]:
    """AUC of our pushed model and, when given, the peer's, on the same eval examples
    of our run (ExampleGen's hash split is the same for both)."""
    labels = [_label(e, cfg.label.column, cfg.label.threshold, cfg.label.relative_to)
              for e in examples]
    return {"eval_examples": len(examples),
            "ours_auc": auc_on(our_model, examples, labels) if our_model else None,
            "peer_auc": auc_on(peer_model, examples, labels) if peer_model else None}


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


RESAMPLE_CHUNK = 100_000


def resample(source: str, rows: Optional[int], scale: float, dest_dir: str, seed: int = 0
             ) -> tuple[str, int]:
    """`rows` rows (or `scale` x the source), drawn with a fixed seed: (path, rows)."""
    with open(source) as f:
        header, *lines = f.read().splitlines()
    n = rows if rows else int(len(lines) * scale)
    rng = random.Random(seed)
    os.makedirs(dest_dir, exist_ok=True)
    path = os.path.join(dest_dir, "data.csv")
    # Written a chunk at a time (the same draws as one call): this process stays
    # small, and so does the peak memory Linux reports for the runs it starts (a
    # child's ru_maxrss starts from its parent's size at fork).
    with open(path, "w") as f:
        f.write(header + "\n")
        if n <= len(lines):
            f.write("".join(line + "\n" for line in rng.sample(lines, n)))
        for start in range(0, n if n > len(lines) else 0, RESAMPLE_CHUNK):
            f.writelines(line + "\n" for line in rng.choices(
                lines, k=min(RESAMPLE_CHUNK, n - start)))
    return path, n


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def summary_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Repeats of one kind of run: median seconds, the largest memory seen."""
    comps = list(dict.fromkeys(c for r in runs for c in r["components"]))
    return {"seconds": median([r["seconds"] for r in runs]),
            "all_seconds": [round(r["seconds"], 1) for r in runs],
            "peak_mib": max(r["peak_mib"] for r in runs),
            "tree_peak_mib": max(r["tree_peak_mib"] for r in runs),
            "max_process_mib": max(r["max_process_mib"] for r in runs),
            "components": {c: median([r["components"].get(c, 0.0) for r in runs])
                           for c in comps},
            "component_peak_mib": {c: max(r["component_peak_mib"].get(c, 0.0) for r in runs)
                                   for c in comps},
            "outside_components": {
                "seconds": median([r["outside_components"]["seconds"] for r in runs]),
                "peak_mib": max(r["outside_components"]["peak_mib"] for r in runs)}}


def run_scales(args: argparse.Namespace, source: str, work: str, cfg: Any
               ) -> tuple[dict[str, Any], dict[str, Any]]:
    """One run per scale on data resampled to that size: ours, and the peer's if
    asked (killed after --peer-timeout), then both models' AUC on the same eval
    examples of that size."""
    ours_at = [float(x) for x in args.scales.split(",") if x]
    peer_at = [float(x) for x in args.peer_scales.split(",") if x]
    scaled: dict[str, Any] = {}
    peer_scaled: dict[str, Any] = {}
    for s in sorted(set(ours_at) | set(peer_at)):
        big, n = resample(source, int(args.rows * s) if args.rows else None, s,
                          os.path.join(work, f"data-x{s:g}"), seed=1)
        roots = {}
        for kind, wanted, into in (("ours", ours_at, scaled), ("peer", peer_at, peer_scaled)):
            if s not in wanted:
                continue
            root = roots[kind] = os.path.join(work, f"{kind}-x{s:g}")
            run = (run_ours(root, big, args.config) if kind == "ours"
                   else run_peer(root, os.path.dirname(big), args.peer_timeout))
            print(f"[{kind} x{s:g}] exit {run['exit_code']} {run['seconds']:.1f}s "
                  f"peak {run['peak_mib']:.0f} MiB" + (
                      f", killed after {args.peer_timeout:g} s" if run["timed_out"] else "")
                  + f", reached {run['reached']}", flush=True)
            if run["exit_code"] != 0:
                print(run["output"][-3000:], file=sys.stderr)
            into[f"x{s:g}"] = {"rows": n, **{k: v for k, v in run.items() if k != "output"}}
        examples = eval_examples(roots["ours"], EVAL_AT_SCALE) if "ours" in roots else []
        if examples:
            quality = quality_at(
                examples, newest_model(RunLayout.under(roots["ours"], cfg).serving),
                newest_model(os.path.join(roots["peer"], "serving")) if "peer" in roots
                else None, cfg)
            scaled[f"x{s:g}"]["auc"] = quality["ours_auc"]
            if "peer" in roots:
                peer_scaled[f"x{s:g}"]["auc"] = quality["peer_auc"]
    return scaled, peer_scaled


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rows", type=int, help="sample this many rows (tiny smoke runs)")
    parser.add_argument("--scales", default="10",
                        help="comma list of data multiples for our pipeline, e.g. 10,100")
    parser.add_argument("--peer-scales", default="",
                        help="comma list of data multiples for TFX's example (default: none)")
    parser.add_argument("--peer-timeout", type=float, default=3600,
                        help="seconds after which a scaled run of TFX's example is killed "
                             "(the table says so and what it reached)")
    parser.add_argument("--config", help="our pipeline config (default configs/taxi.yaml)")
    parser.add_argument("--latency-repeats", type=int, default=500)
    parser.add_argument("--workdir", help="keep runs here (default: a temp dir)")
    parser.add_argument("--output", default="bench-results/bench.json",
                        help="the JSON; the chart is written beside it (.svg)")
    parser.add_argument("--predict-rows", default="100000,1000000",
                        help="comma list of row counts `tfxp predict` scores ('' skips)")
    parser.add_argument("--no-peer", dest="peer", action="store_false",
                        help="skip TFX's example at 1x (smoke runs of the benchmark itself)")
    args = parser.parse_args(argv)

    import pipeline  # noqa: F401
    from pipeline.config import load_config
    cfg = load_config(args.config)
    work = args.workdir or tempfile.mkdtemp(prefix="tfxp-bench-")
    source = cfg.resolve(cfg.data.path)
    data = resample(source, args.rows, 1.0, os.path.join(work, "data"))[0] if args.rows \
        else source
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
            r.pop("output")
        results["repeats"].append(rep)

    scaled, peer_scaled = run_scales(args, source, work, cfg)

    our_model = newest_model(RunLayout.under(os.path.join(work, "ours-0"), cfg).serving)
    peer_model = newest_model(os.path.join(work, "peer-0", "serving")) if args.peer else None
    examples = eval_examples(os.path.join(work, "ours-0"))
    quality = quality_at(examples, our_model, peer_model, cfg)
    latency = serving_latency(our_model, examples, args.latency_repeats)

    predicted = predict_rows(os.path.join(work, "ours-0"), source,
                             [int(n) for n in args.predict_rows.split(",") if n], work,
                             args.config, resample, timed_process)

    kinds = (["peer"] if args.peer else []) + ["ours_cold", "ours_cached"]
    table = {k: summary_of([r[k] for r in results["repeats"]]) for k in kinds}
    results.update(table=table, scaled=scaled, peer_scaled=peer_scaled, quality=quality,
                   serving=latency)
    results["predict"] = predicted
    results["targets"] = (targets(table, scaled, quality, latency)
                          + scale_targets(table, scaled, peer_scaled)
                          + predict_targets(predicted))
    print_report(results, args)

    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    chart = os.path.splitext(args.output)[0] + ".svg"
    results["chart"] = chart
    with open(chart, "w") as f:
        f.write(growth_chart(results))
    with open(args.output, "w") as f:
        json.dump(results, f, indent=2)
    print(f"\nWritten: {args.output}, {chart}  (runs kept in {work})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
