"""A CSV of a different shape runs through configuration alone: draft the
schema with `tfxp schema`, then `tfxp run` pushes a model. No code changes."""
import os

import numpy as np
import pytest
import tensorflow_data_validation as tfdv
import yaml

from pipeline.cli.main import main

pytestmark = pytest.mark.e2e

CONFIG = {
    "pipeline_name": "loans",
    "data": {"path": "data/loans.csv", "split": {"train": 3, "eval": 1}},
    "schema": "schema/schema.pbtxt",
    "features": {
        "numeric": ["income", "tenure_months"],
        "bucketized": {"keys": ["age"], "buckets": 4},
        "vocabulary": {"keys": ["region", "channel"], "top_k": 10, "oov_buckets": 1},
    },
    "label": {"column": "defaulted", "threshold": 0.5},
    "training": {"train_steps": 150, "eval_steps": 5, "batch_size": 64,
                 "hidden_units": [16], "learning_rate": 0.01},
    "evaluation": {
        "slices": [["region"]],
        "thresholds": [{"metric": "AUC", "lower": 0.6},
                       {"metric": "ExampleCount", "slice": ["region"], "lower": 10}],
    },
    "serving": {"model_name": "loans"},
}


def write_loans_csv(path: str, n: int = 1500) -> None:
    """Loan applications; default risk falls with income and tenure."""
    rng = np.random.default_rng(7)
    age = rng.integers(18, 80, n)
    income = rng.gamma(4.0, 12000.0, n).round(2)
    tenure = rng.integers(0, 240, n)
    region = rng.choice(["north", "south", "east", "west"], n)
    channel = rng.choice(["web", "branch", "phone"], n, p=[0.6, 0.3, 0.1])
    logit = 1.5 - income / 30000 - tenure / 120 + (channel == "phone") * 0.8
    defaulted = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("age,income,tenure_months,region,channel,defaulted\n")
        for row in zip(age, income, tenure, region, channel, defaulted):
            f.write(",".join(str(v) for v in row) + "\n")


def test_new_dataset_by_configuration_alone(tmp_path, capsys):
    write_loans_csv(str(tmp_path / "data" / "loans.csv"))
    config = tmp_path / "loans.yaml"
    config.write_text(yaml.safe_dump(CONFIG))
    schema = tmp_path / "schema" / "schema.pbtxt"
    root = str(tmp_path / "run")

    assert main(["schema", "--config", str(config), "--root", root, "--output", str(schema)]) == 0
    drafted = tfdv.load_schema_text(str(schema))
    assert {f.name for f in drafted.feature} == {
        "age", "income", "tenure_months", "region", "channel", "defaulted"}
    assert list(tfdv.get_feature(drafted, "defaulted").not_in_environment) == ["SERVING"]

    assert main(["run", "--config", str(config), "--root", root]) == 0
    out = capsys.readouterr().out
    assert "BLESSED and pushed" in out and "region=north" in out
    serving = tmp_path / "run" / "serving" / "loans"
    [version] = [n for n in os.listdir(serving) if n.isdigit()]
    assert (serving / version / "saved_model.pb").exists()

    # The draft never overwrites a schema that is already there.
    before = schema.read_bytes()
    assert main(["schema", "--config", str(config), "--root", root, "--output", str(schema)]) == 1
    assert "never overwrites" in capsys.readouterr().err
    assert schema.read_bytes() == before
