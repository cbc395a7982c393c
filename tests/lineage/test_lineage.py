"""`tfxp runs | lineage | diff | report` against a store written by real runs
(see tests/lineage_runs.py), plus the clear errors for a missing or empty store."""
import json
import os
import re
import shutil

import pytest

from pipeline.facts import project_version
from pipeline.lineage.store import open_store_from
from tests.lineage_runs import copy_root, served_version, tfxp

EXTERNAL = re.compile(r"https?://|<script|<link|\bsrc=|@import|url\((?!#)", re.I)


# ----------------------------------------------------------------- no store


def test_missing_store_says_so(tmp_path):
    code, out, err = tfxp("lineage", "--root", str(tmp_path / "nowhere"))
    assert code == 1 and out == ""
    assert "no ML Metadata store at" in err and "tfxp run --root" in err
    assert not (tmp_path / "nowhere").exists()  # looking never creates a store


def test_empty_store_says_so(tmp_path):
    from pipeline.lineage.store import open_store, sqlite_connection
    open_store(sqlite_connection(str(tmp_path / "metadata.sqlite")))  # a fresh, empty store
    for command in ("lineage", "report", "diff"):
        code, _, err = tfxp(command, "--root", str(tmp_path))
        assert code == 1, command
        assert "holds no pipeline runs" in err, (command, err)
    code, out, _ = tfxp("runs", "--root", str(tmp_path))
    assert code == 0 and "No runs in the store" in out


# ----------------------------------------------------------------- real runs


@pytest.mark.e2e
def test_run_prints_where_the_report_is(lineage_runs):
    match = re.search(r"^Report: (.+\.html)$", lineage_runs.first_output, re.M)
    assert match, lineage_runs.first_output[-2000:]
    text = open(match.group(1), encoding="utf-8").read()
    assert lineage_runs.run_ids[0] in text


@pytest.mark.e2e
def test_runs_lists_every_run_with_its_outcome(lineage_runs):
    code, out, _ = tfxp("runs", "--root", lineage_runs.root, "--format", "json")
    assert code == 0
    runs = json.loads(out)
    assert [r["run_id"] for r in runs] == lineage_runs.run_ids
    first, second, rejected = runs
    assert first["status"] == "pushed" and first["blessed"] is True
    assert first["pushed_version"] and first["pushed_in_this_run"]
    assert second["status"] == "pushed" and second["pushed_in_this_run"]
    assert second["pushed_version"] != first["pushed_version"]
    assert rejected["status"] == "stopped at DataGate"
    states = {n["node_id"]: n["state"] for n in rejected["nodes"]}
    assert states["DataGate"] == "failed" and states["Trainer"] == "not run"
    assert states["ImportSchemaGen"] == "cached"  # the curated schema did not change
    for r in runs:
        assert r["provenance"]["data_path"] == lineage_runs.csv[runs.index(r)]
        assert r["provenance"]["project_version"] == project_version()
        assert r["seconds"] > 0
    code, text, _ = tfxp("runs", "--root", lineage_runs.root)
    assert all(run_id in text for run_id in lineage_runs.run_ids)


@pytest.mark.e2e
def test_trace_from_the_served_model_reaches_the_csv(lineage_runs):
    from pipeline.pipeline import EXTRACTORS, PREPROCESSING_FN, RUN_FN
    version = served_version(lineage_runs.paths)
    csv = lineage_runs.csv[1]  # the second run pushed the served model
    code, out, _ = tfxp("lineage", "--root", lineage_runs.root, "--format", "json")
    assert code == 0
    trace = json.loads(out)
    assert version in trace["description"]
    assert trace["model"]["pushed_version"] == version and trace["model"]["blessed"] is True
    data = trace["data"]
    assert data["data_path"] == csv
    assert data["input_base"] == os.path.dirname(csv)
    assert f"total_bytes:{os.path.getsize(csv)}" in data["fingerprint"]
    assert data["content_digest"].startswith("sha256:")
    assert [s["name"] for s in data["split_config"]["split_config"]["splits"]] == ["train", "eval"]
    assert data["span"] == 0 and data["anomalies"] == {"ExampleValidator.anomalies": "none"}
    assert trace["code"]["entry_points"] == {"Transform.preprocessing_fn": PREPROCESSING_FN,
                                             "Trainer.run_fn": RUN_FN,
                                             "Evaluator.module_path": EXTRACTORS}
    # The code digest of each node that runs project code (pipeline.dag.digest).
    assert {"Transform", "Trainer", "Pusher"} <= set(trace["code"]["digests"])
    assert all(len(d) == 16 for d in trace["code"]["digests"].values())
    assert trace["code"]["project_version"] == project_version() and trace["code"]["git_commit"]
    assert trace["config"]["values"]["pipeline_name"] == lineage_runs.cfg.pipeline_name
    # Every step from the CSV to the push is in the graph, node ids from the store.
    kinds = {n["type"] for n in trace["nodes"]}
    assert {"Examples", "ExampleStatistics", "ExampleAnomalies", "Schema", "TransformGraph",
            "Model", "ModelBlessing", "ModelEvaluation", "PushedModel"} <= kinds
    labels = {n["label"] for n in trace["nodes"] if n["kind"] == "execution"}
    assert {"CsvExampleGen", "StatisticsGen", "ExampleValidator", "DataGate", "Transform",
            "Trainer", "Evaluator", "Pusher"} <= labels
    assert trace["problems"] == []
    [evaluator] = [n["key"] for n in trace["nodes"] if n["label"] == "Evaluator"]
    feeds = {e["key"] for e in trace["edges"] if e["target"] == evaluator}
    assert {"examples", "model"} <= feeds
    # The first run's model was the baseline: shown, not followed.
    assert "baseline_model" in feeds
    [base] = [n for n in trace["nodes"] if n["label"] == "baseline Model"]
    assert base["id"] == trace["model"]["baseline_model"] != trace["model"]["artifact"]
    # The text says the same for a person.
    _, text, _ = tfxp("lineage", "--root", lineage_runs.root)
    assert csv in text and data["fingerprint"] in text and RUN_FN in text


@pytest.mark.e2e
def test_trace_by_version_model_id_and_run(lineage_runs):
    store = open_store_from(lineage_runs.root)
    first_pushed = store.run_info(store.find_run(lineage_runs.run_ids[0])).pushed_version
    by_version = store.trace(first_pushed)
    assert by_version.data["data_path"] == lineage_runs.csv[0]
    by_model = store.trace(str(by_version.model["artifact"]))
    assert by_model.data["examples_artifact"] == by_version.data["examples_artifact"]
    assert by_model.model["pushed_version"] == first_pushed
    # A whole run: its data checks too, even the gate that outputs nothing.
    by_run = store.trace(lineage_runs.run_ids[0])
    labels = {n.label for n in by_run.nodes.values() if n.kind == "execution"}
    assert {"StatisticsGen", "ExampleValidator", "DataGate", "Trainer", "Pusher"} <= labels
    # A run the gate stopped: traced without error, and the gap is named.
    code, out, err = tfxp("lineage", "--root", lineage_runs.root, lineage_runs.run_ids[2])
    assert code == 0, err
    assert lineage_runs.csv[2] in out and "anomalies in" in out
    assert "stopped before training" in out
    code, _, err = tfxp("lineage", "--root", lineage_runs.root, "no-such-run")
    assert code == 1 and "not a pushed version, a model artifact id or a run" in err


@pytest.mark.e2e
def test_diff_shows_the_data_change(lineage_runs):
    first, second, _ = lineage_runs.run_ids
    code, out, err = tfxp("diff", first, second, "--root", lineage_runs.root)
    assert code == 0, err
    data = out.split("\nData\n", 1)[1].split("\nSchema\n", 1)[0]
    assert "fingerprint: CHANGED" in data and "content digest: CHANGED" in data
    assert lineage_runs.csv[0] in data and lineage_runs.csv[1] in data
    config = out.split("\nConfig\n", 1)[1].split("\nCode\n", 1)[0]
    assert config.strip() == "same"
    assert "curated schema artifact: same" in out
    metrics = out.split("Metrics per slice (A -> B)\n", 1)[1]
    assert "overall" in metrics and "payment_type=Credit Card" in metrics
    assert re.search(r"overall\s+\d\.\d{3} -> \d\.\d{3}", metrics)


@pytest.mark.e2e
def test_dot_output_renders(lineage_runs, tmp_path):
    import pydot
    code, dot, _ = tfxp("lineage", "--root", lineage_runs.root, "--format", "dot")
    assert code == 0
    _, out, _ = tfxp("lineage", "--root", lineage_runs.root, "--format", "json")
    nodes = json.loads(out)["nodes"]
    [graph] = pydot.graph_from_dot_data(dot)
    assert {n.get_name() for n in graph.get_nodes()} >= {n["key"] for n in nodes}
    if shutil.which("dot") is None:
        pytest.skip("Graphviz `dot` is not installed (scripts/setup.sh installs it as root)")
    import graphviz
    svg = graphviz.Source(dot).pipe(format="svg").decode()
    assert svg.count('class="node"') == len(nodes)


@pytest.mark.e2e
def test_html_lineage_opens_offline(lineage_runs, tmp_path):
    target = tmp_path / "lineage.html"
    code, _, _ = tfxp("lineage", "--root", lineage_runs.root, "--format", "html",
                      "--output", str(target))
    assert code == 0
    text = target.read_text()
    served_data = lineage_runs.csv[1]  # the second run pushed the served model
    assert "<svg" in text and served_data in text
    assert not EXTERNAL.search(text), EXTERNAL.search(text)


@pytest.mark.e2e
def test_report_has_every_slice_the_thresholds_and_no_external_url(lineage_runs, tmp_path):
    from pipeline.lineage.results import evaluation, slice_label
    from pipeline.lineage.runs import run_record
    cfg = lineage_runs.cfg
    run_id = lineage_runs.run_ids[1]
    target = tmp_path / "report.html"
    code, out, err = tfxp("report", run_id, "--root", lineage_runs.root, "--output", str(target))
    assert code == 0, err
    text = target.read_text()
    assert not EXTERNAL.search(text), EXTERNAL.search(text)
    result, _ = evaluation(run_record(open_store_from(lineage_runs.root), run_id))
    slices = [k for k in result.metrics if k]
    for spec in cfg.evaluation.slices:
        assert any([f for f, _ in k] == spec for k in slices), spec
        assert f"false positive rate by {'/'.join(spec)}" in text
        assert f"false negative rate by {'/'.join(spec)}" in text
    for key in slices:
        assert f"<td>{slice_label(key)}</td>" in text.replace("&#x27;", "'"), key
    # The fairness bounds from the config are drawn on the charts.
    for t in cfg.evaluation.thresholds:
        if t.metric in ("FallOut", "MissRate") and t.upper is not None:
            assert f"threshold {t.upper:g}" in text
    # The verdict itself ("NOT BLESSED" also holds the word).
    assert '<p class="ok">BLESSED: every threshold met.</p>' in text
    assert "NOT BLESSED" not in text and lineage_runs.csv[1] in text
    for feature in cfg.features.numeric:
        assert f"<b>{feature}</b>" in text  # a chart per feature


@pytest.mark.e2e
def test_report_of_a_rejected_run_names_the_anomaly(lineage_runs, tmp_path):
    target = tmp_path / "rejected.html"
    code, _, err = tfxp("report", lineage_runs.run_ids[2], "--root", lineage_runs.root,
                        "--output", str(target))
    assert code == 0, err
    text = target.read_text()
    assert "payment_type" in text and "anomalies</p>" in text
    assert "No evaluation: the run stopped before it" in text


@pytest.mark.e2e
def test_a_deleted_artifact_is_reported_not_fatal(lineage_runs, tmp_path):
    root = copy_root(lineage_runs.root, str(tmp_path / "root"))  # the shared root untouched
    store = open_store_from(root)
    trace = store.trace(lineage_runs.run_ids[0])
    [stats] = [n for n in trace.nodes.values() if n.label == "StatisticsGen.statistics"]
    assert stats.uri.startswith(root + os.sep)
    os.rename(stats.uri, stats.uri + ".moved")
    again = store.trace(lineage_runs.run_ids[0])
    assert any(stats.uri in p and "no longer exists" in p for p in again.problems)
    assert again.nodes[stats.key].state == "missing"
    code, out, _ = tfxp("lineage", "--root", root, lineage_runs.run_ids[0])
    assert code == 0 and "[MISSING]" in out
    target = tmp_path / "r.html"
    code, _, _ = tfxp("report", lineage_runs.run_ids[0], "--root", root, "--output", str(target))
    assert code == 0 and "No statistics recorded for this run" in target.read_text()
    # The shared store still finds its own statistics.
    shared = open_store_from(lineage_runs.root).trace(lineage_runs.run_ids[0])
    assert shared.problems == [] and all(
        os.path.exists(n.uri) for n in shared.nodes.values() if n.uri)
