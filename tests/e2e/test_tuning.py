"""Tuning on: TFX's Tuner runs a small KerasTuner search (2 trials, few steps)
on a sample of the taxi data, and the Trainer trains with the best trial's
values, read back here from ML Metadata; an unchanged re-run takes the Tuner
from cache. Drift and serving checks are off: other tests cover them."""
from __future__ import annotations

import json
import os

import pytest

from pipeline.config import load_config
from pipeline.lineage.runs import run_record
from pipeline.lineage.store import CACHED, EXECUTED, open_store_from
from pipeline.local.run import run_pipeline
from tests.datasets import taxi_sample

pytestmark = pytest.mark.e2e

TUNING = {"tuning.enabled": True, "tuning.max_trials": 2, "tuning.train_steps": 40,
          "tuning.eval_steps": 5, "tuning.algorithm": "random",
          "tuning.search_space.hidden_units": [[16, 8], [32]],
          "tuning.search_space.learning_rate": [0.002, 0.02],
          "tuning.search_space.batch_size": [64, 128],
          "training.train_steps": 200, "training.eval_steps": 10,
          # The blessing is not under test here; the push after it is.
          "evaluation.thresholds": [{"metric": "AUC", "lower": 0.6}],
          "serving_check.enabled": False, "drift_check.enabled": False}


@pytest.fixture(scope="module")
def tuned(tmp_path_factory):
    cfg = load_config(overrides=TUNING)
    data = taxi_sample(str(tmp_path_factory.mktemp("data")), every=3)
    root = str(tmp_path_factory.mktemp("tuned"))
    first = run_pipeline(cfg, root, data_path=data)
    assert first.status == "pushed", (first.status, first.error)
    again = run_pipeline(cfg, root, data_path=data)
    return cfg, root, first, again


def states(outcome) -> dict[str, str]:
    return {n.node_id: n.state for n in outcome.run.nodes}


def test_tuner_runs_and_the_model_is_pushed(tuned):
    _, _, first, _ = tuned
    assert states(first)["Tuner"] == EXECUTED
    assert states(first)["Trainer"] == EXECUTED
    assert first.pushed_path and os.path.isdir(first.pushed_path)


def test_pushed_model_was_trained_with_the_best_trial(tuned):
    cfg, root, first, _ = tuned
    store = open_store_from(root)
    record = run_record(store, first.run.run_id)
    best = record.first("HyperParameters", "best_hyperparameters")
    results = record.first("TunerResults", "tuner_results")
    assert best is not None and results is not None
    with open(os.path.join(best.uri, "best_hyperparameters.txt")) as f:
        written = json.load(f)
    best_values, gate = written["values"], written["gate"]
    with open(os.path.join(results.uri, "tuner_results.json")) as f:
        trials = json.load(f)
    assert len(trials) == cfg.tuning.max_trials == len(gate["trials"])
    # The chosen trial: the best objective among those that met the gate.
    passed = [t for t in gate["trials"] if not t["failures"]]
    assert passed, gate
    chosen = max(passed, key=lambda t: t["score"])
    assert gate["chosen"] == chosen["trial_id"] == trials[0]["trial_id"]
    assert {k: chosen["values"][k] for k in best_values} == best_values
    assert gate["judged"] == ["AUC >= 0.6 (overall)"]

    # The Trainer's execution took exactly that artifact as its input...
    [trainer] = [e for e in store.store.get_executions_by_context(
        store.run_context(first.run.run_id).id)
        if store.node_ids([e.id]).get(e.id) == "Trainer"]
    inputs = {ev.artifact_id for ev in store.store.get_events_by_execution_ids([trainer.id])
              if ev.type == ev.INPUT}
    assert best.id in inputs
    # ...and the version TF Serving loads says it trained with those values.
    with open(os.path.join(first.pushed_path, "assets.extra", "hyperparameters.json")) as f:
        used = json.load(f)
    assert used["tuned"] is True
    assert "-".join(str(u) for u in used["values"]["hidden_units"]) == best_values["hidden_units"]
    assert used["values"]["learning_rate"] == pytest.approx(best_values["learning_rate"])
    assert used["values"]["batch_size"] == best_values["batch_size"]
    assert used["values"]["train_steps"] == cfg.training.train_steps  # not searched
    # The version's model card says so too.
    with open(os.path.join(first.pushed_path, "assets.extra", "model_card.md")) as f:
        card = f.read()
    assert "Trained with the chosen trial of the tuner" in card
    assert f"chosen: trial {gate['chosen']}" in card
    assert f'| hidden_units | {json.dumps(used["values"]["hidden_units"])} |' in card


def test_summary_prints_the_trials_that_met_the_gate_and_the_chosen_one(tuned):
    from pipeline.local.summary import summary
    cfg, _, first, _ = tuned
    chosen = first.tuning[0]
    text = summary(first, cfg)
    assert f"Tuner: {cfg.tuning.max_trials} trials, " in text
    assert "met the gate on the validation data" in text
    assert f"chosen: trial {chosen['trial_id']}, val auc {chosen['score']:.4f}" in text
    assert f"hidden_units {chosen['hidden_units']}" in text


def test_unchanged_rerun_takes_the_tuner_from_cache(tuned):
    _, _, first, again = tuned
    assert states(again)["Tuner"] == CACHED
    assert states(again)["Trainer"] == CACHED
    assert again.exit_code == 0
