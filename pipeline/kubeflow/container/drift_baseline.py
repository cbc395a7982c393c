"""The DriftCheck's baseline on open-source Kubeflow Pipelines v2.

Locally a resolver (`components.atomic_pusher.served.ServedStatisticsStrategy`)
finds the statistics of the data that trained the model now served through
ML Metadata.  Open-source KFP runs no resolver, so the compiled spec has this
container task instead, reading what the Pusher keeps beside every version
it publishes on the serving PVC: `VERSION/assets.extra/training_statistics/`
(`components.atomic_pusher.served_state.STATISTICS_DIR`).

- A version is served (`models.config`, read by
  `components.atomic_pusher.served_state`): the training statistics of the
  newest one are the baseline.  A served version without them fails the task
  with its reason (fails closed, as the resolver does): a check never passes
  for want of a baseline.
- Nothing is served yet (a first run), or the served version was trained on
  this very data (the same statistics): there is no baseline, as locally.  The
  task writes an empty artifact marked `NO_ARTIFACT`, which the DriftCheck's
  entrypoint leaves out, so the check records "no baseline" and passes with
  the words and exit status of a local run.

It runs as `python -m pipeline.kubeflow.container.drift_baseline
--executor_input {{$}} --serving_dir DIR`, with this run's statistics as
input artifact `statistics` and the baseline as output artifact `statistics`
(a copy, in TFX's ExampleStatistics layout).
"""
from __future__ import annotations

import filecmp
import json
import os
import shutil
import sys
from typing import Optional

from components.atomic_pusher.served_state import STATISTICS_DIR
from pipeline.kubeflow.container.baseline import no_baseline, run_task, served_baseline

SPLIT_PREFIX = "Split-"  # TFX's split directories
STATS_FILE = "FeatureStats.pb"  # one split's statistics, as StatisticsGen writes them


class NoTrainingStatistics(RuntimeError):
    """The served version has no training statistics beside it."""


def split_names(statistics_dir: str) -> str:
    """The artifact's `split_names` property for the splits a directory holds."""
    return json.dumps(sorted(d[len(SPLIT_PREFIX):] for d in os.listdir(statistics_dir)
                             if d.startswith(SPLIT_PREFIX)))


def _files(directory: str) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), directory)
                  for d, _, fs in os.walk(directory) for f in fs)


def same_statistics(a: str, b: str) -> bool:
    """Two statistics artifacts with the same files, byte for byte."""
    files = _files(a)
    if files != _files(b):
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, files, shallow=False)
    return not mismatch and not errors


def check_statistics(source: str, version: int) -> None:
    """Each split's statistics beside the version parse as TFDV's, or the task fails
    naming the file (not the DriftCheck, later, with a protobuf traceback)."""
    from google.protobuf.message import DecodeError
    from tensorflow_metadata.proto.v0 import statistics_pb2

    for name in sorted(os.listdir(source)):
        path = os.path.join(source, name, STATS_FILE)
        if not name.startswith(SPLIT_PREFIX) or not os.path.isfile(path):
            continue
        try:
            with open(path, "rb") as f:
                statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())
        except (OSError, DecodeError) as e:
            raise NoTrainingStatistics(
                f"{path}: the training statistics of the served version {version} cannot be "
                f"read ({e}); push a new version (drift_check.action: warn) or switch the "
                f"drift check off") from None


def resolve_baseline(current_dir: str, serving_dir: str, output_dir: str) -> dict:
    """Copies the baseline statistics into `output_dir`; returns the artifact's metadata."""
    version = served_baseline(serving_dir)
    if version is None:
        return no_baseline(output_dir, f"no model is served under {serving_dir}: "
                                       f"no baseline statistics")
    source = os.path.join(serving_dir, str(version), STATISTICS_DIR)
    if not os.path.isdir(source):
        raise NoTrainingStatistics(
            f"the served version {version} ({os.path.join(serving_dir, str(version))}) has "
            f"no training statistics beside it ({STATISTICS_DIR}); push once with this "
            f"version of the pipeline (drift_check.action: warn) or switch the drift "
            f"check off")
    check_statistics(source, version)
    if same_statistics(source, current_dir):
        return no_baseline(output_dir, f"the served version {version} was trained on this "
                                       f"very data: nothing to compare with")
    shutil.copytree(source, output_dir, dirs_exist_ok=True)
    return {"baseline_version": str(version), "split_names": split_names(output_dir)}


def main(argv: Optional[list[str]] = None) -> int:
    return run_task(argv, f"python -m {__package__}.drift_baseline", __doc__, "statistics",
                    resolve_baseline, "drift baseline")


if __name__ == "__main__":
    sys.exit(main())
