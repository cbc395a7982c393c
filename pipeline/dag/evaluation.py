"""TFMA EvalConfig from the evaluation section of the configuration.

Thresholds are always attached to the slices they name via
`per_slice_thresholds`: a plain `threshold` on a MetricConfig would apply to
every slice, so an overall bound would also have to hold on a slice of three
examples.  Overall bounds therefore use the empty (overall) slicing spec.

The metrics follow the label's task (`DEFAULT_METRICS` when none are
configured).  For a multi-class label, the metrics of a binary decision
(Precision, Recall, FallOut, MissRate, AUC, ...) are computed per class through
TFMA's binarization, so a fairness threshold on one of them holds for every
class on every slice it names.

A metric of a probability at a threshold (BinaryAccuracy, FallOut, ...) and
Calibration are computed by their twins in models/metrics.py, from the one
calibration histogram AUC already needs: the same values, one combiner per
example and slice instead of three.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Optional, Union

import tensorflow_model_analysis as tfma

from models import metrics as histogram_metrics
from models.features import ModelInputs
from models.signatures import OUTPUT_KEY, SERVING_SIGNATURE, TRANSFORM_SIGNATURE
from pipeline.config import DEFAULT_METRICS, EvaluationConfig, Threshold
from pipeline.errors import ConfigError

# Metrics where a larger value is worse; everything else is better larger.
LOWER_IS_BETTER = {"FallOut", "MissRate", "FalsePositives", "FalseNegatives",
                   "BinaryCrossentropy", "FPR", "FNR", "FalseDiscoveryRate",
                   "FalseOmissionRate", "Hinge", "SquaredHinge", "LogCoshError", "Poisson",
                   "KLDivergence", "MSE", "MAE", "MAPE", "MSLE"}
# Metrics of a multi-class label taken as a whole; any other is computed per class.
WHOLE_LABEL_METRICS = {"ExampleCount", "WeightedExampleCount", "MultiClassConfusionMatrixPlot",
                       "MultiClassConfusionMatrixAtThresholds"}


def lower_is_better(metric: str) -> bool:
    return metric in LOWER_IS_BETTER or metric.endswith(("Error", "Crossentropy",
                                                         "CrossEntropy"))


def per_class(metric: str) -> bool:
    """A binary-decision metric, computed per class for a multi-class label."""
    return not (metric in WHOLE_LABEL_METRICS
                or metric.startswith(("Sparse", "Categorical", "TopK", "MultiClass")))


def metric_config(name: str, task: str) -> tfma.MetricConfig:
    """TFMA's MetricConfig of a configured metric: its histogram twin where it has one."""
    if (task != "regression" and name in histogram_metrics.HISTOGRAM_TWINS) or (
            task == "binary" and name in histogram_metrics.BINARY_TWINS):
        return tfma.MetricConfig(class_name=name + histogram_metrics.SUFFIX,
                                 module=histogram_metrics.__name__)
    return tfma.MetricConfig(class_name=name)


def configured_name(metric: tfma.MetricConfig) -> str:
    """The metric's name as configured, for a MetricConfig that may name its twin."""
    if metric.module == histogram_metrics.__name__:
        return metric.class_name.removesuffix(histogram_metrics.SUFFIX)
    return metric.class_name


def slicing_spec(keys: Union[list[str], dict[str, str]]) -> tfma.SlicingSpec:
    if isinstance(keys, dict):
        return tfma.SlicingSpec(feature_values=keys)
    return tfma.SlicingSpec(feature_keys=keys)


def metric_threshold(t: Threshold) -> tfma.MetricThreshold:
    threshold = tfma.MetricThreshold()
    if t.lower is not None:
        threshold.value_threshold.lower_bound.value = t.lower
    if t.upper is not None:
        threshold.value_threshold.upper_bound.value = t.upper
    if t.max_decrease is not None or t.max_increase is not None:
        threshold.change_threshold.direction = (
            tfma.MetricDirection.LOWER_IS_BETTER if lower_is_better(t.metric)
            else tfma.MetricDirection.HIGHER_IS_BETTER)
        # TFMA's absolute change bound is signed: a drop of at most d is -d for
        # higher-is-better metrics, a rise of at most d is +d for the others.
        if t.max_decrease is not None:
            threshold.change_threshold.absolute.value = -t.max_decrease
        else:
            threshold.change_threshold.absolute.value = t.max_increase
    return threshold


# The weight EvalSample gives each example it keeps (1 / its probability of being kept).
SAMPLE_WEIGHT = "eval_sample_weight"


def eval_config(evaluation: EvaluationConfig, inputs: ModelInputs,
                num_classes: Optional[int] = None) -> tfma.EvalConfig:
    """TFMA's configuration; `num_classes` (a multi-class label's class count,
    from the curated schema) enables the per-class metrics."""
    task = inputs.label.task
    by_metric: dict[str, list[Threshold]] = defaultdict(list)
    for t in evaluation.thresholds:
        by_metric[t.metric].append(t)
    configured = evaluation.metrics
    names = list(dict.fromkeys(list(configured if configured is not None
                                    else DEFAULT_METRICS[task]) + list(by_metric)))
    whole, binarized = [], []
    for name in names:
        if task == "multiclass" and per_class(name):
            if not num_classes:
                if configured is None and name not in by_metric:
                    continue  # a default that needs the classes: left out
                raise ConfigError(
                    f"evaluation: {name} is computed per class, and the classes of "
                    f"{inputs.label.column!r} are unknown: give the label column a "
                    f"string domain in the curated schema")
            binarized.append(name)
        else:
            whole.append(name)

    def configs(selected: list[str]) -> list[tfma.MetricConfig]:
        out = []
        for name in selected:
            config = metric_config(name, task)
            for t in by_metric.get(name, []):
                config.per_slice_thresholds.append(tfma.PerSliceMetricThreshold(
                    slicing_specs=[slicing_spec(t.slice)], threshold=metric_threshold(t)))
            out.append(config)
        return out

    specs = [tfma.MetricsSpec(metrics=configs(whole))]
    if binarized:
        specs.append(tfma.MetricsSpec(
            metrics=configs(binarized),
            binarize=tfma.BinarizationOptions(
                class_ids={"values": list(range(num_classes))})))
    model_spec = tfma.ModelSpec(
        # What the Trainer saves; TFMA would otherwise load each model once
        # more only to find that out (2 s per model).
        model_type=tfma.TF_KERAS,
        signature_name=SERVING_SIGNATURE,
        label_key=inputs.label_key,
        preprocessing_function_names=[TRANSFORM_SIGNATURE])
    if task == "multiclass":
        model_spec.prediction_key = OUTPUT_KEY  # not the class names beside it
    if evaluation.sample_above is not None:
        model_spec.example_weight_key = SAMPLE_WEIGHT  # every metric weighted by it
    options = tfma.Options()
    # Only the configured metrics: TFMA would otherwise add the metrics the
    # Keras model was compiled with (its loss, AUC, accuracy), computed a second
    # time through TensorFlow on every slice - a sixth of the Evaluator's time.
    options.include_default_metrics.value = False
    return tfma.EvalConfig(
        model_specs=[model_spec],
        slicing_specs=[tfma.SlicingSpec()] + [slicing_spec(s) for s in evaluation.slices],
        metrics_specs=specs, options=options)
