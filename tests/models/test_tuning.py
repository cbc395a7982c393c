"""models/tuning.py: the search space, the best trial's values reaching the
Trainer, the `tuning:` block's validation, and the Tuner in the compiled spec."""
from __future__ import annotations

import json

import keras_tuner
import pytest

from models.features import TrainingConfig
from models.gate import GATE_KEY
from models.hyperparameters import (
    apply_hyperparameters,
    record_hyperparameters,
    training_with,
    units_name,
)
from models.tuning import SearchSpace, declare
from pipeline.config import load_config
from tests.test_config import error_of, write_config

SPACE = SearchSpace(hidden_units=[[64, 32], [128, 64, 32]], learning_rate=(0.0005, 0.01),
                    batch_size=[32, 256])


def test_declare_registers_the_space_with_keras_tuner():
    hp = keras_tuner.HyperParameters()
    values = declare(hp, SPACE)
    space = {p.name: p for p in hp.space}
    assert set(space) == {"hidden_units", "learning_rate", "batch_size"}
    assert list(space["hidden_units"].values) == ["64-32", "128-64-32"]
    assert list(space["batch_size"].values) == [32, 256]
    lr = space["learning_rate"]
    assert (lr.min_value, lr.max_value, lr.sampling) == (0.0005, 0.01, "log")
    # First call: each hyperparameter's default, inside the space.
    assert values["hidden_units"] in ("64-32", "128-64-32")
    assert 0.0005 <= values["learning_rate"] <= 0.01


def test_a_trials_values_replace_the_configured_training_keys():
    base = TrainingConfig(train_steps=300, batch_size=128, hidden_units=[100, 70],
                          learning_rate=0.002, seed=7)
    tuned = training_with(base, {"hidden_units": "128-64-32", "learning_rate": 0.0031,
                                 "batch_size": 256})
    assert tuned.hidden_units == [128, 64, 32]
    assert tuned.learning_rate == 0.0031 and tuned.batch_size == 256
    assert (tuned.train_steps, tuned.seed) == (300, 7)  # not searched: kept


def test_the_trainer_reads_the_best_hyperparameters_as_the_tuner_writes_them():
    # What TFX's Tuner writes (best_hyperparameters.txt) is the config of a
    # KerasTuner HyperParameters; the Trainer hands it to run_fn as a dict.
    hp = keras_tuner.HyperParameters()
    declare(hp, SPACE)
    hp.values.update({"hidden_units": "64-32", "learning_rate": 0.004, "batch_size": 32})
    written = json.loads(json.dumps(hp.get_config()))
    spec = load_config().model_inputs()
    trained = apply_hyperparameters(spec, written)
    assert trained.training.hidden_units == [64, 32]
    assert trained.training.learning_rate == 0.004
    assert trained.training.batch_size == 32
    assert trained.features == spec.features
    assert apply_hyperparameters(spec, None) is spec  # no Tuner: the configuration
    assert apply_hyperparameters(spec, {}) is spec


def test_record_hyperparameters_beside_the_saved_model(tmp_path):
    training = TrainingConfig(hidden_units=[8, 4], learning_rate=0.01)
    gate = {"chosen": "0", "trials": [{"trial_id": "0", "failures": []}]}
    path = record_hyperparameters(str(tmp_path), training, tuned=True, gate=gate)
    assert path == str(tmp_path / "assets.extra" / "hyperparameters.json")
    recorded = json.loads(open(path).read())
    assert recorded["tuned"] is True
    assert TrainingConfig.model_validate(recorded["values"]) == training
    assert recorded["gate"] == gate


def test_units_name_round_trips():
    assert training_with(TrainingConfig(), {"hidden_units": units_name([5, 3, 1])}
                         ).hidden_units == [5, 3, 1]


def test_tuning_is_off_by_default_and_validated(tmp_path):
    cfg = load_config()
    assert cfg.tuning.enabled is False
    assert cfg.tuning.algorithm in ("random", "bayesian")
    msg = error_of(tmp_path, lambda c: c["tuning"]["search_space"].update(
        learning_rate=[0.01, 0.001]))
    assert "tuning.search_space" in msg and "learning_rate" in msg
    msg = error_of(tmp_path, lambda c: c["tuning"].update(algorithm="grid"))
    assert "tuning.algorithm" in msg
    msg = error_of(tmp_path, lambda c: c["tuning"].update(max_trails=3))
    assert "tuning.max_trails" in msg


@pytest.fixture(scope="module")
def tuning_spec(tmp_path_factory):
    from pipeline.kubeflow.compiler import cluster_config, compile_spec
    path = write_config(tmp_path_factory.mktemp("tuning"),
                        lambda c: c["tuning"].update(enabled=True, max_trials=3))
    spec, _ = compile_spec(cluster_config(str(path)), image="registry.example.com/p:1")
    return spec


def test_compiled_spec_of_a_tuning_config_has_a_tuner_feeding_the_trainer(tuning_spec):
    tasks = tuning_spec["root"]["dag"]["tasks"]
    assert "Tuner" in tasks
    assert {"Transform", "ImportSchemaGen"} <= set(tasks["Tuner"]["dependentTasks"])
    source = tasks["Trainer"]["inputs"]["artifacts"]["hyperparameters"]["taskOutputArtifact"]
    assert source == {"producerTask": "Tuner", "outputArtifactKey": "best_hyperparameters"}
    label = tuning_spec["components"][tasks["Tuner"]["componentRef"]["name"]]["executorLabel"]
    args = tuning_spec["deploymentSpec"]["executors"][label]["container"]["args"]
    assert "tfx.components.tuner.executor.Executor" in args
    params = tasks["Tuner"]["inputs"]["parameters"]
    assert params["tuner_fn"]["runtimeValue"]["constant"] == "models.tuning.tuner_fn"
    custom = json.loads(params["custom_config"]["runtimeValue"]["constant"])
    assert custom["tuning"]["max_trials"] == 3
    # Each trial is judged by the bounds the Evaluator applies.
    assert custom[GATE_KEY] == [t.model_dump(mode="json")
                                for t in load_config().evaluation.thresholds]
