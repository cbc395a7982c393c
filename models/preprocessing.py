"""tf.Transform `preprocessing_fn`: the one place raw columns become model inputs.

Transform loads it by dotted path (`models.preprocessing.preprocessing_fn`), so
the same function runs in the local runner and inside the pipeline image, and
the resulting graph is embedded in the serving signature.
"""
from __future__ import annotations

from typing import Any, Mapping

import tensorflow as tf
import tensorflow_transform as tft

from models.features import LABEL_VOCABULARY, ModelInputs, indicator_name, transformed_name


def fill_in_missing(x: tf.Tensor | tf.SparseTensor, default: Any = None) -> tf.Tensor:
    """Dense rank-1 tensor with missing values as `default` ('' or 0 unless given).

    CSV columns with empty cells arrive as SparseTensors of dense shape
    [batch, 1]; columns always present arrive dense, [batch] or [batch, 1].
    """
    if isinstance(x, tf.sparse.SparseTensor):
        if default is None:
            default = "" if x.dtype == tf.string else 0
        x = tf.sparse.to_dense(
            tf.SparseTensor(x.indices, x.values, [x.dense_shape[0], 1]),
            tf.cast(default, x.dtype))
    if x.shape.rank == 2:
        x = tf.squeeze(x, axis=1)
    return x


def _as_float(x: tf.Tensor) -> tf.Tensor:
    return tf.cast(x, tf.float32)


def is_missing(x: tf.Tensor | tf.SparseTensor) -> tf.Tensor:
    """1.0 where a row has no value, else 0.0 (all 0 for a dense column)."""
    if isinstance(x, tf.sparse.SparseTensor):
        present = tf.sparse.to_dense(tf.SparseTensor(
            x.indices, tf.ones_like(x.values, tf.float32), [x.dense_shape[0], 1]))
        return 1.0 - tf.squeeze(present, axis=1)
    return tf.zeros([tf.shape(x)[0]], tf.float32)


def z_score(x: tf.Tensor | tf.SparseTensor) -> tf.Tensor:
    """Floats scaled to mean 0 and variance 1 over the present values; a
    missing value is the mean, 0.

    Both statistics are read from the raw column, so this and `bucketize` need
    one tf.Transform analysis pass, where the mean-imputed column would need a
    pass for the mean before another over the imputed values.
    """
    if isinstance(x, tf.sparse.SparseTensor):
        values = tf.SparseTensor(x.indices, _as_float(x.values), x.dense_shape)
        return fill_in_missing(tft.scale_to_z_score(values), 0.0)
    return tft.scale_to_z_score(_as_float(fill_in_missing(x)))


def bucketize(x: tf.Tensor | tf.SparseTensor, num_buckets: int) -> tf.Tensor:
    """Quantile bucket ids: quantiles of the present values, and a missing
    value in the bucket of the mean (tft.bucketize's quantiles, one pass)."""
    if not isinstance(x, tf.sparse.SparseTensor):
        return tft.bucketize(_as_float(fill_in_missing(x)), num_buckets)
    values = _as_float(x.values)
    boundaries = tft.quantiles(values, num_buckets, epsilon=min(1.0 / num_buckets, 0.01))
    filled = fill_in_missing(tf.SparseTensor(x.indices, values, x.dense_shape),
                             tft.mean(values))
    return tft.apply_buckets(filled, boundaries)


def binary_label(inputs: Mapping[str, Any], spec: ModelInputs) -> tf.Tensor:
    """1 where `column > threshold * relative_to` (or `> threshold`), or where the
    column equals the class value `positive`; else 0."""
    label = spec.label
    raw = fill_in_missing(inputs[label.column])
    if label.from_class:
        text = raw if raw.dtype == tf.string else tf.strings.as_string(raw)
        return tf.cast(tf.equal(text, str(label.positive)), tf.int64)
    value = _as_float(raw)
    bound = tf.constant(label.cut, tf.float32)
    if label.relative_to:
        bound = bound * _as_float(fill_in_missing(inputs[label.relative_to]))
    return tf.cast(tf.greater(value, bound), tf.int64)


def class_label(inputs: Mapping[str, Any], spec: ModelInputs) -> tf.Tensor:
    """The class index of each row in a vocabulary of the label's values."""
    raw = fill_in_missing(inputs[spec.label.column])
    text = raw if raw.dtype == tf.string else tf.strings.as_string(raw)
    return tft.compute_and_apply_vocabulary(
        text, num_oov_buckets=0, vocab_filename=LABEL_VOCABULARY)


def label(inputs: Mapping[str, Any], spec: ModelInputs) -> tf.Tensor:
    """The label as the task needs it: 0/1, a class index, or a float value."""
    if spec.label.task == "multiclass":
        return class_label(inputs, spec)
    if spec.label.task == "regression":
        return _as_float(fill_in_missing(inputs[spec.label.column]))
    return binary_label(inputs, spec)


def preprocessing_fn(inputs: Mapping[str, Any],
                     custom_config: Mapping[str, Any]) -> dict[str, tf.Tensor]:
    """Scales, buckets and looks up each configured feature; derives the label."""
    spec = ModelInputs.from_custom_config(custom_config)
    features = spec.features
    outputs: dict[str, tf.Tensor] = {}

    for key in features.numeric:
        outputs[transformed_name(key)] = z_score(inputs[key])

    if features.bucketized:
        for key in features.bucketized.keys:
            outputs[transformed_name(key)] = bucketize(inputs[key], features.bucketized.buckets)

    if features.missing_indicators:
        for key in features.numeric + (features.bucketized.keys if features.bucketized else []):
            outputs[indicator_name(key)] = is_missing(inputs[key])

    if features.vocabulary:
        for key in features.vocabulary.keys:
            outputs[transformed_name(key)] = tft.compute_and_apply_vocabulary(
                fill_in_missing(inputs[key]),
                top_k=features.vocabulary.top_k,
                num_oov_buckets=features.vocabulary.oov_buckets,
                vocab_filename=key)

    for key, num_ids in features.categorical.items():
        # A missing id (-1) joins the out-of-range ids.
        ids = tf.cast(fill_in_missing(inputs[key], -1), tf.int64)
        in_range = tf.logical_and(ids >= 0, ids < num_ids)
        outputs[transformed_name(key)] = tf.where(
            in_range, ids, tf.constant(num_ids, tf.int64))

    outputs[spec.label_key] = label(inputs, spec)
    return outputs
