"""ML Metadata as KFP's v2 driver and launcher record it, for a rehearsal.

What a cluster's store holds after a run (kubeflow/pipelines
backend/src/v2/metadata/client.go, component/launcher_v2.go):

- contexts `system.Pipeline` (the pipeline name) and `system.PipelineRun`
  (the run id, custom properties `pipeline_root`, `namespace`,
  `resource_name`, `store_session_info`), the run a child of the pipeline;
- a `system.DAGExecution` for the root DAG, and per task a
  `system.ContainerExecution` with custom properties `task_name`,
  `display_name`, `image`, `pod_name`, `pod_uid`, `namespace`,
  `parent_dag_id` and `inputs` (the parameter values as a struct), created
  RUNNING with an INPUT event per input artifact (path: the input name) and
  published COMPLETE or FAILED with an OUTPUT event per output (path: the
  output name) and `outputs` (output parameters);
- per output an artifact typed by its schema title (`tfx.Model`, ...), state
  LIVE, its object-store URI, the ExecutorOutput's metadata as custom
  properties (numbers as doubles, booleans as 0/1 ints) plus `display_name`
  and `store_session_info`.

The readers (`pipeline.lineage.store`) read this layout and TFX's alike.
"""
from __future__ import annotations

import json
from typing import Any, Optional

from google.protobuf import struct_pb2
from ml_metadata.proto import metadata_store_pb2 as mlmd

from pipeline.lineage.store import open_store, sqlite_connection

PIPELINE_CONTEXT = "system.Pipeline"
RUN_CONTEXT = "system.PipelineRun"
CONTAINER_EXECUTION = "system.ContainerExecution"
DAG_EXECUTION = "system.DAGExecution"
NAMESPACE = "kubeflow"  # where a single-user KFP runs its pods


def _string(value: str) -> mlmd.Value:
    return mlmd.Value(string_value=value)


def _mlmd_value(value: Any) -> Optional[mlmd.Value]:
    """A metadata value as the launcher converts it (structValueToMLMDValue)."""
    if isinstance(value, bool):
        return mlmd.Value(int_value=int(value))
    if isinstance(value, (int, float)):
        return mlmd.Value(double_value=float(value))
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (list, dict)):
        struct = struct_pb2.Struct()
        struct.update({"list" if isinstance(value, list) else "struct": value})
        return mlmd.Value(struct_value=struct)
    return None


class KfpRecorder:
    """Writes one run to a SQLite ML Metadata store in KFP's layout."""

    def __init__(self, path: str, pipeline_name: str, run_id: str, pipeline_root: str,
                 image: str = ""):
        self.store = open_store(sqlite_connection(path))
        self.image = image
        self.pipeline_name, self.run_id = pipeline_name, run_id
        context_type = {n: self.store.put_context_type(mlmd.ContextType(name=n))
                        for n in (PIPELINE_CONTEXT, RUN_CONTEXT)}
        self._execution_types = {n: self.store.put_execution_type(mlmd.ExecutionType(name=n))
                                 for n in (CONTAINER_EXECUTION, DAG_EXECUTION)}
        self._artifact_types: dict[str, int] = {}
        pipeline = self._context(context_type[PIPELINE_CONTEXT], pipeline_name, {})
        run = self._context(context_type[RUN_CONTEXT], run_id, {
            "namespace": _string(NAMESPACE), "resource_name": _string(run_id),
            "pipeline_root": _string(f"{pipeline_root.rstrip('/')}/{pipeline_name}/{run_id}"),
            "store_session_info": _string("")})
        self.store.put_parent_contexts([mlmd.ParentContext(child_id=run.id,
                                                           parent_id=pipeline.id)])
        self.contexts = [pipeline, run]
        dag = mlmd.Execution(type_id=self._execution_types[DAG_EXECUTION],
                             last_known_state=mlmd.Execution.RUNNING)
        dag.custom_properties["display_name"].string_value = pipeline_name
        dag.custom_properties["task_name"].string_value = ""
        self.dag_id = self.store.put_execution(dag, [], self.contexts)[0]

    def _context(self, type_id: int, name: str, properties: dict) -> mlmd.Context:
        [found] = self.store.get_contexts_by_id([self.store.put_contexts([mlmd.Context(
            type_id=type_id, name=name, custom_properties=properties)])[0]])
        return found

    def _artifact_type(self, title: str) -> int:
        if title not in self._artifact_types:
            self._artifact_types[title] = self.store.put_artifact_type(
                mlmd.ArtifactType(name=title))
        return self._artifact_types[title]

    def task_started(self, task: str, parameters: dict[str, Any],
                     inputs: dict[str, list[int]]) -> int:
        """CreateExecution: RUNNING, its properties, an INPUT event per input artifact."""
        execution = mlmd.Execution(type_id=self._execution_types[CONTAINER_EXECUTION],
                                   last_known_state=mlmd.Execution.RUNNING)
        props = execution.custom_properties
        for key, value in (("display_name", task), ("task_name", task), ("image", self.image),
                           ("pod_name", f"{self.run_id}-{task}".lower()), ("pod_uid", ""),
                           ("namespace", NAMESPACE)):
            props[key].string_value = value
        props["parent_dag_id"].int_value = self.dag_id
        props["inputs"].struct_value.SetInParent()  # an empty struct is still a value
        props["inputs"].struct_value.update(parameters)
        [execution_id] = self.store.put_execution(execution, [], self.contexts)[:1]
        self.store.put_events([
            mlmd.Event(artifact_id=aid, execution_id=execution_id, type=mlmd.Event.INPUT,
                       path=mlmd.Event.Path(steps=[mlmd.Event.Path.Step(key=key)]))
            for key, ids in sorted(inputs.items()) for aid in ids])
        return execution_id

    def task_ended(self, execution_id: int, outputs: dict[str, dict],
                   parameters: dict[str, Any], failed: bool = False) -> dict[str, int]:
        """RecordArtifact per output, then PublishExecution; the output artifacts' ids."""
        [execution] = self.store.get_executions_by_id([execution_id])
        execution.last_known_state = mlmd.Execution.FAILED if failed else mlmd.Execution.COMPLETE
        if parameters:
            execution.custom_properties["outputs"].struct_value.update(parameters)
        ids: dict[str, int] = {}
        pairs = []
        for key, runtime in ({} if failed else outputs).items():
            artifact = mlmd.Artifact(type_id=self._artifact_type(runtime["type"]["schemaTitle"]),
                                     uri=runtime["uri"], state=mlmd.Artifact.LIVE)
            for name, value in (runtime.get("metadata") or {}).items():
                converted = _mlmd_value(value)
                if converted is not None:
                    artifact.custom_properties[name].CopyFrom(converted)
            artifact.custom_properties["display_name"].string_value = key
            artifact.custom_properties["store_session_info"].string_value = json.dumps(None)
            [ids[key]] = self.store.put_artifacts([artifact])
            artifact.id = ids[key]
            pairs.append((artifact, mlmd.Event(artifact_id=ids[key], type=mlmd.Event.OUTPUT,
                                           path=mlmd.Event.Path(
                                               steps=[mlmd.Event.Path.Step(key=key)]))))
        self.store.put_execution(execution, pairs, self.contexts)
        return ids

    def run_ended(self, failed: bool) -> None:
        [dag] = self.store.get_executions_by_id([self.dag_id])
        dag.last_known_state = mlmd.Execution.FAILED if failed else mlmd.Execution.COMPLETE
        self.store.put_execution(dag, [], self.contexts)
