"""tf.Transform `preprocessing_fn`: the one place raw columns become model inputs.

Transform loads it by dotted path (`models.preprocessing.preprocessing_fn`), so
the same function runs in the local runner and inside the pipeline image, and
the resulting graph is embedded in the serving signature.
"""
from __future__ import annotations

from typing import Any, Mapping

import tensorflow as tf
import tensorflow_transform as tft

from models.features import ModelInputs, transformed_name


def fill_in_missing(x: tf.Tensor | tf.SparseTensor) -> tf.Tensor:
    """Dense rank-1 tensor with missing values as '' or 0.

    CSV columns with empty cells arrive as SparseTensors of dense shape
    [batch, 1]; columns always present arrive dense, [batch] or [batch, 1].
    """
    if isinstance(x, tf.sparse.SparseTensor):
        default = "" if x.dtype == tf.string else 0
        x = tf.sparse.to_dense(
            tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]), default)
    if x.shape.rank == 2:
        x = tf.squeeze(x, axis=1)
    return x


def _as_float(x: tf.Tensor) -> tf.Tensor:
    return tf.cast(x, tf.float32)


def binary_label(inputs: Mapping[str, Any], spec: ModelInputs) -> tf.Tensor:
    """1 where `column > threshold * relative_to` (or `> threshold`), else 0."""
    value = _as_float(fill_in_missing(inputs[spec.label.column]))
    bound = tf.constant(spec.label.threshold, tf.float32)
    if spec.label.relative_to:
        bound = bound * _as_float(fill_in_missing(inputs[spec.label.relative_to]))
    return tf.cast(tf.greater(value, bound), tf.int64)


def preprocessing_fn(inputs: Mapping[str, Any],
                     custom_config: Mapping[str, Any]) -> dict[str, tf.Tensor]:
    """Scales, buckets and looks up each configured feature; derives the label."""
    spec = ModelInputs.from_custom_config(custom_config)
    features = spec.features
    outputs: dict[str, tf.Tensor] = {}

    for key in features.numeric:
        outputs[transformed_name(key)] = tft.scale_to_z_score(
            _as_float(fill_in_missing(inputs[key])))

    if features.bucketized:
        for key in features.bucketized.keys:
            outputs[transformed_name(key)] = tft.bucketize(
                _as_float(fill_in_missing(inputs[key])), features.bucketized.buckets)

    if features.vocabulary:
        for key in features.vocabulary.keys:
            outputs[transformed_name(key)] = tft.compute_and_apply_vocabulary(
                fill_in_missing(inputs[key]),
                top_k=features.vocabulary.top_k,
                num_oov_buckets=features.vocabulary.oov_buckets,
                vocab_filename=key)

    for key, num_ids in features.categorical.items():
        ids = tf.cast(fill_in_missing(inputs[key]), tf.int64)
        in_range = tf.logical_and(ids >= 0, ids < num_ids)
        outputs[transformed_name(key)] = tf.where(
            in_range, ids, tf.constant(num_ids, tf.int64))

    outputs[spec.label_key] = binary_label(inputs, spec)
    return outputs
