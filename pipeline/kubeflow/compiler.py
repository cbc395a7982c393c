"""Kubeflow Pipelines v2 compiler: `create_pipeline(cfg)` as a KFP pipeline spec.

TFX's `KubeflowV2DagRunner` emits the spec; TFX only tests it on Vertex AI.
Open-source KFP v2 needs the fixes below, applied to the compiled spec here
(never by patching TFX at run time).  Each has a test in
tests/kubeflow/test_compiler.py:

1. Pipeline spec schema 2.1 (`use_pipeline_spec_2_1=True`): with 2.0.0 TFX
   executors read the deprecated `inputs.parameters`, which a launcher that
   fills only `parameterValues` leaves empty (tensorflow/tfx#7733).
2. Artifact types as `schemaTitle: tfx.<Type>` instead of an
   `instanceSchema` YAML: the launcher records the MLMD type by title and
   hands it back as `schemaTitle`; with titles TFX knows on both sides no
   artifact arrives untyped or as a `system.*` type TFX cannot import
   (sky-uk/kfp-operator tfx-patch, patches 1-4).
3. Artifacts read and written at the launcher's local paths (the
   `pipeline.kubeflow.container.entrypoint` wrapper): TensorFlow cannot open `minio://`,
   and TF's GCS filesystem leaves zero-byte directory markers that the next
   task's launcher downloads as files (kubeflow/pipelines#13476; kfp-operator
   patches 5 and 7).
4. CsvExampleGen's driver folded into its container: open-source KFP does
   not run `lifecycle.preCacheCheck`.
5. The resolvers replaced by container tasks reading the serving PVC: the
   Evaluator's baseline model (`pipeline.kubeflow.container.baseline`) and
   the DriftCheck's baseline statistics, which the Pusher keeps beside each
   version (`pipeline.kubeflow.container.drift_baseline`): open-source KFP's
   Argo compiler rejects `resolver` executors.
6. Paths inside the image: `create_pipeline` is given the data and the
   curated schema where the image holds them (`cluster_sources`), never this
   machine's; the tasks that read or write the serving PVC mount it (a
   `platforms.kubernetes` document, the claim as `pvcNameParameter`).
7. Resource requests and limits on every container, the pipeline root as the
   spec's `defaultPipelineRoot`, and the cluster's Beam arguments from config.
8. Provenance: the config as compiled (its paths as the cluster sees them) in
   ExampleGen's container environment, which records it with the image's
   git commit and a digest of the data on its `examples` output.
9. The run in KFP's own artifact types (`system.HTML`, `system.Markdown`,
   `system.Metrics`, `system.ClassificationMetrics`), which the KFP UI draws:
   a last task, `pipeline.kubeflow.report_task`, after the Pusher.
"""
from __future__ import annotations

import copy
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import yaml

from pipeline.config import PACKAGE_PREFIX, PipelineConfig, read_text
from pipeline.errors import CompileError, ConfigError
from pipeline.kubeflow import report_task
from pipeline.kubeflow.container import baseline, entrypoint

REPO_ROOT = Path(__file__).resolve().parents[2]
# What the image runs (pipeline.kubeflow.container), named by module.
ENTRYPOINT = ["python", "-m", entrypoint.__name__]
BASELINE_COMMAND = ["python", "-m", baseline.__name__]
# By name: importing it would import the Pusher (TFX) into `tfxp compile`'s start.
DRIFT_BASELINE_COMMAND = ["python", "-m", f"{baseline.__package__}.drift_baseline"]
REPORT_COMMAND = ["python", "-m", report_task.__name__]
TFX_EXECUTOR_MODULE = "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"
SCHEMA_VERSION = "2.1.0"

if TYPE_CHECKING:
    from pipeline.pipeline import Sources

Spec = dict[str, Any]


def cluster_config(path: Optional[str] = None) -> PipelineConfig:
    """The config as compiled for the cluster: `kubeflow.overrides` applied."""
    from pipeline.config import load_config

    cfg = load_config(path)
    if not cfg.kubeflow.overrides:
        return cfg
    return load_config(path, overrides=dict(cfg.kubeflow.overrides))


def serving_dir(cfg: PipelineConfig) -> str:
    """The TF Serving model base path inside the cluster (on the serving PVC)."""
    return f"{cfg.kubeflow.serving_mount.rstrip('/')}/{cfg.serving.model_name}"


def in_image_path(cfg: PipelineConfig, path: str) -> str:
    """A config path as the image sees it: package data, a project file, or a URI."""
    kf = cfg.kubeflow
    if "://" in path:
        return path
    if path.startswith(PACKAGE_PREFIX):
        return f"{kf.site_packages.rstrip('/')}/{path[len(PACKAGE_PREFIX):]}"
    local = Path(cfg.resolve(path)).resolve()
    try:
        rel = local.relative_to(REPO_ROOT)
    except ValueError:
        raise CompileError(
            f"{path}: not inside this project ({REPO_ROOT.name}/) and so not in the "
            f"pipeline image; use a package: path, an object-store URI, or set "
            f"kubeflow.data_path") from None
    return f"{kf.project_dir.rstrip('/')}/{rel.as_posix()}"


def data_input(cfg: PipelineConfig) -> tuple[str, str]:
    """(input_base, file pattern) for CsvExampleGen inside the cluster."""
    kf_path = cfg.kubeflow.data_path
    if kf_path:
        if kf_path.endswith(".csv"):
            return kf_path.rsplit("/", 1)[0], kf_path.rsplit("/", 1)[1]
        return kf_path.rstrip("/"), cfg.data.pattern or "*"
    local = cfg.resolve(cfg.data.path)
    image = in_image_path(cfg, cfg.data.path)
    if os.path.isdir(local) or "://" in local:
        return image.rstrip("/"), cfg.data.pattern or "*"
    return image.rsplit("/", 1)[0], image.rsplit("/", 1)[1]


def cluster_sources(cfg: PipelineConfig) -> "Sources":
    """Fix 6: the data and the curated schema as the image and cluster see them.

    The schema's classes (a multi-class label's) are read from the curated schema
    here; nothing else of this machine is read, so a machine with the config and
    the schema alone compiles (given `kubeflow.data_path`).
    """
    from pipeline.dag.schema import num_label_classes
    from pipeline.pipeline import Sources

    base, pattern = data_input(cfg)
    return Sources(base, pattern, in_image_path(cfg, cfg.schema_file),
                   num_label_classes(cfg, cfg.schema_path))


def _tfx_spec(cfg: PipelineConfig, image: str) -> Spec:
    """The spec exactly as TFX's KubeflowV2DagRunner emits it (schema 2.1)."""
    from tfx import v1 as tfx

    from pipeline.pipeline import create_pipeline

    kf = cfg.kubeflow
    tfx_pipeline = create_pipeline(cfg, pipeline_root=kf.pipeline_root,
                                   serving_dir=serving_dir(cfg), sources=cluster_sources(cfg),
                                   beam_args=list(kf.beam_args))
    _stand_in_resolvers(tfx_pipeline)
    _check_resolvers(tfx_pipeline)
    runner = tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(
            default_image=image, use_pipeline_spec_2_1=True))
    return runner.run(tfx_pipeline, write_out=False)["pipelineSpec"]


def _stand_in_resolvers(tfx_pipeline: Any) -> None:
    """The project's served-model and served-statistics resolvers compile as
    LatestArtifactStrategy stand-ins; `replace_resolvers` then swaps each for
    its container task (`BASELINE_TASKS`)."""
    from tfx.dsl.components.common import resolver
    from tfx.dsl.input_resolution.strategies.latest_artifact_strategy import (
        LatestArtifactStrategy,
    )

    from components.atomic_pusher.served import ServedModelStrategy, ServedStatisticsStrategy
    from pipeline.kubeflow import tfx_internals

    for node in tfx_pipeline.components:
        if (isinstance(node, resolver.Resolver) and node.exec_properties.get(
                resolver.RESOLVER_STRATEGY_CLASS) in (ServedModelStrategy,
                                                      ServedStatisticsStrategy)):
            # Resolver has no setter; its strategy is what the step builder reads.
            tfx_internals.set_resolver_strategy(node, LatestArtifactStrategy)


def _check_resolvers(tfx_pipeline: Any) -> None:
    """Names a resolver the KFP v2 compiler cannot express, before it fails obscurely."""
    from tfx.dsl.components.common import resolver

    supported = {"LatestBlessedModelStrategy", "LatestArtifactStrategy"}
    for node in tfx_pipeline.components:
        if isinstance(node, resolver.Resolver):
            strategy = node.exec_properties.get(resolver.RESOLVER_STRATEGY_CLASS)
            name = getattr(strategy, "__name__", str(strategy))
            if name not in supported:
                raise CompileError(
                    f"{node.id}: resolver strategy {name} cannot be compiled for Kubeflow "
                    f"(TFX's KFP v2 compiler knows only {', '.join(sorted(supported))}); "
                    f"disable the feature that adds it in the config you compile")


# --- fixes, one function each ------------------------------------------------

def cluster_config_json(cfg: PipelineConfig) -> str:
    """The config as the cluster runs it: its paths as the image and cluster see them."""
    values = cfg.model_dump(mode="json", by_alias=True)
    base, pattern = data_input(cfg)
    values["data"]["path"], values["data"]["pattern"] = base, pattern
    values["schema"] = in_image_path(cfg, cfg.schema_file)
    values["beam_args"] = list(cfg.kubeflow.beam_args)  # what the tasks run Beam with
    return json.dumps(values, sort_keys=True)


def record_config(spec: Spec, cfg: PipelineConfig) -> None:
    """Fix 8: ExampleGen's container carries the config it records as provenance."""
    component = spec["root"]["dag"]["tasks"]["CsvExampleGen"]["componentRef"]["name"]
    label = spec["components"][component]["executorLabel"]
    container = spec["deploymentSpec"]["executors"][label]["container"]
    container["env"] = [env for env in container.get("env", [])
                        if env["name"] != entrypoint.CONFIG_ENV]
    container["env"].append({"name": entrypoint.CONFIG_ENV, "value": cluster_config_json(cfg)})


def _title(artifact_type: dict) -> str:
    if "schemaTitle" in artifact_type:
        return artifact_type["schemaTitle"]
    return (yaml.safe_load(artifact_type.get("instanceSchema") or "") or {}).get("title", "")


def use_schema_titles(spec: Spec) -> None:
    """Fix 2: every artifact type is a `schemaTitle` TFX can import in the image."""
    from tfx.orchestration.kubeflow.v2 import compiler_utils

    for name, component in spec["components"].items():
        for section in ("inputDefinitions", "outputDefinitions"):
            for key, art in component.get(section, {}).get("artifacts", {}).items():
                title = _title(art["artifactType"])
                if title not in compiler_utils.TITLE_TO_CLASS_PATH:
                    raise CompileError(
                        f"component {name}: artifact {key!r} has type {title or '(none)'!r}, "
                        f"which TFX in the image cannot map to a class")
                art["artifactType"] = {"schemaTitle": title}


def use_local_path_entrypoint(spec: Spec) -> None:
    """Fixes 3 and 4: TFX containers run through the container entrypoint."""
    for label, executor in spec["deploymentSpec"]["executors"].items():
        container = executor.get("container")
        if not container:
            continue
        command = container.get("command", [])
        if command[-1:] != [TFX_EXECUTOR_MODULE]:
            continue
        role = "example_gen" if container.pop("lifecycle", {}).get("preCacheCheck") else "executor"
        container["command"] = ENTRYPOINT + [role]


# What stands in for a resolver, by the output it resolves: (command, the
# consumer's input the task reads as its own, the artifact type).
BASELINE_TASKS = {
    "model": (BASELINE_COMMAND, "model", "tfx.Model"),  # the Evaluator's baseline
    "statistics": (DRIFT_BASELINE_COMMAND, "statistics", "tfx.ExampleStatistics"),  # drift
}


def replace_resolvers(spec: Spec, cfg: PipelineConfig, image: str) -> None:
    """Fix 5: each resolver node's tasks become one container task (`BASELINE_TASKS`)."""
    executors = spec["deploymentSpec"]["executors"]
    components = spec["components"]
    tasks = spec["root"]["dag"]["tasks"]
    resolver_components = {n for n, c in components.items()
                           if "resolver" in executors[c["executorLabel"]]}
    resolver_tasks = {n for n, t in tasks.items()
                      if t["componentRef"]["name"] in resolver_components}
    # TFX names them <resolver node id>-<channel>-resolver; the task keeps the node id.
    by_node: dict[str, set[str]] = {}
    for name in resolver_tasks:
        by_node.setdefault(name.split("-", 1)[0], set()).add(name)
    for node, group in sorted(by_node.items()):
        consumers = {}
        for task_name, task in tasks.items():
            if task_name in resolver_tasks:
                continue
            for key, ref in task.get("inputs", {}).get("artifacts", {}).items():
                producer = ref.get("taskOutputArtifact", {}).get("producerTask")
                if producer in group:
                    output_key = ref["taskOutputArtifact"]["outputArtifactKey"]
                    if output_key not in BASELINE_TASKS:
                        raise CompileError(f"task {task_name}: input {key!r} comes from "
                                           f"resolver {producer}, which only a Vertex AI run "
                                           f"can resolve")
                    consumers[task_name] = (key, output_key)
        if len(consumers) != 1:
            raise CompileError(f"resolvers {sorted(group)} feed {sorted(consumers)}; expected "
                               f"exactly one task (the Evaluator's baseline model or the "
                               f"DriftCheck's baseline statistics)")
        [(consumer, (key, output_key))] = consumers.items()
        command, own_input, title = BASELINE_TASKS[output_key]
        source = tasks[consumer]["inputs"]["artifacts"][own_input]["taskOutputArtifact"]
        for task_name in group:
            label = components[tasks[task_name]["componentRef"]["name"]]["executorLabel"]
            del components[tasks.pop(task_name)["componentRef"]["name"]], executors[label]
        label = f"{node}_executor"
        typed = {"artifactType": {"schemaTitle": title}}
        components[node] = {"executorLabel": label,
                            "inputDefinitions": {"artifacts": {output_key: copy.deepcopy(typed)}},
                            "outputDefinitions": {"artifacts": {output_key: copy.deepcopy(typed)}}}
        executors[label] = {"container": {
            "image": image, "command": list(command),
            "args": ["--executor_input", "{{$}}", "--serving_dir", serving_dir(cfg)]}}
        tasks[node] = {"taskInfo": {"name": node}, "componentRef": {"name": node},
                       "dependentTasks": [source["producerTask"]],
                       "cachingOptions": {"enableCache": False},  # must see the latest push
                       "inputs": {"artifacts": {output_key: {"taskOutputArtifact": dict(source)}}}}
        tasks[consumer]["inputs"]["artifacts"][key] = {
            "taskOutputArtifact": {"producerTask": node, "outputArtifactKey": output_key}}
        deps = [d for d in tasks[consumer].get("dependentTasks", []) if d not in group]
        tasks[consumer]["dependentTasks"] = sorted(set(deps) | {node})


def add_report_task(spec: Spec, cfg: PipelineConfig, image: str) -> None:
    """Fix 9: a last task publishes the run in KFP's own artifact types (`report_task`).

    A task of its own, not a step of the Pusher's container: the report reads
    the whole run back from KFP's store, which the Pusher's task is still part
    of, and a run that pushed nothing (not blessed) still gets its summary.
    """
    tasks, components = spec["root"]["dag"]["tasks"], spec["components"]
    inputs = {}
    for key, (producer, output, title) in report_task.INPUTS.items():
        if producer in tasks and output in components[tasks[producer]["componentRef"][
                "name"]].get("outputDefinitions", {}).get("artifacts", {}):
            inputs[key] = (producer, output, title)
    name, label = report_task.TASK, f"{report_task.TASK}_executor"
    components[name] = {
        "executorLabel": label,
        "inputDefinitions": {
            "artifacts": {k: {"artifactType": {"schemaTitle": t}}
                          for k, (_, _, t) in inputs.items()},
            "parameters": {"run_id": {"parameterType": "STRING"}}},
        "outputDefinitions": {"artifacts": {
            k: {"artifactType": {"schemaTitle": t}} for k, t in report_task.OUTPUTS.items()}}}
    spec["deploymentSpec"]["executors"][label] = {"container": {
        "image": image, "command": list(REPORT_COMMAND),
        "args": ["--executor_input", "{{$}}", "--serving_dir", serving_dir(cfg),
                 "--metadata", report_task.METADATA_ADDRESS, "--label", cfg.label.column]}}
    tasks[name] = {
        "taskInfo": {"name": name}, "componentRef": {"name": name},
        "dependentTasks": sorted({report_task.AFTER} & set(tasks)
                                 | {p for p, _, _ in inputs.values()}),
        "cachingOptions": {"enableCache": False},  # the run it describes is new each time
        "inputs": {
            "parameters": {"run_id": {"runtimeValue": {
                "constant": report_task.RUN_ID_PLACEHOLDER}}},
            "artifacts": {k: {"taskOutputArtifact": {"producerTask": p,
                                                     "outputArtifactKey": o}}
                          for k, (p, o, _) in inputs.items()}}}


def set_resources(spec: Spec, cfg: PipelineConfig) -> None:
    """Fix 7: requests and limits on every container task."""
    kf = cfg.kubeflow
    for executor in spec["deploymentSpec"]["executors"].values():
        if "container" in executor:
            executor["container"]["resources"] = {
                "cpuRequest": kf.cpu_request, "cpuLimit": kf.cpu_limit,
                "memoryRequest": kf.memory_request_gb, "memoryLimit": kf.memory_limit_gb}


def platform_spec(spec: Spec, cfg: PipelineConfig) -> Spec:
    """Fix 6: the serving PVC mounted where the Pusher and the baseline task look."""
    kf = cfg.kubeflow
    # The claim's name as a parameter: kfp-kubernetes 2.17 deprecates `constant`.
    mount = {"pvcMount": [{"pvcNameParameter": {"runtimeValue": {"constant": kf.serving_pvc}},
                           "mountPath": kf.serving_mount}]}
    labels = sorted(label for label, e in spec["deploymentSpec"]["executors"].items()
                    if serving_dir(cfg) in json.dumps(e.get("container", {}))
                    or "Pusher" in label)
    return {"platforms": {"kubernetes": {"deploymentSpec": {
        "executors": {label: copy.deepcopy(mount) for label in labels}}}}}


_SECRET = re.compile(r"(authorization|bearer\s|password|secret|token|aws_access|"
                     r"authservice_session)", re.I)


def _without_config(spec: Spec) -> Spec:
    """The spec without the config ExampleGen records (`record_config`)."""
    spec = copy.deepcopy(spec)
    for executor in spec.get("deploymentSpec", {}).get("executors", {}).values():
        container = executor.get("container", {})
        if "env" in container:
            container["env"] = [e for e in container["env"]
                                if e.get("name") != entrypoint.CONFIG_ENV]
    return spec


def check_portable(spec: Spec, cfg: Optional[PipelineConfig] = None) -> None:
    """No path of this machine and nothing that looks like a credential."""
    text = json.dumps(spec)
    in_image = [cfg.kubeflow.project_dir, cfg.kubeflow.site_packages] if cfg else []
    local_markers = {str(REPO_ROOT), str(Path.home())}
    # (A checkout at the image's own paths, e.g. compiling inside the image, is fine.)
    for marker in sorted(m for m in local_markers if len(m) > 1
                         and not any(p == m or p.startswith(m + "/") for p in in_image)):
        if marker in text:
            raise CompileError(f"the spec names a path of this machine ({marker}); "
                               f"it would not exist in the cluster")
    # The config recorded as provenance is data (its feature names may say "token").
    hit = _SECRET.search(json.dumps(_without_config(spec)))
    if hit:
        raise CompileError(f"the spec contains {hit.group(0)!r}; credentials never go in a spec")


def compile_spec(cfg: PipelineConfig, image: Optional[str] = None) -> tuple[Spec, Spec]:
    """(pipeline spec, platform spec) for open-source KFP v2, from `create_pipeline`."""
    image = image or cfg.kubeflow.image
    spec = _tfx_spec(cfg, image)
    if spec.get("schemaVersion") != SCHEMA_VERSION:
        raise CompileError(
            f"TFX emitted schema {spec.get('schemaVersion')}, expected {SCHEMA_VERSION}")
    use_schema_titles(spec)
    use_local_path_entrypoint(spec)
    replace_resolvers(spec, cfg, image)
    add_report_task(spec, cfg, image)
    set_resources(spec, cfg)
    record_config(spec, cfg)
    spec["defaultPipelineRoot"] = cfg.kubeflow.pipeline_root
    platform = platform_spec(spec, cfg)
    check_portable(spec, cfg)
    check_portable(platform, cfg)
    return spec, platform


def write_spec(spec: Spec, platform: Spec, path: str) -> str:
    """YAML as `kfp.Client` reads it: the pipeline spec, then the platform spec."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    header = (f"# KFP v2 pipeline spec for {spec['pipelineInfo']['name']}, compiled by "
              f"`tfxp compile` from {spec.get('sdkVersion', 'tfx')}.\n")
    with open(path, "w") as f:
        f.write(header)
        yaml.safe_dump_all([spec, platform], f, sort_keys=True)
    return path


def load_spec(path: str) -> tuple[Spec, Spec]:
    """The pipeline spec and (possibly empty) platform spec of a compiled YAML."""
    text = read_text(path, "compiled spec", missing="no such spec; `tfxp compile` writes one")
    try:
        docs = [d for d in yaml.safe_load_all(text) if d]
    except yaml.YAMLError:
        raise ConfigError(f"{path}: not a KFP pipeline spec (not YAML)") from None
    if not docs or not isinstance(docs[0], dict) or "root" not in docs[0]:
        raise ConfigError(f"{path}: not a KFP pipeline spec (no root DAG)")
    platform: Spec = {}
    for doc in docs[1:]:
        platform.update(doc)
    return docs[0], platform
