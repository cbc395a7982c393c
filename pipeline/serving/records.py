"""A job after the push (a batch prediction), recorded in the run root's store as TFX would.

`tfxp predict` scores in one process, without a TFX pipeline (the launcher's
start alone would cost more than scoring a million rows), and records what it
did in TFX's own layout: a `pipeline` context `<pipeline>-predict`, a
`pipeline_run` context named by the job's run id with the run's facts, and
one execution in a `node` context, with the served version as its input
`Model` (custom properties `served_version`, `served_base_path`, as the
Importer of `tfxp evaluate` records it) and the predictions as its output
`InferenceResult`.  `tfxp runs`, `tfxp lineage` and the trace read it like
any run.  This module writes records; pipeline/lineage reads them.
"""
from __future__ import annotations

import time
from typing import Any, Optional

from ml_metadata import errors as mlmd_errors
from ml_metadata.proto import metadata_store_pb2 as mlmd

from pipeline.facts import PREFIX
from pipeline.lineage.store import (
    NODE_CONTEXT_TYPE,
    PIPELINE_CONTEXT_TYPE,
    RUN_CONTEXT_TYPE,
    open_store,
    sqlite_connection,
)

EXECUTION_TYPE = "tfxp.BatchPredict"


def _type_id(store, kind: str, name: str) -> int:
    """The id of a context, execution or artifact type, registered if new."""
    get = getattr(store, f"get_{kind}_type")
    try:
        return get(name).id
    except mlmd_errors.NotFoundError:  # not registered yet
        proto = {"context": mlmd.ContextType, "execution": mlmd.ExecutionType,
                 "artifact": mlmd.ArtifactType}[kind](name=name)
        return getattr(store, f"put_{kind}_type")(proto)


def _context(store, type_name: str, name: str) -> mlmd.Context:
    found = store.get_context_by_type_and_name(type_name, name)
    if found is not None:
        return found
    context = mlmd.Context(type_id=_type_id(store, "context", type_name), name=name)
    [context.id] = store.put_contexts([context])
    return context


def _props(item: Any, values: dict[str, Any]) -> None:
    for key, value in values.items():
        if isinstance(value, int) and not isinstance(value, bool):
            item.custom_properties[key].int_value = value
        else:
            item.custom_properties[key].string_value = str(value)


def record_job(metadata_path: str, pipeline_name: str, node_id: str, run_id: str,
               facts: dict[str, Any], inputs: dict[str, tuple[str, str, dict]],
               outputs: dict[str, tuple[str, str, dict]], started: float,
               error: Optional[str] = None) -> int:
    """Records one job as a one-node run; inputs/outputs: key -> (type, uri, properties).

    Returns the execution's id.
    """
    store = open_store(sqlite_connection(metadata_path))
    pipeline = _context(store, PIPELINE_CONTEXT_TYPE, pipeline_name)
    run = _context(store, RUN_CONTEXT_TYPE, run_id)
    for key, value in facts.items():
        run.custom_properties[PREFIX + key].string_value = str(value)
    store.put_contexts([run])
    node = _context(store, NODE_CONTEXT_TYPE, f"{pipeline_name}.{node_id}")
    execution = mlmd.Execution(
        type_id=_type_id(store, "execution", EXECUTION_TYPE), name=f"{run_id}.{node_id}",
        last_known_state=mlmd.Execution.FAILED if error else mlmd.Execution.COMPLETE)
    _props(execution, {"seconds": f"{time.time() - started:.3f}"})
    if error:
        _props(execution, {"error": error[:1000]})
    pairs = []
    for direction, artifacts in ((mlmd.Event.INPUT, inputs), (mlmd.Event.OUTPUT, outputs)):
        for key, (type_name, uri, properties) in artifacts.items():
            artifact = mlmd.Artifact(type_id=_type_id(store, "artifact", type_name), uri=uri,
                                     state=mlmd.Artifact.LIVE)
            _props(artifact, properties)
            event = mlmd.Event(type=direction)
            event.path.steps.add().key = key
            event.path.steps.add().index = 0
            pairs.append((artifact, event))
    execution_id, _, _ = store.put_execution(execution, pairs, [pipeline, run, node])
    return execution_id


__all__ = ["EXECUTION_TYPE", "record_job"]
