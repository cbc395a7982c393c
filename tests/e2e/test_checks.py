"""DriftCheck and ServingCheck in the real pipeline, end to end: a first run
has no drift baseline and pushes; a run on drifted data is stopped before
training; with action warn it trains and says so, and (with a latency bound
no model meets) the serving check refuses the model: nothing is pushed and
the reason is printed. Training is shortened and the quality bar lowered:
what is under test here is the checks."""
import hashlib
import os

import pytest

from pipeline.config import load_config
from pipeline.errors import ExitCode
from pipeline.layout import RunLayout
from pipeline.lineage.store import (
    EXECUTED,
    FAILED,
    NOT_RUN,
    custom,
    open_store,
    output_artifacts,
    sqlite_connection,
)
from pipeline.local.run import run_pipeline
from pipeline.local.summary import summary
from tests.datasets import taxi_sample

pytestmark = pytest.mark.e2e

FAST = {"training.train_steps": 150, "training.eval_steps": 20,
        "evaluation.thresholds": [{"metric": "AUC", "lower": 0.7}],
        "serving_check.repeats": 5}


def config(**overrides):
    return load_config(overrides={**FAST, **overrides})


def shift_fares_and_payments(header, rows):
    """Fares tripled; every other trip paid by credit card."""
    out = []
    for i, row in enumerate(rows):
        row = dict(row)
        if row["fare"]:
            row["fare"] = str(round(float(row["fare"]) * 3, 2))
        if i % 2 == 0:
            row["payment_type"] = "Credit Card"
        out.append(row)
    return header, out


def served(paths: RunLayout) -> dict:
    if not os.path.isdir(paths.serving):
        return {}
    return {v: hashlib.sha256(open(os.path.join(paths.serving, v, "saved_model.pb"), "rb")
                              .read()).hexdigest()
            for v in os.listdir(paths.serving) if v.isdigit()}


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("checks"))


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return taxi_sample(str(tmp_path_factory.mktemp("data")), every=3)


@pytest.fixture(scope="module")
def drifted(tmp_path_factory):
    return taxi_sample(str(tmp_path_factory.mktemp("drifted")), every=3,
                       change=shift_fares_and_payments)


@pytest.fixture(scope="module")
def first(root, sample):
    cfg = config()
    outcome = run_pipeline(cfg, root, data_path=sample)
    return outcome, summary(outcome, cfg)


def test_first_run_has_no_baseline_passes_the_serving_check_and_pushes(first):
    outcome, text = first
    assert outcome.exit_code == 0, text
    assert outcome.drift_baseline is False and outcome.drift == []
    assert "Drift check: no model served yet" in text
    blessed, reason = outcome.serving_check
    assert blessed and "p50" in reason
    assert "Serving check passed" in text
    store = open_store(sqlite_connection(outcome.paths.metadata, must_exist=True))
    [blessing] = output_artifacts(
        store, outcome.run.node("ServingCheck").execution_id)["blessing"]
    assert custom(blessing, "blessed") == 1
    assert len(served(outcome.paths)) == 1


def test_drifted_data_stops_the_run_before_training(first, root, drifted):
    before = served(first[0].paths)
    cfg = config()
    outcome = run_pipeline(cfg, root, data_path=drifted)
    text = summary(outcome, cfg)
    assert outcome.exit_code == ExitCode.DATA_REJECTED, text
    assert outcome.status == "data_drift"
    assert {d.feature for d in outcome.drift} == {"fare", "payment_type"}
    states = {n.node_id: n.state for n in outcome.run.nodes}
    assert states["DataGate"] == EXECUTED and states["DriftCheck"] == FAILED
    assert states["Transform"] == states["Trainer"] == states["Pusher"] == NOT_RUN
    assert "DATA DRIFT" in text and "fare: Jensen-Shannon divergence" in text
    assert "payment_type: L-infinity" in text
    assert served(outcome.paths) == before


@pytest.fixture(scope="module")
def warned(first, root, drifted):
    """Drifted data with action warn, and a latency bound no model can meet."""
    before = served(first[0].paths)
    cfg = config(**{"drift_check.action": "warn", "serving_check.max_p50_ms_single": 0.0001})
    outcome = run_pipeline(cfg, root, data_path=drifted)
    return outcome, summary(outcome, cfg), before


def test_drift_with_action_warn_trains_and_warns(warned):
    outcome, text, _ = warned
    states = {n.node_id: n.state for n in outcome.run.nodes}
    assert states["DriftCheck"] == EXECUTED and states["Trainer"] == EXECUTED, text
    assert {d.feature for d in outcome.drift} == {"fare", "payment_type"}
    assert "DRIFT WARNING" in text and "payment_type: L-infinity" in text


def test_failed_serving_check_is_not_pushed_and_says_why(warned):
    outcome, text, before = warned
    assert outcome.exit_code == ExitCode.NOT_BLESSED, text
    states = {n.node_id: n.state for n in outcome.run.nodes}
    assert states["ServingCheck"] == EXECUTED and states["Pusher"] == EXECUTED
    blessed, reason = outcome.serving_check
    assert not blessed and reason.startswith("latency: p50 ") and "at batch 1 >" in reason
    assert f"The serving check failed: {reason}" in text
    assert served(outcome.paths) == before
