"""The Evaluator's baseline on open-source Kubeflow Pipelines v2.

TFX compiles `LatestBlessedModelStrategy` into two `resolver` executors
(MLMD queries run by the orchestrator).  Vertex AI runs those; open-source
KFP v2 does not: its Argo compiler answers "resolver not implemented yet" and
the run is never created.  The compiled spec therefore replaces the two
resolver tasks with this container task.

What it resolves: the model now served, as locally
(`components.atomic_pusher.served`), read by the one reader of served state
(`components.atomic_pusher.served_state`) from the TF Serving model base
path mounted from the serving PVC: the newest version `models.config` serves
that is not the candidate itself (same SavedModel fingerprint).  On a first
run nothing is served: the task then writes an empty artifact marked
`NO_ARTIFACT` in its metadata, which the entrypoint of the consuming task
leaves out (`entrypoint.localize_invocation`), so the Evaluator runs with no
baseline, as locally, and change thresholds are skipped as TFX skips them.

It runs as `python -m pipeline.kubeflow.container.baseline --executor_input {{$}}
--serving_dir DIR`, with the candidate model as input artifact `model` and
the baseline as output artifact `model` (a copy, in TFX's model layout).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from typing import Callable, Optional

from components.atomic_pusher import served_state
from pipeline.kubeflow.container.entrypoint import NO_ARTIFACT, local_path

SERVING_SUBDIR = "Format-Serving"  # tfx.utils.path_utils' serving model dir
# What an empty baseline artifact holds, for whoever opens its URI.
NO_BASELINE_FILE = "NO_BASELINE.txt"


def served_baseline(serving_dir: str, candidate_dir: Optional[str] = None) -> Optional[int]:
    """The model now served under a TF Serving model base path, not the candidate;
    None when nothing else is served. A damaged models.config fails the task, named."""
    state = served_state.read(serving_dir)
    state.require_readable()
    return state.baseline(candidate_dir)


def no_baseline(output_dir: str, why: str) -> dict:
    """An artifact that stands for "no baseline": the consumer never receives it."""
    os.makedirs(output_dir, exist_ok=True)
    with open(os.path.join(output_dir, NO_BASELINE_FILE), "w") as f:
        f.write(why + "\n")
    return {"baseline_version": "", NO_ARTIFACT: 1}


def resolve_baseline(candidate_dir: str, serving_dir: str, output_dir: str) -> dict:
    """Copies the baseline into `output_dir`; returns the artifact's metadata."""
    serving_model = os.path.join(candidate_dir, SERVING_SUBDIR)
    version = served_baseline(serving_dir, serving_model if os.path.isdir(serving_model)
                              else candidate_dir)
    if version is None:
        return no_baseline(output_dir, f"no model is served under {serving_dir} other than "
                                       f"the candidate: no baseline")
    shutil.copytree(os.path.join(serving_dir, str(version)),
                    os.path.join(output_dir, SERVING_SUBDIR), dirs_exist_ok=True)
    return {"baseline_version": str(version)}


def run_task(argv: Optional[list[str]], prog: str, description: str, key: str,
             resolve: Callable[[str, str, str], dict], label: str) -> int:
    """A baseline task as KFP runs it: input artifact `key` in, the baseline out as
    output artifact `key`, its metadata in the ExecutorOutput the launcher reads."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--executor_input", required=True)
    parser.add_argument("--serving_dir", required=True)
    args = parser.parse_args(argv)
    executor_input = json.loads(args.executor_input)
    [given] = executor_input["inputs"]["artifacts"][key]["artifacts"]
    [output] = executor_input["outputs"]["artifacts"][key]["artifacts"]
    metadata = resolve(local_path(given["uri"]), args.serving_dir, local_path(output["uri"]))
    print(f"{label}: {metadata}", flush=True)
    result = dict(output, metadata={**output.get("metadata", {}), **metadata})
    output_file = executor_input["outputs"]["outputFile"]
    os.makedirs(os.path.dirname(output_file), exist_ok=True)
    with open(output_file, "w") as f:
        json.dump({"artifacts": {key: {"artifacts": [result]}}}, f)
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    return run_task(argv, f"python -m {__package__}.baseline", __doc__, "model",
                    resolve_baseline, "baseline")


if __name__ == "__main__":
    sys.exit(main())
