"""Configuration errors name the file and the key; good configs load."""
import os

import pytest
import yaml

from pipeline.config import DEFAULT_CONFIG, load_config, resolve_path
from pipeline.errors import ConfigError


def write_config(tmp_path, change):
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    change(raw)
    raw["schema"] = str(DEFAULT_CONFIG.parent.parent / "schemas" / "taxi" / "schema.pbtxt")
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def error_of(tmp_path, change) -> str:
    with pytest.raises(ConfigError) as e:
        load_config(write_config(tmp_path, change))
    return str(e.value)


def test_default_config_loads_and_finds_the_taxi_csv():
    cfg = load_config()
    assert cfg.pipeline_name == "chicago-taxi"
    path = cfg.resolve(cfg.data.path)
    assert path.endswith(os.path.join("chicago_taxi_pipeline", "data", "simple", "data.csv"))
    assert os.path.isfile(path)
    assert os.path.isfile(cfg.schema_path)
    assert cfg.model_inputs().label_key == "tips_xf"


def test_unknown_key_is_named_with_the_file(tmp_path):
    msg = error_of(tmp_path, lambda c: c["training"].update(trian_steps=5))
    assert "cfg.yaml" in msg and "training.trian_steps" in msg


def test_wrong_type_is_named(tmp_path):
    msg = error_of(tmp_path, lambda c: c["training"].update(batch_size="big"))
    assert "training.batch_size" in msg


def test_missing_field_is_named(tmp_path):
    msg = error_of(tmp_path, lambda c: c.pop("label"))
    assert "label" in msg and "Field required" in msg


def test_label_cannot_be_a_feature(tmp_path):
    msg = error_of(tmp_path, lambda c: c["features"]["numeric"].append("tips"))
    assert "tips" in msg and "label" in msg


def test_column_listed_twice_is_an_error(tmp_path):
    msg = error_of(tmp_path, lambda c: c["features"]["numeric"].append("company"))
    assert "company" in msg and "features" in msg


def test_threshold_on_unconfigured_slice_is_an_error(tmp_path):
    def change(c):
        c["evaluation"]["thresholds"].append({"metric": "AUC", "slice": ["company"], "lower": 0.5})
    msg = error_of(tmp_path, change)
    assert "evaluation.thresholds" in msg and "company" in msg


def test_unknown_metric_is_an_error(tmp_path):
    def change(c):
        c["evaluation"]["thresholds"].append({"metric": "Fairness", "lower": 0.5})
    msg = error_of(tmp_path, change)
    assert "evaluation.thresholds[" in msg and "Fairness" in msg


def test_thresholds_are_required(tmp_path):
    msg = error_of(tmp_path, lambda c: c["evaluation"].update(thresholds=[]))
    assert "evaluation.thresholds" in msg and "nothing is pushed" in msg


def test_split_needs_train_and_eval(tmp_path):
    msg = error_of(tmp_path, lambda c: c["data"].update(split={"train": 1, "test": 1}))
    assert "data.split" in msg and "eval" in msg


def test_invalid_yaml_and_missing_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("pipeline_name: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml: not valid YAML"):
        load_config(bad)
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_package_paths_and_relative_paths(tmp_path):
    assert resolve_path("package:tfx/__init__.py").endswith(os.path.join("tfx", "__init__.py"))
    with pytest.raises(ConfigError, match="not installed"):
        resolve_path("package:no_such_package_xyz/data.csv")
    assert resolve_path("data/x.csv", str(tmp_path)) == str(tmp_path / "data" / "x.csv")
    assert resolve_path("gs://bucket/x.csv", str(tmp_path)) == "gs://bucket/x.csv"


def test_overrides_apply_before_validation():
    cfg = load_config(overrides={"training.train_steps": 7})
    assert cfg.training.train_steps == 7
    with pytest.raises(ConfigError, match="training.train_steps"):
        load_config(overrides={"training.train_steps": 0})


def test_a_config_missing_sections_names_each_one(tmp_path):
    path = tmp_path / "minimal.yaml"
    path.write_text("pipeline_name: minimal\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    for key in ("data", "schema", "features", "label", "evaluation", "serving"):
        assert f"{path}: {key}: Field required" in str(e.value), str(e.value)


@pytest.mark.parametrize("threshold, key, words", [
    ({"metric": "AUC", "lower": 2.0}, "lower", "[0, 1], so a bound of 2 can never be met"),
    ({"metric": "BinaryAccuracy", "upper": -0.1}, "upper", "can never be met"),
    ({"metric": "FallOut", "upper": 1.5}, "upper", "always holds"),
    ({"metric": "ExampleCount", "upper": -1}, "upper", "never negative"),
    ({"metric": "AUC", "lower": 0.8, "upper": 0.7}, "lower", "must be below upper"),
    ({"metric": "Calibration", "lower": 1.1, "upper": 1.1}, "lower", "must be below upper"),
])
def test_impossible_thresholds_are_named(tmp_path, threshold, key, words):
    msg = error_of(tmp_path, lambda c: c["evaluation"]["thresholds"].append(threshold))
    assert msg.count("\n") == 0
    assert f"evaluation.thresholds[7].{key}: " in msg and words in msg


def test_possible_thresholds_load(tmp_path):
    def change(c):
        c["evaluation"]["thresholds"] += [
            {"metric": "AUC", "lower": 0.0, "upper": 1.0},
            {"metric": "Calibration", "lower": 0.5, "upper": 2.0},
            {"metric": "MeanLabel", "lower": -3.0}]  # no fixed range
        c["monitoring"]["thresholds"].append({"metric": "AUC", "lower": 0.5})
    load_config(write_config(tmp_path, change))


def test_monitoring_thresholds_are_checked_too(tmp_path):
    msg = error_of(tmp_path, lambda c: c["monitoring"]["thresholds"].append(
        {"metric": "AUC", "lower": 1.5}))
    assert "monitoring.thresholds[3].lower: AUC lies in [0, 1]" in msg


def schema_error(tmp_path, change) -> str:
    from pipeline.dag.schema import check_config_against_schema
    cfg = load_config(write_config(tmp_path, change))
    with pytest.raises(ConfigError) as e:
        check_config_against_schema(cfg)
    return str(e.value)


def test_a_slice_on_a_column_not_in_the_schema_is_named(tmp_path):
    def change(c):
        c["evaluation"]["slices"].append(["payment_typo"])
        c["evaluation"]["thresholds"].append(
            {"metric": "FallOut", "slice": {"payment_typo": "Cash"}, "upper": 0.1})
    msg = schema_error(tmp_path, change)
    assert msg.startswith("evaluation.slices[2]: column 'payment_typo' is not in the schema")
    assert "similar: payment_type" in msg and msg.count("\n") == 0


def test_a_slice_value_outside_the_domain_is_named(tmp_path):
    msg = schema_error(tmp_path, lambda c: c["monitoring"]["thresholds"].append(
        {"metric": "AUC", "slice": {"payment_type": "Bitcoin"}, "max_decrease": 0.1}))
    assert msg.startswith("monitoring.thresholds[3].slice: payment_type='Bitcoin' is not a value")
    assert "Credit Card" in msg


def test_tfxp_run_refuses_a_bad_slice_before_running(tmp_path, capsys):
    from pipeline.cli.main import main

    config = write_config(tmp_path, lambda c: c["evaluation"]["slices"].append(["payment_typo"]))
    assert main(["run", "--config", str(config), "--root", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "evaluation.slices[2]: column 'payment_typo'" in err and "Traceback" not in err
    assert not (tmp_path / "run").exists()
