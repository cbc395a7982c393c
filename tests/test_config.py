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
