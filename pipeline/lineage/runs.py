"""The runs in a store: what each node did, the outcome, and the outputs by type.

A run is TFX's `pipeline_run` context; its nodes are the executions in it
(named by their `node` contexts), plus the nodes the pipeline had that the run
never reached.  Nothing here knows the pipeline's node list.
"""
from __future__ import annotations

import dataclasses
import datetime
import os
from typing import Any, Optional

from ml_metadata.proto import metadata_store_pb2 as mlmd

from pipeline.errors import StoreError
from pipeline.lineage.provenance import run_facts
from pipeline.lineage.store import (
    FAILED,
    NODE_CONTEXT_TYPE,
    NOT_RUN,
    PIPELINE_CONTEXT_TYPE,
    RUN_CONTEXT_TYPE,
    RUNNING,
    STATES,
    Store,
    custom,
)


@dataclasses.dataclass
class NodeRun:
    node_id: str
    state: str  # one of store.STATES' words, or NOT_RUN
    execution_id: Optional[int] = None
    seconds: float = 0.0
    component: str = ""  # the component class (execution type)


@dataclasses.dataclass
class RunInfo:
    run_id: str
    pipeline: str
    context_id: int
    started: str
    seconds: float
    nodes: list[NodeRun]
    blessed: Optional[bool] = None
    pushed_version: Optional[str] = None
    pushed_in_this_run: bool = False
    provenance: dict[str, str] = dataclasses.field(default_factory=dict)
    # Whether the process of this run still holds its root's lock; None when
    # unknown (a store read without its run root).
    live: Optional[bool] = None

    @property
    def status(self) -> str:
        failed = [n.node_id for n in self.nodes if n.state == FAILED]
        if failed:
            return f"stopped at {failed[0]}"
        if any(n.state == RUNNING for n in self.nodes) or self.live:
            if self.live is None:
                return "running or interrupted"
            return "running" if self.live else "interrupted"
        if self.pushed_version:
            return "pushed" if self.pushed_in_this_run else "pushed (cached)"
        if self.blessed is False:
            return "not blessed"
        if any(n.state == NOT_RUN for n in self.nodes):
            return "incomplete"
        return "complete"

    def node(self, node_id: str) -> Optional[NodeRun]:
        return next((n for n in self.nodes if n.node_id == node_id), None)


def _ms(t: int) -> str:
    return datetime.datetime.fromtimestamp(t / 1000).isoformat(timespec="seconds")


def run_contexts(store: Store) -> list[mlmd.Context]:
    """Every run in the store, oldest first."""
    return sorted(store.contexts_of_type(RUN_CONTEXT_TYPE),
                  key=lambda c: (c.create_time_since_epoch, c.id))


def list_runs(store: Store) -> list[RunInfo]:
    """What each run did, oldest first."""
    return [run_info(store, c) for c in run_contexts(store)]


def find_run(store: Store, spec: Optional[str]) -> mlmd.Context:
    """A run by id, unique prefix, 'latest' or 'previous'."""
    runs = run_contexts(store)
    if not runs:
        raise StoreError("the ML Metadata store holds no pipeline runs yet")
    if spec in (None, "latest"):
        return runs[-1]
    if spec == "previous":
        if len(runs) < 2:
            raise StoreError("there is only one run in the store")
        return runs[-2]
    exact = [c for c in runs if c.name == spec]
    matches = exact or [c for c in runs if c.name.startswith(spec)]
    if len(matches) == 1:
        return matches[0]
    if not matches:
        raise StoreError(f"no run {spec!r}; `tfxp runs` lists them")
    raise StoreError(f"{spec!r} matches {len(matches)} runs: "
                     + ", ".join(c.name for c in matches[:5]))


def run_info(store: Store, run: mlmd.Context) -> RunInfo:
    """A run's nodes and their states, its blessing, its push and its provenance."""
    executions = sorted(store.tasks(store.store.get_executions_by_context(run.id)),
                        key=lambda e: (e.create_time_since_epoch, e.id))
    names = store.node_ids(e.id for e in executions)
    pipeline = next((c.name for e in executions[:1]
                     for c in store.store.get_contexts_by_execution(e.id)
                     if store.type_name(c.type_id) == PIPELINE_CONTEXT_TYPE), "")
    nodes = [NodeRun(names.get(e.id, e.name), STATES.get(e.last_known_state, "unknown"),
                     e.id, (e.last_update_time_since_epoch - e.create_time_since_epoch) / 1000,
                     store.type_name(e.type_id)) for e in executions]
    end = max((e.last_update_time_since_epoch for e in executions),
              default=run.create_time_since_epoch)
    # Nodes the pipeline had by then that this run never reached.
    seen = {n.node_id for n in nodes}
    for c in sorted(store.contexts_of_type(NODE_CONTEXT_TYPE),
                    key=lambda c: c.create_time_since_epoch):
        pipe, _, node_id = c.name.partition(".")
        if pipe == pipeline and node_id not in seen and c.create_time_since_epoch <= end:
            nodes.append(NodeRun(node_id, NOT_RUN))
    info = RunInfo(run.name, pipeline, run.id, _ms(run.create_time_since_epoch),
                   (end - run.create_time_since_epoch) / 1000, nodes,
                   provenance=run_facts(store, run))
    outputs = store.outputs(e.id for e in executions)
    by_id = {e.id: e for e in executions}
    ids = [a for outs in outputs.values() for _, a in outs]
    artifacts = {a.id: a for a in store.store.get_artifacts_by_id(ids)} if ids else {}
    for eid, outs in outputs.items():
        for _, aid in outs:
            a = artifacts.get(aid)
            if a is None:
                continue
            kind = store.type_name(a.type_id)
            if kind == "ModelBlessing" and custom(a, "blessed") is not None:
                info.blessed = custom(a, "blessed") == 1
            if kind == "PushedModel" and custom(a, "pushed") == 1:
                info.pushed_version = custom(a, "pushed_version")
                info.pushed_in_this_run = (by_id[eid].last_known_state
                                           == mlmd.Execution.COMPLETE)
    return info


@dataclasses.dataclass
class RunRecord:
    """A run's outputs by artifact type, with the executions that wrote them."""

    info: RunInfo
    artifacts: dict[str, list[tuple[str, mlmd.Artifact]]]  # type -> [(node.key, artifact)]
    properties: dict[str, dict[str, Any]]  # node id -> execution properties

    def all(self, kind: str, key: str = "", has: str = "", lacks: str = ""
            ) -> list[tuple[str, mlmd.Artifact]]:
        """Outputs of a type, by output key and by a property their execution has or lacks
        (e.g. ImportSchemaGen's `schema_file`), in execution order."""
        out = []
        for label, a in self.artifacts.get(kind, []):
            node, _, out_key = label.partition(".")
            props = self.properties.get(node, {})
            if ((not key or out_key == key) and (not has or has in props)
                    and (not lacks or lacks not in props)):
                out.append((label, a))
        return out

    def first(self, kind: str, key: str = "", has: str = "", lacks: str = ""
              ) -> Optional[mlmd.Artifact]:
        found = self.all(kind, key, has, lacks)
        return found[0][1] if found else None

    def uri(self, kind: str, key: str = "", has: str = "", lacks: str = "") -> Optional[str]:
        a = self.first(kind, key, has, lacks)
        return a.uri if a is not None and a.uri and uri_exists(a.uri) else None


def uri_exists(uri: str) -> bool:
    """Whether an artifact's files are still there (local path or object store)."""
    if "://" not in uri:
        return os.path.exists(uri)
    from tfx.dsl.io import fileio
    return fileio.exists(uri)


def run_record(store: Store, run_spec: Optional[str]) -> RunRecord:
    """A run (id, prefix, 'latest' or 'previous') with its outputs by type."""
    context = find_run(store, run_spec)
    info = run_info(store, context)
    executions = store.tasks(store.store.get_executions_by_context(context.id))
    names = store.node_ids(e.id for e in executions)
    outputs = store.outputs(e.id for e in executions)
    ids = [aid for outs in outputs.values() for _, aid in outs]
    by_id = {a.id: a for a in store.store.get_artifacts_by_id(ids)} if ids else {}
    artifacts: dict[str, list[tuple[str, mlmd.Artifact]]] = {}
    for eid, outs in outputs.items():
        for key, aid in outs:
            if aid in by_id:
                artifacts.setdefault(store.type_name(by_id[aid].type_id), []).append(
                    (f"{names.get(eid, '?')}.{key}", by_id[aid]))
    properties = {names.get(e.id, e.name): {k: custom(e, k) for k in e.custom_properties}
                  for e in executions}
    return RunRecord(info, artifacts, properties)
