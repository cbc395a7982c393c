"""`tfxp compile`: the real pipeline as a KFP v2 spec, and one test per fix
open-source Kubeflow Pipelines needs (see pipeline/kubeflow/compiler.py)."""
from __future__ import annotations

import importlib
import io
import json
import os
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import yaml
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from pipeline.cli.main import main
from pipeline.config import load_config
from pipeline.errors import CompileError
from pipeline.kubeflow import compiler as kubeflow
from pipeline.kubeflow.compiler import REPO_ROOT

IMAGE = "registry.example.com/ml/tfx-kfp-reference:test-7"
CLUSTER_BEAM = ["--runner=FlinkRunner", "--flink_master=flink-jobmanager:8081",
                "--environment_type=LOOPBACK"]
NODES = {"CsvExampleGen", "StatisticsGen", "SchemaGen", "ImportSchemaGen", "ExampleValidator",
         "DataGate", "drift_baseline_resolver", "DriftCheck", "Transform", "Trainer",
         "served_model_resolver", "Evaluator", "Pusher", "RunReport"}
# The resolvers' stand-ins: container tasks of this project, not TFX executors.
BASELINE_TASKS = {"served_model_resolver", "drift_baseline_resolver"}
# Container tasks of this project, not TFX executors.
PROJECT_TASKS = BASELINE_TASKS | {"RunReport"}


def write_config(directory: Path, **kubeflow) -> str:
    """configs/taxi.yaml, its kubeflow block amended (the schema path kept absolute)."""
    raw = yaml.safe_load((REPO_ROOT / "configs" / "taxi.yaml").read_text())
    raw["schema"] = str(REPO_ROOT / "schemas" / "taxi" / "schema.pbtxt")
    raw["kubeflow"] = {**raw.get("kubeflow", {}), "beam_args": CLUSTER_BEAM, **kubeflow}
    path = directory / "taxi-kfp.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


@pytest.fixture(scope="module")
def compiled(tmp_path_factory):
    directory = tmp_path_factory.mktemp("compile")
    config = write_config(directory)
    output = str(directory / "taxi.kfp.yaml")
    out = io.StringIO()
    os.environ["KFP_BEARER_TOKEN"] = "compile-must-not-see-this-token"
    try:
        with redirect_stdout(out):
            code = main(["compile", "--config", config, "--image", IMAGE, "--output", output])
    finally:
        del os.environ["KFP_BEARER_TOKEN"]
    assert code == 0, out.getvalue()
    spec, platform = kubeflow.load_spec(output)
    return {"path": output, "text": Path(output).read_text(), "spec": spec,
            "platform": platform, "cfg": kubeflow.cluster_config(config),
            "stdout": out.getvalue()}


def tasks(compiled):
    return compiled["spec"]["root"]["dag"]["tasks"]


def executor_of(compiled, task):
    spec = compiled["spec"]
    label = spec["components"][tasks(compiled)[task]["componentRef"]["name"]]["executorLabel"]
    return label, spec["deploymentSpec"]["executors"][label]


def test_yaml_is_what_kfp_client_reads(compiled):
    from kfp.client.client import _extract_pipeline_yaml
    doc = _extract_pipeline_yaml(compiled["path"])
    assert doc.pipeline_spec.pipeline_info.name == "chicago-taxi"
    # Strict parse: no field the PipelineSpec proto does not know.
    proto = json_format.ParseDict(compiled["spec"], pipeline_spec_pb2.PipelineSpec())
    assert proto.schema_version == "2.1.0"
    assert NODES <= set(proto.root.dag.tasks)
    json_format.ParseDict(compiled["platform"], pipeline_spec_pb2.PlatformSpec())
    assert "Wrote " + compiled["path"] in compiled["stdout"]


def test_every_component_is_a_container_task_with_the_image(compiled):
    assert NODES <= set(tasks(compiled))
    for name in tasks(compiled):
        _, executor = executor_of(compiled, name)
        assert executor["container"]["image"] == IMAGE, name


def test_model_code_by_dotted_path_importable(compiled):
    t = tasks(compiled)

    def const(task, key):
        return t[task]["inputs"]["parameters"][key]["runtimeValue"]["constant"]

    assert const("Transform", "preprocessing_fn") == "models.preprocessing.preprocessing_fn"
    assert const("Trainer", "run_fn") == "models.model.run_fn"
    text = compiled["text"]
    assert "module_file" not in text and ".whl" not in text and "file://" not in text
    for name in set(tasks(compiled)) - PROJECT_TASKS:
        args = executor_of(compiled, name)[1]["container"]["args"]
        module, _, cls = args[args.index("--executor_class_path") + 1].rpartition(".")
        assert hasattr(importlib.import_module(module), cls), name


def test_parameters_are_2_1_and_reach_the_executor(compiled):
    """Fix 1: a launcher that fills only parameterValues gives TFX every parameter."""
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as utils
    spec = compiled["spec"]
    for component in spec["components"].values():
        for p in component.get("inputDefinitions", {}).get("parameters", {}).values():
            assert "parameterType" in p and "type" not in p
    trainer = tasks(compiled)["Trainer"]["inputs"]["parameters"]
    values = {k: v["runtimeValue"]["constant"] for k, v in trainer.items()}
    executor_input = json_format.ParseDict(
        {"inputs": {"parameterValues": values}}, pipeline_spec_pb2.ExecutorInput())
    args = executor_of(compiled, "Trainer")[1]["container"]["args"]
    inputs_spec = json_format.Parse(args[args.index("--json_serialized_inputs_spec_args") + 1],
                                    pipeline_spec_pb2.ComponentInputsSpec())
    props = utils.parse_execution_properties(executor_input.inputs.parameter_values,
                                             executor_input.inputs.parameters, inputs_spec)
    assert props["run_fn"] == "models.model.run_fn"
    assert json.loads(props["custom_config"])["label"]["column"] == "tips"
    assert json.loads(props["train_args"])["num_steps"] == 500


def test_no_local_paths_or_secrets(compiled):
    text = compiled["text"] + json.dumps(compiled["platform"])
    import tfx
    for local in (str(REPO_ROOT), str(Path.home()), os.path.dirname(tfx.__file__), "/tmp/"):
        assert local not in text, local
    for word in ("compile-must-not-see-this-token", "Bearer", "password", "authservice"):
        assert word.lower() not in text.lower()


def test_artifact_types_are_schema_titles_tfx_can_import(compiled):
    """Fix 2: no instanceSchema, and every title a TFX task sees maps to a TFX class
    (KFP's system.* types are the report task's outputs alone: fix 9)."""
    from tfx.orchestration.kubeflow.v2 import compiler_utils
    titles = set()
    for name, component in compiled["spec"]["components"].items():
        if name == "RunReport":
            continue
        for section in ("inputDefinitions", "outputDefinitions"):
            for art in component.get(section, {}).get("artifacts", {}).values():
                assert list(art["artifactType"]) == ["schemaTitle"]
                titles.add(art["artifactType"]["schemaTitle"])
    assert titles <= set(compiler_utils.TITLE_TO_CLASS_PATH)
    assert {"tfx.Examples", "tfx.Model", "tfx.ModelBlessing", "tfx.PushedModel"} <= titles
    # What the launcher hands back parses as TFX's entrypoint parses it:
    # tests/kubeflow/test_tfx_internals.py.


def test_unknown_artifact_type_is_a_compile_error():
    spec = {"components": {"Odd": {"outputDefinitions": {"artifacts": {"out": {
        "artifactType": {"instanceSchema": "title: mycorp.Thing\ntype: object\n"}}}}}}}
    with pytest.raises(CompileError, match="component Odd.*mycorp.Thing"):
        kubeflow.use_schema_titles(spec)


def test_tfx_tasks_run_through_the_local_path_entrypoint(compiled):
    """Fix 3: artifacts at the launcher's local paths (minio, #13476 markers)."""
    for name in set(tasks(compiled)) - PROJECT_TASKS:
        command = executor_of(compiled, name)[1]["container"]["command"]
        assert command[:3] == ["python", "-m", "pipeline.kubeflow.container.entrypoint"], name


def test_entrypoint_maps_uris_to_launcher_paths_and_back(tmp_path):
    from pipeline.kubeflow.container import entrypoint as ep
    root = str(tmp_path)
    for uri, local in [("minio://mlpipeline/v2/a/b", f"{root}/minio/mlpipeline/v2/a/b"),
                       ("s3://bucket/x", f"{root}/s3/bucket/x"),
                       ("gs://bucket/y/z", f"{root}/gcs/bucket/y/z")]:
        assert ep.local_path(uri, root) == local
        assert ep.remote_uri(local, root) == uri
    assert ep.local_path("/already/local", root) == "/already/local"
    invocation = {"inputs": {"artifacts": {"examples": {"artifacts": [
        {"uri": "minio://b/in", "type": {"schemaTitle": "tfx.Examples"}}]}}},
        "outputs": {"artifacts": {"statistics": {"artifacts": [{"uri": "gs://b/out"}]}},
                    "outputFile": f"{root}/out.json"}}
    os.environ[ep.ROOT_ENV] = root
    try:
        argv = ep.localize_invocation(["--executor_class_path", "x.Y", ep.INVOCATION_FLAG,
                                       json.dumps(invocation)])
        mapped = json.loads(argv[3])
        [examples] = mapped["inputs"]["artifacts"]["examples"]["artifacts"]
        [statistics] = mapped["outputs"]["artifacts"]["statistics"]["artifacts"]
        assert examples["uri"] == f"{root}/minio/b/in"
        assert statistics["uri"] == f"{root}/gcs/b/out"
        Path(f"{root}/out.json").write_text(json.dumps(
            {"artifacts": {"statistics": {"artifacts": [{"uri": f"{root}/gcs/b/out", "metadata": {
                "current_model": f"{root}/minio/b/model", "blessed": 1}}]}}}))
        ep.restore_output_uris(f"{root}/out.json")
    finally:
        del os.environ[ep.ROOT_ENV]
    restored = json.loads(Path(f"{root}/out.json").read_text())
    [artifact] = restored["artifacts"]["statistics"]["artifacts"]
    assert artifact["uri"] == "gs://b/out"
    assert artifact["metadata"] == {"current_model": "minio://b/model", "blessed": 1}


def test_example_gen_driver_runs_inside_its_container(compiled):
    """Fix 4: open-source KFP ignores lifecycle.preCacheCheck."""
    container = executor_of(compiled, "CsvExampleGen")[1]["container"]
    assert container["command"][-1] == "example_gen"
    assert "lifecycle" not in container
    assert "lifecycle" not in compiled["text"]


def test_resolvers_become_a_container_task_feeding_the_evaluator(compiled):
    """Fix 5: open-source KFP's Argo compiler rejects resolver executors."""
    executors = compiled["spec"]["deploymentSpec"]["executors"]
    assert not [label for label, e in executors.items() if "resolver" in e]
    label, baseline = executor_of(compiled, "served_model_resolver")
    assert baseline["container"]["command"] == [
        "python", "-m", "pipeline.kubeflow.container.baseline"]
    assert "/serving/chicago_taxi" in baseline["container"]["args"]
    t = tasks(compiled)
    assert t["Evaluator"]["inputs"]["artifacts"]["baseline_model"]["taskOutputArtifact"] == {
        "producerTask": "served_model_resolver", "outputArtifactKey": "model"}
    assert t["served_model_resolver"]["inputs"]["artifacts"]["model"][
        "taskOutputArtifact"]["producerTask"] == "Trainer"
    assert "served_model_resolver" in t["Evaluator"]["dependentTasks"]


def _model(directory: Path, marker: str) -> None:
    directory.mkdir(parents=True)
    (directory / "saved_model.pb").write_text(marker)


def test_baseline_is_the_newest_served_version_else_none(tmp_path):
    from components.atomic_pusher import model_config
    from pipeline.kubeflow.container.baseline import resolve_baseline
    from pipeline.kubeflow.container.entrypoint import NO_ARTIFACT
    candidate, serving = tmp_path / "candidate", tmp_path / "serving"
    _model(candidate / "Format-Serving", "candidate")
    first = resolve_baseline(str(candidate), str(serving), str(tmp_path / "out1"))
    assert first[NO_ARTIFACT] == 1  # a first run: no baseline, as locally
    assert not (tmp_path / "out1/Format-Serving").exists()
    for version, marker in (("1700000000", "old"), ("1800000000", "newest")):
        _model(serving / version, marker)
        model_config.after_push("taxi", str(serving), int(version))
    _model(serving / "1810000000", "not served")  # on disk, not in models.config
    (serving / ".staging-1900000000").mkdir()  # never a half-written version
    second = resolve_baseline(str(candidate), str(serving), str(tmp_path / "out2"))
    assert second == {"baseline_version": "1800000000"}
    assert (tmp_path / "out2/Format-Serving/saved_model.pb").read_text() == "newest"
    # The candidate already served (an unchanged re-run): the version before it.
    _model(serving / "1850000000", "candidate")
    model_config.after_push("taxi", str(serving), 1850000000)
    third = resolve_baseline(str(candidate), str(serving), str(tmp_path / "out3"))
    assert third == {"baseline_version": "1700000000"}


def test_paths_are_inside_the_image(compiled):
    """Fix 6: data and schema where the image holds them; serving on the PVC."""
    kf = compiled["cfg"].kubeflow
    params = tasks(compiled)["CsvExampleGen"]["inputs"]["parameters"]
    assert params["input_base"]["runtimeValue"]["constant"] == (
        f"{kf.site_packages}/tfx/examples/chicago_taxi_pipeline/data/simple")
    assert json.loads(params["input_config"]["runtimeValue"]["constant"])["splits"][0][
        "pattern"] == "data.csv"
    schema = tasks(compiled)["ImportSchemaGen"]["inputs"]["parameters"]["schema_file"]
    assert schema["runtimeValue"]["constant"] == f"{kf.project_dir}/schemas/taxi/schema.pbtxt"
    push = json.loads(tasks(compiled)["Pusher"]["inputs"]["parameters"]["push_destination"][
        "runtimeValue"]["constant"])
    assert push["filesystem"]["base_directory"] == "/serving/chicago_taxi"
    mounts = compiled["platform"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for task in ("Pusher", "RunReport", *BASELINE_TASKS):
        label, _ = executor_of(compiled, task)
        assert mounts[label]["pvcMount"] == [{
            "pvcNameParameter": {"runtimeValue": {"constant": kf.serving_pvc}},
            "mountPath": "/serving"}]
    assert len(mounts) == 4


def test_volume_mounts_use_the_field_current_kfp_kubernetes_keeps(compiled):
    """kfp-kubernetes 2.17 deprecates PvcMount's `constant` (and the other
    pvc_reference fields) for `pvc_name_parameter`; nothing compiled uses them."""
    mounts = compiled["platform"]["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    deprecated = {"constant", "taskOutputParameter", "componentInputParameter"}
    assert mounts and all(m["pvcNameParameter"]["runtimeValue"]["constant"]
                          for e in mounts.values() for m in e["pvcMount"])
    assert not [key for e in mounts.values() for m in e["pvcMount"] for key in m
                if key in deprecated]


def test_no_field_the_spec_protos_deprecate(compiled):
    """kubernetes/check_spec_with_kfp.py's walk, on the pipeline spec with the kfp
    installed here (kfp 2.17.3 and kfp-kubernetes 2.17.3: see kubernetes/README.md)."""
    import importlib.util
    found = importlib.util.spec_from_file_location(
        "check_spec_with_kfp", REPO_ROOT / "kubernetes" / "check_spec_with_kfp.py")
    checker = importlib.util.module_from_spec(found)
    found.loader.exec_module(checker)
    proto = json_format.ParseDict(compiled["spec"], pipeline_spec_pb2.PipelineSpec())
    assert checker.deprecated_fields(proto, "spec") == []
    # The 2.0 form (a parameter's `type`) is what it catches.
    old = pipeline_spec_pb2.ComponentInputsSpec()
    old.parameters["x"].type = pipeline_spec_pb2.PrimitiveType.STRING
    assert checker.deprecated_fields(old, "inputs") == ["inputs.parameters[0].type"]


def test_kubeflow_data_path_and_foreign_paths(tmp_path):
    cfg = load_config(write_config(tmp_path, data_path="gs://taxi-data/csv/"))
    sources = kubeflow.cluster_sources(cfg)
    assert (sources.input_base, sources.pattern) == ("gs://taxi-data/csv", "*")
    raw = yaml.safe_load(Path(write_config(tmp_path)).read_text())
    raw["data"]["path"] = str(tmp_path / "data.csv")
    (tmp_path / "data.csv").write_text("a\n1\n")
    (tmp_path / "outside.yaml").write_text(yaml.safe_dump(raw))
    outside = load_config(tmp_path / "outside.yaml")
    with pytest.raises(CompileError, match="not in the pipeline image.*kubeflow.data_path"):
        kubeflow.cluster_sources(outside)


def test_compiling_needs_only_the_config_and_the_schema(tmp_path):
    """No CSV on this machine: the cluster's copy is named by kubeflow.data_path, and the
    spec comes out of `create_pipeline` as it is, ExampleGen's input included."""
    raw = yaml.safe_load(Path(write_config(tmp_path, data_path="/data/taxi/data.csv"))
                         .read_text())
    raw["data"]["path"] = str(tmp_path / "nowhere" / "data.csv")
    config = tmp_path / "nowhere.yaml"
    config.write_text(yaml.safe_dump(raw))
    output = tmp_path / "spec.yaml"
    with redirect_stdout(io.StringIO()):
        assert main(["compile", "--config", str(config), "--output", str(output)]) == 0
    spec, _ = kubeflow.load_spec(str(output))
    params = spec["root"]["dag"]["tasks"]["CsvExampleGen"]["inputs"]["parameters"]
    assert params["input_base"]["runtimeValue"]["constant"] == "/data/taxi"
    assert json.loads(params["input_config"]["runtimeValue"]["constant"])["splits"][0][
        "pattern"] == "data.csv"


def test_create_pipeline_reads_no_file_of_this_machine(tmp_path):
    """The DAG is built from the sources it is given, however they look from here."""
    from pipeline.pipeline import Sources, create_pipeline
    cfg = load_config(write_config(tmp_path))
    missing = str(tmp_path / "missing")
    nodes = {n.id: n for n in create_pipeline(
        cfg, pipeline_root="/nonexistent/root", serving_dir="/nonexistent/serving",
        sources=Sources(missing, "*.csv", f"{missing}/schema.pbtxt")).components}
    assert nodes["CsvExampleGen"].exec_properties["input_base"] == missing
    assert nodes["ImportSchemaGen"].exec_properties["schema_file"] == f"{missing}/schema.pbtxt"
    # The local runner is the one that checks (pipeline.local.inputs).
    from pipeline.errors import ConfigError
    from pipeline.local.inputs import local_sources
    with pytest.raises(ConfigError, match="data path not found"):
        local_sources(cfg, data_path=f"{missing}/data.csv")


def test_the_run_is_published_in_kfp_artifact_types(compiled):
    """Fix 9: a last task whose outputs are the types the KFP UI draws (kfp.dsl's
    HTML, Markdown, Metrics and ClassificationMetrics), after the Pusher."""
    from kfp.dsl.types import artifact_types
    t = tasks(compiled)
    component = compiled["spec"]["components"][t["RunReport"]["componentRef"]["name"]]
    titles = {k: a["artifactType"]["schemaTitle"]
              for k, a in component["outputDefinitions"]["artifacts"].items()}
    assert titles == {"report": artifact_types.HTML.schema_title,
                      "card": artifact_types.Markdown.schema_title,
                      "metrics": artifact_types.Metrics.schema_title,
                      "classification_metrics": artifact_types.ClassificationMetrics.schema_title}
    assert set(titles.values()) == {"system.HTML", "system.Markdown", "system.Metrics",
                                    "system.ClassificationMetrics"}
    assert "Pusher" in t["RunReport"]["dependentTasks"]
    inputs = t["RunReport"]["inputs"]
    assert inputs["artifacts"]["evaluation"]["taskOutputArtifact"] == {
        "producerTask": "Evaluator", "outputArtifactKey": "evaluation"}
    # The run it reports, as KFP's driver resolves it.
    assert inputs["parameters"]["run_id"]["runtimeValue"]["constant"] == "{{$.pipeline_job_uuid}}"
    _, executor = executor_of(compiled, "RunReport")
    assert executor["container"]["command"] == ["python", "-m", "pipeline.kubeflow.report_task"]
    assert executor["container"]["image"] == IMAGE


def test_resources_root_and_cluster_beam_args(compiled):
    """Fix 7: requests/limits everywhere, the pipeline root, Beam args from config."""
    kf = compiled["cfg"].kubeflow
    spec = compiled["spec"]
    assert spec["defaultPipelineRoot"] == kf.pipeline_root
    for label, executor in spec["deploymentSpec"]["executors"].items():
        assert executor["container"]["resources"] == {
            "cpuRequest": kf.cpu_request, "cpuLimit": kf.cpu_limit,
            "memoryRequest": kf.memory_request_gb, "memoryLimit": kf.memory_limit_gb}, label
    for name in set(tasks(compiled)) - PROJECT_TASKS:
        args = executor_of(compiled, name)[1]["container"]["args"]
        assert args[-len(CLUSTER_BEAM):] == CLUSTER_BEAM, name
    assert "--direct_running_mode=in_memory" not in compiled["text"]  # the local args


def test_config_rejects_a_local_pipeline_root(tmp_path):
    from pipeline.errors import ConfigError
    with pytest.raises(ConfigError, match="kubeflow.pipeline_root.*object-store"):
        load_config(write_config(tmp_path, pipeline_root="/mnt/artifacts"))


def test_resolvers_become_container_tasks(compiled):
    """The drift check runs on the cluster: its baseline statistics come from a container
    task reading what the Pusher kept beside the served version (no override turns it off)."""
    assert compiled["cfg"].drift_check.enabled is True
    t = tasks(compiled)
    assert t["DriftCheck"]["inputs"]["artifacts"]["baseline_statistics"]["taskOutputArtifact"] == {
        "producerTask": "drift_baseline_resolver", "outputArtifactKey": "statistics"}
    assert t["drift_baseline_resolver"]["inputs"]["artifacts"]["statistics"][
        "taskOutputArtifact"] == {"producerTask": "StatisticsGen",
                                  "outputArtifactKey": "statistics"}
    assert {"drift_baseline_resolver", "DataGate"} <= set(t["DriftCheck"]["dependentTasks"])
    assert "DriftCheck" in t["Transform"]["dependentTasks"]
    _, drift = executor_of(compiled, "drift_baseline_resolver")
    assert drift["container"]["command"] == [
        "python", "-m", "pipeline.kubeflow.container.drift_baseline"]
    assert drift["container"]["args"][-2:] == ["--serving_dir", "/serving/chicago_taxi"]
    assert t["drift_baseline_resolver"]["cachingOptions"] == {"enableCache": False}
    # The code digest (the cache key's share of the code) reaches the cluster's spec too,
    # the same digest as a local run's, so KFP's cache also changes with the code.
    from pipeline.pipeline import create_pipeline
    local = create_pipeline(compiled["cfg"], pipeline_root="/nonexistent/root",
                            serving_dir="/nonexistent/serving")
    want = {n.id: n.exec_properties.get("code_digest") for n in local.components}
    for task in ("Transform", "Trainer", "Evaluator", "Pusher", "DataGate"):
        assert t[task]["inputs"]["parameters"]["code_digest"]["runtimeValue"][
            "constant"] == want[task], task


def test_a_resolver_kfp_cannot_express_is_named():
    """Any resolver without a container stand-in is named at compile time."""
    from tfx import v1 as tfx
    from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
        LatestBlessedModelStrategy,
    )

    class Newest(LatestBlessedModelStrategy):
        pass

    node = tfx.dsl.Resolver(strategy_class=Newest, model=tfx.dsl.Channel(
        type=tfx.types.standard_artifacts.Model)).with_id("odd_resolver")
    pipeline = tfx.dsl.Pipeline(pipeline_name="p", pipeline_root="/tmp/p", components=[node])
    with pytest.raises(CompileError, match="odd_resolver: resolver strategy Newest"):
        kubeflow._check_resolvers(pipeline)


def test_the_config_is_recorded_for_provenance_as_the_cluster_sees_it(compiled):
    _, example_gen = executor_of(compiled, "CsvExampleGen")
    [env] = [e for e in example_gen["container"]["env"] if e["name"] == "TFXP_CONFIG"]
    recorded = json.loads(env["value"])
    kf = compiled["cfg"].kubeflow
    assert recorded["schema"] == f"{kf.project_dir}/schemas/taxi/schema.pbtxt"
    assert recorded["data"]["path"].startswith(kf.site_packages)
    assert recorded["beam_args"] == recorded["kubeflow"]["beam_args"] == CLUSTER_BEAM


def test_portability_check_catches_local_paths_and_credentials():
    spec = {"root": {"dag": {"tasks": {"T": {"inputs": {"parameters": {"p": {"runtimeValue": {
        "constant": str(REPO_ROOT / "schemas" / "taxi" / "schema.pbtxt")}}}}}}}}}
    with pytest.raises(CompileError, match="path of this machine"):
        kubeflow.check_portable(spec)
    with pytest.raises(CompileError, match="credentials never go in a spec"):
        kubeflow.check_portable({"env": [{"name": "X", "value": "Bearer abc"}]})
    kubeflow.check_portable({"constant": "/opt/pipeline/schemas/taxi/schema.pbtxt"})
