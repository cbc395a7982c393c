"""TFMA EvalConfig from the evaluation section of the configuration.

Thresholds are always attached to the slices they name via
`per_slice_thresholds`: a plain `threshold` on a MetricConfig would apply to
every slice, so an overall bound would also have to hold on a slice of three
examples.  Overall bounds therefore use the empty (overall) slicing spec.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Union

import tensorflow_model_analysis as tfma

from models.features import ModelInputs
from models.signatures import SERVING_SIGNATURE, TRANSFORM_SIGNATURE
from pipeline.config import EvaluationConfig, Threshold

# Metrics where a larger value is worse; everything else is better larger.
LOWER_IS_BETTER = {"FallOut", "MissRate", "FalsePositives", "FalseNegatives",
                   "BinaryCrossentropy"}


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
            tfma.MetricDirection.LOWER_IS_BETTER if t.metric in LOWER_IS_BETTER
            else tfma.MetricDirection.HIGHER_IS_BETTER)
        # TFMA's absolute change bound is signed: a drop of at most d is -d for
        # higher-is-better metrics, a rise of at most d is +d for the others.
        if t.max_decrease is not None:
            threshold.change_threshold.absolute.value = -t.max_decrease
        else:
            threshold.change_threshold.absolute.value = t.max_increase
    return threshold


def eval_config(evaluation: EvaluationConfig, inputs: ModelInputs) -> tfma.EvalConfig:
    by_metric: dict[str, list[Threshold]] = defaultdict(list)
    for t in evaluation.thresholds:
        by_metric[t.metric].append(t)
    metric_names = list(dict.fromkeys(list(evaluation.metrics) + list(by_metric)))
    metrics = []
    for name in metric_names:
        config = tfma.MetricConfig(class_name=name)
        for t in by_metric.get(name, []):
            config.per_slice_thresholds.append(tfma.PerSliceMetricThreshold(
                slicing_specs=[slicing_spec(t.slice)], threshold=metric_threshold(t)))
        metrics.append(config)
    return tfma.EvalConfig(
        model_specs=[tfma.ModelSpec(
            signature_name=SERVING_SIGNATURE,
            label_key=inputs.label_key,
            preprocessing_function_names=[TRANSFORM_SIGNATURE])],
        slicing_specs=[tfma.SlicingSpec()] + [slicing_spec(s) for s in evaluation.slices],
        metrics_specs=[tfma.MetricsSpec(metrics=metrics)])
