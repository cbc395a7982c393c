"""`tfxp compile` then `tfxp rehearse`: the compiled spec runs task by task as
KFP's driver and launcher would, on a sample of the shipped taxi CSV, and a
model is pushed; specs that would fail on the cluster fail here, naming the
task."""
from __future__ import annotations

import copy
import io
import json
import os
from contextlib import redirect_stdout

import pytest
import yaml

from pipeline.cli.main import main
from pipeline.kubeflow.compiler import REPO_ROOT, cluster_config, load_spec
from pipeline.kubeflow.rehearse import RehearsalError, check_spec, rehearse
from tests.datasets import taxi_sample

DATA_IN_CLUSTER = "/data/taxi"


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
    # In-process Beam: this machine has two cores, a cluster node more.
    raw["kubeflow"] = {**raw.get("kubeflow", {}), "data_path": DATA_IN_CLUSTER, "beam_args": [
        "--direct_running_mode=in_memory", "--direct_num_workers=1"]}
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
    with pytest.raises(RehearsalError) as err:
        rehearse(spec, compiled["platform"], str(tmp_path),
                 {kf.project_dir: str(REPO_ROOT)}, volumes={"/serving": str(tmp_path / "v")})
    assert "task ImportSchemaGen failed" in str(err.value)
    assert "models.not_in_the_image" in str(err.value)


@pytest.mark.e2e
def test_compiled_spec_rehearses_to_a_pushed_model(compiled):
    directory = compiled["dir"]
    sample_dir = os.path.dirname(taxi_sample(str(directory / "data"), every=3))
    workdir = directory / "work"
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["rehearse", compiled["path"], "--config", compiled["config"],
                     "--workdir", str(workdir), "--mount", f"{DATA_IN_CLUSTER}={sample_dir}"])
    text = out.getvalue()
    assert code == 0, text
    tasks = set(compiled["spec"]["root"]["dag"]["tasks"])
    for task in tasks:
        assert f"= {task} " in text, task
    # The Pusher wrote a complete version on the serving volume, and nothing else.
    cfg = compiled["cfg"]
    serving = workdir / "volumes" / cfg.kubeflow.serving_pvc / cfg.serving.model_name
    [version] = os.listdir(serving)
    assert version.isdigit()
    assert (serving / version / "saved_model.pb").exists()
    assert (serving / version / "variables").is_dir()
    assert f"Served versions: {version}" in text and "Blessed and pushed." in text
    # Outputs travelled as ExecutorOutputs: the blessing the Pusher read says blessed,
    # against the baseline task's output (the candidate, on a first run).
    output = json.loads((workdir / "tasks" / "Evaluator" / "executor_output.json").read_text())
    [blessing] = output["artifacts"]["blessing"]["artifacts"]
    assert blessing["metadata"]["blessed"] == 1
    assert blessing["metadata"]["baseline_model"].startswith(cfg.kubeflow.pipeline_root)
    assert "baseline_is_candidate" in (workdir / "tasks" / "served_model_resolver"
                                       / "log.txt").read_text()
    # Artifacts live under the emulated object store, as the launcher would keep them.
    examples = list((workdir / "launcher" / "minio").rglob("CsvExampleGen/examples/Split-train"))
    assert examples, "no ExampleGen output under the pipeline root"
