"""A label needs its classes: the gate rejects a split whose statistics show a
binary label with one class, or a multi-class label short of its classes, and
names the label and the counts. Statistics are TFDV's, of real frames."""
import json
import os

import pandas as pd
import pytest
import tensorflow_data_validation as tfdv
from tfx.types import artifact_utils, standard_artifacts

from components.data_gate.component import STATS_FILE, DataGate, DataRejectedError
from components.data_gate.label_classes import label_class_problems, label_rule
from components.data_gate.test_data_gate import anomalies_artifact
from tests.datasets import read_rows

TAXI_RULE = dict(column="tips", task="binary", threshold=0.2, relative_to="fare")


def problems(frame: pd.DataFrame, **rule) -> list:
    [stats] = tfdv.generate_statistics_from_dataframe(frame).datasets
    return label_class_problems("eval", stats, json.loads(label_rule(**rule)))


def taxi_frame(every: int = 5) -> pd.DataFrame:
    _, rows = read_rows()
    frame = pd.DataFrame(rows[::every])[["tips", "fare", "payment_type"]]
    return frame.replace("", None).astype({"tips": float, "fare": float})


def test_tips_zero_everywhere_is_one_class():
    frame = taxi_frame().assign(tips=0.0)
    [(split, feature, text)] = problems(frame, **TAXI_RULE)
    assert (split, feature) == ("eval", "tips")
    assert f"one class: 0 positive, {len(frame)} negative of {len(frame)} examples" in text
    assert "never above 0.2 x fare" in text


def test_the_real_taxi_labels_have_both_classes():
    assert problems(taxi_frame(), **TAXI_RULE) == []


@pytest.mark.parametrize("values, rule, words", [
    ([5.0, 6.0, 7.0], dict(threshold=1.0), "3 positive, 0 negative"),
    ([0.1, 0.3, 0.2], dict(threshold=1.0), "0 positive, 3 negative"),
    ([0.0, 0.0, 0.0], dict(), "0 positive, 3 negative"),  # the default cut, 0.5
])
def test_a_fixed_threshold_on_one_side(values, rule, words):
    [(_, _, text)] = problems(pd.DataFrame({"y": values * 10}), column="y", task="binary",
                              **rule)
    assert words.replace("3", "30") in text


def test_both_sides_of_a_threshold_pass():
    assert problems(pd.DataFrame({"y": [0.0, 1.0] * 10}), column="y", task="binary") == []


def test_a_class_value_never_seen_is_one_class():
    frame = pd.DataFrame({"churned": ["no"] * 12})
    [(_, feature, text)] = problems(frame, column="churned", task="binary", positive="yes")
    assert feature == "churned" and "0 positive, 12 negative" in text and "'no': 12" in text
    mixed = pd.DataFrame({"churned": ["no", "yes", "no"] * 4})
    assert problems(mixed, column="churned", task="binary", positive="yes") == []


def test_a_multiclass_label_short_of_its_classes():
    frame = pd.DataFrame({"species": ["Adelie"] * 8 + ["Gentoo"] * 4})
    [(_, feature, text)] = problems(frame, column="species", task="multiclass", num_classes=3)
    assert feature == "species"
    assert "2 of the 3 classes" in text and "'Adelie': 8, 'Gentoo': 4" in text
    assert problems(frame, column="species", task="multiclass", num_classes=2) == []


def test_a_regression_label_is_not_checked():
    assert problems(pd.DataFrame({"y": [1.0] * 5}), column="y", task="regression") == []


def statistics_artifact(tmp_path, frames: dict) -> standard_artifacts.ExampleStatistics:
    artifact = standard_artifacts.ExampleStatistics()
    artifact.uri = str(tmp_path / "statistics")
    artifact.split_names = artifact_utils.encode_split_names(list(frames))
    for split, frame in frames.items():
        os.makedirs(os.path.join(artifact.uri, f"Split-{split}"))
        with open(os.path.join(artifact.uri, f"Split-{split}", STATS_FILE), "wb") as f:
            f.write(tfdv.generate_statistics_from_dataframe(frame).SerializeToString())
    return artifact


def test_the_gate_rejects_a_split_with_one_class(tmp_path):
    good = taxi_frame()
    clean = pd.DataFrame({"fare": [1.0, 2.0, 3.0] * 10,
                          "payment_type": ["Cash", "Credit Card", "Cash"] * 10})
    anomalies = anomalies_artifact(tmp_path, {"train": clean, "eval": clean})
    statistics = statistics_artifact(tmp_path, {"train": good, "eval": good.assign(tips=0.0)})
    executor = DataGate.EXECUTOR_SPEC.executor_class()
    inputs = {"anomalies": [anomalies], "statistics": [statistics]}
    with pytest.raises(DataRejectedError) as e:
        executor.Do(inputs, {}, {"label": label_rule(**TAXI_RULE)})
    assert [(s, f) for s, f, _ in e.value.problems] == [("eval", "tips")]
    executor.Do(inputs, {}, {})  # without a label rule, nothing is checked
