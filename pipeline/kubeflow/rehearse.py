"""Runs a compiled KFP v2 spec on this machine, task by task, as the cluster would.

For each task, in topological order, it does what KFP's driver and launcher
do: resolves the task's parameters (constants, upstream outputs) and input
artifacts (upstream ExecutorOutputs), assigns output URIs under the pipeline
root, builds the ExecutorInput JSON, substitutes it for `{{$}}`, and runs the
container's command and args as a subprocess (a `lifecycle.preCacheCheck`
first, where a spec has one).  Object-store URIs live under a local
directory standing in for the launcher's `/minio`, `/s3`, `/gcs` mounts, and
paths inside the image or on a PVC are mapped to local directories (`mounts`).

What would fail on the cluster fails here, naming the task: a `resolver`
executor (open-source KFP cannot run one), a parameter without a value, a
2.0-style parameter, an artifact type TFX cannot map to a class, a path on a
volume the task does not mount, or a container whose code is not importable
(the subprocess runs outside the checkout, so only installed code imports).

Each task is a fresh process, forked from a server that imported TF, TFX,
TFMA and Beam once (`pipeline.kubeflow.forkserver`), so a task pays no
import time; `fork=False` starts each from cold instead, through the same
code (`forkserver.run_module`), so a failure answers alike.  ML Metadata is
recorded as KFP's driver and launcher record it (`pipeline.kubeflow.metadata`),
in `RehearsalLayout.metadata`.

What it does not do: pull the image (the local environment, with this
checkout standing in for the project installed in the image, stands in for
it), enforce resources, or cache.
"""
from __future__ import annotations

import dataclasses
import datetime
import graphlib
import json
import os
import subprocess
import sys
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, Callable, Optional

from pipeline.errors import RehearsalError
from pipeline.kubeflow import report_task
from pipeline.kubeflow.container import entrypoint
from pipeline.kubeflow.container.entrypoint import ROOT_ENV, local_path
from pipeline.kubeflow.forkserver import ForkServer, cold_command, load_error
from pipeline.kubeflow.metadata import KfpRecorder
from pipeline.layout import RehearsalLayout

Spec = dict[str, Any]


@dataclasses.dataclass
class TaskResult:
    name: str
    seconds: float = 0.0
    outputs: dict[str, dict] = dataclasses.field(default_factory=dict)
    log: str = ""
    execution_id: Optional[int] = None  # in the rehearsal's ML Metadata store
    code: int = 0  # the process's exit status
    error: Optional[BaseException] = None  # what a failed task raised, when known


@dataclasses.dataclass
class Rehearsal:
    run_id: str
    pipeline_root: str
    launcher_root: str
    tasks: list[TaskResult]
    pipeline_name: str = ""
    metadata: str = ""  # the SQLite ML Metadata store, in KFP's layout
    failed: Optional[TaskResult] = None
    failure: Optional[RehearsalError] = None

    def task(self, name: str) -> TaskResult:
        return next(t for t in self.tasks if t.name == name)

    def artifact_path(self, task: str, key: str) -> str:
        """Where an output artifact of a task landed on this machine."""
        return local_path(self.task(task).outputs[key]["uri"], self.launcher_root)


Listener = Callable[[str, TaskResult], None]  # ("start" | "end", task)


@dataclasses.dataclass
class _Prepared:
    record: TaskResult
    steps: list[list[str]]
    task_dir: str
    output_file: str
    output_artifacts: dict
    env: dict[str, str] = dataclasses.field(default_factory=dict)  # the container's own


def _upstream(task: dict) -> set[str]:
    deps = set(task.get("dependentTasks", []))
    for ref in task.get("inputs", {}).get("artifacts", {}).values():
        if "taskOutputArtifact" in ref:
            deps.add(ref["taskOutputArtifact"]["producerTask"])
    for ref in task.get("inputs", {}).get("parameters", {}).values():
        if "taskOutputParameter" in ref:
            deps.add(ref["taskOutputParameter"]["producerTask"])
    return deps


def task_order(spec: Spec) -> list[str]:
    """Tasks of the root DAG, dependencies first (ties in name order)."""
    tasks = spec["root"]["dag"]["tasks"]
    graph = graphlib.TopologicalSorter()
    for name in sorted(tasks):
        deps = _upstream(tasks[name])
        unknown = deps - set(tasks)
        if unknown:
            raise RehearsalError(f"task {name}: depends on unknown tasks {sorted(unknown)}")
        graph.add(name, *sorted(deps))
    return list(graph.static_order())


def _type_title(artifact_type: dict) -> str:
    """The MLMD type the launcher records, handed downstream as `schemaTitle`."""
    import yaml
    if artifact_type.get("schemaTitle"):
        return artifact_type["schemaTitle"]
    title = (yaml.safe_load(artifact_type.get("instanceSchema") or "") or {}).get("title")
    return title or "system.Artifact"


def _check_type(task: str, key: str, title: str) -> None:
    from tfx.orchestration.kubeflow.v2 import compiler_utils
    from tfx.utils import import_utils
    path = compiler_utils.TITLE_TO_CLASS_PATH.get(title, title)
    try:
        import_utils.import_class_by_path(path)
    except (ImportError, AttributeError, ValueError):
        raise RehearsalError(
            f"task {task}: artifact {key!r} arrives typed {title!r}, which TFX in the "
            f"image cannot map to an artifact class") from None


def _remap(value: Any, mounts: dict[str, str]) -> Any:
    """Paths inside the container (image, PVCs) as their local stand-ins."""
    if isinstance(value, str):
        for inside, outside in mounts.items():
            inside = inside.rstrip("/")
            if value == inside:
                return outside
            value = value.replace(inside + "/", outside.rstrip("/") + "/")
        return value
    if isinstance(value, list):
        return [_remap(v, mounts) for v in value]
    if isinstance(value, dict):
        return {k: _remap(v, mounts) for k, v in value.items()}
    return value


def _pvc_mounts(platform: Spec, label: str) -> list[str]:
    executors = (platform.get("platforms", {}).get("kubernetes", {})
                 .get("deploymentSpec", {}).get("executors", {}))
    return [m["mountPath"] for m in executors.get(label, {}).get("pvcMount", [])]


def _is_tfx_container(container: dict) -> bool:
    text = " ".join(container.get("command", []))
    return entrypoint.__name__ in text or "tfx.orchestration" in text


def _input_artifacts(name: str, task: dict, component: dict) -> list[tuple[str, dict]]:
    """(input key, producer reference) of each input artifact that has one; a
    required input without a producer is named."""
    refs = task.get("inputs", {}).get("artifacts", {})
    found = []
    for key, definition in component.get("inputDefinitions", {}).get("artifacts", {}).items():
        ref = refs.get(key, {}).get("taskOutputArtifact")
        if ref is not None:
            found.append((key, ref))
        elif not definition.get("isOptional"):
            raise RehearsalError(f"task {name}: input artifact {key!r} has no producer")
    return found


def check_spec(spec: Spec, platform: Spec, volumes: dict[str, str]) -> None:
    """Before anything runs: what KFP would reject at creation or a task at start."""
    components = spec["components"]
    executors = spec["deploymentSpec"]["executors"]
    tasks = spec["root"]["dag"]["tasks"]
    task_order(spec)  # unknown or cyclic dependencies
    for name, task in sorted(tasks.items()):
        component = components[task["componentRef"]["name"]]
        label = component["executorLabel"]
        if "resolver" in executors[label]:
            raise RehearsalError(f"task {name}: a resolver executor; open-source KFP v2 "
                                 f"rejects the run (\"resolver not implemented yet\")")
        if "container" not in executors[label]:
            raise RehearsalError(f"task {name}: executor {label} is not a container")
        tfx_container = _is_tfx_container(executors[label]["container"])
        for mount_path in _pvc_mounts(platform, label):
            if mount_path not in volumes:
                raise RehearsalError(f"task {name}: mounts a PVC at {mount_path}; "
                                     f"give it a local directory")
        params = task.get("inputs", {}).get("parameters", {})
        for key, definition in component.get("inputDefinitions", {}).get("parameters", {}).items():
            if key not in params and not (definition.get("isOptional")
                                          or "defaultValue" in definition):
                raise RehearsalError(f"task {name}: parameter {key!r} has no value")
            runtime = params.get(key, {}).get("runtimeValue")
            if "parameterType" not in definition or (runtime and "constant" not in runtime):
                raise RehearsalError(f"task {name}: parameter {key!r} is in the schema 2.0 "
                                     f"form; a 2.1 launcher fills only parameterValues and "
                                     f"the executor would read nothing")
        for key, ref in _input_artifacts(name, task, component):
            producer = components[tasks[ref["producerTask"]]["componentRef"]["name"]]
            outputs = producer.get("outputDefinitions", {}).get("artifacts", {})
            if ref["outputArtifactKey"] not in outputs:
                raise RehearsalError(f"task {name}: input {key!r} expects output "
                                     f"{ref['outputArtifactKey']!r} of {ref['producerTask']}, "
                                     f"which it does not produce")
            if tfx_container:
                _check_type(name, key, _type_title(
                    outputs[ref["outputArtifactKey"]]["artifactType"]))
        if tfx_container:
            for key, definition in component.get("outputDefinitions", {}).get(
                    "artifacts", {}).items():
                _check_type(name, key, _type_title(definition["artifactType"]))


def rehearse(spec: Spec, platform: Spec, workdir: str, mounts: dict[str, str],
             volumes: Optional[dict[str, str]] = None, listener: Optional[Listener] = None,
             run_id: Optional[str] = None, python: str = sys.executable,
             parallel: int = 2, image_code: Optional[str] = None, fork: bool = True,
             image: str = "", raise_on_failure: bool = True) -> Rehearsal:
    """Runs every task of `spec`; raises RehearsalError naming the first that fails
    (with `raise_on_failure=False`, returns with `failed` and `failure` set).

    `mounts` maps paths inside the image to local directories; `volumes` maps
    the mount paths of PVCs in the platform spec to local directories (a task
    only sees a volume its executor mounts, as on the cluster).  Like KFP,
    tasks whose upstream tasks are done run side by side, `parallel` at most.
    `image_code` is the directory standing in for the project as installed in
    the image (put on PYTHONPATH).
    """
    if not spec.get("defaultPipelineRoot"):
        raise RehearsalError("the spec has no defaultPipelineRoot and none was given")
    run = _Run(spec, platform, RehearsalLayout(workdir), mounts, volumes or {},
               run_id or datetime.datetime.now().strftime("rehearsal-%Y%m%d-%H%M%S-%f"),
               python, image_code)
    # The server imports while the spec is checked and the first task prepared.
    run.start_server(fork)
    try:
        check_spec(spec, platform, run.volumes)
        run.open_store(image)
        failure = run.run_tasks(listener or (lambda event, task: None), parallel)
    finally:
        run.stop_server()
    run.recorder.run_ended(failed=failure is not None)
    run.result.failure = failure
    if failure is not None and raise_on_failure:
        raise failure
    return run.result


class _Run:
    """One rehearsal, step by step as KFP's driver and launcher take them: start
    the fork server, open the store, then per task `prepare` (the driver:
    parameters, input and output artifacts, the command line), `execute` (the
    container) and `finish` (the launcher: outputs recorded and handed on)."""

    def __init__(self, spec: Spec, platform: Spec, layout: RehearsalLayout,
                 mounts: dict[str, str], volumes: dict[str, str], run_id: str, python: str,
                 image_code: Optional[str]):
        self.spec, self.platform, self.layout = spec, platform, layout
        self.mounts, self.volumes, self.run_id, self.python = mounts, volumes, run_id, python
        self.tasks = spec["root"]["dag"]["tasks"]
        self.pipeline_root = spec["defaultPipelineRoot"]
        self.pipeline_name = spec["pipelineInfo"]["name"]
        self.env = dict(os.environ, **{ROOT_ENV: layout.launcher})
        self.env.pop("PYTHONPATH", None)
        if image_code:
            self.env["PYTHONPATH"] = image_code
        # The report task reads the run's store: this SQLite file stands in for KFP's.
        self.env[report_task.METADATA_SQLITE_ENV] = layout.metadata
        # What KFP's driver puts for its placeholders (backend/src/v2/driver/resolve.go).
        self.driver_values = {"{{$.pipeline_job_uuid}}": run_id,
                              "{{$.pipeline_job_name}}": run_id,
                              "{{$.pipeline_job_resource_name}}": run_id}
        self.server: Optional[ForkServer] = None
        self.produced: dict[tuple[str, str], dict] = {}
        self.produced_params: dict[tuple[str, str], Any] = {}
        self.produced_ids: dict[tuple[str, str], int] = {}
        self.result = Rehearsal(run_id, self.pipeline_root, layout.launcher, [],
                                self.pipeline_name, layout.metadata)

    # ----------------------------------------------------------------- the run's steps

    def start_server(self, fork: bool) -> None:
        os.makedirs(self.layout.root, exist_ok=True)
        if fork:
            self.server = ForkServer(self.python, self.env,
                                     log=os.path.join(self.layout.root, "forkserver.log"))

    def stop_server(self) -> None:
        if self.server is not None:
            self.server.close()

    def open_store(self, image: str) -> None:
        """The store in KFP's layout, and where its object-store URIs are here."""
        with open(self.layout.uri_map, "w") as f:  # for readers of the store
            json.dump({scheme: os.path.join(self.layout.launcher, directory) + "/"
                       for scheme, directory in entrypoint.SCHEME_DIRS.items()}, f)
        self.recorder = KfpRecorder(self.layout.metadata, self.pipeline_name, self.run_id,
                                    self.pipeline_root, image)

    def run_tasks(self, listener: Listener, parallel: int) -> Optional[RehearsalError]:
        """Like KFP, starts every task whose upstream tasks are done (up to
        `parallel`); after a failure starts none, lets the running ones end."""
        order = task_order(self.spec)
        upstream = {n: _upstream(self.tasks[n]) for n in order}
        done: set[str] = set()
        failure: Optional[RehearsalError] = None
        with ThreadPoolExecutor(max_workers=parallel) as pool:
            running: dict[Future, _Prepared] = {}
            while (order and failure is None) or running:
                for name in [n for n in order if upstream[n] <= done]:
                    if len(running) >= parallel or failure is not None:
                        break
                    order.remove(name)
                    prepared = self.prepare(name)
                    listener("start", prepared.record)
                    running[pool.submit(self.execute, prepared)] = prepared
                if not running:
                    break
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in finished:
                    prepared = running.pop(future)
                    code = future.result()
                    if code != 0:
                        failure = failure or self.failed(prepared, code)
                    else:
                        self.finish(prepared)
                        done.add(prepared.record.name)
                    listener("end", prepared.record)
        return failure

    # ----------------------------------------------------------------- one task

    def prepare(self, name: str) -> _Prepared:
        """What KFP's driver does: the ExecutorInput, the command line, the execution."""
        task = self.tasks[name]
        component = self.spec["components"][task["componentRef"]["name"]]
        label = component["executorLabel"]
        container = self.spec["deploymentSpec"]["executors"][label]["container"]
        visible = dict(self.mounts)
        for mount_path in _pvc_mounts(self.platform, label):  # each given one: check_spec
            visible[mount_path] = self.volumes[mount_path]
        paths = _Paths(name, visible, {m for m in self.volumes if m not in visible})
        parameter_values = self._parameters(name, task, component, paths)
        output_file = self.layout.executor_output(name)
        output_artifacts = self._outputs(name, component)
        invocation = json.dumps({
            "inputs": {"parameterValues": parameter_values,
                       "artifacts": self._inputs(name, task, component)},
            "outputs": {"artifacts": output_artifacts, "outputFile": output_file}})
        record = TaskResult(name, log=self.layout.task_log(name))
        record.execution_id = self.recorder.task_started(
            name, parameter_values,
            {key: [self.produced_ids[(ref["producerTask"], ref["outputArtifactKey"])]]
             for key, ref in _input_artifacts(name, task, component)})
        steps = []
        pre = container.get("lifecycle", {}).get("preCacheCheck")
        if pre:
            steps.append(self._command_line(pre, invocation, paths))
        steps.append(self._command_line(container, invocation, paths))
        task_dir = self.layout.task(name)
        os.makedirs(task_dir, exist_ok=True)
        own_env = {e["name"]: str(e.get("value", "")) for e in container.get("env", [])}
        return _Prepared(record, steps, task_dir, output_file, output_artifacts, own_env)

    def execute(self, prepared: _Prepared) -> int:
        """The container: each step a process (forked from the server, or cold)."""
        started = time.monotonic()
        code = 0
        error_file = self.layout.task_error(prepared.record.name)
        if os.path.exists(error_file):
            os.remove(error_file)
        open(prepared.record.log, "w").close()
        task_env = {**self.env, **prepared.env}
        for argv in prepared.steps:
            module = argv[2] if argv[0] == self.python and argv[1:2] == ["-m"] else None
            if module and self.server is not None:
                code = self.server.run(module, argv[3:], prepared.task_dir, task_env,
                                       prepared.record.log, error_file)
            else:
                if module:  # cold, its error kept as the server keeps it
                    argv = cold_command(self.python, module, argv[3:], error_file)
                with open(prepared.record.log, "a") as log:
                    code = subprocess.call(argv, cwd=prepared.task_dir, env=task_env,
                                           stdout=log, stderr=subprocess.STDOUT)
            if code != 0:
                prepared.record.error = load_error(error_file)
                break
        prepared.record.seconds = time.monotonic() - started
        prepared.record.code = code
        return code

    def finish(self, prepared: _Prepared) -> None:
        """What KFP's launcher does after the container: outputs merged from the
        ExecutorOutput, recorded, and handed downstream."""
        record, name = prepared.record, prepared.record.name
        executor_output = {}
        if os.path.exists(prepared.output_file):
            with open(prepared.output_file) as f:
                executor_output = json.load(f)
        for key, artifact_list in prepared.output_artifacts.items():
            [artifact] = artifact_list["artifacts"]
            written = executor_output.get("artifacts", {}).get(key, {}).get("artifacts", [{}])
            artifact = dict(artifact, metadata={**artifact["metadata"],
                                                **(written[0].get("metadata") or {})})
            self.produced[(name, key)] = record.outputs[key] = artifact
        for key, value in executor_output.get("parameterValues", {}).items():
            self.produced_params[(name, key)] = value
        ids = self.recorder.task_ended(record.execution_id, record.outputs,
                                       executor_output.get("parameterValues", {}))
        self.produced_ids.update({(name, key): aid for key, aid in ids.items()})
        self.result.tasks.append(record)

    def failed(self, prepared: _Prepared, code: int) -> RehearsalError:
        """A failed task: recorded FAILED, named with the end of its log."""
        record = prepared.record
        with open(record.log) as log:
            tail = "".join(log.readlines()[-25:])
        self.recorder.task_ended(record.execution_id, {}, {}, failed=True)
        self.result.tasks.append(record)
        self.result.failed = self.result.failed or record
        return RehearsalError(f"task {record.name} failed (exit {code}); its log "
                              f"({record.log}) ends:\n{tail}")

    # ----------------------------------------------------------------- the driver's parts

    def _parameters(self, name: str, task: dict, component: dict, paths: "_Paths") -> dict:
        """parameterValues (2.1); check_spec has made sure each has a value in that form."""
        values = {}
        refs = task.get("inputs", {}).get("parameters", {})
        for key in component.get("inputDefinitions", {}).get("parameters", {}):
            ref = refs.get(key)
            if ref is None:
                continue  # optional, or a default the launcher fills
            if "runtimeValue" in ref:
                value = ref["runtimeValue"]["constant"]
                value = self.driver_values.get(value, value) if isinstance(value, str) else value
            elif "taskOutputParameter" in ref:
                out = ref["taskOutputParameter"]
                source = (out["producerTask"], out["outputParameterKey"])
                if source not in self.produced_params:
                    raise RehearsalError(f"task {name}: parameter {key!r} expects output "
                                         f"{source[1]!r} of {source[0]}, which never came")
                value = self.produced_params[source]
            else:
                raise RehearsalError(f"task {name}: parameter {key!r}: unsupported source {ref}")
            if isinstance(value, str):
                paths.check(value, f"parameter {key!r}")
            values[key] = _remap(value, paths.visible)
        return values

    def _inputs(self, name: str, task: dict, component: dict) -> dict:
        """Input artifacts: the producers' outputs, named by their ML Metadata id."""
        found = {}
        for key, ref in _input_artifacts(name, task, component):
            source = (ref["producerTask"], ref["outputArtifactKey"])
            if source not in self.produced:
                raise RehearsalError(f"task {name}: input {key!r} expects output {source[1]!r} "
                                     f"of {source[0]}, which it does not produce")
            found[key] = {"artifacts": [dict(self.produced[source],
                                             name=str(self.produced_ids[source]))]}
        return found

    def _outputs(self, name: str, component: dict) -> dict:
        """Output artifacts: URIs under the pipeline root, as the driver assigns them."""
        found = {}
        base = f"{self.pipeline_root.rstrip('/')}/{self.pipeline_name}/{self.run_id}/{name}"
        for key, definition in component.get("outputDefinitions", {}).get("artifacts", {}).items():
            uri = f"{base}/{key}"
            os.makedirs(os.path.dirname(local_path(uri, self.layout.launcher)), exist_ok=True)
            found[key] = {"artifacts": [{
                "name": f"{self.run_id}/{name}/{key}", "uri": uri,
                "type": {"schemaTitle": _type_title(definition["artifactType"])},
                "metadata": {}}]}
        return found

    def _command_line(self, part: dict, invocation: str, paths: "_Paths") -> list[str]:
        """command + args, `{{$}}` the ExecutorInput, paths in the image mapped here."""
        out = []
        for arg in list(part.get("command", [])) + list(part.get("args", [])):
            if "{{$" in arg and arg != "{{$}}":
                raise RehearsalError(f"task {paths.task}: placeholder {arg!r} is not supported")
            paths.check(arg, "an argument")
            out.append(invocation if arg == "{{$}}" else _remap(arg, paths.visible))
        if out and out[0] in ("python", "python3"):
            out[0] = self.python
        return out


@dataclasses.dataclass
class _Paths:
    """What a task's container sees: the image's paths and its volumes mapped
    here; a volume it does not mount named when the task uses it."""

    task: str
    visible: dict[str, str]
    unmounted: set[str]

    def check(self, value: str, what: str) -> None:
        for m in self.unmounted:
            if value == m or m.rstrip("/") + "/" in value:
                raise RehearsalError(f"task {self.task}: {what} uses {m}, a volume this task "
                                     f"does not mount; on the cluster it would write to "
                                     f"the container's own disk and be lost")
