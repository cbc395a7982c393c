"""The histogram twins give TFMA's values, through TFMA's own combiners."""
import functools
import inspect
import sys

import numpy as np
import pytest
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import metric_specs, metric_types, metric_util

from models import metrics, tfma_internals
from pipeline.config import load_config
from pipeline.dag.evaluation import configured_name, eval_config


def evaluate(metric: metric_types.Metric, rows, weighted: bool) -> dict[str, float]:
    """The metric's values over the rows, combiners and derived results in TFMA's order."""
    values: dict = {}
    combiners = 0
    for computation in metric.computations(example_weighted=weighted):
        if isinstance(computation, metric_types.MetricComputation):
            combiners += 1
            combiner = computation.combiner
            combiner.setup()
            accumulator = combiner.create_accumulator()
            for label, prediction, weight in rows:
                inputs = metric_util.to_standard_metric_inputs({
                    "labels": np.array([label]), "predictions": np.array([prediction]),
                    "example_weights": np.array([weight])})
                accumulator = combiner.add_input(accumulator, inputs)
            values.update(combiner.extract_output(combiner.compact(accumulator)))
        else:
            values.update(computation.result(values))
    return {key.name: value for key, value in values.items()
            if not key.name.startswith("_")} | {"combiners": combiners}


@pytest.fixture(scope="module")
def rows():
    rng = np.random.default_rng(7)
    predictions = np.concatenate([
        rng.uniform(size=3000),
        # Beside the thresholds: just above 0.5 and 0.3 (the bucket TFMA's own
        # histogram path puts below them), just below, and the ends.
        [0.50005, 0.500001, 0.49995, 0.30004, 0.29999, 0.0, 1.0] * 20,
    ])
    labels = (rng.uniform(size=predictions.size) < predictions).astype(float)
    weights = rng.uniform(0.5, 2.0, size=predictions.size)
    return list(zip(labels, predictions, weights))


NAMES = ["BinaryAccuracy", "FallOut", "MissRate", "Precision", "Recall", "Specificity",
         "FalsePositives", "F1Score"]


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("threshold", [None, 0.3])
def test_a_twin_equals_tfmas_exact_metric(rows, name, weighted, threshold):
    takes = inspect.signature(getattr(tfma.metrics, name).__init__).parameters
    kwargs = ({} if threshold is None else {"threshold": threshold} if "threshold" in takes
              else {"thresholds": [threshold]})
    exact = evaluate(getattr(tfma.metrics, name)(**kwargs), rows, weighted)
    twin = evaluate(getattr(metrics, name + metrics.SUFFIX)(**kwargs), rows, weighted)
    assert twin.keys() == exact.keys()
    for key, value in exact.items():
        if key != "combiners":
            assert twin[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


@pytest.mark.parametrize("weighted", [False, True])
def test_calibration_from_the_histogram_equals_tfmas(rows, weighted):
    exact = evaluate(tfma.metrics.Calibration(), rows, weighted)
    twin = evaluate(metrics.CalibrationFromHistogram(), rows, weighted)
    assert twin["calibration"] == pytest.approx(exact["calibration"], rel=1e-9)


def test_the_confusion_matrix_plot_twin_keys_each_model_as_tfma_does():
    # With a baseline, TFMA computes the plot per model: the twin's keys are TFMA's.
    def keys(metric):
        return sorted(str(k) for c in metric.computations(model_names=["candidate", "baseline"])
                      for k in c.keys)
    assert keys(metrics.ConfusionMatrixPlotFromHistogram()) == keys(
        tfma.metrics.ConfusionMatrixPlot())
    assert any("candidate" in k for k in keys(tfma.metrics.ConfusionMatrixPlot()))


def test_the_confusion_matrix_plot_twin_equals_tfmas(rows):
    # The plot the KFP UI draws (ROC points, confusion matrix): the same matrices
    # at every threshold, its histogram added by HistogramCombiner.
    # (TFMA's plot takes no example weights.)
    exact = evaluate(tfma.metrics.ConfusionMatrixPlot(), rows, False)
    twin = evaluate(metrics.ConfusionMatrixPlotFromHistogram(), rows, False)
    assert isinstance(next(c.combiner for c in metrics.ConfusionMatrixPlotFromHistogram()
                           .computations() if isinstance(c, metric_types.MetricComputation)),
                      metrics.HistogramCombiner)
    want, got = exact["confusion_matrix_plot"], twin["confusion_matrix_plot"]
    assert len(got.matrices) == len(want.matrices) == 1002
    for a, b in zip(got.matrices, want.matrices):
        assert a.threshold == b.threshold
        for field in ("true_positives", "false_positives", "true_negatives",
                      "false_negatives"):
            assert getattr(a, field) == pytest.approx(getattr(b, field), rel=1e-9, abs=1e-9)


@pytest.mark.parametrize("weighted", [False, True])
def test_example_count_from_the_histogram_equals_tfmas(rows, weighted):
    exact = evaluate(tfma.metrics.ExampleCount(), rows, weighted)
    twin = evaluate(metrics.ExampleCountFromHistogram(), rows, weighted)
    assert twin["example_count"] == pytest.approx(exact["example_count"], rel=1e-12)
    if not weighted:
        assert twin["example_count"] == len(rows)


def combine(combiner, elements):
    accumulator = combiner.create_accumulator()
    for element in elements:
        accumulator = combiner.add_input(accumulator, metric_util.to_standard_metric_inputs(
            element))
    return {b.bucket_id: (b.weighted_labels, b.weighted_predictions, b.weighted_examples)
            for b in next(iter(combiner.extract_output(accumulator).values()))}


@pytest.mark.parametrize("weighted", [False, True])
def test_a_group_of_rows_adds_as_its_rows_do(rows, weighted):
    """The rows of a slice in one element (models/extractors.py) give TFMA's
    histogram of the rows one by one, however they are grouped."""
    computation = metric_types.MetricComputation  # the histogram's
    combiner = next(c.combiner for c in metrics.AUCFromHistogram().computations(
        example_weighted=weighted) if isinstance(c, computation))
    tfma_combiner = next(c.combiner for c in tfma.metrics.AUC().computations(
        example_weighted=weighted) if isinstance(c, computation))
    labels, predictions, weights = (np.array(column) for column in zip(*rows))
    weights[:50] = 0.0  # left out, as TFMA leaves them
    one_by_one = [{"labels": np.array([y]), "predictions": np.array([p]),
                   "example_weights": np.array([w])}
                  for y, p, w in zip(labels, predictions, weights)]
    groups = [{"labels": labels[i:i + 97], "predictions": predictions[i:i + 97, None],
               "example_weights": weights[i:i + 97]} for i in range(0, len(rows), 97)]
    exact = combine(tfma_combiner, one_by_one)
    grouped = combine(combiner, groups)
    assert grouped.keys() == exact.keys()
    for bucket, (label, prediction, weight) in exact.items():
        assert grouped[bucket] == pytest.approx((label, prediction, weight), rel=1e-12)
    # TFMA's own combiner takes a group the same way (each value an entry).
    assert combine(tfma_combiner, groups).keys() == exact.keys()


def test_a_group_that_is_not_plain_goes_through_tfma():
    combiner = next(c.combiner for c in metrics.AUCFromHistogram().computations()
                    if isinstance(c, metric_types.MetricComputation))
    fractional = {"labels": np.array([0.25, 1.0]), "predictions": np.array([[0.3], [0.8]])}
    tfma_combiner = next(c.combiner for c in tfma.metrics.AUC().computations()
                         if isinstance(c, metric_types.MetricComputation))
    assert combine(combiner, [fractional]) == combine(tfma_combiner, [fractional])


def test_twins_share_one_combiner():
    config = tfma.EvalConfig(model_specs=[tfma.ModelSpec()], metrics_specs=[tfma.MetricsSpec(
        metrics=[tfma.MetricConfig(class_name=name + metrics.SUFFIX, module=metrics.__name__)
                 for name in ("AUC", "BinaryAccuracy", "FallOut", "MissRate", "Calibration",
                              "ExampleCount")])])
    computations = metric_specs.to_computations(config.metrics_specs, eval_config=config)
    combiners = [c for c in computations if isinstance(c, metric_types.MetricComputation)]
    assert len(combiners) == 6 and len(set(combiners)) == 1  # TFMA runs equal ones once
    assert all(isinstance(c.combiner, metrics.HistogramCombiner) for c in combiners)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("name", ["AUC", "AUCPrecisionRecall"])
def test_an_auc_twin_equals_tfmas(rows, name, weighted):
    exact = evaluate(getattr(tfma.metrics, name)(), rows, weighted)
    twin = evaluate(getattr(metrics, name + metrics.SUFFIX)(), rows, weighted)
    assert twin == exact


@pytest.mark.parametrize("thresholds", [
    "interpolated", [0.0, 0.25, 0.5], [0.1, 0.5, 0.9999], [-1.0, 0.5, 2.0], [0.3]])
@pytest.mark.parametrize("buckets", ["all", "few", "none"])
def test_histogram_matrices_equal_tfmas_rebin_and_derivation(thresholds, buckets):
    from tensorflow_model_analysis.metrics import binary_confusion_matrices as bcm
    from tensorflow_model_analysis.metrics import calibration_histogram as ch

    if thresholds == "interpolated":
        thresholds = tfma_internals.interpolated_thresholds(bcm.DEFAULT_NUM_THRESHOLDS)
    rng = np.random.default_rng(3)
    n = ch.DEFAULT_NUM_BUCKETS
    # Bucket 0 (below 0) and n + 1 (1.0 and above) included; sparse or empty.
    ids = {"all": range(n + 2), "few": [0, 1, 2, 3000, 5000, 5001, 9999, n, n + 1],
           "none": []}[buckets]
    hist = []
    for bucket_id in ids:
        examples = float(rng.integers(1, 5)) * rng.uniform(0.5, 2.0)
        labels = examples * rng.uniform()
        hist.append(ch.Bucket(bucket_id, labels, labels * 0.7, examples))

    epsilon = tfma_internals.EPSILON
    edges = [t + epsilon if t != 0 else t for t in thresholds]
    edges = ([-epsilon] if thresholds[0] >= 0 else []) + edges + (
        [1.0 + epsilon] if thresholds[-1] < 1.0 else [])
    exact = tfma_internals.histogram_to_binary_confusion_matrices(
        thresholds, ch.rebin(edges, hist))
    assert metrics.histogram_matrices(thresholds, hist) == exact


def test_an_auc_twin_derives_its_matrices_in_numpy():
    derived = [c for c in metrics.AUCFromHistogram().computations()
               if isinstance(c, metric_types.DerivedMetricComputation)]
    assert derived[0].result.__qualname__.startswith("_interpolated_matrices")


def histogram(combiner, elements):
    accumulator = combiner.create_accumulator()
    for element in elements:
        accumulator = combiner.add_input(accumulator, element)
    return [vars(bucket) for bucket in next(iter(combiner.extract_output(accumulator).values()))]


@pytest.mark.parametrize("model_name", ["", "candidate"])
@pytest.mark.parametrize("weighted", [False, True])
def test_the_histogram_combiner_adds_as_tfmas_does(model_name, weighted):
    """The direct path (0/1 labels, one probability, one weight) and TFMA's
    (fractional labels, several values, an infinite weight) give TFMA's buckets."""
    rng = np.random.default_rng(3)
    rows = [(np.array([label]), np.array([prediction], np.float32), np.array([weight]))
            for label, prediction, weight in zip(
                rng.integers(0, 2, 400), rng.uniform(-0.1, 1.1, 400),
                rng.choice([0.0, 0.5, 1.0, 2.5], 400))]
    rows += [(np.array([0.25]), np.array([0.7], np.float32), np.array([1.5])),
             (np.array([1.0, 0.0]), np.array([0.2, 0.9], np.float32), np.array([1.0])),
             (np.array([1]), np.array([0.4], np.float32), np.array([np.inf])),
             (np.array([0], np.int32), np.array([0.5], np.float32), np.array([3]))]
    elements = []
    for label, prediction, weight in rows:
        if model_name:
            prediction = {model_name: prediction, "baseline": prediction / 2}
        elements.append(metric_types.StandardMetricInputs(
            labels=label, predictions=prediction, example_weights=weight))
    tfma_computation = tfma.metrics.calibration_histogram.calibration_histogram(
        model_name=model_name, example_weighted=weighted)[0]
    ours = metrics.direct([tfma_computation])[0]
    assert isinstance(ours.combiner, metrics.HistogramCombiner)
    assert ours.keys == tfma_computation.keys
    if weighted:  # an infinite weight makes NaN in both
        expected = histogram(tfma_computation.combiner, elements)
        got = histogram(ours.combiner, elements)
        assert [b["bucket_id"] for b in got] == [b["bucket_id"] for b in expected]
        np.testing.assert_array_equal(
            [[b["weighted_labels"], b["weighted_predictions"], b["weighted_examples"]]
             for b in got],
            [[b["weighted_labels"], b["weighted_predictions"], b["weighted_examples"]]
             for b in expected])
    else:
        assert histogram(ours.combiner, elements) == histogram(tfma_computation.combiner,
                                                               elements)


def test_a_threshold_inside_a_bucket_keeps_tfmas_exact_path(rows):
    inside = 0.12345
    rows = rows + [(1.0, 0.12346, 1.0), (0.0, 0.12344, 1.0)] * 30
    twin = metrics.FallOutFromHistogram(thresholds=[inside])
    exact = evaluate(tfma.metrics.FallOut(thresholds=[inside]), rows, False)
    assert not metrics.on_edge(inside) and metrics.on_edge(0.5)
    assert evaluate(twin, rows, False)["fall_out"] == exact["fall_out"]


def test_the_eval_config_names_twins_for_probabilities_only():
    cfg = load_config()
    config = eval_config(cfg.evaluation, cfg.model_inputs())
    by_name = {configured_name(m): m for spec in config.metrics_specs for m in spec.metrics}
    assert set(cfg.evaluation.metrics) <= set(by_name)
    assert by_name["FallOut"].class_name == "FallOut" + metrics.SUFFIX
    assert by_name["FallOut"].module == metrics.__name__
    assert by_name["Calibration"].module == metrics.__name__
    assert by_name["AUC"].class_name == "AUC" + metrics.SUFFIX
    assert by_name["FallOut"].per_slice_thresholds  # the configured bounds stay on it

    regression = cfg.model_copy(update={"label": cfg.label.model_copy(
        update={"task": "regression", "threshold": None, "relative_to": None})})
    config = eval_config(regression.evaluation.model_copy(
        update={"metrics": ["MeanSquaredError", "Calibration"], "thresholds": []}),
        regression.model_inputs())
    assert {m.module for spec in config.metrics_specs for m in spec.metrics} == {""}


@pytest.mark.parametrize("class_id", [0, 2])
@pytest.mark.parametrize("model_name", ["", "candidate"])
def test_the_histogram_combiner_adds_one_class_as_tfmas_does(class_id, model_name):
    """A multi-class label binarized for one class, predictions in a dict of
    outputs (the model spec's prediction_key picks them), as TFMA adds it."""
    rng = np.random.default_rng(5)
    scores = rng.dirichlet([1.0, 1.0, 1.0], 300).astype(np.float32)
    labels = rng.integers(0, 3, 300)
    weights = rng.choice([0.0, 1.0, 2.5], 300)
    specs = [tfma.ModelSpec(name=name, prediction_key="outputs")
             for name in ([model_name, "baseline"] if model_name else [""])]
    config = tfma.EvalConfig(model_specs=specs)
    elements = []
    for label, score, weight in zip(labels, scores, weights):
        outputs = {"outputs": score, "classes": np.array([b"a", b"b", b"c"])}
        elements.append(metric_types.StandardMetricInputs(
            labels=np.array([label]), example_weights=np.array([weight]),
            predictions={model_name: outputs, "baseline": outputs} if model_name else outputs))
    batched = {"outputs": scores[:1]}  # shape (1, 3): TFMA's own path
    elements.append(metric_types.StandardMetricInputs(
        labels=np.array([2]), example_weights=np.array([1.0]),
        predictions={model_name: batched} if model_name else batched))
    for weighted in (False, True):
        tfma_computation = tfma.metrics.calibration_histogram.calibration_histogram(
            eval_config=config, model_name=model_name, example_weighted=weighted,
            sub_key=metric_types.SubKey(class_id=class_id))[0]
        ours = metrics.direct([tfma_computation])[0].combiner
        assert ours.takes_common_examples and ours.prediction_key == "outputs"
        assert histogram(ours, elements) == histogram(tfma_computation.combiner, elements)


def load_fence_copy():
    """A fresh copy of models/tfma_internals.py, run against TFMA as it is now."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("tfma_internals_copy",
                                                  tfma_internals.__file__)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # where its dataclass looks itself up
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_the_pinned_tfma_is_the_one_the_fence_was_read_from():
    from pathlib import Path

    from tensorflow_model_analysis import version

    lock = (Path(__file__).resolve().parents[2] / "requirements.lock").read_text()
    assert f"tensorflow-model-analysis=={tfma_internals.PINNED_VERSION}\n" in lock
    assert version.VERSION == tfma_internals.PINNED_VERSION
    assert load_fence_copy().CalibrationHistogramCombiner is (
        tfma_internals.CalibrationHistogramCombiner)


def test_a_renamed_tfma_name_fails_the_import_naming_it(monkeypatch):
    from tensorflow_model_analysis.metrics import calibration_histogram

    monkeypatch.delattr(calibration_histogram, "_CalibrationHistogramCombiner")
    with pytest.raises(ImportError, match=(  # the copy's own TfmaChanged
            r"calibration_histogram\._CalibrationHistogramCombiner: no such name; .*"
            r"written against TFMA 0\.47\.1")):
        load_fence_copy()


def test_a_tfma_function_of_another_shape_fails_the_import(monkeypatch):
    from tensorflow_model_analysis.metrics import binary_confusion_matrices

    monkeypatch.setattr(binary_confusion_matrices, "_interpolated_thresholds",
                        lambda count: [0.0] * count)
    with pytest.raises(ImportError,
                       match=r"_interpolated_thresholds: no parameter num_thresholds"):
        load_fence_copy()


def test_a_tfma_combiner_without_an_attribute_fails_the_import(monkeypatch):
    combiner = tfma_internals.CalibrationHistogramCombiner
    init = combiner.__init__

    @functools.wraps(init)
    def without_range(self, *args, **kwargs):
        init(self, *args, **kwargs)
        del self._range

    monkeypatch.setattr(combiner, "__init__", without_range)
    with pytest.raises(ImportError, match=r"\._range: no such attribute"):
        load_fence_copy()


def test_a_histogram_of_an_unknown_combiner_is_left_to_it_and_said(caplog):
    """A subclass (or a class that took the place of TFMA's) keeps TFMA's
    path, and the lost fast path is logged rather than silent."""
    computation = tfma.metrics.calibration_histogram.calibration_histogram()[0]

    class Renamed(tfma_internals.CalibrationHistogramCombiner):
        pass

    renamed = Renamed(key=computation.keys[0], eval_config=None, aggregation_type=None,
                      class_weights=None, example_weighted=False, num_buckets=10000, left=0.0,
                      right=1.0, prediction_based_bucketing=True, fractional_labels=True)
    unknown = metric_types.MetricComputation(keys=computation.keys, preprocessors=None,
                                             combiner=renamed)
    with caplog.at_level("WARNING", logger=metrics.__name__):
        [kept] = metrics.direct([unknown])
    assert kept.combiner is renamed
    assert "Renamed" in caplog.text and "fast path" in caplog.text

    caplog.clear()
    with caplog.at_level("WARNING", logger=metrics.__name__):
        [replaced] = metrics.direct([computation])
    assert isinstance(replaced.combiner, metrics.HistogramCombiner) and not caplog.text


def test_a_histogram_off_the_direct_path_says_why(caplog):
    computation = tfma.metrics.calibration_histogram.calibration_histogram(
        class_weights={0: 1.0, 1: 2.0})[0]
    with caplog.at_level("INFO", logger=metrics.__name__):
        [ours] = metrics.direct([computation])
    assert not ours.combiner.takes_common_examples
    assert "TFMA's own path for every example (class weights)" in caplog.text
