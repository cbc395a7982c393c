"""TFMA's extractors for the Evaluator (its `module_path`): the features cut to
those the slices read, and, where every metric is read from a histogram, the
examples of a batch grouped by their slices before TFMA's per-example stages.

TFMA decodes every raw column of the eval split, then splits each batch into
one extract per example, column by column; only the slicing reads the raw
columns after that split (labels, weights and predictions are extracted while
still batched). Splitting the columns no slice reads was a fifth of the
Evaluator's time, so they are dropped just before the split, together with the
serialized examples the model has already scored.

After the split, every example passes through TFMA's slicing, its fan-out to
each slice and each metric's combiner, in Python, one by one: most of the
Evaluator's time on large data. When every combiner is the histogram's
(models/metrics.py: a binary label's metrics, ExampleCount included), the
examples of a batch that fall in the same slices are one extract instead, its
labels, predictions and weights the arrays of those rows; the histogram takes
them as TFMA takes several values of one example (each value its own entry,
with its own weight), so every metric is the same.
"""
from __future__ import annotations

import logging
from typing import Any, Optional

import apache_beam as beam
import numpy as np
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.extractors import unbatch_extractor
from tensorflow_model_analysis.metrics import metric_specs, metric_types
from tensorflow_model_analysis.utils import util

from models import tfma_internals
from models.metrics import HistogramCombiner

log = logging.getLogger(__name__)

PROJECT_STAGE = "KeepSlicedFeatures"
GROUP_STAGE = "GroupRowsBySlice"


def sliced_columns(eval_config: tfma.EvalConfig) -> Optional[set[str]]:
    """The feature columns the slicing specs read; None when a spec's columns
    cannot be told without running it (a SQL slice)."""
    specs = list(eval_config.slicing_specs)
    for cross in eval_config.cross_slicing_specs:
        specs.append(cross.baseline_spec)
        specs.extend(cross.slicing_specs)
    columns: set[str] = set()
    for spec in specs:
        if spec.slice_keys_sql:
            return None
        columns.update(spec.feature_keys)
        columns.update(spec.feature_values)
    return columns


def rows_groupable(eval_config: tfma.EvalConfig) -> bool:
    """Whether every metric is computed by HistogramCombiner on its direct
    binary path (so a group of rows counts as the rows would), with nothing that
    resamples examples (confidence intervals) or reads them one by one."""
    if (eval_config.options.compute_confidence_intervals.value
            or eval_config.options.min_slice_size.value > 1
            or any(spec.query_key or spec.HasField("binarize") or spec.HasField("aggregate")
                   for spec in eval_config.metrics_specs)):
        return False
    computations = metric_specs.to_computations(
        list(eval_config.metrics_specs), eval_config=eval_config)
    combiners = [c.combiner for c in computations
                 if isinstance(c, metric_types.MetricComputation)]
    return bool(combiners) and all(
        isinstance(c, HistogramCombiner) and c.takes_groups for c in combiners) and not any(
        c.preprocessors for c in computations if isinstance(c, metric_types.MetricComputation))


def _keep(extracts: dict[str, Any], columns: frozenset[str]) -> dict[str, Any]:
    out = dict(extracts)
    out.pop(tfma.constants.INPUT_KEY, None)
    features = out.get(tfma.constants.FEATURES_KEY)
    if isinstance(features, dict):
        out[tfma.constants.FEATURES_KEY] = {k: v for k, v in features.items() if k in columns}
    return out


def _take(value: Any, rows: np.ndarray, size: int) -> Any:
    """The rows of a batched value (arrays in nested dicts); KeyError where a
    value is not an array of the batch's rows."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {k: _take(v, rows, size) for k, v in value.items()}
    if isinstance(value, np.ndarray) and value.ndim >= 1 and value.shape[0] == size:
        return value[rows]
    raise KeyError("not an array of rows")


def _group_rows(extracts: dict[str, Any], columns: frozenset[str]) -> list[dict[str, Any]]:
    """A batch's examples, one extract per group of examples with the same
    values of every sliced column (the values as TFMA splits them); TFMA's
    per-example split where a value is not an array of the batch's rows."""
    batch = _keep(extracts, columns)
    batch.pop(tfma.constants.ARROW_RECORD_BATCH_KEY, None)
    features = batch.pop(tfma.constants.FEATURES_KEY, None) or {}
    per_row = util.split_extracts({"f": features}) if features else []
    labels = batch.get(tfma.constants.LABELS_KEY)
    size = len(per_row) if per_row else _rows_of(labels)
    groups: dict[tuple, list[int]] = {}
    for i in range(size):
        row = per_row[i]["f"] if per_row else {}
        key = tuple((c, _hashable(row.get(c))) for c in sorted(row))
        groups.setdefault(key, []).append(i)
    out = []
    try:
        for members in groups.values():
            rows = np.array(members)
            group = {k: _take(v, rows, size) for k, v in batch.items()}
            if per_row:
                group[tfma.constants.FEATURES_KEY] = per_row[members[0]]["f"]
            out.append(group)
    except KeyError:
        return list(tfma_internals.extract_unbatched_inputs(
            {**batch, tfma.constants.FEATURES_KEY: features}))
    return out


def _rows_of(value: Any) -> int:
    while isinstance(value, dict) and value:
        value = next(iter(value.values()))
    return value.shape[0] if isinstance(value, np.ndarray) and value.ndim else 0


def _hashable(value: Any) -> Any:
    """A key equal for equal values (rows with a NaN stay apart: NaN != NaN)."""
    if isinstance(value, np.ndarray):
        return value.dtype.str, value.shape, tuple(value.ravel().tolist())
    return value if value is None else repr(value)


def custom_extractors(eval_shared_model: Any, eval_config: tfma.EvalConfig,
                      tensor_adapter_config: Any) -> list[tfma.extractors.Extractor]:
    """TFMA's default extractors, with the unsliced features dropped before
    the batches are split, and the rows grouped by slice where the metrics
    allow (TFX's Evaluator calls this by name)."""
    extractors = tfma.default_extractors(
        eval_shared_model=eval_shared_model, eval_config=eval_config,
        tensor_adapter_config=tensor_adapter_config)
    columns = sliced_columns(eval_config)
    if columns is None:
        log.info("a SQL slice: every feature is split per example, rows are not grouped")
        return extractors
    split = next(i for i, e in enumerate(extractors)
                 if e.stage_name == unbatch_extractor.UNBATCH_EXTRACTOR_STAGE_NAME)
    if rows_groupable(eval_config):
        extractors[split] = tfma.extractors.Extractor(
            stage_name=GROUP_STAGE,
            ptransform=beam.FlatMap(_group_rows, frozenset(columns)))
        return extractors
    log.info("rows not grouped by slice: a metric, confidence intervals, a minimum slice "
             "size or a query key needs TFMA's examples one by one")
    extractors.insert(split, tfma.extractors.Extractor(
        stage_name=PROJECT_STAGE,
        ptransform=beam.Map(_keep, frozenset(columns))))
    return extractors
