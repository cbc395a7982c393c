"""The compiled pipeline's last task: the run as KFP's UI shows it.

Every other output of the pipeline is a TFX artifact type, which the KFP UI
lists by URI and never draws.  This task, after the Pusher, reads the run back
from KFP's ML Metadata store through `pipeline.lineage` (as `tfxp report`
does locally) and publishes four artifacts of KFP's own types, which the UI
renders on the run's page and in its Visualizations tab:

- `report`, `system.HTML`: the run report, the page `tfxp report` writes;
- `card`, `system.Markdown`: the pushed version's model card (read from the
  serving volume), or the run's summary when nothing was pushed;
- `metrics`, `system.Metrics`: the overall metrics, by name, as metadata;
- `classification_metrics`, `system.ClassificationMetrics`: the confusion
  matrix and ROC points of TFMA's confusion-matrix plots (binary:
  `ConfusionMatrixPlot`; multi-class: `MultiClassConfusionMatrixPlot`), in
  the form the UI validates (`confusionMatrix`: annotationSpecs and rows;
  `confidenceMetrics`: confidenceThreshold, falsePositiveRate, recall).

HTML and Markdown are files at the outputs' local paths, which the launcher
uploads to their URIs (the UI reads them from there); metrics travel as the
artifacts' metadata, which the launcher records as custom properties.

It runs in the pod, so it reads the store KFP's launcher writes to (its
gRPC service) and the input artifacts the launcher downloaded; a rehearsal
names its SQLite store instead (`METADATA_SQLITE_ENV`).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any, Iterable, Optional

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TF loads)
from pipeline.kubeflow.container.entrypoint import ROOT_ENV, SCHEME_DIRS, local_path

TASK = "RunReport"
MODULE = __name__ if __name__ != "__main__" else "pipeline.kubeflow.report_task"
# KFP's own types, by output key (sdk: kfp.dsl.types.artifact_types).
OUTPUTS = {"report": "system.HTML", "card": "system.Markdown", "metrics": "system.Metrics",
           "classification_metrics": "system.ClassificationMetrics"}
# The run's outputs it reads, by input key: (producer task, its output key, type).
INPUTS = {
    "statistics": ("StatisticsGen", "statistics", "tfx.ExampleStatistics"),
    "anomalies": ("ExampleValidator", "anomalies", "tfx.ExampleAnomalies"),
    "schema": ("ImportSchemaGen", "schema", "tfx.Schema"),
    "inferred_schema": ("SchemaGen", "schema", "tfx.Schema"),
    "evaluation": ("Evaluator", "evaluation", "tfx.ModelEvaluation"),
    "blessing": ("Evaluator", "blessing", "tfx.ModelBlessing"),
}
AFTER = "Pusher"  # the card exists once the Pusher has run
RUN_ID_PLACEHOLDER = "{{$.pipeline_job_uuid}}"  # KFP's driver: the run's id
# KFP's metadata service, as its driver and launcher reach it.
METADATA_ADDRESS = "metadata-grpc-service.kubeflow:8080"
# ROC points kept (each a custom property value in the store), the ends included.
MAX_ROC_POINTS = 201
# A rehearsal's SQLite store, standing in for the service.
METADATA_SQLITE_ENV = "TFXP_METADATA_SQLITE"


# --------------------------------------------------------------------------- content

def overall_metrics(metrics: dict) -> dict[str, float]:
    """The whole eval split's metrics by TFMA name (finite numbers only)."""
    return {name: value for name, value in sorted(metrics.get((), {}).items())
            if isinstance(value, float) and math.isfinite(value)}


def _find(value: Any, key: str) -> Optional[dict]:
    """The first dict under `key` anywhere in a converted TFMA plot."""
    if isinstance(value, dict):
        if key in value:
            return value[key]
        for inner in value.values():
            found = _find(inner, key)
            if found is not None:
                return found
    return None


def _nearest(matrices: list[dict], threshold: float) -> dict:
    return min(matrices, key=lambda m: abs(float(m.get("threshold", 0.0)) - threshold))


def classification_metrics(plots: Iterable[tuple[Any, dict]],
                           class_names: Optional[list[str]] = None) -> dict[str, Any]:
    """KFP's ClassificationMetrics metadata from TFMA's plots of the whole eval
    split (`tfma.load_eval_result(...).plots`); {} when it has none."""
    overall = next((plot for key, plot in plots if not key), None)
    if overall is None:
        return {}
    binary = _find(overall, "confusionMatrixAtThresholds")
    if binary and binary.get("matrices"):
        return _binary(binary["matrices"], class_names or ["0", "1"])
    multi = _find(overall, "multiClassConfusionMatrixAtThresholds")
    if multi and multi.get("matrices"):
        return _multiclass(multi["matrices"], class_names)
    return {}


def _binary(matrices: list[dict], names: list[str]) -> dict[str, Any]:
    def count(m: dict, key: str) -> float:
        return float(m.get(key, 0.0))

    roc = []
    for m in sorted(matrices, key=lambda m: float(m.get("threshold", 0.0))):
        tp, fp = count(m, "truePositives"), count(m, "falsePositives")
        tn, fn = count(m, "trueNegatives"), count(m, "falseNegatives")
        if tp + fn and fp + tn:
            roc.append({"confidenceThreshold": float(m.get("threshold", 0.0)),
                        "falsePositiveRate": fp / (fp + tn), "recall": tp / (tp + fn)})
    if len(roc) > MAX_ROC_POINTS:  # TFMA's 1,000 thresholds: more than a chart needs
        step = (len(roc) - 1) / (MAX_ROC_POINTS - 1)
        roc = [roc[round(i * step)] for i in range(MAX_ROC_POINTS)]
    at = _nearest(matrices, 0.5)
    # Rows are the true classes, columns the predicted ones.
    rows = [[count(at, "trueNegatives"), count(at, "falsePositives")],
            [count(at, "falseNegatives"), count(at, "truePositives")]]
    return {"confusionMatrix": {"annotationSpecs": [{"displayName": n} for n in names[:2]],
                                "rows": [{"row": r} for r in rows]},
            "confidenceMetrics": roc}


def _multiclass(matrices: list[dict], names: Optional[list[str]]) -> dict[str, Any]:
    at = _nearest(matrices, 0.0)  # TFMA's default: the top class is the prediction
    entries = at.get("entries", [])
    ids = sorted({int(e.get("actualClassId", 0)) for e in entries}
                 | {int(e.get("predictedClassId", 0)) for e in entries} - {-1})
    if names:
        ids = sorted(set(ids) | set(range(len(names))))
    index = {class_id: i for i, class_id in enumerate(ids)}
    rows = [[0.0] * len(ids) for _ in ids]
    for e in entries:
        actual, predicted = int(e.get("actualClassId", 0)), int(e.get("predictedClassId", 0))
        if actual in index and predicted in index:
            rows[index[actual]][index[predicted]] += float(e.get("numWeightedExamples", 0.0))
    labels = [names[i] if names and i < len(names) else str(i) for i in ids]
    return {"confusionMatrix": {"annotationSpecs": [{"displayName": n} for n in labels],
                                "rows": [{"row": r} for r in rows]}}


def summary_markdown(info: Any, evaluation: Any) -> str:
    """The run in a few lines of Markdown: what the model card says of a run that
    published nothing (status, blessing, failed thresholds, overall metrics)."""
    from pipeline.lineage.results import fmt_metric, table_columns
    from pipeline.lineage.store import FAILED, NOT_RUN

    lines = [f"# Run {info.run_id} of {info.pipeline}", "",
             f"Status: **{info.status}**. Nothing was pushed."]
    if evaluation is None:
        stopped = [n.node_id for n in info.nodes if n.state in (FAILED, NOT_RUN)]
        lines.append("No evaluation" + (f": the run stopped at {stopped[0]}." if stopped
                                        else "."))
        return "\n".join(lines) + "\n"
    lines.append({True: "Model: BLESSED.", False: "Model: NOT BLESSED.",
                  None: "Model: not evaluated."}[evaluation.blessed])
    if evaluation.failures:
        lines += ["", "Thresholds not met:", ""] + [f"- {f}" for f in evaluation.failures]
    columns = table_columns(evaluation.metrics)
    overall = evaluation.metrics.get((), {})
    if columns:
        lines += ["", "| " + " | ".join(c.header for c in columns) + " |",
                  "|" + "---|" * len(columns),
                  "| " + " | ".join(fmt_metric(overall.get(c.key), c.metric)
                                    for c in columns) + " |"]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- the task

def _store(address: str, launcher_root: str) -> Any:
    """The run's store, its object-store URIs read at the launcher's local paths;
    this task's own execution left out (the report describes the run it closes)."""
    from pipeline.lineage.store import (
        Store,
        connection_config,
        custom,
        open_store,
        sqlite_connection,
    )

    sqlite = os.environ.get(METADATA_SQLITE_ENV)
    config = (sqlite_connection(sqlite, must_exist=True) if sqlite
              else connection_config(grpc=address))
    uri_map = {scheme: os.path.join(launcher_root, directory) + "/"
               for scheme, directory in SCHEME_DIRS.items()}

    class RunStore(Store):
        def tasks(self, executions: Iterable[Any]) -> list[Any]:
            return [e for e in super().tasks(executions) if custom(e, "task_name") != TASK]

    return RunStore(open_store(config), uri_map)


def _input_path(executor_input: dict, key: str) -> Optional[str]:
    found = executor_input["inputs"].get("artifacts", {}).get(key, {}).get("artifacts", [])
    return local_path(found[0]["uri"]) if found else None


def _class_names(schema_dir: Optional[str], label: Optional[str]) -> Optional[list[str]]:
    if not schema_dir or not label:
        return None
    from pipeline.dag.schema import label_classes, read_schema
    path = os.path.join(schema_dir, "schema.pbtxt")
    return label_classes(read_schema(path), label) if os.path.exists(path) else None


def write_outputs(executor_input: dict, store: Any, serving_dir: str,
                  label: Optional[str] = None) -> dict:
    """Writes the four outputs; the ExecutorOutput (their metadata) it returns."""
    import tensorflow_model_analysis as tfma

    from pipeline.lineage.model_card import card_paths
    from pipeline.lineage.report import report_html
    from pipeline.lineage.results import read_evaluation
    from pipeline.lineage.runs import run_record

    run_id = executor_input["inputs"]["parameterValues"]["run_id"]
    outputs = executor_input["outputs"]["artifacts"]
    path = {key: local_path(outputs[key]["artifacts"][0]["uri"]) for key in OUTPUTS}
    for key in OUTPUTS:
        os.makedirs(os.path.dirname(path[key]), exist_ok=True)

    record = run_record(store, run_id)
    evaluation_dir = _input_path(executor_input, "evaluation")
    evaluation = (read_evaluation(evaluation_dir, _input_path(executor_input, "blessing"))
                  if evaluation_dir and os.path.isdir(evaluation_dir) else None)
    metrics = overall_metrics(evaluation.metrics) if evaluation else {}
    classification = {}
    if evaluation_dir and os.path.isdir(evaluation_dir):
        plots = tfma.load_eval_result(evaluation_dir).plots or []
        classification = classification_metrics(
            plots, _class_names(_input_path(executor_input, "schema"), label))

    with open(path["report"], "w", encoding="utf-8") as f:
        f.write(report_html(store, run_id))
    version = record.info.pushed_version
    card = card_paths(os.path.join(serving_dir, str(version)))[0] if version else None
    if card and os.path.exists(card):
        with open(card, encoding="utf-8") as f:
            text = f.read()
    else:
        text = summary_markdown(record.info, evaluation)
    with open(path["card"], "w", encoding="utf-8") as f:
        f.write(text)
    for key, content in (("metrics", metrics), ("classification_metrics", classification)):
        with open(path[key], "w") as f:
            json.dump(content, f, sort_keys=True)

    def artifact(key: str, metadata: dict) -> dict:
        [given] = outputs[key]["artifacts"]
        return {"artifacts": [{"name": given.get("name", ""), "uri": given["uri"],
                               "metadata": metadata}]}

    return {"artifacts": {"report": artifact("report", {}), "card": artifact("card", {}),
                          "metrics": artifact("metrics", metrics),
                          "classification_metrics": artifact("classification_metrics",
                                                             classification)}}


def main(argv: Optional[list[str]] = None) -> int:
    """`python -m pipeline.kubeflow.report_task --executor_input JSON --serving_dir DIR
    [--metadata HOST:PORT] [--label COLUMN]`."""
    parser = argparse.ArgumentParser(prog=f"python -m {MODULE}")
    parser.add_argument("--executor_input", required=True)
    parser.add_argument("--serving_dir", required=True)
    parser.add_argument("--metadata", default=METADATA_ADDRESS)
    parser.add_argument("--label")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    executor_input = json.loads(args.executor_input)
    store = _store(args.metadata, os.environ.get(ROOT_ENV, "/"))
    executor_output = write_outputs(executor_input, store, args.serving_dir, args.label)
    output_file = executor_input["outputs"]["outputFile"]
    os.makedirs(os.path.dirname(output_file), exist_ok=True)
    with open(output_file, "w") as f:
        json.dump(executor_output, f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
