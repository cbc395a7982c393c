"""DataGate passes clean anomalies and stops, naming features, on bad ones."""
import os

import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from tfx.types import artifact_utils, standard_artifacts

from components.data_gate.component import (
    ANOMALIES_FILE,
    STATS_FILE,
    AnomaliesMissing,
    DataGate,
    DataRejectedError,
    read_anomalies,
)

CLEAN = pd.DataFrame({"fare": [1.0, 2.0, 3.0] * 10,
                      "payment_type": ["Cash", "Credit Card", "Cash"] * 10})


def anomalies_artifact(tmp_path, frames: dict) -> standard_artifacts.ExampleAnomalies:
    schema = tfdv.infer_schema(tfdv.generate_statistics_from_dataframe(CLEAN))
    artifact = standard_artifacts.ExampleAnomalies()
    artifact.uri = str(tmp_path / "anomalies")
    artifact.split_names = artifact_utils.encode_split_names(list(frames))
    for split, frame in frames.items():
        anomalies = tfdv.validate_statistics(tfdv.generate_statistics_from_dataframe(frame), schema)
        os.makedirs(os.path.join(artifact.uri, f"Split-{split}"))
        with open(os.path.join(artifact.uri, f"Split-{split}", ANOMALIES_FILE), "wb") as f:
            f.write(anomalies.SerializeToString())
    return artifact


def run_gate(artifact):
    executor = DataGate.EXECUTOR_SPEC.executor_class()
    executor.Do({"anomalies": [artifact]}, {}, {})


def test_clean_data_passes(tmp_path):
    artifact = anomalies_artifact(tmp_path, {"train": CLEAN, "eval": CLEAN})
    assert read_anomalies(artifact) == []
    run_gate(artifact)


def test_anomalies_stop_the_run_with_features_named(tmp_path):
    bad = CLEAN.assign(payment_type=["Cash", "Bitcoin", "Cash"] * 10).drop(columns=["fare"])
    artifact = anomalies_artifact(tmp_path, {"train": CLEAN, "eval": bad})
    with pytest.raises(DataRejectedError) as e:
        run_gate(artifact)
    features = {(split, feature) for split, feature, _ in e.value.problems}
    assert features == {("eval", "payment_type"), ("eval", "fare")}
    assert "Bitcoin" in str(e.value)


def statistics_artifact(tmp_path, frames: dict) -> standard_artifacts.ExampleStatistics:
    artifact = standard_artifacts.ExampleStatistics()
    artifact.uri = str(tmp_path / "statistics")
    artifact.split_names = artifact_utils.encode_split_names(list(frames))
    for split, frame in frames.items():
        stats = tfdv.generate_statistics_from_dataframe(frame)
        os.makedirs(os.path.join(artifact.uri, f"Split-{split}"))
        with open(os.path.join(artifact.uri, f"Split-{split}", STATS_FILE), "wb") as f:
            f.write(stats.SerializeToString())
    return artifact


def test_an_empty_split_is_rejected(tmp_path):
    anomalies = anomalies_artifact(tmp_path, {"train": CLEAN, "eval": CLEAN})
    statistics = statistics_artifact(tmp_path, {"train": CLEAN, "eval": CLEAN.iloc[:0]})
    executor = DataGate.EXECUTOR_SPEC.executor_class()
    with pytest.raises(DataRejectedError) as e:
        executor.Do({"anomalies": [anomalies], "statistics": [statistics]}, {}, {})
    assert [(s, f) for s, f, _ in e.value.problems] == [("eval", "(dataset)")]
    assert "no examples" in str(e.value)


def test_a_missing_anomalies_file_fails_closed(tmp_path):
    artifact = anomalies_artifact(tmp_path, {"train": CLEAN, "eval": CLEAN})
    os.remove(os.path.join(artifact.uri, "Split-eval", ANOMALIES_FILE))
    with pytest.raises(AnomaliesMissing, match="Split-eval"):
        run_gate(artifact)


@pytest.mark.parametrize("token", ["?", "n/a", "NA", "-"])
def test_a_token_in_a_numeric_column_names_it_and_na_values(tmp_path, token):
    # One non-numeric token among numbers makes the column strings; the rejection
    # says which and how to read it as missing (`tfxp schema` says the same).
    bad = CLEAN.assign(fare=["1.0", token, "3.0"] * 10)
    anomalies = anomalies_artifact(tmp_path, {"train": CLEAN, "eval": bad})
    statistics = statistics_artifact(tmp_path, {"train": CLEAN, "eval": bad})
    executor = DataGate.EXECUTOR_SPEC.executor_class()
    with pytest.raises(DataRejectedError) as e:
        executor.Do({"anomalies": [anomalies], "statistics": [statistics]}, {}, {})
    [(split, feature, text)] = e.value.problems
    assert (split, feature) == ("eval", "fare")
    assert repr(token) in text and "data.na_values" in text
    assert "'1.0'" not in text  # the numbers are not named as tokens


def test_other_anomalies_get_no_na_values_hint(tmp_path):
    bad = CLEAN.assign(payment_type=["Cash", "Bitcoin", "Cash"] * 10)
    anomalies = anomalies_artifact(tmp_path, {"train": CLEAN, "eval": bad})
    statistics = statistics_artifact(tmp_path, {"train": CLEAN, "eval": bad})
    executor = DataGate.EXECUTOR_SPEC.executor_class()
    with pytest.raises(DataRejectedError) as e:
        executor.Do({"anomalies": [anomalies], "statistics": [statistics]}, {}, {})
    assert "na_values" not in str(e.value)
