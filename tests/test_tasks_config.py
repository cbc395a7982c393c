"""Labels by task, metrics by task, missing-value tokens, and the check that
configuration and curated schema agree before anything runs."""
import subprocess
import sys

import pytest
import yaml

from pipeline.config import DEFAULT_CONFIG, DEFAULT_METRICS, load_config, metric_key
from pipeline.dag.schema import check_config_against_schema, num_label_classes
from pipeline.errors import ConfigError

SCHEMA = """
feature { name: "bill" type: BYTES }
feature { name: "flipper" type: FLOAT }
feature { name: "year" type: FLOAT }
feature { name: "island" type: BYTES domain: "island" }
feature { name: "species" type: BYTES domain: "species" }
feature { name: "mass" type: INT }
string_domain { name: "island" value: "Biscoe" value: "Dream" }
string_domain { name: "species" value: "Adelie" value: "Chinstrap" value: "Gentoo" }
"""

CSV = "bill,flipper,year,island,species,mass\n" + "\n".join(
    f"{'NA' if i % 5 == 0 else 39 + i % 7},{180 + i},{2007 + i % 3},Biscoe,Adelie,{3000 + i}"
    for i in range(30)) + "\n"


def write(tmp_path, label, features=None, evaluation=None, data=None):
    (tmp_path / "rows.csv").write_text(CSV)
    (tmp_path / "schema.pbtxt").write_text(SCHEMA)
    raw = {
        "pipeline_name": "penguins",
        "data": {"path": "rows.csv", **(data or {})},
        "schema": "schema.pbtxt",
        "features": features or {"numeric": ["flipper"]},
        "label": label,
        "evaluation": evaluation or {"thresholds": [{"metric": "ExampleCount", "lower": 1}]},
        "serving": {"model_name": "penguins"},
    }
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def load(tmp_path, label, **kw):
    return load_config(write(tmp_path, label, **kw))


def error(tmp_path, label, **kw) -> str:
    with pytest.raises(ConfigError) as e:
        cfg = load(tmp_path, label, **kw)
        check_config_against_schema(cfg)
    return str(e.value)


# --------------------------------------------------------------------------- labels


def test_label_per_task(tmp_path):
    binary = load(tmp_path, {"column": "mass", "threshold": 4000}).label
    assert (binary.task, binary.cut, binary.from_class) == ("binary", 4000, False)
    assert load(tmp_path, {"column": "mass"}).label.cut == 0.5
    from_class = load(tmp_path, {"column": "species", "positive": "Gentoo"}).label
    assert from_class.task == "binary" and from_class.from_class
    assert load(tmp_path, {"column": "mass", "positive": 1}).label.positive == 1
    assert load(tmp_path, {"column": "species", "task": "multiclass"}).label.task == "multiclass"
    regression = load(tmp_path, {"column": "mass", "task": "regression"}).label
    assert regression.task == "regression" and regression.missing == "drop"
    assert load(tmp_path, {"column": "mass", "task": "regression",
                           "missing": "reject"}).label.missing == "reject"


@pytest.mark.parametrize("label, words", [
    ({"column": "species", "task": "multiclass", "threshold": 1}, "label.threshold"),
    ({"column": "mass", "task": "regression", "positive": "x"}, "label.positive"),
    ({"column": "species", "positive": "x", "threshold": 1}, "not both"),
    ({"column": "mass", "task": "ordinal"}, "label.task"),
    ({"column": "mass", "missing": "keep"}, "label.missing"),
])
def test_label_that_does_not_fit_its_task(tmp_path, label, words):
    message = error(tmp_path, label)
    assert words in message and "cfg.yaml" in message


def test_na_values(tmp_path):
    assert load(tmp_path, {"column": "mass"}, data={"na_values": ["NA", "?"]}
                ).data.na_values == ["NA", "?"]
    assert load(tmp_path, {"column": "mass"}).data.na_values == []


# --------------------------------------------------------------------------- metrics


def test_metrics_default_per_task(tmp_path):
    for task, label in (("binary", {"column": "mass"}),
                        ("multiclass", {"column": "species", "task": "multiclass"}),
                        ("regression", {"column": "mass", "task": "regression"})):
        assert load(tmp_path, label).metric_names() == DEFAULT_METRICS[task]
    assert "SparseCategoricalAccuracy" in DEFAULT_METRICS["multiclass"]
    assert "MeanSquaredError" in DEFAULT_METRICS["regression"]


def test_any_tfma_or_keras_metric_is_accepted(tmp_path):
    names = ["MeanSquaredError", "SparseCategoricalAccuracy", "FBetaScore",
             "RootMeanSquaredError", "MeanAbsolutePercentageError", "Specificity"]
    cfg = load(tmp_path, {"column": "mass", "task": "regression"}, evaluation={
        "metrics": names,
        "thresholds": [{"metric": "MeanAbsolutePercentageError", "upper": 50}]})
    assert cfg.metric_names() == names
    assert metric_key("RootMeanSquaredError") == "root_mean_squared_error"
    assert metric_key("AUCPrecisionRecall") == "auc_precision_recall"


def test_unknown_metric_names_the_key(tmp_path):
    message = error(tmp_path, {"column": "mass"}, evaluation={
        "metrics": ["ExampleCount", "MeanSqaredError"],
        "thresholds": [{"metric": "ExampleCount", "lower": 1}]})
    assert "evaluation.metrics[1]" in message and "MeanSqaredError" in message
    assert "MeanSquaredError" in message  # the similar names


# --------------------------------------------------------------------------- config vs schema


def test_numeric_feature_typed_as_string_names_column_type_and_values(tmp_path):
    message = error(tmp_path, {"column": "mass"}, features={"numeric": ["bill", "flipper"]})
    assert message.count("\n") == 0
    assert "features.numeric" in message and "'bill'" in message and "BYTES" in message
    assert "'NA'" in message and "data.na_values" in message


def test_categorical_float_and_absent_label(tmp_path):
    message = error(tmp_path, {"column": "weight"}, features={"categorical": {"year": 3}})
    assert "features.categorical: column 'year'" in message and "FLOAT" in message
    assert "label.column: column 'weight' is not in the schema" in message


def test_label_types_per_task(tmp_path):
    assert "label.task: regression" in error(
        tmp_path, {"column": "flipper", "task": "multiclass"}, features={"numeric": ["mass"]})
    assert "'species'" in error(tmp_path, {"column": "species", "task": "regression"})
    # A class value needs no number; a multi-class string label is fine.
    for label in ({"column": "species", "positive": "Adelie"},
                  {"column": "species", "task": "multiclass"}):
        check_config_against_schema(load(tmp_path, label))


def test_classes_come_from_the_schema_domain(tmp_path):
    cfg = load(tmp_path, {"column": "species", "task": "multiclass"})
    assert num_label_classes(cfg, cfg.schema_path) == 3
    assert num_label_classes(load(tmp_path, {"column": "mass"}), cfg.schema_path) is None


def test_taxi_config_agrees_with_its_schema():
    check_config_against_schema(load_config(DEFAULT_CONFIG))


def test_tfxp_run_stops_at_the_disagreement_before_anything_runs(tmp_path):
    config = write(tmp_path, {"column": "mass"}, features={"numeric": ["bill"]})
    # The timeout only catches a hang; how fast the check is belongs in the bench.
    done = subprocess.run([sys.executable, "-m", "pipeline", "run", "--config", str(config),
                           "--root", str(tmp_path / "run")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 1, done.stderr
    assert "'bill'" in done.stderr and "BYTES" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "run").exists()  # nothing ran: not even the root was made
    assert "Running" not in done.stdout  # the run never started


def test_a_schema_file_that_is_not_a_schema_is_named(tmp_path):
    cfg = load(tmp_path, {"column": "species", "task": "multiclass"})
    (tmp_path / "garbage.pbtxt").write_text("feature { name: \n")
    (tmp_path / "binary.pbtxt").write_bytes(b"\xff\xfe\x00")
    for name in ("garbage.pbtxt", "binary.pbtxt"):
        with pytest.raises(ConfigError, match=f"{name}: not a schema in text format"):
            check_config_against_schema(cfg, str(tmp_path / name))


def test_sample_values_are_read_by_the_one_csv_reader(tmp_path):
    # A byte order mark before the first column's name, as spreadsheet exports
    # write it: the values named are still that column's.
    cfg = load(tmp_path, {"column": "mass"}, features={"numeric": ["bill", "flipper"]})
    path = cfg.data_files()[0]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert text.startswith("bill,")
    with open(path, "w", encoding="utf-8-sig") as f:
        f.write(text)
    with pytest.raises(ConfigError) as e:
        check_config_against_schema(cfg)
    assert "values such as 'NA'" in str(e.value)
