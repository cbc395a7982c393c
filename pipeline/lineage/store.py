"""The one reader of ML Metadata: connections, outputs by key, properties, node states.

Every ML Metadata store the project opens is constructed here (`open_store`),
whether a runner writes to it or a command reads it back.  `Store` wraps one
with the small reads everything else is built from (type names, the node an
execution ran, outputs by key, custom properties); the runs (`runs.py`) and
the trace (`trace.py`) build on it and are reachable as its methods.
TensorFlow is never imported here.

Two layouts read alike: TFX's (`tfxp run`: contexts `pipeline`,
`pipeline_run`, `node`; artifact types `Model`, ...) and KFP v2's launcher's
(a cluster, or `tfxp rehearse`: contexts `system.Pipeline`,
`system.PipelineRun`; `system.ContainerExecution`s named by `task_name`;
artifact types `tfx.Model`, ...).  `Store.type_name` answers in TFX's words,
so nothing built on it needs to know which layout it reads.
"""
from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import urllib.parse
from typing import TYPE_CHECKING, Any, Iterable, Optional, Union

from ml_metadata import errors as mlmd_errors
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd

from pipeline.errors import StoreError
from pipeline.layout import RunLayout

if TYPE_CHECKING:
    from pipeline.lineage.runs import RunInfo
    from pipeline.lineage.trace import Trace

# Context and execution types TFX records.
RUN_CONTEXT_TYPE = "pipeline_run"
PIPELINE_CONTEXT_TYPE = "pipeline"
NODE_CONTEXT_TYPE = "node"
# TFX records a resolver node's pick as an execution that outputs the artifact.
RESOLVER_TYPE = "tfx.dsl.components.common.resolver.Resolver"
# KFP v2's names for the same (kubeflow/pipelines backend/src/v2/metadata/client.go).
KFP_CONTEXT_TYPES = {"system.PipelineRun": RUN_CONTEXT_TYPE,
                     "system.Pipeline": PIPELINE_CONTEXT_TYPE}
KFP_DAG_EXECUTION = "system.DAGExecution"  # a (root) DAG: not a task of the pipeline
KFP_TASK_NAME = "task_name"  # a container execution's custom property: the task
KFP_INPUTS = "inputs"  # ... and its parameter values, as one struct
KFP_OUTPUTS = "outputs"  # ... and its output parameters (e.g. ExampleGen's span)
KFP_TYPE_PREFIX = "tfx."  # artifact types by schema title: tfx.Model is TFX's Model

# What a node did in a run, in the words every report uses.
EXECUTED, CACHED, FAILED, RUNNING, NOT_RUN = "executed", "cached", "failed", "running", "not run"
STATES = {mlmd.Execution.COMPLETE: EXECUTED, mlmd.Execution.CACHED: CACHED,
          mlmd.Execution.FAILED: FAILED, mlmd.Execution.RUNNING: RUNNING,
          mlmd.Execution.NEW: "new", mlmd.Execution.CANCELED: "canceled"}

Connection = Union[mlmd.ConnectionConfig, mlmd.MetadataStoreClientConfig]


# --------------------------------------------------------------------------- connections


def sqlite_connection(path: str, must_exist: bool = False) -> mlmd.ConnectionConfig:
    """A read-write SQLite connection, as a runner writes; created unless `must_exist`."""
    if must_exist and not os.path.exists(path):
        raise StoreError(f"no metadata store at {path}: run the pipeline first")
    config = mlmd.ConnectionConfig()
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = (
        mlmd.SqliteMetadataSourceConfig.READWRITE
        if must_exist else mlmd.SqliteMetadataSourceConfig.READWRITE_OPENCREATE)
    return config


def check_sqlite(path: str) -> None:
    """StoreError naming `path` unless SQLite reads the whole file; nothing when it is absent.

    Every command that uses a run root's store calls this first: a damaged store
    (truncated by a full disk, overwritten) would otherwise surface as a failed
    component, or as an answer with the store's part missing. A missing or empty
    file is no store yet, which each caller judges for itself.
    """
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        return
    uri = f"file:{urllib.parse.quote(os.path.abspath(path))}?mode=ro"
    try:
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=30)) as db:
            problems = [row[0] for row in db.execute("PRAGMA quick_check(1)")]
    except sqlite3.OperationalError as e:
        if "locked" in str(e):
            return  # a run is writing it: busy, not damaged
        problems = [str(e)]
    except sqlite3.Error as e:
        problems = [str(e)]
    if problems == ["ok"]:
        return
    why = problems[0] if problems else "no answer"
    if "file is not a database" in why:
        why = "the file is not an SQLite database"
    raise StoreError(f"{path}: the ML Metadata store cannot be read ({why[:120]}); restore it "
                     f"or move it aside (the next run then starts a new store)")


def connection_config(root: Optional[str] = None, sqlite: Optional[str] = None,
                      mysql: Optional[str] = None, grpc: Optional[str] = None) -> Connection:
    """A read-only connection from flags: a run root's SQLite file, another SQLite
    file, MySQL as user@host:port/database (password from MLMD_MYSQL_PASSWORD), or
    an ML Metadata gRPC service as host:port (what a Kubeflow cluster exposes)."""
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
    path = sqlite or (RunLayout.at(root).metadata if root else None)
    if not path:
        raise StoreError("no metadata store given: pass --root, --metadata-sqlite, "
                         "--metadata-mysql or --metadata-grpc")
    if root and not sqlite and os.path.isfile(root):
        raise StoreError(f"run root {root} is a file; --root names a run's directory")
    if os.path.isdir(path):
        raise StoreError(f"{path} is a directory; --metadata-sqlite names an SQLite file "
                         f"(a run root's metadata.sqlite)")
    if not os.path.isfile(path) or os.path.getsize(path) == 0:
        where = os.path.dirname(path) or "."
        raise StoreError(f"no ML Metadata store at {path}: nothing has run there yet "
                         f"(run `tfxp run --root {where}` first)")
    check_sqlite(path)
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = mlmd.SqliteMetadataSourceConfig.READONLY
    return config


def open_store(config: Connection) -> metadata_store.MetadataStore:
    """The store for a connection, or StoreError with a sentence a person can act on."""
    try:
        store = metadata_store.MetadataStore(config)
        store.get_context_types()
    except Exception as e:  # ml_metadata raises its own errors with C++ text
        text = str(e).splitlines()[0] if str(e) else ""
        if "file is not a database" in text:
            text = "the file is not an SQLite database"
        raise StoreError(f"cannot open the ML Metadata store ({type(e).__name__}: "
                         f"{text[:200]})") from None
    return store


def open_store_from(root: Optional[str] = None, sqlite: Optional[str] = None,
                    mysql: Optional[str] = None, grpc: Optional[str] = None) -> "Store":
    """The `Store` for command-line flags (see `connection_config`)."""
    store = open_store(connection_config(root, sqlite, mysql, grpc))
    uri_map = uri_map_beside(sqlite) if sqlite and not (grpc or mysql) else {}
    return Store(store, uri_map)


# --------------------------------------------------------------------------- layouts


def tfx_name(type_name: str) -> str:
    """A type's name in TFX's words, whichever layout recorded it."""
    if type_name in KFP_CONTEXT_TYPES:
        return KFP_CONTEXT_TYPES[type_name]
    if type_name.startswith(KFP_TYPE_PREFIX) and "." not in type_name[len(KFP_TYPE_PREFIX):]:
        return type_name[len(KFP_TYPE_PREFIX):]
    return type_name


def recorded_names(type_name: str) -> list[str]:
    """Every name a TFX type can be recorded under (TFX's, then KFP's)."""
    kfp = [k for k, v in KFP_CONTEXT_TYPES.items() if v == type_name]
    if not kfp and "." not in type_name:
        kfp = [KFP_TYPE_PREFIX + type_name]
    return [type_name, *kfp]


def type_filter(type_name: str) -> str:
    """An ML Metadata filter clause matching a type under either layout's name."""
    return "type IN (" + ", ".join(f"'{n}'" for n in recorded_names(type_name)) + ")"


def int_filter(prop: str, value: int) -> str:
    """A custom property equal to a number: TFX records ints, KFP's launcher doubles."""
    return (f"(custom_properties.{prop}.int_value = {value} OR "
            f"custom_properties.{prop}.double_value = {value})")


class _AsTfx:
    """A MetadataStore read as TFX records things, whichever layout it holds.

    A KFP task's parameters and output parameters (its execution's `inputs` and
    `outputs` structs) read as execution properties, as TFX records a
    component's; and in a rehearsal, whose store
    names object-store URIs as a cluster's does, artifact URIs read as the
    local directories standing in for the object store (`uri_map`).
    """

    def __init__(self, store: metadata_store.MetadataStore, uri_map: Optional[dict] = None):
        self._store = store
        self._map = sorted((uri_map or {}).items(), key=lambda kv: -len(kv[0]))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def _artifacts(self, artifacts: Iterable[mlmd.Artifact]) -> list[mlmd.Artifact]:
        out = list(artifacts)
        for a in out:
            for prefix, local in self._map:
                if a.uri.startswith(prefix):
                    a.uri = os.path.join(local, a.uri[len(prefix):])
                    break
        return out

    @staticmethod
    def _executions(executions: Iterable[mlmd.Execution]) -> list[mlmd.Execution]:
        out = list(executions)
        for e in out:
            if KFP_INPUTS not in e.custom_properties or KFP_TASK_NAME not in e.custom_properties:
                continue
            fields = dict(e.custom_properties[KFP_INPUTS].struct_value.fields)
            if KFP_OUTPUTS in e.custom_properties:
                fields.update(e.custom_properties[KFP_OUTPUTS].struct_value.fields)
            for key, value in fields.items():
                if key in e.custom_properties:
                    continue
                kind = value.WhichOneof("kind")
                if kind == "string_value":
                    e.custom_properties[key].string_value = value.string_value
                elif kind == "number_value":
                    number = value.number_value
                    if number.is_integer():
                        e.custom_properties[key].int_value = int(number)
                    else:
                        e.custom_properties[key].double_value = number
                elif kind == "bool_value":
                    e.custom_properties[key].int_value = int(value.bool_value)
        return out

    def get_artifacts_by_id(self, *args, **kwargs) -> list[mlmd.Artifact]:
        return self._artifacts(self._store.get_artifacts_by_id(*args, **kwargs))

    def get_artifacts(self, *args, **kwargs) -> list[mlmd.Artifact]:
        return self._artifacts(self._store.get_artifacts(*args, **kwargs))

    def get_artifacts_by_type(self, *args, **kwargs) -> list[mlmd.Artifact]:
        return self._artifacts(self._store.get_artifacts_by_type(*args, **kwargs))

    def get_artifacts_by_context(self, *args, **kwargs) -> list[mlmd.Artifact]:
        return self._artifacts(self._store.get_artifacts_by_context(*args, **kwargs))

    def get_executions_by_id(self, *args, **kwargs) -> list[mlmd.Execution]:
        return self._executions(self._store.get_executions_by_id(*args, **kwargs))

    def get_executions_by_context(self, *args, **kwargs) -> list[mlmd.Execution]:
        return self._executions(self._store.get_executions_by_context(*args, **kwargs))

    def get_executions(self, *args, **kwargs) -> list[mlmd.Execution]:
        return self._executions(self._store.get_executions(*args, **kwargs))

    def get_lineage_subgraph(self, *args, **kwargs) -> mlmd.LineageGraph:
        graph = self._store.get_lineage_subgraph(*args, **kwargs)
        self._artifacts(graph.artifacts)
        self._executions(graph.executions)
        return graph


def uri_map_beside(sqlite: str) -> dict[str, str]:
    """The object-store prefixes a rehearsal's store maps to local directories
    (`RehearsalLayout.uri_map`, written beside its store), else {}."""
    from pipeline.layout import RehearsalLayout
    path = RehearsalLayout(os.path.dirname(os.path.abspath(sqlite))).uri_map
    if not os.path.isfile(path):
        return {}
    with open(path) as f:
        return json.load(f)


# --------------------------------------------------------------------------- reading


def custom(item: Union[mlmd.Artifact, mlmd.Execution, mlmd.Context], name: str) -> Any:
    """A property or custom property of an MLMD node, as a Python value (None if absent)."""
    for props in (item.properties, item.custom_properties):
        if name in props:
            value = props[name]
            kind = value.WhichOneof("value")
            if kind == "struct_value":
                from google.protobuf import json_format
                return json_format.MessageToDict(value.struct_value)
            return getattr(value, kind) if kind else None
    return None


def _output_events(store: metadata_store.MetadataStore, execution_ids: Iterable[int]
                   ) -> list[mlmd.Event]:
    return [e for e in store.get_events_by_execution_ids(list(execution_ids))
            if e.type in (mlmd.Event.OUTPUT, mlmd.Event.DECLARED_OUTPUT)]


def _key(event: mlmd.Event) -> str:
    return event.path.steps[0].key if event.path.steps else ""


def output_artifacts(store: metadata_store.MetadataStore, execution_id: int
                     ) -> dict[str, list[mlmd.Artifact]]:
    """Output artifacts of an execution, by output key (cached outputs included)."""
    keyed = {e.artifact_id: _key(e) for e in _output_events(store, [execution_id])}
    by_key: dict[str, list[mlmd.Artifact]] = {}
    for artifact in store.get_artifacts_by_id(list(keyed)):
        by_key.setdefault(keyed[artifact.id], []).append(artifact)
    return by_key


def execution_state(store: metadata_store.MetadataStore, execution_id: Optional[int]) -> str:
    """executed or cached (system nodes such as resolvers record no execution)."""
    if execution_id is None:
        return EXECUTED
    [execution] = store.get_executions_by_id([execution_id])
    return STATES.get(execution.last_known_state, "unknown")


class Store:
    """One ML Metadata store and the reads everything else is built from.

    Opened read-only by the commands that read runs back; read-write by a
    runner, which also records its provenance through it.
    """

    def __init__(self, store: metadata_store.MetadataStore, uri_map: Optional[dict] = None):
        self.store = _AsTfx(store, uri_map)
        self._types: dict[int, str] = {}
        self._recorded: dict[int, str] = {}

    def _load_types(self, type_id: int) -> None:
        if type_id not in self._types:
            for t in (list(self.store.get_artifact_types()) + list(self.store.get_execution_types())
                      + list(self.store.get_context_types())):
                self._types[t.id], self._recorded[t.id] = tfx_name(t.name), t.name

    def type_name(self, type_id: int) -> str:
        """The type's name in TFX's words (KFP's `tfx.Model` is `Model`)."""
        self._load_types(type_id)
        return self._types.get(type_id, "?")

    def recorded_type(self, type_id: int) -> str:
        """The type's name as recorded (e.g. `system.ContainerExecution`)."""
        self._load_types(type_id)
        return self._recorded.get(type_id, "?")

    def contexts_of_type(self, type_name: str) -> list[mlmd.Context]:
        """Contexts of a type, under either layout's name; none when never registered."""
        found = []
        for name in recorded_names(type_name):
            try:
                found += list(self.store.get_contexts_by_type(name))
            except mlmd_errors.NotFoundError:  # no such type yet: nothing of it was recorded
                pass
        return found

    def run_context(self, run_id: str) -> Optional[mlmd.Context]:
        for name in recorded_names(RUN_CONTEXT_TYPE):
            try:
                found = self.store.get_context_by_type_and_name(name, run_id)
            except mlmd_errors.NotFoundError:  # no such type yet: nothing was launched
                found = None
            if found is not None:
                return found
        return None

    def tasks(self, executions: Iterable[mlmd.Execution]) -> list[mlmd.Execution]:
        """The executions that ran a pipeline node (not KFP's DAG executions)."""
        return [e for e in executions if self.recorded_type(e.type_id) != KFP_DAG_EXECUTION]

    def node_ids(self, execution_ids: Iterable[int]) -> dict[int, str]:
        """execution id -> the pipeline node it ran (its `node` context in TFX's
        layout, its `task_name` in KFP's)."""
        out = {}
        ids = list(execution_ids)
        for eid in ids:
            for c in self.store.get_contexts_by_execution(eid):
                if self.type_name(c.type_id) == NODE_CONTEXT_TYPE:
                    out[eid] = c.name.split(".", 1)[-1]
        missing = [eid for eid in ids if eid not in out]
        for e in self.store.get_executions_by_id(missing) if missing else []:
            if custom(e, KFP_TASK_NAME):
                out[e.id] = custom(e, KFP_TASK_NAME)
        return out

    def run_of(self, execution_id: int) -> Optional[str]:
        for c in self.store.get_contexts_by_execution(execution_id):
            if self.type_name(c.type_id) == RUN_CONTEXT_TYPE:
                return c.name
        return None

    def outputs(self, execution_ids: Iterable[int]) -> dict[int, list[tuple[str, int]]]:
        """execution id -> [(output key, artifact id)]."""
        out: dict[int, list[tuple[str, int]]] = {}
        for e in _output_events(self.store, execution_ids):
            out.setdefault(e.execution_id, []).append((_key(e), e.artifact_id))
        return out

    def output_artifacts(self, execution_id: int) -> dict[str, list[mlmd.Artifact]]:
        """Output artifacts of one execution, by output key."""
        return output_artifacts(self.store, execution_id)

    def artifacts(self, query: str) -> list[mlmd.Artifact]:
        """Artifacts matching an ML Metadata filter query."""
        return list(self.store.get_artifacts(
            list_options=metadata_store.ListOptions(filter_query=query)))

    # -- the runs and the trace, built on the reads above
    def run_contexts(self) -> list[mlmd.Context]:
        from pipeline.lineage import runs
        return runs.run_contexts(self)

    def runs(self) -> list["RunInfo"]:
        from pipeline.lineage import runs
        return runs.list_runs(self)

    def find_run(self, spec: Optional[str]) -> mlmd.Context:
        """A run by id, unique prefix, 'latest' or 'previous'."""
        from pipeline.lineage import runs
        return runs.find_run(self, spec)

    def run_info(self, run: mlmd.Context) -> "RunInfo":
        from pipeline.lineage import runs
        return runs.run_info(self, run)

    def trace(self, target: Optional[str] = None) -> "Trace":
        """Where a pushed version, model id or run came from (default: the served model)."""
        from pipeline.lineage import trace
        return trace.trace(self, target)
