"""TFMA metrics of a probability read from one calibration histogram.

TFMA computes AUC from a 10,000-bucket calibration histogram, but a metric at
one threshold (BinaryAccuracy, FallOut, MissRate, Precision, ...) from a
confusion-matrix combiner of its own, and Calibration from a third: every
example then passes through three combiners on every slice it falls in, and
that per-example work is most of the Evaluator's time on large data. The
classes here are TFMA's own metrics, computed from the histogram AUC already
needs (TFMA's `use_histogram` path), so one combiner serves them all.

That combiner is TFMA's, with its per-example unpacking skipped for the common
example (a 0/1 label or a class index, its probability, one weight): TFMA's
general unpacking (`to_label_prediction_example_weight`) was most of its cost.
TFMA does not publish that combiner or the helpers below: every private name
of TFMA used here is reached through models/tfma_internals.py, which checks
them when it loads.

AUC's confusion matrices at its 10,000 thresholds are derived from the
histogram in numpy (`histogram_matrices`), equal to TFMA's Python loops.

What changes: nothing but rounding where a threshold is a bucket edge (a
multiple of 1/10,000, as 0.5 is), and Calibration is the same sum in another
order. The Evaluator's configuration names these
classes (see pipeline/dag/evaluation.py); their keys are TFMA's (`fall_out`,
`calibration`, ...), so reports and thresholds read the same names.
"""
from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Mapping
from typing import Any, Callable, Optional

import apache_beam as beam
import numpy as np
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.metrics import (
    binary_confusion_matrices,
    calibration,
    calibration_histogram,
    confusion_matrix_metrics,
    example_count,
    metric_types,
    metric_util,
)

from models import tfma_internals

# The suffix of the histogram-backed twin of a TFMA metric class.
SUFFIX = "FromHistogram"

log = logging.getLogger(__name__)


class HistogramCombiner(beam.CombineFn):
    """TFMA's calibration histogram combiner, taking the common example directly.

    An example with one label of 0 or 1 and one probability (or, for one class
    of a multi-class label, a class index and a probability per class) and one
    finite weight, without top-k or class weights, is added as TFMA adds it
    after its general unpacking, which costs most of TFMA's time per example;
    any other example goes to TFMA's own combiner, which this one wraps.
    """

    def __init__(self, combiner: Any):
        self._tfma = combiner
        settings = tfma_internals.histogram_settings(combiner)
        self._settings = settings
        self._bucket_index = tfma_internals.bucket_index(combiner)
        self._left, self._range = settings.left, settings.range
        self._num_buckets = settings.num_buckets
        self._example_weighted = settings.example_weighted
        key = settings.key
        sub_key = key.sub_key
        self._class_id = (sub_key.class_id if sub_key is not None and sub_key.k is None
                          and sub_key.top_k is None else None)
        unlike = [why for why, holds in (
            ("top-k or k sub key", sub_key is not None and self._class_id is None),
            ("aggregation type", settings.aggregation_type is not None),
            ("class weights", bool(settings.class_weights)),
            ("bucketing by label", not settings.prediction_based_bucketing),
            ("no fractional labels", not settings.fractional_labels)) if holds]
        self._direct = not unlike
        if unlike:
            # Not the common example: every one goes through TFMA's unpacking.
            log.info("calibration histogram %s: TFMA's own path for every example (%s)",
                     key, ", ".join(unlike))
        self._names = [name for name in (key.model_name, key.output_name) if name]
        # The model spec's prediction_key picks the prediction from a dict of
        # outputs, as TFMA picks it (a spec's name counts with several specs only).
        self._prediction_key = ""
        specs = settings.eval_config.model_specs if settings.eval_config else []
        for spec in specs:
            if (spec.name if len(specs) > 1 else "") == key.model_name:
                self._prediction_key = spec.prediction_key
                break

    @property
    def key(self) -> metric_types.MetricKey:
        """The key of the histogram this combiner outputs."""
        return self._settings.key

    @property
    def prediction_key(self) -> str:
        """The output a dict of predictions is read from ("" for a plain array)."""
        return self._prediction_key

    @property
    def takes_common_examples(self) -> bool:
        """Whether the common example skips TFMA's unpacking (no top-k, class
        weights or aggregation)."""
        return self._direct

    @property
    def takes_groups(self) -> bool:
        """Whether several rows of a 0/1 label in one element add as the rows
        would (models/extractors.py groups rows only then)."""
        return self._direct and self._class_id is None

    def setup(self) -> None:
        self._tfma.setup()

    def create_accumulator(self) -> dict:
        return self._tfma.create_accumulator()

    def merge_accumulators(self, accumulators: Any) -> dict:
        return self._tfma.merge_accumulators(accumulators)

    def compact(self, accumulator: dict) -> dict:
        return self._tfma.compact(accumulator)

    def extract_output(self, accumulator: dict) -> dict:
        return self._tfma.extract_output(accumulator)

    def teardown(self) -> None:
        self._tfma.teardown()

    def _values(self, element: metric_types.StandardMetricInputs) -> Optional[tuple]:
        """The element's (label, prediction, weight) arrays for this key's model
        and output, as TFMA picks them; None where they are not plain arrays."""
        label, prediction = element.label, element.prediction
        weight = element.example_weight if self._example_weighted else None
        for name in self._names:
            if not isinstance(prediction, Mapping) or name not in prediction:
                return None
            prediction = prediction[name]
            if isinstance(label, Mapping) and name in label:
                label = label[name]
            if isinstance(weight, Mapping) and name in weight:
                weight = weight[name]
        if isinstance(prediction, Mapping):
            if not self._prediction_key or self._prediction_key not in prediction:
                return None
            prediction = prediction[self._prediction_key]
        if not (type(label) is np.ndarray and type(prediction) is np.ndarray
                and label.dtype.kind in "iuf" and prediction.dtype.kind in "iuf"):
            return None
        return label, prediction, weight

    def _single(self, label: np.ndarray, prediction: np.ndarray, weight: Any
                ) -> Optional[tuple[float, float, float]]:
        """(label, prediction, weight) of a common example, else None."""
        if label.size != 1:
            return None
        if self._class_id is None:
            if prediction.size != 1:
                return None
            value = float(label.flat[0])
            if value != 0.0 and value != 1.0:
                return None  # a fractional label: TFMA splits it in two
            score = float(prediction.flat[0])
        else:
            # A class index against one probability per class: binarized.
            if (prediction.ndim != 1 or prediction.size < 2
                    or not 0 <= self._class_id < prediction.size):
                return None
            value = 1.0 if label.flat[0] == self._class_id else 0.0
            score = float(prediction[self._class_id])
        if weight is None:
            w = 1.0
        elif type(weight) is np.ndarray and weight.size == 1 and weight.dtype.kind in "iuf":
            w = float(weight.flat[0])
            if not math.isfinite(w):
                return None
        else:
            return None
        return value, score, w

    def _rows(self, label: np.ndarray, prediction: np.ndarray, weight: Any
              ) -> Optional[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Flat (labels, predictions, weights) of an element of several 0/1
        labels with as many finite predictions (the rows of a group, see
        models/extractors.py), one weight each or one for all; else None."""
        if self._class_id is not None:
            return None
        labels = label.reshape(-1).astype(np.float64)
        predictions = prediction.reshape(-1).astype(np.float64)
        if (labels.size < 2 or predictions.size != labels.size
                or not np.all((labels == 0.0) | (labels == 1.0))
                or not np.all(np.isfinite(predictions))):
            return None
        if weight is None:
            weights = np.ones_like(labels)
        elif type(weight) is np.ndarray and weight.dtype.kind in "iuf" and (
                weight.size in (1, labels.size)):
            weights = np.broadcast_to(weight.reshape(-1).astype(np.float64), labels.shape)
            if not np.all(np.isfinite(weights)):
                return None
        else:
            return None
        return labels, predictions, weights

    def _add_rows(self, accumulator: dict, labels: np.ndarray, predictions: np.ndarray,
                  weights: np.ndarray) -> dict:
        """TFMA's per-value adds, summed per bucket in numpy first."""
        keep = weights != 0.0  # TFMA yields nothing of weight 0
        labels, predictions, weights = labels[keep], predictions[keep], weights[keep]
        index = (predictions - self._left) / self._range * self._num_buckets + 1
        ids = np.where(index < 0, 0, np.where(
            index >= self._num_buckets + 1, self._num_buckets + 1, np.trunc(index)))
        buckets, inverse = np.unique(ids.astype(np.int64), return_inverse=True)
        sums = zip(buckets.tolist(),
                   np.bincount(inverse, labels * weights).tolist(),
                   np.bincount(inverse, predictions * weights).tolist(),
                   np.bincount(inverse, weights).tolist())
        for bucket_id, label, prediction, weight in sums:
            bucket = accumulator.get(bucket_id)
            if bucket is None:
                accumulator[bucket_id] = calibration_histogram.Bucket(
                    bucket_id, label, prediction, weight)
            else:
                bucket.weighted_labels += label
                bucket.weighted_predictions += prediction
                bucket.weighted_examples += weight
        return accumulator

    def add_input(self, accumulator: dict, element: Any) -> dict:
        values = self._values(element) if self._direct else None
        if values is None:
            return self._tfma.add_input(accumulator, element)
        single = self._single(*values)
        if single is None:
            rows = self._rows(*values)
            if rows is not None:
                return self._add_rows(accumulator, *rows)
            return self._tfma.add_input(accumulator, element)
        label, prediction, weight = single
        if weight == 0.0:
            return accumulator  # TFMA yields nothing of weight 0
        index = self._bucket_index(prediction)
        bucket = accumulator.get(index)
        if bucket is None:
            accumulator[index] = calibration_histogram.Bucket(
                index, label * weight, prediction * weight, weight)
        else:
            bucket.weighted_labels += label * weight
            bucket.weighted_predictions += prediction * weight
            bucket.weighted_examples += weight
        return accumulator


def direct(computations: metric_types.MetricComputations) -> metric_types.MetricComputations:
    """The computations with TFMA's histogram combiner replaced by HistogramCombiner
    (computations are equal, and computed once, when their combiners' class names
    and keys are).

    A histogram computed by any other combiner (a subclass, or a class a TFMA
    upgrade put in its place) is left to it, and a warning says so: only TFMA's
    own combiner is known to add as HistogramCombiner does.
    """
    out = []
    for c in computations:
        if isinstance(c, metric_types.MetricComputation):
            if type(c.combiner) is tfma_internals.CalibrationHistogramCombiner:
                c = metric_types.MetricComputation(keys=c.keys, preprocessors=c.preprocessors,
                                                   combiner=HistogramCombiner(c.combiner))
            elif not isinstance(c.combiner, HistogramCombiner) and any(
                    k.name.startswith(calibration_histogram.CALIBRATION_HISTOGRAM_NAME)
                    for k in c.keys):
                log.warning("calibration histogram %s is computed by %s, not TFMA %s's "
                            "combiner: the per-example fast path of models/metrics.py is off",
                            c.keys[-1], type(c.combiner).__qualname__,
                            tfma_internals.PINNED_VERSION)
        out.append(c)
    return out


class _FromHistogram:
    """Mixin for a tfma ConfusionMatrixMetricBase: a metric at thresholds reads its
    matrices from the shared histogram; any other (AUC, ...) is TFMA's, with the
    histogram combiner replaced by HistogramCombiner. (`_twins` makes
    `histogram_computations` the metric's computations.)"""

    def histogram_computations(self, thresholds=None, num_thresholds=None, top_k=None,
                               class_id=None, name=None, eval_config=None, model_name="",
                               output_name="", sub_key=None, aggregation_type=None,
                               class_weights=None, example_weighted=False, preprocessors=None,
                               metric_key=None, **kwargs) -> metric_types.MetricComputations:
        at_thresholds = isinstance(self, confusion_matrix_metrics.ConfusionMatrixMetric)
        chosen = ([tfma_internals.default_threshold(self)]
                  if at_thresholds and thresholds is None else
                  [thresholds] if isinstance(thresholds, (int, float)) else
                  list(thresholds or []))
        if (not at_thresholds or top_k is not None or class_id is not None or preprocessors
                or num_thresholds or (sub_key is not None and sub_key.top_k)
                or not all(on_edge(t) for t in chosen)):
            # AUC and its kind, top-k, per-class options and thresholds inside
            # a bucket: TFMA's computations, but for the combiner and, for
            # AUC's interpolated thresholds, the derivation of the matrices.
            computations = direct(tfma_internals.base_computations(
                self, thresholds=thresholds, num_thresholds=num_thresholds, top_k=top_k,
                class_id=class_id, name=name, eval_config=eval_config, model_name=model_name,
                output_name=output_name, sub_key=sub_key, aggregation_type=aggregation_type,
                class_weights=class_weights, example_weighted=example_weighted,
                preprocessors=preprocessors, metric_key=metric_key, **kwargs))
            if thresholds is None and not at_thresholds and top_k is None and not (
                    sub_key is not None and sub_key.top_k):
                computations = _interpolated_matrices(computations, num_thresholds or (
                    binary_confusion_matrices.DEFAULT_NUM_THRESHOLDS))
            return computations
        edges = [float(t) for t in chosen]
        key = metric_key or metric_types.MetricKey(
            name=name, model_name=model_name, output_name=output_name, sub_key=sub_key,
            example_weighted=example_weighted, aggregation_type=aggregation_type)

        def value(histogram: calibration_histogram.Histogram) -> Any:
            return tfma_internals.metric_value(
                self, key, matrices_at(edges, histogram), **kwargs)

        return from_histogram(
            key, value, eval_config=eval_config, model_name=model_name,
            output_name=output_name, sub_key=sub_key, aggregation_type=aggregation_type,
            class_weights=class_weights, example_weighted=example_weighted)


def from_histogram(key: metric_types.MetricKey,
                   value: Callable[[calibration_histogram.Histogram], Any],
                   **histogram_args: Any) -> metric_types.MetricComputations:
    """TFMA's calibration histogram (one combiner however many metrics ask for
    it), and the metric `key` derived from it by `value`."""
    computations = direct(calibration_histogram.calibration_histogram(**histogram_args))
    histogram_key = computations[-1].keys[-1]

    def result(metrics: dict[Any, Any]) -> dict[Any, Any]:
        return {key: value(metrics[histogram_key])}

    return [*computations, metric_types.DerivedMetricComputation(keys=[key], result=result)]


def on_edge(threshold: Optional[float]) -> bool:
    """Whether a threshold in [0, 1] is an edge of the histogram's buckets."""
    if threshold is None or not 0.0 <= threshold <= 1.0:
        return False
    scaled = threshold * calibration_histogram.DEFAULT_NUM_BUCKETS
    return abs(scaled - round(scaled)) < 1e-6


def matrices_at(thresholds: list[float], histogram: calibration_histogram.Histogram
                ) -> binary_confusion_matrices.Matrices:
    """Confusion matrices at the thresholds: a prediction counts as positive when
    its bucket starts at or above the threshold.

    Buckets are [start, start + 1/N); a threshold on a bucket edge (0.5, 0.3,
    ... with TFMA's 10,000 buckets) splits the predictions exactly as TFMA's
    `prediction > threshold` does, but for a prediction equal to it. (TFMA's own
    histogram path counts the bucket just above the threshold as below it.)
    """
    n = calibration_histogram.DEFAULT_NUM_BUCKETS
    tp, tn, fp, fn = [], [], [], []
    for threshold in thresholds:
        above = [0.0, 0.0]  # weighted positives, weighted negatives
        below = [0.0, 0.0]
        for bucket in histogram:
            start = (-np.inf if bucket.bucket_id == 0 else np.inf
                     if bucket.bucket_id > n else (bucket.bucket_id - 1) / n)
            side = above if start >= threshold - _EDGE else below
            side[0] += bucket.weighted_labels
            side[1] += bucket.weighted_examples - bucket.weighted_labels
        tp.append(above[0])
        fp.append(above[1])
        fn.append(below[0])
        tn.append(below[1])
    return binary_confusion_matrices.Matrices(thresholds, tp, tn, fp, fn)


# A bucket edge computed as (id - 1) / N may sit a rounding error from the threshold.
_EDGE = 1e-9

_TFMA_EPSILON = tfma_internals.EPSILON


def _interpolated_matrices(computations: metric_types.MetricComputations,
                           num_thresholds: int) -> metric_types.MetricComputations:
    """TFMA's computations of a metric over interpolated thresholds (AUC), with
    the derivation of its confusion matrices from the histogram replaced by
    `histogram_matrices`, which gives the same matrices.

    TFMA's derivation (rebin, then one pass per threshold) is a Python loop over
    10,000 thresholds for each slice: 1.5-2 s of a taxi run's Evaluator, at any
    size of data, for its 31 slices.
    """
    thresholds = tfma_internals.interpolated_thresholds(num_thresholds)
    out = list(computations)
    for i, computation in enumerate(out):
        if (i > 0 and isinstance(computation, metric_types.DerivedMetricComputation)
                and len(computation.keys) == 1 and computation.keys[0].name.startswith(
                    binary_confusion_matrices.BINARY_CONFUSION_MATRICES_NAME)
                and isinstance(out[i - 1], metric_types.MetricComputation)
                and isinstance(out[i - 1].combiner, HistogramCombiner)):
            matrices_key, histogram_key = computation.keys[0], out[i - 1].keys[-1]

            def result(metrics: dict[Any, Any], matrices_key=matrices_key,
                       histogram_key=histogram_key) -> dict[Any, Any]:
                return {matrices_key: histogram_matrices(thresholds, metrics[histogram_key])}

            out[i] = metric_types.DerivedMetricComputation(keys=computation.keys, result=result)
    return out


def histogram_matrices(thresholds: list[float], histogram: calibration_histogram.Histogram
                       ) -> binary_confusion_matrices.Matrices:
    """TFMA's confusion matrices from a calibration histogram (its `rebin` to the
    thresholds, then `_histogram_to_binary_confusion_matrices`), in numpy: the
    same sums, added in the same order, so the same floats."""
    n_buckets = calibration_histogram.DEFAULT_NUM_BUCKETS
    edges = [t + _TFMA_EPSILON if t != 0 else t for t in thresholds]
    if thresholds[0] >= 0:
        edges = [-_TFMA_EPSILON, *edges]
    if thresholds[-1] < 1.0:
        edges = [*edges, 1.0 + _TFMA_EPSILON]
    ids = np.array([b.bucket_id for b in histogram], dtype=np.int64)
    labels = np.array([b.weighted_labels for b in histogram], dtype=np.float64)
    examples = np.array([b.weighted_examples for b in histogram], dtype=np.float64)
    # A bucket's start as TFMA computes it: (id - 1) / N * (right - left) + left.
    starts = np.where(ids == 0, -np.inf, np.where(
        ids >= n_buckets + 1, np.inf, (ids - 1) / n_buckets * (1.0 - 0.0) + 0.0))
    # rebin: bucket i of the new histogram sums the old buckets whose start
    # passed edges[1..i] and no further; one bucket per edge.
    offsets = np.searchsorted(np.array(edges[1:]), starts, side="right")
    n = len(edges)
    pos = np.bincount(offsets, weights=labels, minlength=n)
    neg = np.bincount(offsets, weights=examples, minlength=n) - pos
    tp = np.cumsum(pos[::-1])[::-1]
    fp = np.cumsum(neg[::-1])[::-1]
    fn = np.concatenate([[0.0], np.cumsum(pos[:-1])])
    tn = np.concatenate([[0.0], np.cumsum(neg[:-1])])
    first = 1 if (thresholds[0] >= 0 or len(thresholds) == 1) and n > 1 else 0
    window = slice(first, first + len(thresholds))
    tp_, fp_, fn_, tn_ = (a[window].tolist() for a in (tp, fp, fn, tn))
    for i, t in enumerate(thresholds):
        if t >= 1.0 + _TFMA_EPSILON:
            tp_[i], fp_[i], fn_[i], tn_[i] = 0.0, 0.0, tp_[0], fp_[0]
    return binary_confusion_matrices.Matrices(thresholds, tp_, tn_, fp_, fn_)


def _twins() -> dict[str, type]:
    """A histogram-backed twin of each of TFMA's confusion-matrix metrics (those
    computed through the one `_metric_computations` of their base class)."""
    twins = {}
    base = confusion_matrix_metrics.ConfusionMatrixMetricBase
    for name in dir(confusion_matrix_metrics):
        cls = getattr(confusion_matrix_metrics, name)
        if (isinstance(cls, type) and issubclass(cls, base) and not inspect.isabstract(cls)
                and tfma_internals.computes_as_base(cls)):
            twins[name + SUFFIX] = tfma_internals.with_computations(
                name + SUFFIX, (_FromHistogram, cls),
                {"__module__": __name__, "__doc__": cls.__doc__},
                _FromHistogram.histogram_computations)
    return twins


_TWINS = _twins()
globals().update(_TWINS)


class CalibrationFromHistogram(tfma.metrics.Calibration):
    """TFMA's Calibration (sum of predictions / sum of labels) from the histogram's sums."""

    def __init__(self, name: str = calibration.CALIBRATION_NAME):
        metric_types.Metric.__init__(
            self, metric_util.merge_per_key_computations(_calibration), name=name)


def _calibration(name: str = calibration.CALIBRATION_NAME, eval_config: Any = None,
                 model_name: str = "", output_name: str = "",
                 sub_key: Optional[metric_types.SubKey] = None, aggregation_type: Any = None,
                 class_weights: Optional[dict[int, float]] = None,
                 example_weighted: bool = False) -> metric_types.MetricComputations:
    key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                 sub_key=sub_key, example_weighted=example_weighted)

    def value(histogram: calibration_histogram.Histogram) -> float:
        labels = sum(bucket.weighted_labels for bucket in histogram)
        predictions = sum(bucket.weighted_predictions for bucket in histogram)
        return float("nan") if np.isclose(labels, 0.0) else predictions / labels

    return from_histogram(
        key, value, eval_config=eval_config, model_name=model_name, output_name=output_name,
        sub_key=sub_key, aggregation_type=aggregation_type, class_weights=class_weights,
        example_weighted=example_weighted)


class ExampleCountFromHistogram(tfma.metrics.ExampleCount):
    """TFMA's ExampleCount, read from the histogram: every example of a binary
    label adds its weight (1 unweighted) to one bucket. For a model with one
    probability per example only (pipeline/dag/evaluation.py names it so)."""

    def __init__(self, name: str = example_count.EXAMPLE_COUNT_NAME):
        metric_types.Metric.__init__(
            self, metric_util.merge_per_key_computations(_example_count), name=name)


def _example_count(name: str = example_count.EXAMPLE_COUNT_NAME, eval_config: Any = None,
                   model_name: str = "", output_name: str = "",
                   sub_key: Optional[metric_types.SubKey] = None,
                   example_weighted: bool = False) -> metric_types.MetricComputations:
    key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                 sub_key=sub_key, example_weighted=example_weighted)

    def value(histogram: calibration_histogram.Histogram) -> float:
        total = sum(bucket.weighted_examples for bucket in histogram)
        # A fractional label is split in two weights that sum to its own.
        return total if example_weighted else float(round(total))

    return from_histogram(
        key, value, eval_config=eval_config, model_name=model_name, output_name=output_name,
        sub_key=sub_key, example_weighted=example_weighted)


ConfusionMatrixPlotFromHistogram = tfma_internals.plot_with(
    "ConfusionMatrixPlot" + SUFFIX,
    {"__module__": __name__,
     "__doc__": "TFMA's ConfusionMatrixPlot, its histogram added by HistogramCombiner (so "
                "the KFP UI's ROC curve and confusion matrix keep rows grouped by slice)."},
    direct)

HISTOGRAM_TWINS = frozenset(name.removesuffix(SUFFIX)
                            for name in [*_TWINS, CalibrationFromHistogram.__name__,
                                         ConfusionMatrixPlotFromHistogram.__name__])
# Twins for a binary label only (one probability per example).
BINARY_TWINS = frozenset({"ExampleCount"})
