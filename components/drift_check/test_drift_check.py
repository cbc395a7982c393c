"""DriftCheck passes on the same data, flags shifted copies with the feature
named, and with no baseline records that and passes."""
import json
import os

import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.types import artifact_utils, standard_artifacts

from components.drift_check.component import (
    ANOMALIES_FILE,
    JENSEN_SHANNON,
    L_INFINITY,
    REPORT_FILE,
    DataDriftError,
    DriftCheck,
)
from pipeline.config import load_config
from tests.datasets import taxi_csv

THRESHOLDS = {"fare": 0.1, "payment_type": 0.1, "company": 0.2, "trip_start_hour": 0.1}


@pytest.fixture(scope="module")
def rows():
    return pd.read_csv(taxi_csv()).iloc[::3].reset_index(drop=True)


@pytest.fixture(scope="module")
def schema(tmp_path_factory):
    artifact = standard_artifacts.Schema()
    artifact.uri = str(tmp_path_factory.mktemp("schema"))
    tfdv.write_schema_text(tfdv.load_schema_text(load_config().schema_path),
                           os.path.join(artifact.uri, "schema.pbtxt"))
    return artifact


def statistics_artifact(path, frame: pd.DataFrame) -> standard_artifacts.ExampleStatistics:
    """An ExampleStatistics artifact laid out as StatisticsGen writes it."""
    artifact = standard_artifacts.ExampleStatistics()
    artifact.uri = str(path)
    artifact.split_names = artifact_utils.encode_split_names(["train"])
    os.makedirs(os.path.join(artifact.uri, "Split-train"))
    stats = tfdv.generate_statistics_from_dataframe(frame)
    with open(os.path.join(artifact.uri, "Split-train", "FeatureStats.pb"), "wb") as f:
        f.write(stats.SerializeToString())
    return artifact


def run_check(tmp_path, schema, current, baseline, action="stop"):
    report = standard_artifacts.ExampleAnomalies()
    report.uri = str(tmp_path / "report")
    inputs = {"statistics": [current], "schema": [schema]}
    if baseline is not None:
        inputs["baseline_statistics"] = [baseline]
    DriftCheck.EXECUTOR_SPEC.executor_class().Do(
        inputs, {"drift_report": [report]},
        {"thresholds": json.dumps(THRESHOLDS), "action": action, "split": "train"})
    return report, json.load(open(os.path.join(report.uri, REPORT_FILE)))


def test_same_data_passes_with_every_feature_measured(tmp_path, schema, rows):
    baseline = statistics_artifact(tmp_path / "base", rows)
    current = statistics_artifact(tmp_path / "cur", rows.sample(frac=1.0, random_state=0))
    report, content = run_check(tmp_path, schema, current, baseline)
    assert report.get_int_custom_property("drift_found") == 0
    assert content["drifting"] == []
    assert set(content["features"]) == set(THRESHOLDS)
    assert content["features"]["payment_type"]["comparator"] == L_INFINITY
    assert content["features"]["fare"]["comparator"] == JENSEN_SHANNON
    assert all(f["value"] < 1e-6 for f in content["features"].values())
    # TFDV's own Anomalies proto, where ExampleValidator would put it.
    anomalies = anomalies_pb2.Anomalies.FromString(
        open(os.path.join(report.uri, "Split-train", ANOMALIES_FILE), "rb").read())
    assert {".".join(d.path.step) for d in anomalies.drift_skew_info} == set(THRESHOLDS)


def test_scaled_numeric_and_changed_category_share_stop_the_run(tmp_path, schema, rows):
    baseline = statistics_artifact(tmp_path / "base", rows)
    shifted = rows.copy()
    shifted["fare"] = shifted["fare"] * 3
    shifted.loc[shifted.index[::2], "payment_type"] = "Credit Card"
    current = statistics_artifact(tmp_path / "cur", shifted)
    with pytest.raises(DataDriftError) as e:
        run_check(tmp_path, schema, current, baseline)
    drifted = {d.feature: d for d in e.value.drifts}
    assert set(drifted) == {"fare", "payment_type"}
    assert drifted["fare"].comparator == JENSEN_SHANNON
    assert drifted["payment_type"].comparator == L_INFINITY
    assert drifted["payment_type"].value > THRESHOLDS["payment_type"]
    assert "payment_type: L-infinity" in str(e.value)


def test_warn_records_drift_and_passes(tmp_path, schema, rows):
    baseline = statistics_artifact(tmp_path / "base", rows)
    current = statistics_artifact(tmp_path / "cur", rows.assign(fare=rows["fare"] * 3))
    report, content = run_check(tmp_path, schema, current, baseline, action="warn")
    assert report.get_int_custom_property("drift_found") == 1
    assert report.get_string_custom_property("drifting_features") == "fare"
    assert content["drifting"] == ["fare"] and content["features"]["fare"]["drifted"]
    assert not content["features"]["payment_type"]["drifted"]


def test_first_run_without_baseline_passes_and_says_so(tmp_path, schema, rows):
    current = statistics_artifact(tmp_path / "cur", rows)
    report, content = run_check(tmp_path, schema, current, None)
    assert report.get_int_custom_property("baseline_found") == 0
    assert content["baseline"] is None and "no blessed model" in content["note"]


def test_threshold_for_an_unknown_feature_is_an_error(tmp_path, schema, rows):
    stats = statistics_artifact(tmp_path / "s", rows)
    report = standard_artifacts.ExampleAnomalies()
    report.uri = str(tmp_path / "report")
    with pytest.raises(ValueError, match="'fares': no such feature"):
        DriftCheck.EXECUTOR_SPEC.executor_class().Do(
            {"statistics": [stats], "schema": [schema], "baseline_statistics": [stats]},
            {"drift_report": [report]}, {"thresholds": json.dumps({"fares": 0.1})})
