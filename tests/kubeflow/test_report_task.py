"""The report task's content in KFP's forms: TFMA's plots, read as TFMA reads
them back (`view.util`, what `load_eval_result` uses), become the
ClassificationMetrics metadata the KFP UI validates (frontend
MetricsVisualizations.tsx, ROCCurveHelper.tsx)."""
from __future__ import annotations

from tensorflow_model_analysis.proto import metrics_for_slice_pb2 as pb
from tensorflow_model_analysis.view import util as view_util

from pipeline.kubeflow import report_task


def _plots(**plot_data) -> list:
    """One overall slice's plots, converted as TFMA converts them when it loads them."""
    proto = pb.PlotsForSlice(slice_key=pb.SliceKey())
    proto.plot_keys_and_values.add(key=pb.PlotKey(name="plot"), value=pb.PlotData(**plot_data))
    return [view_util.convert_plots_proto_to_dict(proto)]


def _check_kfp_form(found: dict, classes: int) -> None:
    """What the UI's runtypes check: annotationSpecs as long as rows, rows square."""
    matrix = found["confusionMatrix"]
    assert len(matrix["annotationSpecs"]) == len(matrix["rows"]) == classes
    assert all(len(r["row"]) == classes for r in matrix["rows"])
    assert all(isinstance(s["displayName"], str) for s in matrix["annotationSpecs"])


def test_binary_confusion_matrix_and_roc_points():
    Matrix = pb.ConfusionMatrixAtThresholds.ConfusionMatrixAtThreshold
    matrices = [Matrix(threshold=t, true_positives=tp, false_positives=fp,
                       true_negatives=tn, false_negatives=fn)
                for t, tp, fp, tn, fn in [(0.0, 40, 60, 0, 0), (0.5, 30, 10, 50, 10),
                                          (0.9, 10, 1, 59, 30)]]
    found = report_task.classification_metrics(
        _plots(confusion_matrix_at_thresholds=pb.ConfusionMatrixAtThresholds(
            matrices=matrices)), ["no tip", "tip"])
    _check_kfp_form(found, 2)
    # At 0.5: rows are the true classes, columns the predicted ones.
    assert found["confusionMatrix"]["rows"] == [{"row": [50.0, 10.0]}, {"row": [10.0, 30.0]}]
    assert [a["displayName"] for a in found["confusionMatrix"]["annotationSpecs"]] == [
        "no tip", "tip"]
    assert found["confidenceMetrics"] == [
        {"confidenceThreshold": 0.0, "falsePositiveRate": 1.0, "recall": 1.0},
        {"confidenceThreshold": 0.5, "falsePositiveRate": 10 / 60, "recall": 30 / 40},
        {"confidenceThreshold": 0.9, "falsePositiveRate": 1 / 60, "recall": 10 / 40}]


def test_roc_points_are_thinned_to_what_a_chart_needs():
    Matrix = pb.ConfusionMatrixAtThresholds.ConfusionMatrixAtThreshold
    matrices = [Matrix(threshold=i / 1000, true_positives=1000 - i, false_negatives=i,
                       false_positives=1000 - i, true_negatives=i) for i in range(1001)]
    found = report_task.classification_metrics(
        _plots(confusion_matrix_at_thresholds=pb.ConfusionMatrixAtThresholds(
            matrices=matrices)))
    roc = found["confidenceMetrics"]
    assert len(roc) == report_task.MAX_ROC_POINTS
    assert roc[0]["confidenceThreshold"] == 0.0 and roc[-1]["confidenceThreshold"] == 1.0


def test_multiclass_confusion_matrix():
    Matrix = pb.MultiClassConfusionMatrixAtThresholds.MultiClassConfusionMatrix
    Entry = pb.MultiClassConfusionMatrixAtThresholds.MultiClassConfusionMatrixEntry
    entries = [Entry(actual_class_id=a, predicted_class_id=p, num_weighted_examples=n)
               for a, p, n in [(0, 0, 5), (0, 2, 1), (1, 1, 7), (2, 0, 2), (2, 2, 4)]]
    found = report_task.classification_metrics(
        _plots(multi_class_confusion_matrix_at_thresholds=(
            pb.MultiClassConfusionMatrixAtThresholds(matrices=[Matrix(
                threshold=0.0, entries=entries)]))), ["Adelie", "Chinstrap", "Gentoo"])
    _check_kfp_form(found, 3)
    assert found["confusionMatrix"]["rows"] == [
        {"row": [5.0, 0.0, 1.0]}, {"row": [0.0, 7.0, 0.0]}, {"row": [2.0, 0.0, 4.0]}]
    assert "confidenceMetrics" not in found


def test_no_plot_no_classification_metrics():
    assert report_task.classification_metrics([]) == {}


def test_overall_metrics_are_the_whole_splits_finite_numbers():
    metrics = {(): {"auc": 0.93, "calibration": float("nan"), "example_count": 1588.0},
               (("payment_type", "Cash"),): {"auc": 0.6}}
    assert report_task.overall_metrics(metrics) == {"auc": 0.93, "example_count": 1588.0}


def test_the_summary_of_a_run_that_pushed_nothing():
    """What the card output holds when no version was pushed: why, in Markdown."""
    from pipeline.lineage.results import Evaluation
    from pipeline.lineage.runs import NodeRun, RunInfo

    info = RunInfo("run-1", "chicago-taxi", 1, "2026-12-05T07:00:00", 60.0,
                   [NodeRun("Evaluator", "executed"), NodeRun("Pusher", "executed")],
                   blessed=False)
    evaluation = Evaluation(
        metrics={(): {"auc": 0.61, "binary_accuracy": 0.7, "example_count": 1588.0}},
        blessed=False, failures=["auc on overall: 0.61 (lower bound 0.9)"])
    text = report_task.summary_markdown(info, evaluation)
    assert text.startswith("# Run run-1 of chicago-taxi\n")
    assert "Status: **not blessed**. Nothing was pushed." in text
    assert "Model: NOT BLESSED." in text
    assert "- auc on overall: 0.61 (lower bound 0.9)" in text
    header, rule, row = text.strip().splitlines()[-3:]
    assert header.startswith("| n | AUC") and rule.startswith("|---|")
    assert "0.610" in row and "1588" in row
    # A run that stopped before the evaluation names where.
    stopped = RunInfo("run-2", "chicago-taxi", 2, "2026-12-05T07:00:00", 9.0,
                      [NodeRun("DataGate", "failed"), NodeRun("Transform", "not run")])
    assert "No evaluation: the run stopped at DataGate." in report_task.summary_markdown(
        stopped, None)
