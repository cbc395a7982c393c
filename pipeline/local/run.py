"""`tfxp run`: the pipeline on this machine, and what came of it.

Everything a run writes lives under one root (`pipeline.layout.RunLayout`):
the pipeline root (artifacts), the SQLite ML Metadata store, and (unless the
config says otherwise) the TF Serving model base path.  Re-running with the
same root reuses cached results and keeps earlier pushed versions.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
from typing import Callable, Optional

from tfx.components.schema_gen.import_schema_gen.component import ImportSchemaGen
from tfx.orchestration.pipeline import Pipeline

from components.drift_check.component import DataDriftError, Drift, read_report
from components.eval_sample.component import SAMPLE_PROPERTIES
from components.rejected import DataRejectedError
from models.tuning import trials
from pipeline.config import PipelineConfig
from pipeline.dag.digest import CONTENT_DIGEST, file_digest
from pipeline.errors import REASON_CHARS, DataRejected, ExitCode, NotBlessed, TfxpError, one_line
from pipeline.layout import RunLayout
from pipeline.lineage.provenance import record_run, run_provenance
from pipeline.lineage.results import Evaluation, read_evaluation
from pipeline.lineage.store import (
    EXECUTED,
    Store,
    check_sqlite,
    custom,
    open_store,
    sqlite_connection,
)
from pipeline.local.beam_mode import local_args
from pipeline.local.inputs import local_sources
from pipeline.local.lock import Holder, run_lock
from pipeline.local.runner import Listener, LocalRunner, RunResult
from pipeline.local.writable import require_run_writable
from pipeline.pipeline import create_pipeline


def _joined(items: list[str], limit: int) -> str:
    """Items joined with '; ', as many as fit in about `limit` characters, and how many more."""
    shown: list[str] = []
    for i, item in enumerate(items):
        rest = len(items) - i - 1
        if len("; ".join([*shown, item])) + (len(f" (and {rest} more)") if rest else 0) > limit:
            break
        shown.append(item)
    if not shown and items:
        shown = [items[0][:limit - 20] + "..."]
    left = len(items) - len(shown)
    return "; ".join(shown) + (f" (and {left} more)" if left else "")


@dataclasses.dataclass
class Outcome:
    # pushed | unchanged (the Pusher came from cache: pushed by an earlier run)
    # | already_serving (blessed, but the newest version is this very model)
    # | data_rejected | data_drift | not_blessed | error
    status: str
    exit_code: ExitCode
    run: RunResult
    paths: RunLayout
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
    # Tuner: the completed trials, best first (models.tuning.trials); None without one.
    tuning: Optional[list[dict]] = None
    # EvalSample: (examples in the eval split, examples evaluated, sample_above).
    eval_sample: Optional[tuple[int, int, int]] = None

    @property
    def reason(self) -> str:
        """Why the run failed, in one line (error outcomes; '' otherwise)."""
        return one_line(self.error) if self.error is not None else ""

    def failure(self) -> Optional[TfxpError]:
        """The error `tfxp run` exits with after its summary: DataRejected (3),
        NotBlessed (4), or the failed component (1); None when the model was
        pushed or there was nothing to push. One line each; the summary above
        it has the detail, `-v` the component's traceback."""
        room = REASON_CHARS - 40
        if self.status == "data_rejected":
            count = len(self.anomalies)
            return DataRejected(f"{count} anomal{'y' if count == 1 else 'ies'} against the "
                                f"schema: " + _joined(
                [f"[{split}] {feature}" for split, feature, _ in self.anomalies], room))
        if self.status == "data_drift":
            return DataRejected("drift from the data that trained the served model: "
                                + _joined([d.feature for d in self.drift], room))
        if self.status == "not_blessed":
            found = []
            if self.serving_check is not None and not self.serving_check[0]:
                found.append(f"serving check: {self.serving_check[1]}")
            if self.evaluation is not None and self.evaluation.blessed is False:
                found += list(self.evaluation.failures) or ["thresholds not met"]
            return NotBlessed(_joined(found or ["see the summary"], room))
        if self.status == "error":
            failed = self.run.failed_node
            where = failed.node_id if failed else "the run"
            error = TfxpError(f"{where} failed: {one_line(self.error, room)}")
            error.__cause__ = self.error
            return error
        return None


def run_pipeline(cfg: PipelineConfig, root: Optional[str] = None,
                 data_path: Optional[str] = None,
                 listener: Optional[Listener] = None, wait: bool = True,
                 on_wait: Optional[Callable[[Holder], None]] = None,
                 run_id: Optional[str] = None, lock_held: bool = False,
                 beam_args: Optional[list[str]] = None,
                 step_beam_args: Optional[dict[str, list[str]]] = None) -> Outcome:
    """Runs `create_pipeline(cfg)` under `root` (default ./runs/<pipeline name>).

    The run holds the root's lock throughout: a second run on the same root
    waits for it (or, with `wait=False`, raises RootBusy at once). A caller
    that already holds it (`tfxp run`, which looks for an unchanged root
    first) says so with `lock_held`.
    """
    paths = RunLayout.under(root, cfg)
    paths.require_directory()
    require_run_writable(cfg, paths)
    os.makedirs(paths.root, exist_ok=True)
    run_id = run_id or datetime.datetime.now().isoformat()
    with contextlib.nullcontext() if lock_held else run_lock(
            paths.lock, run_id, wait=wait, on_wait=on_wait):
        check_sqlite(paths.metadata)  # before any component: a damaged store is named
        connection = sqlite_connection(paths.metadata)
        beam_args = local_args(cfg.beam_args, beam_args)
        sources = local_sources(cfg, data_path)
        tfx_pipeline = create_pipeline(
            cfg, pipeline_root=paths.pipeline_root, serving_dir=paths.serving,
            sources=sources, metadata_connection_config=connection,
            beam_args=beam_args,
            step_beam_args=step_beam_args)
        schema_in_cache_key(tfx_pipeline, sources.schema_file)
        facts = run_provenance(cfg, data_path)  # before the run: the code and data it used
        run = LocalRunner(listener=listener, run_id=run_id).run(tfx_pipeline)
        store = Store(open_store(connection))
        record_run(store, run.run_id, facts)
        return read_outcome(run, paths, store)


def schema_in_cache_key(tfx_pipeline: Pipeline, schema_file: str) -> None:
    """The curated schema's bytes into ImportSchemaGen's cache key.

    TFX keys it by the schema's path alone, so an edited schema.pbtxt would be
    taken from cache: the copy imported before, validating and transforming the
    data against the old schema. (In the pipeline image the schema is part of
    the image.)
    """
    if not os.path.isfile(schema_file):
        return
    for node in tfx_pipeline.components:
        if isinstance(node, ImportSchemaGen):
            node.exec_properties[CONTENT_DIGEST] = file_digest(schema_file)


def read_outcome(run: RunResult, paths: RunLayout, store: Store) -> Outcome:
    """What came of a run: its failure, or its evaluation, checks and push, from the store."""
    failed = run.failed_node
    if failed is not None:
        if isinstance(failed.error, DataRejectedError):
            return Outcome("data_rejected", ExitCode.DATA_REJECTED, run, paths,
                           anomalies=failed.error.problems)
        if isinstance(failed.error, DataDriftError):
            return Outcome("data_drift", ExitCode.DATA_REJECTED, run, paths,
                           drift=failed.error.drifts, drift_baseline=True)
        return Outcome("error", ExitCode.ERROR, run, paths, error=failed.error)

    evaluator = store.output_artifacts(run.node("Evaluator").execution_id)
    evaluation = read_evaluation(evaluator["evaluation"][0].uri,
                                 evaluator["blessing"][0].uri)
    checks = _read_checks(store, run)
    pusher = run.node("Pusher")
    [pushed] = store.output_artifacts(pusher.execution_id)["pushed_model"]
    where = custom(pushed, "pushed_destination")
    if custom(pushed, "pushed") == 1:
        status = "pushed" if pusher.state == EXECUTED else "unchanged"
        return Outcome(status, ExitCode.PUSHED, run, paths, evaluation=evaluation,
                       pushed_path=where, **checks)
    if custom(pushed, "already_serving"):
        return Outcome("already_serving", ExitCode.PUSHED, run, paths, evaluation=evaluation,
                       pushed_path=where, **checks)
    return Outcome("not_blessed", ExitCode.NOT_BLESSED, run, paths, evaluation=evaluation,
                   **checks)


def _read_checks(store: Store, run: RunResult) -> dict:
    """What DriftCheck and ServingCheck recorded, for those in the pipeline."""
    found: dict = {}
    ids = {n.node_id: n.execution_id for n in run.nodes}
    if ids.get("DriftCheck") is not None:
        [report] = store.output_artifacts(ids["DriftCheck"])["drift_report"]
        content = read_report(report.uri)
        found["drift_baseline"] = content["baseline"] is not None
        found["drift"] = [Drift(name, f["comparator"], f["value"], f["threshold"])
                          for name, f in sorted(content["features"].items()) if f["drifted"]]
    if ids.get("ServingCheck") is not None:
        [blessing] = store.output_artifacts(ids["ServingCheck"])["blessing"]
        found["serving_check"] = (custom(blessing, "blessed") == 1,
                                  custom(blessing, "reason") or "")
    if ids.get("EvalSample") is not None:
        [sample] = store.output_artifacts(ids["EvalSample"])["sample"]
        found["eval_sample"] = tuple(custom(sample, name) for name in SAMPLE_PROPERTIES)
    if ids.get("Tuner") is not None:
        [results] = store.output_artifacts(ids["Tuner"])["tuner_results"]
        found["tuning"] = trials(results.uri)
    return found
