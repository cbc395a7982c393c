"""Where a model came from, and what each run did, read from ML Metadata.

The trace is two `get_lineage_subgraph` queries, not a walk one hop at a time:

1. upstream from the starting artifacts (a pushed model, a model, or every
   output of a run), skipping cached executions (their outputs were made by
   an earlier execution, which the query reaches instead) and stopping at
   other models (the Evaluator's baseline is shown, its own history is not);
2. downstream from the ExampleGen output within the run, for what checked the
   data (statistics, anomalies, the inferred schema, the data gate) but does
   not feed the model; then upstream again from those to their producers.

Nothing here knows the pipeline's node list: node ids come from the `node`
contexts, kinds from the standard TFX artifact type names.  TensorFlow is not
imported, so `tfxp runs` and `tfxp lineage` answer in a second or two.
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import os
from typing import Any, Iterable, Optional, Union

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd

from pipeline.provenance import RUN_CONTEXT_TYPE, read_run

Q = mlmd.LineageSubgraphQueryOptions
MAX_HOPS = 40
STATES = {mlmd.Execution.COMPLETE: "executed", mlmd.Execution.CACHED: "cached",
          mlmd.Execution.FAILED: "failed", mlmd.Execution.RUNNING: "running",
          mlmd.Execution.NEW: "new", mlmd.Execution.CANCELED: "canceled"}
# TFX records a resolver node's pick as an execution that outputs the artifact.
RESOLVER_TYPE = "tfx.dsl.components.common.resolver.Resolver"
# Execution properties that name code TFX loads by dotted path or file.
CODE_PROPERTIES = ("preprocessing_fn", "stats_options_updater_fn", "run_fn", "trainer_fn",
                   "tuner_fn", "module_file", "module_path")


class StoreError(RuntimeError):
    """No usable store, or nothing in it matching what was asked for."""


# --------------------------------------------------------------------------- store


def connection_config(root: Optional[str] = None, sqlite: Optional[str] = None,
                      mysql: Optional[str] = None, grpc: Optional[str] = None
                      ) -> Union[mlmd.ConnectionConfig, mlmd.MetadataStoreClientConfig]:
    """A connection from flags: a run root's SQLite file, another SQLite file,
    MySQL as user@host:port/database (password from MLMD_MYSQL_PASSWORD), or an
    ML Metadata gRPC service as host:port (what a Kubeflow cluster exposes)."""
    grpc = grpc or os.environ.get("MLMD_GRPC_ADDRESS")
    mysql = mysql or os.environ.get("MLMD_MYSQL")
    if grpc:
        host, _, port = grpc.rpartition(":")
        if not host or not port.isdigit():
            raise StoreError(f"--metadata-grpc wants HOST:PORT, got {grpc!r}")
        return mlmd.MetadataStoreClientConfig(host=host, port=int(port))
    config = mlmd.ConnectionConfig()
    if mysql:
        user, _, rest = mysql.rpartition("@")
        hostport, _, database = rest.partition("/")
        host, _, port = hostport.partition(":")
        if not host or not database:
            raise StoreError(f"--metadata-mysql wants USER@HOST[:PORT]/DATABASE, got {mysql!r}")
        config.mysql.host, config.mysql.database = host, database
        config.mysql.port = int(port or 3306)
        config.mysql.user = user or "root"
        config.mysql.password = os.environ.get("MLMD_MYSQL_PASSWORD", "")
        return config
    path = sqlite or (os.path.join(root, "metadata.sqlite") if root else None)
    if not path:
        raise StoreError("no metadata store given: pass --root, --metadata-sqlite, "
                         "--metadata-mysql or --metadata-grpc")
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        where = os.path.dirname(path) or "."
        raise StoreError(f"no ML Metadata store at {path}: nothing has run there yet "
                         f"(run `tfxp run --root {where}` first)")
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = mlmd.SqliteMetadataSourceConfig.READONLY
    return config


def open_metadata(config) -> metadata_store.MetadataStore:
    """The store, or StoreError with a sentence a person can act on."""
    try:
        store = metadata_store.MetadataStore(config)
        store.get_context_types()
    except Exception as e:  # ml_metadata raises its own errors with C++ text
        raise StoreError(f"cannot open the ML Metadata store ({type(e).__name__}: "
                         f"{str(e).splitlines()[0] if str(e) else ''})") from None
    return store


# --------------------------------------------------------------------------- runs


@dataclasses.dataclass
class NodeRun:
    node_id: str
    state: str  # executed | cached | failed | running | not run
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

    @property
    def status(self) -> str:
        failed = [n.node_id for n in self.nodes if n.state == "failed"]
        if failed:
            return f"stopped at {failed[0]}"
        if any(n.state == "running" for n in self.nodes):
            return "running or interrupted"
        if self.pushed_version:
            return "pushed" if self.pushed_in_this_run else "pushed (cached)"
        if self.blessed is False:
            return "not blessed"
        if any(n.state == "not run" for n in self.nodes):
            return "incomplete"
        return "complete"

    def node(self, node_id: str) -> Optional[NodeRun]:
        return next((n for n in self.nodes if n.node_id == node_id), None)


def _ms(t: int) -> str:
    return datetime.datetime.fromtimestamp(t / 1000).isoformat(timespec="seconds")


def custom(item, name: str) -> Any:
    """A property or custom property of an MLMD node, as a Python value."""
    for props in (item.properties, item.custom_properties):
        if name in props:
            value = props[name]
            kind = value.WhichOneof("value")
            if kind == "struct_value":
                from google.protobuf import json_format
                return json_format.MessageToDict(value.struct_value)
            return getattr(value, kind) if kind else None
    return None


class Store:
    """Read-only views over one ML Metadata store: runs, artifacts, traces."""

    def __init__(self, store: metadata_store.MetadataStore):
        self.store = store
        self._types: dict[int, str] = {}

    # -- small helpers
    def type_name(self, type_id: int) -> str:
        if type_id not in self._types:
            for t in (list(self.store.get_artifact_types()) + list(self.store.get_execution_types())
                      + list(self.store.get_context_types())):
                self._types[t.id] = t.name
        return self._types.get(type_id, "?")

    def node_ids(self, execution_ids: Iterable[int]) -> dict[int, str]:
        """execution id -> the pipeline node it ran (from its `node` context)."""
        out = {}
        for eid in execution_ids:
            for c in self.store.get_contexts_by_execution(eid):
                if self.type_name(c.type_id) == "node":
                    out[eid] = c.name.split(".", 1)[-1]
        return out

    def run_of(self, execution_id: int) -> Optional[str]:
        for c in self.store.get_contexts_by_execution(execution_id):
            if self.type_name(c.type_id) == RUN_CONTEXT_TYPE:
                return c.name
        return None

    def outputs(self, execution_ids: Iterable[int]) -> dict[int, list[tuple[str, int]]]:
        """execution id -> [(output key, artifact id)]."""
        out: dict[int, list[tuple[str, int]]] = {}
        for e in self.store.get_events_by_execution_ids(list(execution_ids)):
            if e.type in (mlmd.Event.OUTPUT, mlmd.Event.DECLARED_OUTPUT):
                key = e.path.steps[0].key if e.path.steps else ""
                out.setdefault(e.execution_id, []).append((key, e.artifact_id))
        return out

    # -- runs
    def run_contexts(self) -> list[mlmd.Context]:
        try:
            runs = self.store.get_contexts_by_type(RUN_CONTEXT_TYPE)
        except Exception:
            runs = []
        return sorted(runs, key=lambda c: (c.create_time_since_epoch, c.id))

    def runs(self) -> list[RunInfo]:
        return [self.run_info(c) for c in self.run_contexts()]

    def find_run(self, spec: Optional[str]) -> mlmd.Context:
        """A run by id, unique prefix, 'latest' or 'previous'."""
        runs = self.run_contexts()
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

    def run_info(self, run: mlmd.Context) -> RunInfo:
        executions = sorted(self.store.get_executions_by_context(run.id),
                            key=lambda e: (e.create_time_since_epoch, e.id))
        names = self.node_ids(e.id for e in executions)
        pipeline = next((c.name for e in executions[:1]
                         for c in self.store.get_contexts_by_execution(e.id)
                         if self.type_name(c.type_id) == "pipeline"), "")
        nodes = [NodeRun(names.get(e.id, e.name), STATES.get(e.last_known_state, "unknown"),
                         e.id, (e.last_update_time_since_epoch - e.create_time_since_epoch) / 1000,
                         self.type_name(e.type_id)) for e in executions]
        end = max((e.last_update_time_since_epoch for e in executions),
                  default=run.create_time_since_epoch)
        # Nodes the pipeline had by then that this run never reached.
        seen = {n.node_id for n in nodes}
        try:
            all_nodes = self.store.get_contexts_by_type("node")
        except Exception:
            all_nodes = []
        for c in sorted(all_nodes, key=lambda c: c.create_time_since_epoch):
            pipe, _, node_id = c.name.partition(".")
            if pipe == pipeline and node_id not in seen and c.create_time_since_epoch <= end:
                nodes.append(NodeRun(node_id, "not run"))
        info = RunInfo(run.name, pipeline, run.id, _ms(run.create_time_since_epoch),
                       (end - run.create_time_since_epoch) / 1000, nodes,
                       provenance=read_run(run))
        outputs = self.outputs(e.id for e in executions)
        by_id = {e.id: e for e in executions}
        ids = [a for outs in outputs.values() for _, a in outs]
        artifacts = {a.id: a for a in self.store.get_artifacts_by_id(ids)} if ids else {}
        for eid, outs in outputs.items():
            for _, aid in outs:
                a = artifacts.get(aid)
                if a is None:
                    continue
                kind = self.type_name(a.type_id)
                if kind == "ModelBlessing" and custom(a, "blessed") is not None:
                    info.blessed = custom(a, "blessed") == 1
                if kind == "PushedModel" and custom(a, "pushed") == 1:
                    info.pushed_version = custom(a, "pushed_version")
                    info.pushed_in_this_run = (by_id[eid].last_known_state
                                               == mlmd.Execution.COMPLETE)
        return info

    # -- starting points
    def _artifacts(self, query: str) -> list[mlmd.Artifact]:
        return list(self.store.get_artifacts(
            list_options=metadata_store.ListOptions(filter_query=query)))

    def pushed_models(self) -> list[mlmd.Artifact]:
        """Pushed models, oldest first (by the version the Pusher wrote)."""
        found = self._artifacts("type = 'PushedModel' AND custom_properties.pushed.int_value = 1")
        return sorted(found, key=lambda a: (str(custom(a, "pushed_version") or ""), a.id))

    def producer(self, artifact_id: int) -> Optional[mlmd.Execution]:
        """The execution that made an artifact (not one that reused it from cache)."""
        ids = [e.execution_id for e in self.store.get_events_by_artifact_ids([artifact_id])
               if e.type in (mlmd.Event.OUTPUT, mlmd.Event.DECLARED_OUTPUT)]
        executions = sorted(self.store.get_executions_by_id(ids),
                            key=lambda e: (e.last_known_state != mlmd.Execution.COMPLETE, e.id))
        return executions[0] if executions else None

    def resolve(self, target: Optional[str]) -> tuple[str, list[int], Optional[str]]:
        """(description, starting artifact ids, run) for a pushed version, a
        model artifact id, a run, or by default the newest pushed model."""
        if not self.run_contexts():
            raise StoreError("the ML Metadata store holds no pipeline runs yet")
        pushed = self.pushed_models()
        if target is None:
            if not pushed:
                run = self.find_run("latest")
                return (f"run {run.name} (no model has been pushed yet)",
                        self.run_outputs(run), run.name)
            a = pushed[-1]
            return self._from_pushed(a, "served model")
        for a in pushed:
            if custom(a, "pushed_version") == target:
                return self._from_pushed(a, "pushed model")
        if target.isdigit():
            [model] = self.store.get_artifacts_by_id([int(target)]) or [None]
            if model is not None and self.type_name(model.type_id) == "Model":
                made = self.producer(model.id)
                return (f"model artifact {model.id}", [model.id],
                        self.run_of(made.id) if made else None)
        try:
            run = self.find_run(target)
        except StoreError as e:
            raise StoreError(f"{target!r} is not a pushed version, a model artifact id or "
                             f"a run ({e})") from None
        return f"run {run.name}", self.run_outputs(run), run.name

    def _from_pushed(self, a: mlmd.Artifact, what: str) -> tuple[str, list[int], Optional[str]]:
        made = self.producer(a.id)
        return (f"{what} version {custom(a, 'pushed_version')} "
                f"({custom(a, 'pushed_destination')})", [a.id],
                self.run_of(made.id) if made else None)

    def run_outputs(self, run: mlmd.Context) -> list[int]:
        ids = [e.id for e in self.store.get_executions_by_context(run.id)]
        return sorted({a for outs in self.outputs(ids).values() for _, a in outs})

    # -- the trace
    def resolved_in(self, run: Optional[str]) -> list[int]:
        """Artifacts a resolver picked in the run: baselines from earlier runs."""
        if not run:
            return []
        context = self.store.get_context_by_type_and_name(RUN_CONTEXT_TYPE, run)
        if context is None:
            return []
        resolvers = [e.id for e in self.store.get_executions_by_context(context.id)
                     if self.type_name(e.type_id) == RESOLVER_TYPE]
        return sorted({a for outs in self.outputs(resolvers).values() for _, a in outs})

    def _upstream(self, start: list[int], own_models: list[int],
                  baselines: list[int] = ()) -> mlmd.LineageGraph:
        options = Q(max_num_hops=MAX_HOPS, direction=Q.UPSTREAM)
        options.starting_artifacts.filter_query = f"id IN ({', '.join(map(str, start))})"
        # Cached executions only reused outputs; the query reaches their makers.
        # A resolver "outputs" an existing artifact (the baseline): not its maker.
        options.ending_executions.filter_query = (
            f"last_known_state = CACHED OR type = '{RESOLVER_TYPE}'")
        options.ending_executions.include_ending_nodes = False
        # Baselines (another model, statistics a resolver picked): shown, not followed.
        others = "type = 'Model'"
        if own_models:
            others += f" AND NOT(id IN ({', '.join(map(str, own_models))}))"
        picked = [i for i in baselines if i not in own_models and i not in start]
        if picked:
            others = f"({others}) OR id IN ({', '.join(map(str, picked))})"
        options.ending_artifacts.filter_query = others
        options.ending_artifacts.include_ending_nodes = True
        return self.store.get_lineage_subgraph(options)

    def _data_checks(self, examples: list[int], run: str) -> mlmd.LineageGraph:
        options = Q(max_num_hops=MAX_HOPS, direction=Q.DOWNSTREAM)
        options.starting_artifacts.filter_query = f"id IN ({', '.join(map(str, examples))})"
        options.ending_executions.filter_query = (
            f"contexts_r.type = '{RUN_CONTEXT_TYPE}' AND contexts_r.name != '{run}'")
        options.ending_executions.include_ending_nodes = False
        return self.store.get_lineage_subgraph(
            options, field_mask_paths=["artifacts", "executions", "events"])

    def trace(self, target: Optional[str] = None) -> "Trace":
        """The trace for a pushed version, model id or run (default: the served model)."""
        description, start, run = self.resolve(target)
        if not start:
            raise StoreError(f"{description}: no artifacts were recorded")
        kinds = {a.id: self.type_name(a.type_id) for a in self.store.get_artifacts_by_id(start)}
        own = [i for i in start if kinds[i] == "Model"]
        if not own:  # a pushed model: the model its Pusher took
            near = self.store.get_lineage_subgraph(
                _options(start, Q.UPSTREAM, 2), field_mask_paths=["artifacts"])
            own = [a.id for a in near.artifacts if self.type_name(a.type_id) == "Model"]
        baselines = self.resolved_in(run)
        graph = self._upstream(start, own, baselines)
        made = {e.artifact_id for e in graph.events if e.type == mlmd.Event.OUTPUT}
        takes = {e.execution_id for e in graph.events if e.type == mlmd.Event.INPUT}
        producer_of = {e.artifact_id: e.execution_id for e in graph.events
                       if e.type == mlmd.Event.OUTPUT}
        roots = [a.id for a in graph.artifacts if self.type_name(a.type_id) == "Examples"
                 and a.id in made and producer_of[a.id] not in takes]
        if roots and run:
            down = self._data_checks(roots, run)
            known = {a.id for a in graph.artifacts}
            model_side = {e.id for e in graph.executions}
            made_by = {ev.artifact_id: ev.execution_id for ev in down.events
                       if ev.type == mlmd.Event.OUTPUT}
            # New artifacts not made on the model's own path (Transform's side
            # outputs are not checks on the data).
            checks = [a.id for a in down.artifacts
                      if a.id not in known and made_by.get(a.id) not in model_side]
            if checks:  # their makers, which may be earlier runs' executions
                graph.MergeFrom(self._upstream(checks, own, baselines))
            # Checks that produce nothing (a gate) have no maker to find: keep them.
            producing = {e.execution_id for e in down.events if e.type == mlmd.Event.OUTPUT}
            known_e = {e.id for e in graph.executions}
            for e in down.executions:
                if e.id not in producing and e.id not in known_e:
                    graph.executions.append(e)
                    graph.events.extend(ev for ev in down.events if ev.execution_id == e.id)
        # What the Evaluator wrote besides the blessing: the metrics.
        outs = self.outputs(e.id for e in graph.executions)
        known = {a.id for a in graph.artifacts}
        extra = [a for a in self.store.get_artifacts_by_id(
            [aid for o in outs.values() for _, aid in o if aid not in known])
            if self.type_name(a.type_id) == "ModelEvaluation"]
        if extra:
            graph.artifacts.extend(extra)
            wanted = {a.id for a in extra}
            graph.events.extend(ev for ev in self.store.get_events_by_artifact_ids(list(wanted))
                                if ev.type == mlmd.Event.OUTPUT
                                and ev.execution_id in {e.id for e in graph.executions})
        return Trace.build(self, description, run, start, graph, roots, own)


def _options(start: list[int], direction, hops: int) -> Q:
    options = Q(max_num_hops=hops, direction=direction)
    options.starting_artifacts.filter_query = f"id IN ({', '.join(map(str, start))})"
    return options


# --------------------------------------------------------------------------- trace


@dataclasses.dataclass
class Node:
    key: str  # "a12" (artifact) or "e5" (execution)
    kind: str  # artifact | execution
    id: int
    type: str  # artifact type or component class
    label: str  # node id, or "<node>.<output key>"
    state: str  # executed/cached/... for executions; present/missing/external for artifacts
    run: Optional[str] = None
    uri: Optional[str] = None
    properties: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Edge:
    source: str
    target: str
    key: str


@dataclasses.dataclass
class Trace:
    description: str
    run: Optional[str]
    start: list[int]
    nodes: dict[str, Node]
    edges: list[Edge]
    data: dict[str, Any]
    code: dict[str, Any]
    config: Optional[dict[str, Any]]
    model: dict[str, Any]
    problems: list[str]
    data_roots: list[int] = dataclasses.field(default_factory=list)  # the model's own data
    own_models: list[int] = dataclasses.field(default_factory=list)  # not baselines

    @classmethod
    def build(cls, store: Store, description: str, run: Optional[str], start: list[int],
              graph: mlmd.LineageGraph, data_roots: Iterable[int] = (),
              own_models: Iterable[int] = ()) -> "Trace":
        executions = {e.id: e for e in graph.executions}
        artifacts = {a.id: a for a in graph.artifacts}
        node_ids = store.node_ids(executions)
        runs = {eid: store.run_of(eid) for eid in executions}
        nodes: dict[str, Node] = {}
        for e in executions.values():
            props = {k: custom(e, k) for k in e.custom_properties if not k.startswith("__")}
            nodes[f"e{e.id}"] = Node(f"e{e.id}", "execution", e.id, store.type_name(e.type_id),
                                     node_ids.get(e.id, e.name),
                                     STATES.get(e.last_known_state, "unknown"), runs[e.id],
                                     properties=props)
        edges, seen = [], set()
        out_key: dict[int, str] = {}
        for ev in graph.events:
            if ev.execution_id not in executions or ev.artifact_id not in artifacts:
                continue
            # One event per artifact and execution; its path names every key
            # the artifact filled (e.g. both `model` and `baseline_model`).
            keys = [st.key for st in ev.path.steps if st.HasField("key")] or [""]
            key = keys[0]
            a, e = f"a{ev.artifact_id}", f"e{ev.execution_id}"
            pair = (a, e) if ev.type == mlmd.Event.INPUT else (e, a)
            for k in keys:
                if (pair, k) not in seen:
                    seen.add((pair, k))
                    edges.append(Edge(*pair, k))
            if ev.type == mlmd.Event.OUTPUT:
                out_key[ev.artifact_id] = f"{node_ids.get(ev.execution_id, '?')}.{key}"
        problems: list[str] = []
        baselines = {custom(a, "baseline_model_id") for a in artifacts.values()
                     if store.type_name(a.type_id) == "ModelBlessing"}
        own = sorted(set(own_models))
        # A model can be its own baseline (re-evaluated after its first blessing).
        resolved = set(store.resolved_in(run)) - set(start) - set(own)
        for a in artifacts.values():
            uri = a.uri or None
            state = "present"
            if uri and "://" not in uri and not os.path.exists(uri):
                state = "missing"
                problems.append(f"artifact {a.id} ({store.type_name(a.type_id)}): its URI "
                                f"{uri} no longer exists")
            elif uri and "://" in uri:
                state = "remote"
            props = {k: custom(a, k) for k in list(a.properties) + list(a.custom_properties)
                     if k not in ("tfx_version", "is_external")}
            label = out_key.get(a.id, store.type_name(a.type_id))
            if (a.id in baselines or a.id in resolved) and a.id not in own:
                label = f"baseline {store.type_name(a.type_id)}"
                props["role"] = "baseline: picked by a resolver from an earlier run"
            nodes[f"a{a.id}"] = Node(f"a{a.id}", "artifact", a.id, store.type_name(a.type_id),
                                     label, state, uri=uri, properties=props)
        trace = cls(description, run, start, nodes, edges, {}, {}, None, {}, problems,
                    list(data_roots), own)
        trace._summarise(store)
        return trace

    # -- reading the graph
    def of_type(self, kind: str) -> list[Node]:
        return sorted((n for n in self.nodes.values() if n.type == kind), key=lambda n: n.id)

    def producer(self, node: Node) -> Optional[Node]:
        return next((self.nodes[e.source] for e in self.edges if e.target == node.key), None)

    def inputs(self, execution: Node) -> list[tuple[str, Node]]:
        return [(e.key, self.nodes[e.source]) for e in self.edges if e.target == execution.key]

    def _summarise(self, store: Store) -> None:
        # Data: the Examples made by an execution that took no input artifacts.
        examples = self.of_type("Examples")
        examples.sort(key=lambda a: a.id not in self.data_roots)
        for a in examples:
            gen = self.producer(a)
            if gen is None or self.inputs(gen):
                continue
            p = gen.properties
            self.data = {
                "examples_artifact": a.id, "examples_uri": a.uri,
                "produced_by": gen.label, "execution": gen.id, "run": gen.run,
                "input_base": p.get("input_base"),
                "input_config": _json(p.get("input_config")),
                "split_config": _json(p.get("output_config")),
                "fingerprint": p.get("input_fingerprint"),
                "span": a.properties.get("span", p.get("span")),
                "version": a.properties.get("version", p.get("version")),
            }
            made_by = _run_facts(store, gen.run)
            if made_by:
                self.data["data_path"] = made_by.get("data_path")
                self.data["content_digest"] = made_by.get("data_digest") or None
            break
        else:
            self.problems.append("no ExampleGen output in the record: the data's origin is unknown")

        # The model, its blessing and where it went.
        models = [n for n in self.of_type("Model") if n.id in self._own_models()]
        if models:
            model = models[-1]
            trainer = self.producer(model)
            self.model = {"artifact": model.id, "uri": model.uri, "state": model.state,
                          "trained_by": trainer.label if trainer else None,
                          "run": trainer.run if trainer else None}
        for b in self.of_type("ModelBlessing"):
            self.model["blessed"] = b.properties.get("blessed") == 1
            self.model["blessing_artifact"] = b.id
            baseline = b.properties.get("baseline_model_id")
            self.model["baseline_model"] = baseline
            ev = self.producer(b)
            if ev:
                self.model["evaluated_by"] = ev.label
                self.model["evaluation"] = next(
                    (n.id for n in self.of_type("ModelEvaluation") if self.producer(n) is ev), None)
        for p in self.of_type("PushedModel"):
            self.model["pushed"] = p.properties.get("pushed") == 1
            self.model["pushed_version"] = p.properties.get("pushed_version")
            self.model["pushed_destination"] = p.properties.get("pushed_destination")
        if not models and self.description.startswith("run"):
            self.problems.append("no model in this run's record: it stopped before training "
                                 "(see `tfxp runs`)")

        # Code: component classes and the dotted entry points they loaded.
        entry = {}
        for n in self.nodes.values():
            if n.kind != "execution":
                continue
            for prop in CODE_PROPERTIES:
                if n.properties.get(prop):
                    entry[f"{n.label}.{prop}"] = n.properties[prop]
        components = {n.label: n.type for n in self.nodes.values() if n.kind == "execution"}
        trained_in = self.model.get("run") or self.run
        facts = _run_facts(store, trained_in)
        self.code = {"entry_points": entry, "components": components,
                     "recorded_in_run": trained_in if facts else None}
        for k in ("project_version", "git_commit", "tfx_version", "python_version"):
            self.code[k] = facts.get(k)
        if facts.get("config"):
            self.config = {"sha256": facts.get("config_sha256"),
                           "values": json.loads(facts["config"])}
        else:
            self.problems.append(
                f"run {trained_in} recorded no project version or config (it was not started "
                f"by `tfxp run`, or by an older version of it)")
        # Anomalies found on the data (the ExampleValidator marks each split).
        for a in self.of_type("ExampleAnomalies"):
            ok = a.properties.get("blessed")  # absent on Transform's own anomalies
            if isinstance(ok, dict):
                bad = sorted(s for s, v in ok.items() if not v)
                self.data.setdefault("anomalies", {})[a.label] = (
                    f"anomalies in {', '.join(bad)}" if bad else "none")

    def _own_models(self) -> set[int]:
        if self.own_models:
            return set(self.own_models)
        baseline = {n.properties.get("baseline_model_id") for n in self.of_type("ModelBlessing")}
        return {n.id for n in self.of_type("Model")} - baseline

    # -- renderings
    def to_dict(self) -> dict[str, Any]:
        return {"description": self.description, "run": self.run, "start": self.start,
                "data": self.data, "model": self.model, "code": self.code,
                "config": self.config, "problems": self.problems,
                "nodes": [dataclasses.asdict(n) for n in self.ordered()],
                "edges": [dataclasses.asdict(e) for e in self.edges]}

    def ordered(self) -> list[Node]:
        """Nodes from the data to the served model (a topological order)."""
        layer = layers(self)
        return sorted(self.nodes.values(), key=lambda n: (layer[n.key], n.kind, n.id))


def _json(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text


def _run_facts(store: Store, run: Optional[str]) -> dict[str, str]:
    if not run:
        return {}
    try:
        context = store.store.get_context_by_type_and_name(RUN_CONTEXT_TYPE, run)
    except Exception:
        return {}
    return read_run(context) if context else {}


def layers(trace: Trace) -> dict[str, int]:
    """Longest-path layer of each node from the sources: the columns of a drawing."""
    preds: dict[str, list[str]] = {k: [] for k in trace.nodes}
    for e in trace.edges:
        preds[e.target].append(e.source)
    depth: dict[str, int] = {}

    def visit(k: str, stack: frozenset = frozenset()) -> int:
        if k not in depth:
            if k in stack:
                return 0
            depth[k] = 1 + max((visit(p, stack | {k}) for p in preds[k]), default=-1)
        return depth[k]

    for k in trace.nodes:
        visit(k)
    return depth


def open_store_from(root: Optional[str] = None, sqlite: Optional[str] = None,
                    mysql: Optional[str] = None, grpc: Optional[str] = None) -> Store:
    """The `Store` for command-line flags (see `connection_config`)."""
    return Store(open_metadata(connection_config(root, sqlite, mysql, grpc)))
