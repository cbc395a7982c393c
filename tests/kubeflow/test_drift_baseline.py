"""The drift check's baseline on the cluster: the training statistics the Pusher
keeps beside the served version, this run's own on a first run, and a clear
failure for a served version without them."""
from __future__ import annotations

import json
import os

import pytest

from components.atomic_pusher.executor import STATISTICS_DIR
from pipeline.kubeflow.container.drift_baseline import NoTrainingStatistics, resolve_baseline


def _stats(directory, *splits, content=b"stats"):
    for split in splits:
        os.makedirs(directory / f"Split-{split}", exist_ok=True)
        (directory / f"Split-{split}" / "FeatureStats.pb").write_bytes(content)
    return directory


def _version(serving, version, with_stats=True):
    (serving / version).mkdir(parents=True)
    (serving / version / "saved_model.pb").write_bytes(b"model")
    if with_stats:
        _stats(serving / version / STATISTICS_DIR, "train", "eval", content=version.encode())


def test_the_newest_served_version_s_training_statistics(tmp_path):
    serving = tmp_path / "serving"
    _version(serving, "10")
    _version(serving, "12")
    current = _stats(tmp_path / "current", "train", "eval", content=b"now")
    metadata = resolve_baseline(str(current), str(serving), str(tmp_path / "out"))
    assert metadata["baseline_version"] == "12"
    assert json.loads(metadata["split_names"]) == ["eval", "train"]
    assert (tmp_path / "out" / "Split-train" / "FeatureStats.pb").read_bytes() == b"12"


def test_a_first_run_compares_the_data_with_itself(tmp_path):
    current = _stats(tmp_path / "current", "train", content=b"now")
    metadata = resolve_baseline(str(current), str(tmp_path / "no-serving"), str(tmp_path / "out"))
    assert metadata["baseline_is_current"] == 1 and metadata["baseline_version"] == ""
    assert (tmp_path / "out" / "Split-train" / "FeatureStats.pb").read_bytes() == b"now"


def test_a_served_version_without_statistics_fails_closed(tmp_path):
    serving = tmp_path / "serving"
    _version(serving, "7", with_stats=False)
    current = _stats(tmp_path / "current", "train")
    with pytest.raises(NoTrainingStatistics, match="served version 7 .* no training statistics"):
        resolve_baseline(str(current), str(serving), str(tmp_path / "out"))
