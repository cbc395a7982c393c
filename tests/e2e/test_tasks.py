"""Every task by configuration alone: a binary label from a class value, a
multi-class label with string classes and "NA" cells, a regression.

Each runs the shipped configs/<name>.yaml (with fewer training steps) on a
small CSV the test writes (tests/task_datasets.py); its schema is drafted with
`tfxp schema`, `tfxp run` trains, evaluates and pushes, and the pushed
model's serving signature is called with serialized tf.Examples that carry
no label, as a TF Serving client sends them.
"""
from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_data_validation as tfdv
import yaml
from tensorflow_metadata.proto.v0 import schema_pb2

from pipeline.cli.main import main
from pipeline.config import load_config
from pipeline.layout import RunLayout
from tests.task_datasets import write_dataset

pytestmark = pytest.mark.e2e

CONFIGS = os.path.join(os.path.dirname(__file__), "..", "..", "configs")
# Few steps and quick checks: the shipped configs as they are, made cheap.
FAST = {"training": {"train_steps": 60, "eval_steps": 5, "batch_size": 32,
                     "hidden_units": [16], "learning_rate": 0.02},
        "serving_check": {"repeats": 3, "batch_size": 16},
        "drift_check": {"enabled": False}}


def run_dataset(name: str, tmp: Any, capsys: Any) -> dict[str, Any]:
    """configs/<name>.yaml on the CSV the test writes: schema drafted, then run."""
    _, header, rows = write_dataset(name, str(tmp / "data"))
    with open(os.path.join(CONFIGS, f"{name}.yaml")) as f:
        raw = yaml.safe_load(f)
    raw.update(FAST, schema=f"schema/{name}.pbtxt")
    config = tmp / f"{name}.yaml"  # data/<name>.csv relative to it, as in configs/
    config.write_text(yaml.safe_dump(raw))
    root = str(tmp / "run")
    assert main(["schema", "--config", str(config), "--root", root,
                 "--output", str(tmp / "schema" / f"{name}.pbtxt")]) == 0
    drafted = capsys.readouterr().out
    code = main(["run", "--config", str(config), "--root", root])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    assert "Report: " in out.out  # the HTML report handles every task
    cfg = load_config(str(config))
    serving = RunLayout.under(root, cfg).serving
    [version] = [n for n in os.listdir(serving) if n.isdigit()]
    return {"drafted": drafted, "out": out.out, "rows": rows, "header": header,
            "schema": tfdv.load_schema_text(str(tmp / "schema" / f"{name}.pbtxt")),
            "model": tf.saved_model.load(os.path.join(serving, version)), "cfg": cfg}


def requests(result: dict[str, Any], label: str) -> tuple[list[bytes], list[Any]]:
    """Serialized tf.Examples of the rows without the label, and the labels."""
    header = result["header"]
    examples, labels = [], []
    for row in result["rows"]:
        feature = {}
        for column, value in zip(header, row):
            if column == label or value in ("", "NA"):
                continue
            if isinstance(value, str):
                feature[column] = tf.train.Feature(
                    bytes_list=tf.train.BytesList(value=[value.encode()]))
            elif isinstance(value, int):
                feature[column] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
            else:
                feature[column] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
        examples.append(tf.train.Example(features=tf.train.Features(
            feature=feature)).SerializeToString())
        labels.append(row[header.index(label)])
    return examples, labels


def serve(result: dict[str, Any], examples: list[bytes]) -> dict[str, np.ndarray]:
    fn = result["model"].signatures["serving_default"]
    return {k: v.numpy() for k, v in fn(examples=tf.constant(examples)).items()}


@pytest.fixture(scope="module")
def churn(tmp_path_factory):
    return _run_captured("churn", tmp_path_factory.mktemp("churn"))


@pytest.fixture(scope="module")
def penguins(tmp_path_factory):
    return _run_captured("penguins", tmp_path_factory.mktemp("penguins"))


@pytest.fixture(scope="module")
def houses(tmp_path_factory):
    return _run_captured("houses", tmp_path_factory.mktemp("houses"))


class _Capture:
    """capsys for a module-scoped fixture: stdout and stderr of `main` as text."""

    def __init__(self):
        import io
        self.out, self.err = io.StringIO(), io.StringIO()

    def readouterr(self):
        class Read:
            pass
        read = Read()
        read.out, read.err = self.out.getvalue(), self.err.getvalue()
        self.out.seek(0)
        self.out.truncate()
        self.err.seek(0)
        self.err.truncate()
        return read


def _run_captured(name: str, tmp: Any) -> dict[str, Any]:
    import contextlib
    capture = _Capture()
    with contextlib.redirect_stdout(capture.out), contextlib.redirect_stderr(capture.err):
        return run_dataset(name, tmp, capture)


def test_binary_label_from_a_class_value(churn):
    assert "BLESSED and pushed" in churn["out"]
    # Rows without a label were left out and counted, not trained as "no".
    blank = sum(1 for r in churn["rows"] if r[-1] == "")
    assert blank > 0 and f"{blank} rows without a label" in churn["out"]
    examples, labels = requests(churn, "churned")
    kept = [(e, y) for e, y in zip(examples, labels) if y]
    out = serve(churn, [e for e, _ in kept])["outputs"]
    assert out.shape == (len(kept), 1)
    assert np.all((out >= 0) & (out <= 1))
    yes = np.array([y == "yes" for _, y in kept])
    assert out[yes].mean() > out[~yes].mean() + 0.2  # a probability of "yes"


def test_multiclass_with_string_classes_and_na_tokens(penguins):
    # With na_values, "NA" is missing: the columns stay numbers in the draft.
    assert tfdv.get_feature(penguins["schema"], "bill_length_mm").type == schema_pb2.FLOAT
    assert tfdv.get_feature(penguins["schema"], "flipper_length_mm").type in (
        schema_pb2.INT, schema_pb2.FLOAT)
    assert "BLESSED and pushed" in penguins["out"]
    assert "accuracy" in penguins["out"]

    examples, labels = requests(penguins, "species")
    out = serve(penguins, examples)
    probs, classes = out["outputs"], out["classes"]
    assert probs.shape == (len(examples), 3) and classes.shape == (len(examples), 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-4)
    names = [c.decode() for c in classes[0]]
    assert sorted(names) == ["Adelie", "Chinstrap", "Gentoo"]
    predicted = [names[i] for i in probs.argmax(axis=1)]
    accuracy = np.mean([p == y for p, y in zip(predicted, labels)])
    assert accuracy > 0.8, accuracy


def test_regression(houses):
    assert "BLESSED and pushed" in houses["out"]
    examples, labels = requests(houses, "price")
    out = serve(houses, examples)["outputs"]
    assert out.shape == (len(examples), 1)
    predicted, actual = out[:, 0], np.array(labels, dtype=float)
    # Values in the label's units, following it.
    assert abs(predicted.mean() - actual.mean()) < 0.2 * actual.std()
    assert np.corrcoef(predicted, actual)[0, 1] > 0.8
