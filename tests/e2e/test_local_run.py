"""The real pipeline, end to end with the local Beam runner, on a
deterministic sample of the shipped taxi CSV.  One root is shared in order:
a first run that pushes, a cached re-run, rejected data, an unblessed model."""
import hashlib
import os

import pytest

from pipeline.cli.main import main
from pipeline.config import load_config
from pipeline.errors import ExitCode
from pipeline.layout import RunLayout
from pipeline.lineage.store import CACHED, EXECUTED, NOT_RUN, open_store, sqlite_connection
from pipeline.local.run import run_pipeline
from tests.datasets import drop_column, taxi_sample, text_in_numeric_column, unseen_category

pytestmark = pytest.mark.e2e

NODES = {"CsvExampleGen", "StatisticsGen", "SchemaGen", "ImportSchemaGen", "ExampleValidator",
         "DataGate", "Transform", "Trainer", "served_model_resolver", "Evaluator",
         "Pusher", "drift_baseline_resolver", "DriftCheck", "ServingCheck"}
RESOLVERS = {"served_model_resolver", "drift_baseline_resolver"}


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


@pytest.fixture(scope="module")
def first_run(cfg, sample, root):
    import io
    from contextlib import redirect_stdout
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["run", "--root", root, "--data", sample])
    return code, out.getvalue(), RunLayout.under(root, cfg)


def test_first_run_pushes_a_saved_model(first_run):
    code, text, paths = first_run
    assert code == 0, text
    assert "BLESSED and pushed" in text
    versions = served_versions(paths)
    assert len(versions) == 1
    [version] = versions
    assert os.path.isdir(os.path.join(paths.serving, version, "variables"))
    # Nothing half-written or staged is left beside the version.
    assert os.listdir(paths.serving) == [version]


def test_progress_and_summary_are_printed(first_run):
    _, text, _ = first_run
    for node in NODES:
        assert node in text
    assert "overall" in text and "payment_type=Credit Card" in text
    assert "trip_start_hour" in text


def test_metadata_has_one_execution_per_component(first_run):
    _, _, paths = first_run
    store = open_store(sqlite_connection(paths.metadata, must_exist=True))
    [run_ctx] = store.get_contexts_by_type("pipeline_run")
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
    _, _, paths = first_run
    before = served_versions(paths)
    outcome = run_pipeline(cfg, root, data_path=sample)
    assert outcome.exit_code == 0
    states = {n.node_id: n.state for n in outcome.run.nodes}
    components = NODES - RESOLVERS
    assert {states[n] for n in components} == {CACHED}, states
    assert served_versions(paths) == before


@pytest.mark.parametrize("change, feature", [
    (drop_column("trip_miles"), "trip_miles"),
    (text_in_numeric_column("fare"), "fare"),
    (unseen_category("payment_type", "Bitcoin"), "payment_type"),
], ids=["dropped-column", "text-in-numeric", "unseen-category"])
def test_bad_data_is_rejected_before_training(cfg, root, first_run, tmp_path, change, feature):
    _, _, paths = first_run
    before = served_versions(paths)
    bad = taxi_sample(str(tmp_path), every=3, change=change)
    outcome = run_pipeline(cfg, root, data_path=bad)
    assert outcome.exit_code == ExitCode.DATA_REJECTED
    assert feature in {f for _, f, _ in outcome.anomalies}
    states = {n.node_id: n.state for n in outcome.run.nodes}
    assert states["ExampleValidator"] == EXECUTED
    assert states["Transform"] == states["Trainer"] == states["Pusher"] == NOT_RUN
    assert served_versions(paths) == before


def test_impossible_thresholds_are_not_blessed(sample, root, first_run):
    _, _, paths = first_run
    before = served_versions(paths)
    strict = load_config(overrides={"evaluation.thresholds": [{"metric": "AUC", "lower": 0.9999}]})
    outcome = run_pipeline(strict, root, data_path=sample)
    assert outcome.exit_code == ExitCode.NOT_BLESSED
    assert outcome.evaluation.blessed is False
    assert any(f.startswith("auc on overall") for f in outcome.evaluation.failures)
    states = {n.node_id: n.state for n in outcome.run.nodes}
    assert states["Trainer"] == CACHED and states["Evaluator"] == EXECUTED
    assert served_versions(paths) == before
