"""The Evaluator's baseline on open-source Kubeflow Pipelines v2.

TFX compiles `LatestBlessedModelStrategy` into two `resolver` executors
(MLMD queries run by the orchestrator).  Vertex AI runs those; open-source
KFP v2 does not: its Argo compiler answers "resolver not implemented yet" and
the run is never created.  The compiled spec therefore replaces the two
resolver tasks with this container task.

What it resolves: the model now served, as locally
(`components.atomic_pusher.served`): the newest version under the TF Serving
model base path (mounted from the serving PVC) that is not the candidate
itself (same SavedModel fingerprint).  On a first run there is none; the
candidate itself is then the baseline, so change thresholds (`max_decrease`)
compare the model with itself and pass, as they are skipped when TFX has no
baseline.

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

from components.atomic_pusher.executor import fingerprint
from pipeline.kubeflow.container.entrypoint import local_path

SERVING_SUBDIR = "Format-Serving"  # tfx.utils.path_utils' serving model dir


def latest_version(serving_dir: str, candidate_dir: Optional[str] = None) -> Optional[str]:
    """Newest complete version under a TF Serving model base path, not the candidate."""
    if not os.path.isdir(serving_dir):
        return None
    versions = sorted((v for v in os.listdir(serving_dir) if v.isdigit() and os.path.exists(
        os.path.join(serving_dir, v, "saved_model.pb"))), key=int, reverse=True)
    mine = fingerprint(candidate_dir) if candidate_dir else None
    for version in versions:
        if mine is None or fingerprint(os.path.join(serving_dir, version)) != mine:
            return version
    return None


def resolve_baseline(candidate_dir: str, serving_dir: str, output_dir: str) -> dict:
    """Copies the baseline into `output_dir`; returns the artifact's metadata."""
    serving_model = os.path.join(candidate_dir, SERVING_SUBDIR)
    version = latest_version(serving_dir, serving_model if os.path.isdir(serving_model)
                             else candidate_dir)
    if version is not None:
        source, metadata = os.path.join(serving_dir, version), {"baseline_version": version}
    else:
        source = os.path.join(candidate_dir, SERVING_SUBDIR)
        if not os.path.isdir(source):
            source = candidate_dir
        metadata = {"baseline_version": "", "baseline_is_candidate": 1}
    shutil.copytree(source, os.path.join(output_dir, SERVING_SUBDIR), dirs_exist_ok=True)
    return metadata


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
