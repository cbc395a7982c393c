"""models/gate.py and the gated search of models/tuning.py: a trial is judged
by the push gate's bounds on the validation data, as TFMA would judge it, and
the chosen trial is the best that meets them."""
from __future__ import annotations

import math

import keras_tuner
import numpy as np
import pytest

from models.features import TrainingConfig
from models.gate import Bound, gate_bounds, judge, metric_value, roc_auc
from models.tuning import GATE_METRIC, SearchSpace, _gated_oracle, configured_values, declare

THRESHOLDS = [
    {"metric": "AUC", "slice": [], "lower": 0.9},
    {"metric": "AUC", "slice": [], "max_decrease": 0.01},
    {"metric": "FallOut", "slice": {"payment_type": "Credit Card"}, "upper": 0.3},
    {"metric": "FallOut", "slice": ["hour"], "upper": 0.5},
    {"metric": "MultiClassConfusionMatrixPlot", "slice": [], "lower": 0.1},
]


def test_bounds_judged_and_those_left_to_the_evaluator():
    judged, skipped = gate_bounds(THRESHOLDS, "binary")
    assert [b.describe() for b in judged] == [
        "AUC >= 0.9 (overall)", "FallOut <= 0.3 (payment_type=Credit Card)",
        "FallOut <= 0.5 (each hour)"]
    assert any("max_decrease" in s and "served model" in s for s in skipped)
    assert any(s.startswith("MultiClassConfusionMatrixPlot") for s in skipped)


def test_auc_is_the_rank_statistic_and_zero_on_one_class_as_tfma_has_it():
    labels = np.array([0, 0, 1, 1, 0, 1.0])
    scores = np.array([0.1, 0.6, 0.7, 0.8, 0.2, 0.4])
    assert roc_auc(labels, scores) == pytest.approx(8 / 9)
    tied = np.array([0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    assert roc_auc(labels, tied) == pytest.approx(0.5)
    assert roc_auc(np.zeros(4), np.array([0.1, 0.2, 0.3, 0.4])) == 0.0


def test_a_rate_with_an_empty_denominator_is_nan_and_fails_every_bound_as_in_tfma():
    no_negatives = metric_value("FallOut", "binary", np.ones(3), np.array([0.9, 0.2, 0.7]))
    assert math.isnan(no_negatives)
    for bound in (Bound("FallOut", [], None, 0.3), Bound("FallOut", [], 0.0, None)):
        assert not bound.holds(no_negatives)


def test_judge_names_each_slice_that_misses_its_bound():
    judged, _ = gate_bounds(THRESHOLDS, "binary")
    labels = np.array([0, 0, 1, 1, 0, 1.0])
    scores = np.array([0.1, 0.6, 0.7, 0.8, 0.2, 0.4])
    columns = {"payment_type": ["Credit Card"] * 3 + ["Cash"] * 3,
               "hour": ["1", "1", "2", "2", "3", "3"]}
    assert judge(judged, "binary", labels, scores, columns) == [
        "AUC on overall: 0.889 (bound >= 0.9)",
        "FallOut on payment_type=Credit Card: 0.500 (bound <= 0.3)",
        "FallOut on hour=2: undefined (bound <= 0.5)"]
    # A slice the validation data does not have is not judged.
    absent = judge([Bound("FallOut", {"payment_type": "Dispute"}, None, 0.0)], "binary",
                   labels, scores, columns)
    assert absent == []
    good = np.array([0.1, 0.2, 0.7, 0.8, 0.2, 0.9])
    mixed = {**columns, "hour": ["1", "2", "1", "2", "3", "3"]}
    assert judge(judged, "binary", labels, good, mixed) == []


def _oracle(directory, first, max_trials=4):
    hp = keras_tuner.HyperParameters()
    space = SearchSpace(hidden_units=[[8], [16, 8]], learning_rate=(0.001, 0.01),
                        batch_size=[32, 64])
    declare(hp, space)
    oracle = _gated_oracle(keras_tuner.oracles.RandomSearchOracle, "max", first)(
        objective=keras_tuner.Objective("val_auc", direction="max"), max_trials=max_trials,
        seed=1, hyperparameters=hp)
    # A tuner gives its oracle the directory it keeps trials in.
    keras_tuner.engine.base_tuner.BaseTuner(oracle=oracle, directory=str(directory),
                                            project_name="search")
    return oracle


def _run(oracle, results):
    """Trials with these (score, missed bounds), in order; their ids."""
    ids = []
    for score, missed in results:
        trial = oracle.create_trial("tuner")
        oracle.update_trial(trial.trial_id, {"val_auc": score, GATE_METRIC: missed})
        trial.status = keras_tuner.engine.trial.TrialStatus.COMPLETED
        oracle.end_trial(trial)
        ids.append(trial.trial_id)
    return ids


def test_the_chosen_trial_is_the_best_that_meets_the_gate(tmp_path):
    oracle = _oracle(tmp_path, None)
    ids = _run(oracle, [(0.95, 2), (0.90, 0), (0.93, 0), (0.97, 1)])
    ranked = [t.trial_id for t in oracle.get_best_trials(4)]
    assert ranked == [ids[2], ids[1], ids[3], ids[0]]


def test_with_none_meeting_the_gate_the_best_objective_is_chosen(tmp_path):
    oracle = _oracle(tmp_path, None)
    ids = _run(oracle, [(0.95, 2), (0.90, 1), (0.97, 1)])
    assert oracle.get_best_trials(1)[0].trial_id == ids[2]


def test_the_first_trial_is_the_configured_values(tmp_path):
    space = SearchSpace(hidden_units=[[8], [16, 8]], learning_rate=(0.001, 0.01),
                        batch_size=[32, 64])
    first = configured_values(TrainingConfig(hidden_units=[16, 8], learning_rate=0.002,
                                             batch_size=64), space)
    assert first == {"hidden_units": "16-8", "learning_rate": 0.002, "batch_size": 64}
    assert configured_values(TrainingConfig(hidden_units=[3], batch_size=64), space) is None
    oracle = _oracle(tmp_path, first)
    trial = oracle.create_trial("tuner")
    assert trial.hyperparameters.values == first
    oracle.update_trial(trial.trial_id, {"val_auc": 0.9, GATE_METRIC: 0})
    trial.status = keras_tuner.engine.trial.TrialStatus.COMPLETED
    oracle.end_trial(trial)
    assert oracle.create_trial("tuner").hyperparameters.values != first
