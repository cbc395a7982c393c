"""TFMA's extractors for the Evaluator (its `module_path`), with the features cut
to those the slices read before TFMA splits the batches into examples.

TFMA decodes every raw column of the eval split, then splits each batch into
one extract per example, column by column; only the slicing reads the raw
columns after that split (labels, weights and predictions are extracted while
still batched). Splitting the columns no slice reads was a fifth of the
Evaluator's time, so they are dropped just before the split, together with the
serialized examples the model has already scored.
"""
from __future__ import annotations

from typing import Any, Optional

import apache_beam as beam
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.extractors import unbatch_extractor

PROJECT_STAGE = "KeepSlicedFeatures"


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


def _keep(extracts: dict[str, Any], columns: frozenset[str]) -> dict[str, Any]:
    out = dict(extracts)
    out.pop(tfma.constants.INPUT_KEY, None)
    features = out.get(tfma.constants.FEATURES_KEY)
    if isinstance(features, dict):
        out[tfma.constants.FEATURES_KEY] = {k: v for k, v in features.items() if k in columns}
    return out


def custom_extractors(eval_shared_model: Any, eval_config: tfma.EvalConfig,
                      tensor_adapter_config: Any) -> list[tfma.extractors.Extractor]:
    """TFMA's default extractors, with the unsliced features dropped before
    the batches are split (TFX's Evaluator calls this by name)."""
    extractors = tfma.default_extractors(
        eval_shared_model=eval_shared_model, eval_config=eval_config,
        tensor_adapter_config=tensor_adapter_config)
    columns = sliced_columns(eval_config)
    if columns is None:
        return extractors
    split = next(i for i, e in enumerate(extractors)
                 if e.stage_name == unbatch_extractor.UNBATCH_EXTRACTOR_STAGE_NAME)
    extractors.insert(split, tfma.extractors.Extractor(
        stage_name=PROJECT_STAGE,
        ptransform=beam.Map(_keep, frozenset(columns))))
    return extractors
