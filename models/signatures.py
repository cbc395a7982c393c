"""Signatures saved with the model.

`serving_default` is what TF Serving calls: serialized tf.Example in, raw
feature columns only (no label), the Transform graph applied inside.  Its
`outputs` follow the task: a probability per example (binary), a probability
per class summing to 1 with the class names in `classes` (multiclass), a
value (regression).
`transform_features` is what TFMA calls to get the transformed label (only it).
"""
from __future__ import annotations

from typing import Callable

import tensorflow as tf
import tensorflow_transform as tft

from models import contract
from models.features import LABEL_VOCABULARY, ModelInputs

SERVING_SIGNATURE = contract.SERVING_SIGNATURE
TRANSFORM_SIGNATURE = contract.TRANSFORM_SIGNATURE
EXAMPLES_INPUT = "examples"
OUTPUT_KEY = "outputs"
CLASSES_KEY = "classes"


def _examples_spec() -> tf.TensorSpec:
    return tf.TensorSpec(shape=[None], dtype=tf.string, name=EXAMPLES_INPUT)


def serving_fn(model: tf.keras.Model, tft_output: tft.TFTransformOutput,
               spec: ModelInputs) -> Callable:
    """Scores serialized raw examples that carry the feature columns only."""
    # Tracked as an attribute so the Transform graph is saved with the model.
    model.tft_layer_serving = tft_output.transform_features_layer()
    raw_spec = tft_output.raw_feature_spec()
    serving_spec = {k: raw_spec[k] for k in spec.serving_columns()}
    names = None
    if spec.label.task == "multiclass":
        names = tf.constant([v.decode() if isinstance(v, bytes) else str(v)
                             for v in tft_output.vocabulary_by_name(LABEL_VOCABULARY)])

    @tf.function(input_signature=[_examples_spec()], autograph=False)
    def serve(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        raw = tf.io.parse_example(serialized, serving_spec)
        transformed = model.tft_layer_serving(raw)
        outputs = {OUTPUT_KEY: model(transformed)}
        if names is not None:
            # As TF Serving's Classify API: the class names beside the scores.
            outputs[CLASSES_KEY] = tf.tile(names[tf.newaxis, :],
                                           [tf.shape(serialized)[0], 1])
        return outputs

    return serve


def transform_fn(model: tf.keras.Model, tft_output: tft.TFTransformOutput,
                 spec: ModelInputs) -> Callable:
    """Raw examples (label included) to the transformed label, for evaluation.

    Only the label: TFMA splits every feature this returns into one value per
    example, and the label is all it reads.
    """
    model.tft_layer_eval = tft_output.transform_features_layer()
    raw_spec = tft_output.raw_feature_spec()
    label_key = spec.label_key

    @tf.function(input_signature=[_examples_spec()], autograph=False)
    def transform(serialized: tf.Tensor) -> dict[str, tf.Tensor]:
        transformed = model.tft_layer_eval(tf.io.parse_example(serialized, raw_spec))
        return {label_key: transformed[label_key]}

    return transform


def signatures(model: tf.keras.Model, tft_output: tft.TFTransformOutput,
               spec: ModelInputs) -> dict[str, Callable]:
    return {
        SERVING_SIGNATURE: serving_fn(model, tft_output, spec),
        TRANSFORM_SIGNATURE: transform_fn(model, tft_output, spec),
    }


def export(model: tf.keras.Model, tft_output: tft.TFTransformOutput, spec: ModelInputs,
           path: str) -> None:
    """SavedModel with both signatures, and its input contract in assets.extra/.

    Only the signatures are served or evaluated, so the per-layer call traces
    Keras would add (`save_traces`) are skipped: they cost seconds per export.
    """
    model.save(path, save_format="tf", signatures=signatures(model, tft_output, spec),
               save_traces=False)
    # What the signatures parse, beside them: scoring reads rows by it.
    contract.write(path, contract.build(tft_output, spec))
