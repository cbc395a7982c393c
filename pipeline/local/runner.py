"""Local runner: the compiled pipeline IR on this machine, Beam in process.

It launches each node the way TFX's LocalDagRunner does (the portable
launcher: driver, executor, publisher against ML Metadata), and adds what that
runner lacks: a chosen run id, progress events with timings, and a record of
which nodes ran, came from cache, failed or never started.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import gc
import time
from typing import Callable, Optional

from tfx.dsl.compiler import constants
from tfx.orchestration import metadata
from tfx.orchestration.local import runner_utils
from tfx.orchestration.portable import launcher, runtime_parameter_utils, tfx_runner
from tfx.proto.orchestration import pipeline_pb2

from pipeline.lineage.store import FAILED, NOT_RUN, execution_state, open_store


@dataclasses.dataclass
class NodeResult:
    node_id: str
    state: str = NOT_RUN
    seconds: float = 0.0
    execution_id: Optional[int] = None
    error: Optional[BaseException] = None


@dataclasses.dataclass
class RunResult:
    run_id: str
    pipeline_name: str
    nodes: list[NodeResult]

    @property
    def error(self) -> Optional[BaseException]:
        return next((n.error for n in self.nodes if n.error is not None), None)

    @property
    def failed_node(self) -> Optional[NodeResult]:
        return next((n for n in self.nodes if n.state == FAILED), None)

    def node(self, node_id: str) -> NodeResult:
        return next(n for n in self.nodes if n.node_id == node_id)


Listener = Callable[[str, NodeResult], None]  # ("start" | "end", result)


class LocalRunner(tfx_runner.IrBasedRunner):
    """Runs nodes in topological order; stops at the first failure."""

    def __init__(self, listener: Optional[Listener] = None, run_id: Optional[str] = None):
        self._listener = listener or (lambda event, result: None)
        self._run_id = run_id

    def run_with_ir(self, pipeline: pipeline_pb2.Pipeline,
                    run_options: Optional[pipeline_pb2.RunOptions] = None,
                    **kwargs) -> RunResult:
        if run_options is not None:
            raise NotImplementedError("partial runs are not supported by this runner")
        run_id = self._run_id or datetime.datetime.now().isoformat()
        runtime_parameter_utils.substitute_runtime_parameter(
            pipeline, {constants.PIPELINE_RUN_ID_PARAMETER_NAME: run_id})
        deployment = runner_utils.extract_local_deployment_config(pipeline)
        connection = getattr(
            deployment.metadata_connection_config,
            deployment.metadata_connection_config.WhichOneof("connection_config"))

        nodes = [n.pipeline_node for n in pipeline.nodes
                 if not n.pipeline_node.execution_options.HasField("skip")]
        result = RunResult(run_id=run_id, pipeline_name=pipeline.pipeline_info.id,
                           nodes=[NodeResult(n.node_info.id) for n in nodes])
        with _imports_out_of_collection():
            self._launch(pipeline, deployment, connection, nodes, result)
        return result

    def _launch(self, pipeline: pipeline_pb2.Pipeline, deployment, connection,
                nodes: list, result: RunResult) -> None:
        for node, record in zip(nodes, result.nodes):
            node_id = node.node_info.id
            node_launcher = launcher.Launcher(
                pipeline_node=node,
                mlmd_connection=metadata.Metadata(connection),
                pipeline_info=pipeline.pipeline_info,
                pipeline_runtime_spec=pipeline.runtime_spec,
                executor_spec=runner_utils.extract_executor_spec(deployment, node_id),
                custom_driver_spec=runner_utils.extract_custom_driver_spec(deployment, node_id))
            self._listener("start", record)
            started = time.monotonic()
            try:
                info = node_launcher.launch()
            except Exception as e:  # the run stops here; the caller reports it
                record.state, record.error = FAILED, e
                record.seconds = time.monotonic() - started
                self._listener("end", record)
                break
            record.seconds = time.monotonic() - started
            record.execution_id = info.execution_id if info else None
            record.state = execution_state(open_store(connection), record.execution_id)
            self._listener("end", record)


# Objects allocated between collections of the youngest generation, during a run.
_NEW_OBJECTS = 10_000


@contextlib.contextmanager
def _imports_out_of_collection():
    """The cyclic garbage collector, tuned for a run: the objects alive before
    the first node (TensorFlow, TFX and Beam as imported, millions of them) are
    kept out of its passes, and it runs after 10,000 new objects instead of 700.
    Both settings are restored when the run ends (the bench measures the gain).
    """
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(max(thresholds[0], _NEW_OBJECTS), *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        gc.unfreeze()

