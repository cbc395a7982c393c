"""Where a model came from: its trace through ML Metadata, as a graph with its facts.

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
import json
import os
from typing import Any, Iterable, Optional

from ml_metadata.proto import metadata_store_pb2 as mlmd

from pipeline.dag.digest import CODE_DIGEST, FUNCTION_PROPERTIES, MODULE_PROPERTIES
from pipeline.errors import StoreError
from pipeline.lineage.provenance import run_facts
from pipeline.lineage.runs import find_run, run_contexts
from pipeline.lineage.store import (
    RESOLVER_TYPE,
    RUN_CONTEXT_TYPE,
    STATES,
    Store,
    custom,
    int_filter,
    recorded_names,
    type_filter,
)

Q = mlmd.LineageSubgraphQueryOptions
MAX_HOPS = 40
# What KFP's launcher records on a task's execution about the pod, not the work.
KFP_BOOKKEEPING = ("display_name", "task_name", "pod_name", "pod_uid", "namespace",
                   "parent_dag_id", "inputs", "outputs", "cache_fingerprint",
                   "cached_execution_id")
# Execution properties that name code TFX loads by dotted path or file.
CODE_PROPERTIES = FUNCTION_PROPERTIES + ("module_file",) + MODULE_PROPERTIES


# --------------------------------------------------------------------------- starting points


def pushed_models(store: Store) -> list[mlmd.Artifact]:
    """Pushed models, oldest first (by the version the Pusher wrote)."""
    found = store.artifacts(f"{type_filter('PushedModel')} AND {int_filter('pushed', 1)}")
    return sorted(found, key=lambda a: (str(custom(a, "pushed_version") or ""), a.id))


def producer(store: Store, artifact_id: int) -> Optional[mlmd.Execution]:
    """The execution that made an artifact (not one that reused it from cache)."""
    ids = [e.execution_id for e in store.store.get_events_by_artifact_ids([artifact_id])
           if e.type in (mlmd.Event.OUTPUT, mlmd.Event.DECLARED_OUTPUT)]
    executions = sorted(store.store.get_executions_by_id(ids),
                        key=lambda e: (e.last_known_state != mlmd.Execution.COMPLETE, e.id))
    return executions[0] if executions else None


def resolve(store: Store, target: Optional[str]) -> tuple[str, list[int], Optional[str]]:
    """(description, starting artifact ids, run) for a pushed version, a
    model artifact id, a run, or by default the newest pushed model."""
    if not run_contexts(store):
        raise StoreError("the ML Metadata store holds no pipeline runs yet")
    pushed = pushed_models(store)
    if target is None:
        if not pushed:
            run = find_run(store, "latest")
            return (f"run {run.name} (no model has been pushed yet)",
                    run_outputs(store, run), run.name)
        a = pushed[-1]
        return _from_pushed(store, a, "served model")
    for a in pushed:
        if custom(a, "pushed_version") == target:
            return _from_pushed(store, a, "pushed model")
    if target.isdigit():
        [model] = store.store.get_artifacts_by_id([int(target)]) or [None]
        if model is not None and store.type_name(model.type_id) == "Model":
            made = producer(store, model.id)
            return (f"model artifact {model.id}", [model.id],
                    store.run_of(made.id) if made else None)
    try:
        run = find_run(store, target)
    except StoreError as e:
        raise StoreError(f"{target!r} is not a pushed version, a model artifact id or "
                         f"a run ({e})") from None
    return f"run {run.name}", run_outputs(store, run), run.name


def _from_pushed(store: Store, a: mlmd.Artifact, what: str) -> tuple[str, list[int], Optional[str]]:
    made = producer(store, a.id)
    return (f"{what} version {custom(a, 'pushed_version')} "
            f"({custom(a, 'pushed_destination')})", [a.id],
            store.run_of(made.id) if made else None)


def run_outputs(store: Store, run: mlmd.Context) -> list[int]:
    ids = [e.id for e in store.store.get_executions_by_context(run.id)]
    return sorted({a for outs in store.outputs(ids).values() for _, a in outs})


def resolved_in(store: Store, run: Optional[str]) -> list[int]:
    """Artifacts a resolver picked in the run: baselines from earlier runs."""
    if not run:
        return []
    context = store.run_context(run)
    if context is None:
        return []
    resolvers = [e.id for e in store.store.get_executions_by_context(context.id)
                 if store.type_name(e.type_id) == RESOLVER_TYPE]
    return sorted({a for outs in store.outputs(resolvers).values() for _, a in outs})


def _upstream(store: Store, start: list[int], own_models: list[int],
              baselines: list[int] = ()) -> mlmd.LineageGraph:
    options = Q(max_num_hops=MAX_HOPS, direction=Q.UPSTREAM)
    options.starting_artifacts.filter_query = f"id IN ({', '.join(map(str, start))})"
    # Cached executions only reused outputs; the query reaches their makers.
    # A resolver "outputs" an existing artifact (the baseline): not its maker.
    options.ending_executions.filter_query = (
        f"last_known_state = CACHED OR type = '{RESOLVER_TYPE}'")
    options.ending_executions.include_ending_nodes = False
    # Baselines (another model, statistics a resolver picked): shown, not followed.
    others = type_filter("Model")
    if own_models:
        others += f" AND NOT(id IN ({', '.join(map(str, own_models))}))"
    picked = [i for i in baselines if i not in own_models and i not in start]
    if picked:
        others = f"({others}) OR id IN ({', '.join(map(str, picked))})"
    options.ending_artifacts.filter_query = others
    options.ending_artifacts.include_ending_nodes = True
    return store.store.get_lineage_subgraph(options)


def _data_checks(store: Store, examples: list[int], run: str) -> mlmd.LineageGraph:
    options = Q(max_num_hops=MAX_HOPS, direction=Q.DOWNSTREAM)
    options.starting_artifacts.filter_query = f"id IN ({', '.join(map(str, examples))})"
    options.ending_executions.filter_query = (
        f"contexts_r.type IN ({', '.join(repr(n) for n in recorded_names(RUN_CONTEXT_TYPE))})"
        f" AND contexts_r.name != '{run}'")
    options.ending_executions.include_ending_nodes = False
    return store.store.get_lineage_subgraph(
        options, field_mask_paths=["artifacts", "executions", "events"])


def trace(store: Store, target: Optional[str] = None) -> "Trace":
    """The trace for a pushed version, model id or run (default: the served model)."""
    description, start, run = resolve(store, target)
    if not start:
        raise StoreError(f"{description}: no artifacts were recorded")
    kinds = {a.id: store.type_name(a.type_id) for a in store.store.get_artifacts_by_id(start)}
    own = [i for i in start if kinds[i] == "Model"]
    if not own:  # a pushed model: the model its Pusher took
        near = store.store.get_lineage_subgraph(
            _options(start, Q.UPSTREAM, 2), field_mask_paths=["artifacts"])
        own = [a.id for a in near.artifacts if store.type_name(a.type_id) == "Model"]
    baselines = resolved_in(store, run)
    graph = _upstream(store, start, own, baselines)
    made = {e.artifact_id for e in graph.events if e.type == mlmd.Event.OUTPUT}
    takes = {e.execution_id for e in graph.events if e.type == mlmd.Event.INPUT}
    producer_of = {e.artifact_id: e.execution_id for e in graph.events
                   if e.type == mlmd.Event.OUTPUT}
    roots = [a.id for a in graph.artifacts if store.type_name(a.type_id) == "Examples"
             and a.id in made and producer_of[a.id] not in takes]
    if roots and run:
        down = _data_checks(store, roots, run)
        known = {a.id for a in graph.artifacts}
        model_side = {e.id for e in graph.executions}
        made_by = {ev.artifact_id: ev.execution_id for ev in down.events
                   if ev.type == mlmd.Event.OUTPUT}
        # New artifacts not made on the model's own path (Transform's side
        # outputs are not checks on the data).
        checks = [a.id for a in down.artifacts
                  if a.id not in known and made_by.get(a.id) not in model_side]
        if checks:  # their makers, which may be earlier runs' executions
            graph.MergeFrom(_upstream(store, checks, own, baselines))
        # Checks that produce nothing (a gate) have no maker to find: keep them.
        producing = {e.execution_id for e in down.events if e.type == mlmd.Event.OUTPUT}
        known_e = {e.id for e in graph.executions}
        for e in down.executions:
            if e.id not in producing and e.id not in known_e:
                graph.executions.append(e)
                graph.events.extend(ev for ev in down.events if ev.execution_id == e.id)
    # What the Evaluator wrote besides the blessing: the metrics.
    outs = store.outputs(e.id for e in graph.executions)
    known = {a.id for a in graph.artifacts}
    extra = [a for a in store.store.get_artifacts_by_id(
        [aid for o in outs.values() for _, aid in o if aid not in known])
        if store.type_name(a.type_id) == "ModelEvaluation"]
    if extra:
        graph.artifacts.extend(extra)
        wanted = {a.id for a in extra}
        graph.events.extend(ev for ev in store.store.get_events_by_artifact_ids(list(wanted))
                            if ev.type == mlmd.Event.OUTPUT
                            and ev.execution_id in {e.id for e in graph.executions})
    return Trace.build(store, description, run, start, graph, roots, own)


def _options(start: list[int], direction: int, hops: int) -> Q:
    options = Q(max_num_hops=hops, direction=direction)
    options.starting_artifacts.filter_query = f"id IN ({', '.join(map(str, start))})"
    return options


# --------------------------------------------------------------------------- the graph


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
            props = {k: custom(e, k) for k in e.custom_properties
                     if not k.startswith("__") and k not in KFP_BOOKKEEPING}
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
        resolved = set(resolved_in(store, run)) - set(start) - set(own)
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
                     if k not in ("tfx_version", "is_external", "display_name",
                                  "store_session_info")}
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
        digests = {n.label: n.properties[CODE_DIGEST] for n in self.nodes.values()
                   if n.kind == "execution" and n.properties.get(CODE_DIGEST)}
        components = {n.label: n.type for n in self.nodes.values() if n.kind == "execution"}
        trained_in = self.model.get("run") or self.run
        facts = _run_facts(store, trained_in)
        self.code = {"entry_points": entry, "digests": digests, "components": components,
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
    context = store.run_context(run)
    return run_facts(store, context) if context else {}


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
