"""The real pipeline, end to end with the local Beam runner, on a
deterministic sample of the shipped taxi CSV.  One root holds the first
run: two runs started together (one pushes, the other waits for it and finds
everything cached), then cached re-runs.  Each test that changes what a root
holds (rejected data, an unblessed model, an edit of the model code killed
mid-Transform and resumed) runs on its own copy of that root."""
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.errors import ExitCode
from pipeline.layout import RunLayout
from pipeline.lineage.store import (
    CACHED,
    EXECUTED,
    NOT_RUN,
    RUNNING,
    Store,
    open_store,
    open_store_from,
    sqlite_connection,
)
from pipeline.local.lock import holder, run_lock
from pipeline.local.run import run_pipeline
from tests.datasets import drop_column, taxi_sample, text_in_numeric_column, unseen_category
from tests.lineage_runs import copy_root

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]

NODES = {"CsvExampleGen", "StatisticsGen", "SchemaGen", "ImportSchemaGen", "ExampleValidator",
         "DataGate", "Transform", "Trainer", "served_model_resolver", "Evaluator",
         "Pusher", "drift_baseline_resolver", "DriftCheck", "ServingCheck"}
RESOLVERS = {"served_model_resolver", "drift_baseline_resolver"}
# How long a step may take before a test calls it hung (a bound, not a speed check).
HANG_SECONDS = 600


def served_versions(paths: RunLayout) -> dict[str, str]:
    """version -> digest of its saved_model.pb, for everything TF Serving would see."""
    if not os.path.isdir(paths.serving):
        return {}
    out = {}
    for name in os.listdir(paths.serving):
        pb = os.path.join(paths.serving, name, "saved_model.pb")
        if name.isdigit() and os.path.exists(pb):
            out[name] = hashlib.sha256(open(pb, "rb").read()).hexdigest()
    return out


@pytest.fixture(scope="module")
def cfg():
    return load_config()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    return taxi_sample(str(tmp_path_factory.mktemp("data")), every=3)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return str(tmp_path_factory.mktemp("run"))


def tfxp_process(args: list[str], cwd: str = str(ROOT), env: dict = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "pipeline", *args], cwd=cwd,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(condition, timeout: float = 600, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def first_run(cfg, sample, root):
    """Two `tfxp run` on one fresh root at once: the second waits for the first."""
    paths = RunLayout.under(root, cfg)
    args = ["run", "--root", root, "--data", sample]
    first = tfxp_process(args)
    wait_for(lambda: holder(paths.lock) is not None or first.poll() is not None,
             what="the first run to hold the root")
    second = tfxp_process(args)
    text, _ = first.communicate(timeout=3600)
    second_text, _ = second.communicate(timeout=3600)
    return first.returncode, text, paths, second.returncode, second_text


def test_first_run_pushes_a_saved_model(first_run):
    code, text, paths, _, _ = first_run
    assert code == 0, text
    assert "BLESSED and pushed" in text
    versions = served_versions(paths)
    assert len(versions) == 1
    [version] = versions
    assert os.path.isdir(os.path.join(paths.serving, version, "variables"))
    # Nothing half-written or staged is left beside the version (the push lock stays,
    # and TF Serving's models.config with the history of its stable label).
    assert sorted(os.listdir(paths.serving)) == sorted(
        [version, ".push.lock", "models.config", "stable-history.json"])


def test_a_concurrent_run_waits_then_publishes_nothing(first_run):
    code, text, paths, second_code, second_text = first_run
    assert second_code == 0, second_text
    assert "Waiting:" in second_text and "in use by pid" in second_text
    assert "Traceback" not in second_text + text
    assert "UNCHANGED" in second_text
    assert len(served_versions(paths)) == 1


def test_no_wait_refuses_a_busy_root_at_once(cfg, sample, root, first_run):
    paths = first_run[2]
    with run_lock(paths.lock, "a run holding the root"):
        # A run that waited would wait for this test: the bound catches that hang.
        refused = subprocess.run(
            [sys.executable, "-m", "pipeline", "run", "--root", root, "--data", sample,
             "--no-wait"], cwd=str(ROOT), capture_output=True, text=True,
            timeout=HANG_SECONDS)
    assert refused.returncode == ExitCode.ERROR, refused.stdout + refused.stderr
    assert f"pid {os.getpid()}" in refused.stderr
    assert "a run holding the root" in refused.stderr


def test_progress_and_summary_are_printed(first_run):
    text = first_run[1]
    for node in NODES:
        assert node in text
    assert "overall" in text and "payment_type=Credit Card" in text
    assert "trip_start_hour" in text


def test_metadata_has_one_execution_per_component(first_run):
    paths = first_run[2]
    store = open_store(sqlite_connection(paths.metadata, must_exist=True))
    run_ctx = min(store.get_contexts_by_type("pipeline_run"), key=lambda c: c.id)
    per_node = {}
    for execution in store.get_executions_by_context(run_ctx.id):
        nodes = [c.name for c in store.get_contexts_by_execution(execution.id)
                 if c.type_id == store.get_context_type("node").id]
        for node in nodes:
            node_id = node.split(".", 1)[1]
            per_node[node_id] = per_node.get(node_id, 0) + 1
    assert set(per_node) == NODES
    assert all(n == 1 for n in per_node.values()), per_node


def test_evaluation_holds_every_configured_slice(cfg, sample, root, first_run):
    outcome = run_pipeline(cfg, root, data_path=sample)  # cached: reads the same evaluation
    metrics = outcome.evaluation.metrics
    assert () in metrics
    for spec in cfg.evaluation.slices:
        slices = [k for k in metrics if [f for f, _ in k] == spec]
        assert slices, f"no metrics for slice {spec}"
        for k in slices:
            assert {"example_count", "auc", "fall_out", "miss_rate"} <= set(metrics[k])
    assert len([k for k in metrics if k and k[0][0] == "trip_start_hour"]) == 24
    assert metrics[()]["auc"] > 0.85


def test_second_run_is_served_from_cache(cfg, sample, root, first_run):
    paths = first_run[2]
    before = served_versions(paths)
    outcome = run_pipeline(cfg, root, data_path=sample)
    assert outcome.exit_code == 0 and outcome.status == "unchanged"
    states = {n.node_id: n.state for n in outcome.run.nodes}
    components = NODES - RESOLVERS
    assert {states[n] for n in components} == {CACHED}, states
    assert served_versions(paths) == before


@pytest.mark.parametrize("change, feature", [
    (drop_column("trip_miles"), "trip_miles"),
    (text_in_numeric_column("fare"), "fare"),
    (unseen_category("payment_type", "Bitcoin"), "payment_type"),
    (lambda header, rows: (header, []), "(dataset)"),
], ids=["dropped-column", "text-in-numeric", "unseen-category", "header-only"])
def test_bad_data_is_rejected_before_training(cfg, root, first_run, tmp_path, change, feature):
    root = copy_root(root, str(tmp_path / "root"), own_artifacts=False)
    paths = RunLayout.under(root, cfg)
    before = served_versions(paths)
    assert len(before) == 1
    bad = taxi_sample(str(tmp_path), every=3, change=change)
    outcome = run_pipeline(cfg, root, data_path=bad)
    assert outcome.exit_code == ExitCode.DATA_REJECTED
    assert feature in {f for _, f, _ in outcome.anomalies}
    states = {n.node_id: n.state for n in outcome.run.nodes}
    assert states["ExampleValidator"] == EXECUTED
    assert states["Transform"] == states["Trainer"] == states["Pusher"] == NOT_RUN
    assert served_versions(paths) == before


def test_impossible_thresholds_are_not_blessed(sample, root, first_run, tmp_path):
    root = copy_root(root, str(tmp_path / "root"), own_artifacts=False)
    strict = load_config(overrides={"evaluation.thresholds": [{"metric": "AUC", "lower": 0.9999}]})
    paths = RunLayout.under(root, strict)
    before = served_versions(paths)
    assert len(before) == 1
    outcome = run_pipeline(strict, root, data_path=sample)
    assert outcome.exit_code == ExitCode.NOT_BLESSED
    assert outcome.evaluation.blessed is False
    assert any(f.startswith("auc on overall") for f in outcome.evaluation.failures)
    states = {n.node_id: n.state for n in outcome.run.nodes}
    assert states["Trainer"] == CACHED and states["Evaluator"] == EXECUTED
    assert served_versions(paths) == before


def running_transform(paths: RunLayout) -> bool:
    """Whether the newest run's Transform is executing now."""
    if not os.path.exists(paths.metadata):
        return False
    store = Store(open_store(sqlite_connection(paths.metadata, must_exist=True)))
    runs = store.runs()
    if not runs:
        return False
    node = runs[-1].node("Transform")
    return node is not None and node.state == RUNNING


def test_an_edit_reruns_what_it_runs_and_a_killed_run_resumes(cfg, sample, root, first_run,
                                                              tmp_path):
    root = copy_root(root, str(tmp_path / "root"), own_artifacts=False)
    paths = RunLayout.under(root, cfg)
    checkout = tmp_path / "checkout"
    for part in ("pipeline", "models", "components", "configs", "schemas"):
        shutil.copytree(ROOT / part, checkout / part,
                        ignore=shutil.ignore_patterns("__pycache__", "test_*.py"))
    preprocessing = checkout / "models" / "preprocessing.py"
    preprocessing.write_text(preprocessing.read_text() + "\n# An edit of the preprocessing code.\n")
    # A bar no model meets: the edited model is evaluated and refused, and the
    # root keeps serving the first model.
    config = checkout / "configs" / "taxi.yaml"
    text = config.read_text()
    assert "{metric: AUC, lower: 0.9}" in text
    config.write_text(text.replace("{metric: AUC, lower: 0.9}", "{metric: AUC, lower: 0.9999}"))
    before = served_versions(paths)
    assert len(before) == 1
    env = dict(os.environ, PYTHONPATH=str(checkout))
    args = ["run", "--root", root, "--data", sample]

    killed = tfxp_process(args, cwd=str(checkout), env=env)
    wait_for(lambda: running_transform(paths) or killed.poll() is not None, timeout=900,
             what="Transform to start")
    assert killed.poll() is None, killed.communicate()[0]
    killed.send_signal(signal.SIGKILL)
    killed.wait()
    listing = subprocess.run(
        [sys.executable, "-m", "pipeline", "runs", "--root", root, "--format", "json"],
        capture_output=True, text=True, cwd=str(ROOT))
    assert listing.returncode == 0, listing.stderr
    assert json.loads(listing.stdout)[-1]["status"] == "interrupted", listing.stdout

    resumed = tfxp_process(args, cwd=str(checkout), env=env)
    text, _ = resumed.communicate(timeout=3600)
    assert resumed.returncode == ExitCode.NOT_BLESSED, text
    store = open_store_from(root)
    states = {n.node_id: n.state for n in store.runs()[-1].nodes}
    # The data stage is not the preprocessing code: cached. The edit re-ran Transform and
    # everything made from its output.
    for node in ("CsvExampleGen", "StatisticsGen", "ExampleValidator", "DataGate"):
        assert states[node] == CACHED, states
    for node in ("Transform", "Trainer", "Evaluator", "ServingCheck", "Pusher"):
        assert states[node] == EXECUTED, states
    assert served_versions(paths) == before
