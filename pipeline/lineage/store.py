"""The one reader of ML Metadata: connections, outputs by key, properties, node states.

Every ML Metadata store the project opens is constructed here (`open_store`),
whether a runner writes to it or a command reads it back.  `Store` wraps one
with the small reads everything else is built from (type names, the node an
execution ran, outputs by key, custom properties); the runs (`runs.py`) and
the trace (`trace.py`) build on it and are reachable as its methods.
TensorFlow is never imported here.
"""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Iterable, Optional, Union

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
    return Store(open_store(connection_config(root, sqlite, mysql, grpc)))


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

    def __init__(self, store: metadata_store.MetadataStore):
        self.store = store
        self._types: dict[int, str] = {}

    def type_name(self, type_id: int) -> str:
        if type_id not in self._types:
            for t in (list(self.store.get_artifact_types()) + list(self.store.get_execution_types())
                      + list(self.store.get_context_types())):
                self._types[t.id] = t.name
        return self._types.get(type_id, "?")

    def contexts_of_type(self, type_name: str) -> list[mlmd.Context]:
        """Contexts of a type; none when the type was never registered."""
        try:
            return list(self.store.get_contexts_by_type(type_name))
        except Exception:  # no such type yet: nothing of it was recorded
            return []

    def run_context(self, run_id: str) -> Optional[mlmd.Context]:
        try:
            return self.store.get_context_by_type_and_name(RUN_CONTEXT_TYPE, run_id)
        except Exception:  # no such type yet: nothing was launched
            return None

    def node_ids(self, execution_ids: Iterable[int]) -> dict[int, str]:
        """execution id -> the pipeline node it ran (from its `node` context)."""
        out = {}
        for eid in execution_ids:
            for c in self.store.get_contexts_by_execution(eid):
                if self.type_name(c.type_id) == NODE_CONTEXT_TYPE:
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
