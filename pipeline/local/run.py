"""`tfxp run`: the pipeline on this machine, and what came of it.

Everything a run writes lives under one root: the pipeline root (artifacts),
the SQLite ML Metadata store, and (unless the config says otherwise) the TF
Serving model base path.  Re-running with the same root reuses cached results
and keeps earlier pushed versions.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

from components.data_gate.component import DataRejectedError
from components.drift_check.component import DataDriftError, Drift, read_report
from pipeline.config import PipelineConfig
from pipeline.pipeline import create_pipeline
from pipeline.provenance import record_run, run_provenance
from pipeline.results import Evaluation, custom_value, open_store, output_artifacts, \
    read_evaluation, sqlite_connection
from pipeline.runners.local import FAILED, Listener, LocalRunner, RunResult

EXIT_PUSHED = 0
EXIT_ERROR = 1
EXIT_DATA_REJECTED = 3
EXIT_NOT_BLESSED = 4


@dataclasses.dataclass(frozen=True)
class RunPaths:
    root: str
    pipeline_root: str
    metadata: str
    serving: str

    @classmethod
    def under(cls, root: str, cfg: PipelineConfig) -> "RunPaths":
        root = os.path.abspath(root)
        serving = (cfg.resolve(cfg.serving.base_path) if cfg.serving.base_path
                   else os.path.join(root, "serving", cfg.serving.model_name))
        return cls(root=root, pipeline_root=os.path.join(root, "pipeline"),
                   metadata=os.path.join(root, "metadata.sqlite"), serving=serving)


@dataclasses.dataclass
class Outcome:
    status: str  # pushed | data_rejected | data_drift | not_blessed | error
    exit_code: int
    run: RunResult
    paths: RunPaths
    anomalies: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    evaluation: Optional[Evaluation] = None
    pushed_path: Optional[str] = None
    error: Optional[BaseException] = None
    # DriftCheck: features over threshold (stopped the run, or a warning), and
    # whether there was a baseline to compare with (None: check not run).
    drift: list[Drift] = dataclasses.field(default_factory=list)
    drift_baseline: Optional[bool] = None
    # ServingCheck: (blessed, reason), None when the check is switched off.
    serving_check: Optional[tuple[bool, str]] = None


def run_pipeline(cfg: PipelineConfig, root: str, data_path: Optional[str] = None,
                 listener: Optional[Listener] = None) -> Outcome:
    paths = RunPaths.under(root, cfg)
    os.makedirs(paths.root, exist_ok=True)
    connection = sqlite_connection(paths.metadata)
    tfx_pipeline = create_pipeline(
        cfg, pipeline_root=paths.pipeline_root, serving_dir=paths.serving,
        data_path=data_path, metadata_connection_config=connection)
    facts = run_provenance(cfg, data_path)  # before the run: the code and data it used
    run = LocalRunner(listener=listener).run(tfx_pipeline)
    record_run(open_store(connection), run.run_id, facts)
    return read_outcome(cfg, run, paths)


def read_outcome(cfg: PipelineConfig, run: RunResult, paths: RunPaths) -> Outcome:
    failed = run.failed_node
    if failed is not None:
        if isinstance(failed.error, DataRejectedError):
            return Outcome("data_rejected", EXIT_DATA_REJECTED, run, paths,
                           anomalies=failed.error.problems)
        if isinstance(failed.error, DataDriftError):
            return Outcome("data_drift", EXIT_DATA_REJECTED, run, paths,
                           drift=failed.error.drifts, drift_baseline=True)
        return Outcome("error", EXIT_ERROR, run, paths, error=failed.error)

    store = open_store(sqlite_connection(paths.metadata, must_exist=True))
    evaluator = output_artifacts(store, run.node("Evaluator").execution_id)
    evaluation = read_evaluation(evaluator["evaluation"][0].uri,
                                 evaluator["blessing"][0].uri)
    checks = _read_checks(store, run)
    [pushed] = output_artifacts(store, run.node("Pusher").execution_id)["pushed_model"]
    if custom_value(pushed, "pushed") == 1:
        return Outcome("pushed", EXIT_PUSHED, run, paths, evaluation=evaluation,
                       pushed_path=custom_value(pushed, "pushed_destination"), **checks)
    return Outcome("not_blessed", EXIT_NOT_BLESSED, run, paths, evaluation=evaluation,
                   **checks)


def _read_checks(store, run: RunResult) -> dict:
    """What DriftCheck and ServingCheck recorded, for those in the pipeline."""
    found: dict = {}
    ids = {n.node_id: n.execution_id for n in run.nodes}
    if ids.get("DriftCheck") is not None:
        [report] = output_artifacts(store, ids["DriftCheck"])["drift_report"]
        content = read_report(report.uri)
        found["drift_baseline"] = content["baseline"] is not None
        found["drift"] = [Drift(name, f["comparator"], f["value"], f["threshold"])
                          for name, f in sorted(content["features"].items()) if f["drifted"]]
    if ids.get("ServingCheck") is not None:
        [blessing] = output_artifacts(store, ids["ServingCheck"])["blessing"]
        found["serving_check"] = (custom_value(blessing, "blessed") == 1,
                                  custom_value(blessing, "reason") or "")
    return found
