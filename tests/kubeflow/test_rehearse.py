"""`tfxp compile` then `tfxp rehearse`: the compiled spec runs task by task as
KFP's driver and launcher would, on a sample of the shipped taxi CSV, and a
model is pushed; specs that would fail on the cluster fail here, naming the
task.  One rehearsal (`rehearsed`) serves every test that reads its result:
its summary and exit status, its ML Metadata in KFP's layout, and the
answers `tfxp runs` and `tfxp lineage` give from it, compared with those of
a local run of the same CSV (tests/lineage_runs.py)."""
from __future__ import annotations

import copy
import io
import json
import os
import shutil
from contextlib import redirect_stderr, redirect_stdout

import pytest
import yaml
from ml_metadata.proto import metadata_store_pb2 as mlmd

from pipeline.cli.main import main
from pipeline.kubeflow.compiler import REPO_ROOT, cluster_config, load_spec
from pipeline.kubeflow.rehearse import RehearsalError, check_spec, rehearse
from pipeline.lineage.store import open_store, sqlite_connection
from tests.datasets import taxi_sample, unseen_category

DATA_IN_CLUSTER = "/data/taxi"


def tfxp(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out), redirect_stderr(out):
        code = main(list(args))
    return code, out.getvalue()


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    """The real pipeline compiled for a cluster whose data sits at /data/taxi."""
    directory = tmp_path_factory.mktemp("rehearse")
    raw = yaml.safe_load((REPO_ROOT / "configs" / "taxi.yaml").read_text())
    raw["schema"] = str(REPO_ROOT / "schemas" / "taxi" / "schema.pbtxt")
    # The pipeline's fairness bounds sit close to what a model trained on a
    # third of the rows reaches (an hour's FallOut varies run to run); this
    # test is about the path to a push, so it keeps the overall and the
    # baseline-comparison thresholds only.
    raw["evaluation"]["thresholds"] = [{"metric": "AUC", "lower": 0.7},
                                       {"metric": "AUC", "max_decrease": 0.05}]
    # The shipped config's metrics include ConfusionMatrixPlot: the ROC points and
    # the confusion matrix the report task publishes as ClassificationMetrics.
    assert "ConfusionMatrixPlot" in raw["evaluation"]["metrics"]
    # In-process Beam: this machine has two cores, a cluster node more.
    raw["kubeflow"] = {**raw.get("kubeflow", {}), "data_path": f"{DATA_IN_CLUSTER}/data.csv",
                       "beam_args": ["--direct_running_mode=in_memory",
                                     "--direct_num_workers=1"]}
    config = directory / "taxi-kfp.yaml"
    config.write_text(yaml.safe_dump(raw))
    spec_path = str(directory / "taxi.kfp.yaml")
    with redirect_stdout(io.StringIO()):
        assert main(["compile", "--config", str(config), "--output", spec_path]) == 0
    spec, platform = load_spec(spec_path)
    return {"config": str(config), "path": spec_path, "spec": spec, "platform": platform,
            "cfg": cluster_config(str(config)), "dir": directory}


VOLUMES = {"/serving": "/nonexistent-volume"}


def test_a_resolver_task_is_refused(compiled):
    spec = copy.deepcopy(compiled["spec"])
    label = spec["components"]["served_model_resolver"]["executorLabel"]
    spec["deploymentSpec"]["executors"][label] = {"resolver": {"outputArtifactQueries": {}}}
    with pytest.raises(RehearsalError, match="task served_model_resolver: a resolver"):
        check_spec(spec, compiled["platform"], VOLUMES)


def test_a_missing_parameter_is_named(compiled):
    spec = copy.deepcopy(compiled["spec"])
    del spec["root"]["dag"]["tasks"]["Trainer"]["inputs"]["parameters"]["run_fn"]
    with pytest.raises(RehearsalError, match="task Trainer: parameter 'run_fn' has no value"):
        check_spec(spec, compiled["platform"], VOLUMES)


def test_a_schema_2_0_parameter_is_named(compiled):
    spec = copy.deepcopy(compiled["spec"])
    param = spec["root"]["dag"]["tasks"]["Transform"]["inputs"]["parameters"]["preprocessing_fn"]
    param["runtimeValue"] = {
        "constantValue": {"stringValue": "models.preprocessing.preprocessing_fn"}}
    with pytest.raises(RehearsalError, match="task Transform: parameter 'preprocessing_fn' "
                                             "is in the schema 2.0 form"):
        check_spec(spec, compiled["platform"], VOLUMES)


def test_an_unresolvable_artifact_type_is_named(compiled):
    spec = copy.deepcopy(compiled["spec"])
    outputs = spec["components"]["Transform"]["outputDefinitions"]["artifacts"]
    # What a launcher hands on for an untyped artifact.
    outputs["transform_graph"]["artifactType"] = {"schemaTitle": "system.Artifact"}
    with pytest.raises(RehearsalError, match="task (Transform|Trainer|Evaluator): artifact "
                                             "'transform_graph'.*'system.Artifact'"):
        check_spec(spec, compiled["platform"], VOLUMES)


def test_an_unmounted_volume_is_named(compiled, tmp_path):
    platform = copy.deepcopy(compiled["platform"])
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    executors.pop(compiled["spec"]["components"]["Pusher"]["executorLabel"])
    spec = copy.deepcopy(compiled["spec"])
    tasks = spec["root"]["dag"]["tasks"]
    spec["root"]["dag"]["tasks"] = {"Pusher": tasks["Pusher"]}
    tasks["Pusher"]["inputs"]["artifacts"] = {}
    tasks["Pusher"]["dependentTasks"] = []
    spec["components"]["Pusher"]["inputDefinitions"]["artifacts"] = {}
    with pytest.raises(RehearsalError, match="task Pusher: parameter 'push_destination' "
                                             "uses /serving, a volume this task does not mount"):
        rehearse(spec, platform, str(tmp_path), {}, volumes={"/serving": str(tmp_path / "v")})


@pytest.mark.e2e
def test_code_that_is_not_in_the_image_fails_the_task(compiled, tmp_path):
    spec = copy.deepcopy(compiled["spec"])
    tasks = spec["root"]["dag"]["tasks"]
    spec["root"]["dag"]["tasks"] = {"ImportSchemaGen": tasks["ImportSchemaGen"]}
    label = spec["components"]["ImportSchemaGen"]["executorLabel"]
    args = spec["deploymentSpec"]["executors"][label]["container"]["args"]
    args[args.index("--executor_class_path") + 1] = "models.not_in_the_image.Executor"
    kf = compiled["cfg"].kubeflow
    result = rehearse(spec, compiled["platform"], str(tmp_path),
                      {kf.project_dir: str(REPO_ROOT)}, volumes={"/serving": str(tmp_path / "v")},
                      image_code=str(REPO_ROOT), fork=False,  # one task: a cold start is cheaper
                      raise_on_failure=False)
    assert "task ImportSchemaGen failed" in str(result.failure)
    assert "models.not_in_the_image" in str(result.failure)
    # Started from cold, the task's exception is kept as the fork server keeps it,
    # so `tfxp rehearse --no-fork` answers (exit status, summary) as with it.
    assert result.failed.name == "ImportSchemaGen"
    assert isinstance(result.failed.error, ImportError), result.failed.error
    assert "models.not_in_the_image" in str(result.failed.error)


@pytest.fixture(scope="module")
def rehearsed(compiled):
    """One rehearsal of the compiled spec on the sample every third row of the CSV."""
    directory = compiled["dir"]
    sample = taxi_sample(str(directory / "data"), every=3)
    workdir = directory / "work"
    code, text = tfxp("rehearse", compiled["path"], "--config", compiled["config"],
                      "--workdir", str(workdir), "--mount",
                      f"{DATA_IN_CLUSTER}={os.path.dirname(sample)}")
    return {"code": code, "text": text, "workdir": workdir, "csv": sample,
            "store": str(workdir / "metadata.sqlite")}


@pytest.mark.e2e
def test_compiled_spec_rehearses_to_a_pushed_model(compiled, rehearsed):
    code, text, workdir = rehearsed["code"], rehearsed["text"], rehearsed["workdir"]
    assert code == 0, text
    tasks = set(compiled["spec"]["root"]["dag"]["tasks"])
    for task in tasks:
        assert f"= {task} " in text, task
    # The Pusher wrote one complete version on the serving volume (beside its lock).
    cfg = compiled["cfg"]
    serving = workdir / "volumes" / cfg.kubeflow.serving_pvc / cfg.serving.model_name
    [version] = [n for n in os.listdir(serving) if not n.startswith(".")
                 and n not in ("models.config", "stable-history.json")]
    assert version.isdigit()
    assert (serving / version / "saved_model.pb").exists()
    assert (serving / version / "variables").is_dir()
    # The summary `tfxp run` prints, read from the rehearsal's own store.
    assert "Data accepted (no anomalies against the curated schema)." in text
    assert "Evaluation on the eval split:" in text and "AUC" in text
    assert f"BLESSED and pushed: {serving / version}" in text
    assert f"served versions: {version}" in text
    # Outputs travelled as ExecutorOutputs: the blessing the Pusher read says blessed,
    # with no baseline on a first run, as locally (the baseline tasks' "none" artifact
    # never reaches the Evaluator or the DriftCheck).
    output = json.loads((workdir / "tasks" / "Evaluator" / "executor_output.json").read_text())
    [blessing] = output["artifacts"]["blessing"]["artifacts"]
    assert blessing["metadata"]["blessed"] == 1
    assert "baseline_model" not in blessing["metadata"]
    assert "tfxp_no_artifact" in (workdir / "tasks" / "served_model_resolver"
                                  / "log.txt").read_text()
    assert "Drift check: no model served yet" in text
    # Artifacts live under the emulated object store, as the launcher would keep them.
    examples = list((workdir / "launcher" / "minio").rglob("CsvExampleGen/examples/Split-train"))
    assert examples, "no ExampleGen output under the pipeline root"


@pytest.mark.e2e
def test_the_rehearsal_records_ml_metadata_as_kfp_does(compiled, rehearsed):
    store = open_store(sqlite_connection(rehearsed["store"], must_exist=True))
    context_types = {t.id: t.name for t in store.get_context_types()}
    contexts = {context_types[c.type_id]: c for c in store.get_contexts()}
    assert set(contexts) == {"system.Pipeline", "system.PipelineRun"}
    run = contexts["system.PipelineRun"]
    assert contexts["system.Pipeline"].name == compiled["spec"]["pipelineInfo"]["name"]
    assert run.custom_properties["pipeline_root"].string_value.startswith(
        compiled["cfg"].kubeflow.pipeline_root)
    types = {t.id: t.name for t in store.get_execution_types()}
    executions = store.get_executions_by_context(run.id)
    by_task = {e.custom_properties["task_name"].string_value: e for e in executions
               if types[e.type_id] == "system.ContainerExecution"}
    assert set(by_task) == set(compiled["spec"]["root"]["dag"]["tasks"])
    assert [types[e.type_id] for e in executions].count("system.DAGExecution") == 1
    trainer = by_task["Trainer"]
    assert trainer.custom_properties["display_name"].string_value == "Trainer"
    assert trainer.custom_properties["inputs"].struct_value["run_fn"] == "models.model.run_fn"
    # Events keyed by input and output name; artifacts typed by schema title at
    # object-store URIs, their metadata as custom properties (numbers as doubles).
    artifact_types = {t.id: t.name for t in store.get_artifact_types()}
    events = store.get_events_by_execution_ids([trainer.id])
    keys = {kind: {e.path.steps[0].key for e in events if e.type == kind}
            for kind in (mlmd.Event.INPUT, mlmd.Event.OUTPUT)}
    assert {"examples", "transform_graph", "schema"} <= keys[mlmd.Event.INPUT]
    assert "model" in keys[mlmd.Event.OUTPUT]
    [blessing] = [a for a in store.get_artifacts()
                  if artifact_types[a.type_id] == "tfx.ModelBlessing"]
    assert blessing.uri.startswith(compiled["cfg"].kubeflow.pipeline_root)
    assert blessing.custom_properties["blessed"].double_value == 1.0
    examples = [a for a in store.get_artifacts() if artifact_types[a.type_id] == "tfx.Examples"]
    # Provenance, kept by KFP as the examples' metadata.
    assert examples[0].custom_properties["tfxp_git_commit"].string_value
    assert examples[0].custom_properties["tfxp_config_sha256"].string_value


# The baselines come from resolvers locally and from container tasks on the cluster;
# the run in KFP's own artifact types is the cluster's alone.
NOT_ON_BOTH = {"served_model_resolver", "drift_baseline_resolver", "RunReport"}


@pytest.mark.e2e
def test_the_run_shows_itself_in_kfp_artifact_types(compiled, rehearsed):
    """The report task's outputs, as KFP's launcher leaves them for its UI: typed by
    KFP's schema titles in ML Metadata with a display_name, HTML and Markdown as
    files at their URIs, metrics as custom properties in the form the UI checks."""
    from google.protobuf import json_format

    from pipeline.kubeflow.container.entrypoint import local_path
    assert rehearsed["code"] == 0, rehearsed["text"]
    store = open_store(sqlite_connection(rehearsed["store"], must_exist=True))
    types = {t.id: t.name for t in store.get_artifact_types()}
    found = {types[a.type_id]: a for a in store.get_artifacts()
             if types[a.type_id].startswith("system.")}
    assert set(found) == {"system.HTML", "system.Markdown", "system.Metrics",
                          "system.ClassificationMetrics"}
    for title, artifact in found.items():
        assert artifact.uri.startswith(compiled["cfg"].kubeflow.pipeline_root), title
        assert artifact.custom_properties["display_name"].string_value, title

    def read(title):
        return open(local_path(found[title].uri, str(rehearsed["workdir"] / "launcher")),
                    encoding="utf-8").read()

    [run] = [c for c in store.get_contexts() if c.name.startswith("rehearsal-")]
    html = read("system.HTML")
    assert html.startswith("<!DOCTYPE html>")  # self-contained, as `tfxp report` writes it
    assert f"Run {run.name} of chicago-taxi" in html and "BLESSED" in html
    assert "NOT BLESSED" not in html and "Data statistics" in html
    assert read("system.Markdown").startswith("# Model card")  # pushed: the card
    metrics = found["system.Metrics"].custom_properties
    assert metrics["auc"].double_value > 0.7
    count = metrics["example_count"].double_value
    assert count > 0
    classification = found["system.ClassificationMetrics"].custom_properties
    # As the launcher converts them (structValueToMLMDValue) and the UI unwraps them.
    matrix = json_format.MessageToDict(classification["confusionMatrix"].struct_value)["struct"]
    assert [a["displayName"] for a in matrix["annotationSpecs"]] == ["0", "1"]
    assert [len(r["row"]) for r in matrix["rows"]] == [2, 2]
    assert sum(sum(r["row"]) for r in matrix["rows"]) == count
    roc = json_format.MessageToDict(classification["confidenceMetrics"].struct_value)["list"]
    assert 2 < len(roc) <= 201
    assert all(set(p) == {"confidenceThreshold", "falsePositiveRate", "recall"} for p in roc)
    assert all(0 <= p["falsePositiveRate"] <= 1 and 0 <= p["recall"] <= 1 for p in roc)


def _answers(runs: dict, trace: dict) -> dict:
    """What `tfxp runs` and `tfxp lineage` say that must not depend on where it ran."""
    tasks = {n["node_id"]: n["state"] for n in runs["nodes"]}
    return {
        "status": runs["status"], "blessed": runs["blessed"],
        "pushed_in_this_run": runs["pushed_in_this_run"],
        "states": {k: v for k, v in tasks.items() if k not in NOT_ON_BOTH},
        "provenance": sorted(k for k in runs["provenance"] if k != "config_dir"),
        "project_version": runs["provenance"]["project_version"],
        "model": {k: trace["model"][k] for k in ("blessed", "pushed")},
        "digest": trace["data"]["content_digest"],
        "rows": trace["data"]["fingerprint"].split(",")[:3],  # split, files, bytes
        "splits": sorted((s["name"], s["hash_buckets"])  # (the compiled spec sorts them)
                         for s in trace["data"]["split_config"]["split_config"]["splits"]),
        "span": trace["data"]["span"],
        "anomalies": trace["data"]["anomalies"],
        "entry_points": trace["code"]["entry_points"],
        "code": {k: trace["code"][k] for k in ("project_version", "git_commit")},
        "kinds": sorted({n["type"] for n in trace["nodes"] if n["kind"] == "artifact"
                         and not n["label"].startswith(tuple(NOT_ON_BOTH))}),
        "problems": trace["problems"],
    }


@pytest.mark.e2e
def test_rehearsal_answers_as_a_local_run(rehearsed, lineage_runs):
    # The local run of the same rows (tests/lineage_runs.py: its first run).
    assert open(rehearsed["csv"], "rb").read() == open(lineage_runs.csv[0], "rb").read()
    code, local_runs = tfxp("runs", "--root", lineage_runs.root, "--format", "json")
    assert code == 0
    first = json.loads(local_runs)[0]
    code, local_trace = tfxp("lineage", "--root", lineage_runs.root, first["run_id"],
                             "--format", "json")
    assert code == 0, local_trace
    code, kfp_runs = tfxp("runs", "--metadata-sqlite", rehearsed["store"], "--format", "json")
    assert code == 0, kfp_runs
    [rehearsal] = json.loads(kfp_runs)
    code, kfp_trace = tfxp("lineage", "--metadata-sqlite", rehearsed["store"],
                           rehearsal["run_id"], "--format", "json")
    assert code == 0, kfp_trace
    local, kfp = _answers(first, json.loads(local_trace)), _answers(rehearsal,
                                                                  json.loads(kfp_trace))
    assert kfp == local
    assert kfp["status"] == "pushed" and kfp["problems"] == []
    # The trace goes back to the CSV the task read, through the cluster's paths.
    trace = json.loads(kfp_trace)
    assert trace["data"]["data_path"] == rehearsed["csv"]
    assert trace["config"]["values"]["data"]["path"] == DATA_IN_CLUSTER


@pytest.mark.e2e
def test_a_rejected_csv_exits_3_naming_the_feature(compiled, tmp_path):
    """The data stage alone (the tasks up to the gate), on a CSV with an unseen payment type."""
    spec = copy.deepcopy(compiled["spec"])
    keep = {"CsvExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator", "DataGate"}
    spec["root"]["dag"]["tasks"] = {n: t for n, t in spec["root"]["dag"]["tasks"].items()
                                    if n in keep}
    path = tmp_path / "data-stage.kfp.yaml"
    path.write_text(yaml.safe_dump_all([spec, compiled["platform"]]))
    sample = taxi_sample(str(tmp_path / "data"), every=3,
                         change=unseen_category("payment_type", "Bitcoin"))
    code, text = tfxp("rehearse", str(path), "--config", compiled["config"], "--workdir",
                      str(tmp_path / "work"), "--mount",
                      f"{DATA_IN_CLUSTER}={os.path.dirname(sample)}")
    assert code == 3, text
    assert "DATA REJECTED" in text and "payment_type" in text and "Bitcoin" in text
    assert "x DataGate" in text


def _credit_cards_paid_cash(header, rows):
    """The same trips, every card payment now cash: payment_type's distribution moves."""
    return header, [dict(r, payment_type="Cash") if r["payment_type"] == "Credit Card" else r
                    for r in rows]


@pytest.mark.e2e
def test_a_drifted_csv_exits_3_naming_the_features(compiled, rehearsed, tmp_path):
    """Against the version the rehearsal pushed: its training statistics, kept beside it
    on the serving volume, are the drift check's baseline on the cluster."""
    assert rehearsed["code"] == 0, rehearsed["text"]
    cfg = compiled["cfg"]
    workdir = tmp_path / "work"
    shutil.copytree(rehearsed["workdir"] / "volumes", workdir / "volumes")
    spec = copy.deepcopy(compiled["spec"])
    keep = {"CsvExampleGen", "ImportSchemaGen", "StatisticsGen", "ExampleValidator", "DataGate",
            "drift_baseline_resolver", "DriftCheck"}
    assert keep <= set(spec["root"]["dag"]["tasks"])
    spec["root"]["dag"]["tasks"] = {n: t for n, t in spec["root"]["dag"]["tasks"].items()
                                    if n in keep}
    path = tmp_path / "drift-stage.kfp.yaml"
    path.write_text(yaml.safe_dump_all([spec, compiled["platform"]]))
    sample = taxi_sample(str(tmp_path / "data"), every=3, change=_credit_cards_paid_cash)
    code, text = tfxp("rehearse", str(path), "--config", compiled["config"], "--workdir",
                      str(workdir), "--mount", f"{DATA_IN_CLUSTER}={os.path.dirname(sample)}")
    assert code == 3, text
    assert "DATA DRIFT" in text and "payment_type" in text
    assert "x DriftCheck" in text
    served = workdir / "volumes" / cfg.kubeflow.serving_pvc / cfg.serving.model_name
    [version] = [v for v in os.listdir(served) if v.isdigit()]
    assert f"'baseline_version': '{version}'" in (
        workdir / "tasks" / "drift_baseline_resolver" / "log.txt").read_text()
