"""The DriftCheck's baseline on open-source Kubeflow Pipelines v2.

Locally a resolver (`components.atomic_pusher.served.ServedStatisticsStrategy`)
finds the statistics of the data that trained the model now served through
ML Metadata.  Open-source KFP runs no resolver, so the compiled spec has this
container task instead, reading what the Pusher keeps beside every version
it publishes on the serving PVC: `VERSION/assets.extra/training_statistics/`
(`components.atomic_pusher.executor.STATISTICS_DIR`).

- A version is served: its training statistics are the baseline.  A newest
  version without them fails the task with its reason (fails closed, as the
  resolver does): a check never passes for want of a baseline.
- Nothing is served yet (a first run): the baseline is this run's own
  statistics, so the check compares the data with itself and passes, as the
  Evaluator's baseline is the candidate then (`container/baseline.py`).

It runs as `python -m pipeline.kubeflow.container.drift_baseline
--executor_input {{$}} --serving_dir DIR`, with this run's statistics as
input artifact `statistics` and the baseline as output artifact `statistics`
(a copy, in TFX's ExampleStatistics layout).
"""
from __future__ import annotations

import json
import os
import shutil
import sys
from typing import Optional

from components.atomic_pusher.executor import STATISTICS_DIR
from pipeline.kubeflow.container.baseline import latest_version, run_task

SPLIT_PREFIX = "Split-"  # TFX's split directories


class NoTrainingStatistics(RuntimeError):
    """The served version has no training statistics beside it."""


def split_names(statistics_dir: str) -> str:
    """The artifact's `split_names` property for the splits a directory holds."""
    return json.dumps(sorted(d[len(SPLIT_PREFIX):] for d in os.listdir(statistics_dir)
                             if d.startswith(SPLIT_PREFIX)))


def resolve_baseline(current_dir: str, serving_dir: str, output_dir: str) -> dict:
    """Copies the baseline statistics into `output_dir`; returns the artifact's metadata."""
    version = latest_version(serving_dir)
    if version is None:
        source = current_dir
        metadata = {"baseline_version": "", "baseline_is_current": 1}
    else:
        source = os.path.join(serving_dir, version, STATISTICS_DIR)
        if not os.path.isdir(source):
            raise NoTrainingStatistics(
                f"the served version {version} ({os.path.join(serving_dir, version)}) has no "
                f"training statistics beside it ({STATISTICS_DIR}); push once with this "
                f"version of the pipeline (drift_check.action: warn) or switch the drift "
                f"check off")
        metadata = {"baseline_version": version}
    shutil.copytree(source, output_dir, dirs_exist_ok=True)
    metadata["split_names"] = split_names(output_dir)
    return metadata


def main(argv: Optional[list[str]] = None) -> int:
    return run_task(argv, f"python -m {__package__}.drift_baseline", __doc__, "statistics",
                    resolve_baseline, "drift baseline")


if __name__ == "__main__":
    sys.exit(main())
