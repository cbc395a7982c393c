"""The drift check's baseline on the cluster: the training statistics the Pusher
keeps beside the version models.config serves, none on a first run (as
locally), and a clear failure for a served version without them."""
from __future__ import annotations

import json
import os

import pytest
from tensorflow_metadata.proto.v0 import statistics_pb2

from components.atomic_pusher import model_config
from components.atomic_pusher.served_state import STATISTICS_DIR
from pipeline.kubeflow.container.drift_baseline import NoTrainingStatistics, resolve_baseline
from pipeline.kubeflow.container.entrypoint import NO_ARTIFACT


def _statistics(name) -> bytes:
    """A FeatureStats.pb as StatisticsGen writes one, told apart by its dataset name."""
    return statistics_pb2.DatasetFeatureStatisticsList(
        datasets=[statistics_pb2.DatasetFeatureStatistics(name=name)]).SerializeToString()


def _stats(directory, *splits, content="stats"):
    for split in splits:
        os.makedirs(directory / f"Split-{split}", exist_ok=True)
        (directory / f"Split-{split}" / "FeatureStats.pb").write_bytes(_statistics(content))
    return directory


def _version(serving, version, with_stats=True, served=True):
    (serving / version).mkdir(parents=True)
    (serving / version / "saved_model.pb").write_bytes(b"model")
    if with_stats:
        _stats(serving / version / STATISTICS_DIR, "train", "eval", content=version)
    if served:
        model_config.after_push("taxi", str(serving), int(version))


def test_the_newest_served_version_s_training_statistics(tmp_path):
    serving = tmp_path / "serving"
    _version(serving, "10")
    _version(serving, "12")
    current = _stats(tmp_path / "current", "train", "eval", content="now")
    metadata = resolve_baseline(str(current), str(serving), str(tmp_path / "out"))
    assert metadata["baseline_version"] == "12"
    assert json.loads(metadata["split_names"]) == ["eval", "train"]
    assert (tmp_path / "out" / "Split-train" / "FeatureStats.pb").read_bytes() == _statistics("12")


def test_a_first_run_has_no_baseline(tmp_path):
    current = _stats(tmp_path / "current", "train", content="now")
    metadata = resolve_baseline(str(current), str(tmp_path / "no-serving"), str(tmp_path / "out"))
    assert metadata[NO_ARTIFACT] == 1 and metadata["baseline_version"] == ""
    assert not (tmp_path / "out" / "Split-train").exists()  # never compared with itself


def test_a_version_models_config_does_not_serve_is_no_baseline(tmp_path):
    serving = tmp_path / "serving"
    _version(serving, "10")
    _version(serving, "12", served=False)  # e.g. left by a push that died
    current = _stats(tmp_path / "current", "train", "eval", content="now")
    metadata = resolve_baseline(str(current), str(serving), str(tmp_path / "out"))
    assert metadata["baseline_version"] == "10"
    assert (tmp_path / "out" / "Split-train" / "FeatureStats.pb").read_bytes() == _statistics("10")


def test_statistics_that_trained_the_served_version_are_no_baseline(tmp_path):
    """An unchanged re-run: the data trained the served model, nothing to compare."""
    serving = tmp_path / "serving"
    _version(serving, "10")
    current = _stats(tmp_path / "current", "train", "eval", content="10")
    metadata = resolve_baseline(str(current), str(serving), str(tmp_path / "out"))
    assert metadata[NO_ARTIFACT] == 1


def test_a_served_version_without_statistics_fails_closed(tmp_path):
    serving = tmp_path / "serving"
    _version(serving, "7", with_stats=False)
    current = _stats(tmp_path / "current", "train")
    with pytest.raises(NoTrainingStatistics, match="served version 7 .* no training statistics"):
        resolve_baseline(str(current), str(serving), str(tmp_path / "out"))


def test_damaged_statistics_beside_the_served_version_are_named(tmp_path):
    serving = tmp_path / "serving"
    _version(serving, "7")
    damaged = serving / "7" / STATISTICS_DIR / "Split-train" / "FeatureStats.pb"
    damaged.write_bytes(b"\xff\xff\xff not statistics")
    current = _stats(tmp_path / "current", "train")
    with pytest.raises(NoTrainingStatistics, match=f"^{damaged}: the training statistics of "
                                                   f"the served version 7 cannot be read"):
        resolve_baseline(str(current), str(serving), str(tmp_path / "out"))
