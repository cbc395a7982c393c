"""The Keras wide-and-deep model and the Trainer's `run_fn`.

The head, loss and metrics follow the label's task: a sigmoid probability
(binary), a softmax over the classes of the label vocabulary (multiclass) or
a value in the label's own units (regression).

Trainer loads `run_fn` by dotted path (`models.model.run_fn`); everything it
needs about the data arrives in `fn_args.custom_config`.
"""
from __future__ import annotations

import tensorflow as tf
import tensorflow_transform as tft
from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs
from tfx_bsl.tfxio import dataset_options

from models.features import LABEL_VOCABULARY, ModelInputs, indicator_name, transformed_name
from models.hyperparameters import (
    GATE_RECORD_KEY,
    apply_hyperparameters,
    record_hyperparameters,
)
from models.signatures import export


def input_fn(file_pattern: list[str], data_accessor: DataAccessor,
             tft_output: tft.TFTransformOutput, spec: ModelInputs,
             batch_size: int) -> tf.data.Dataset:
    """Endless batches of (transformed features, label) from the raw examples.

    Transform only analyzes the data; the transform graph is applied here, as
    each batch is read, so the data set is never written a second time in its
    transformed form (the Trainer reads only train_steps x batch_size rows).
    """
    transform = tft_output.transform_features_layer()
    label = spec.label_key

    # Plain TensorFlow ops: AutoGraph would convert this function and, through
    # the layer, tf.Transform's and Keras's own code, which took 10 s per run.
    @tf.autograph.experimental.do_not_convert
    def transformed(raw: dict) -> tuple[dict, tf.Tensor]:
        features = transform(raw)
        return features, features.pop(label)

    raw = data_accessor.tf_dataset_factory(
        file_pattern,
        dataset_options.TensorFlowDatasetOptions(
            batch_size=batch_size, shuffle_seed=spec.training.seed),
        tft_output.raw_metadata.schema)
    return raw.map(transformed, num_parallel_calls=tf.data.AUTOTUNE).repeat()


def _one_hot_sizes(spec: ModelInputs) -> dict[str, int]:
    """Number of ids each integer-valued transformed feature can take."""
    f = spec.features
    sizes: dict[str, int] = {}
    if f.vocabulary:
        for key in f.vocabulary.keys:
            sizes[key] = f.vocabulary.top_k + f.vocabulary.oov_buckets
    if f.bucketized:
        for key in f.bucketized.keys:
            sizes[key] = f.bucketized.buckets
    for key, n in f.categorical.items():
        sizes[key] = n + 1  # the extra id holds out-of-range values
    return sizes


def _head(spec: ModelInputs, joined: tf.Tensor, num_classes: int,
          label_mean: float, label_std: float) -> tuple[tf.Tensor, str, list]:
    """(output, loss, Keras metrics) for the label's task."""
    task = spec.label.task
    if task == "multiclass":
        output = tf.keras.layers.Dense(num_classes, activation="softmax")(joined)
        return output, "sparse_categorical_crossentropy", [
            tf.keras.metrics.SparseCategoricalAccuracy()]
    if task == "regression":
        # Learns the standardized label; the output is in the label's units.
        scaled = tf.keras.layers.Dense(1)(joined)
        output = tf.keras.layers.Rescaling(scale=label_std, offset=label_mean)(scaled)
        return output, "mean_squared_error", [
            tf.keras.metrics.MeanAbsoluteError(),
            tf.keras.metrics.RootMeanSquaredError()]
    output = tf.keras.layers.Dense(1, activation="sigmoid")(joined)
    return output, "binary_crossentropy", [
        tf.keras.metrics.BinaryAccuracy(), tf.keras.metrics.AUC(name="auc")]


def build_keras_model(spec: ModelInputs, num_classes: int = 2, label_mean: float = 0.0,
                      label_std: float = 1.0) -> tf.keras.Model:
    """Deep tower over scaled numerics, wide one-hot part over the ids.

    `num_classes` sizes a multi-class head; `label_mean` and `label_std`
    put a regression output back into the label's units.
    """
    training = spec.training
    numeric = list(spec.features.numeric)
    if spec.features.missing_indicators:
        bucketized = spec.features.bucketized.keys if spec.features.bucketized else []
        indicators = [indicator_name(k) for k in numeric + list(bucketized)]
    else:
        indicators = []
    deep_inputs = {
        name: tf.keras.layers.Input(name=name, shape=(1,), dtype=tf.float32)
        for name in [transformed_name(k) for k in numeric] + indicators
    }
    sizes = _one_hot_sizes(spec)
    wide_inputs = {
        transformed_name(k): tf.keras.layers.Input(
            name=transformed_name(k), shape=(1,), dtype=tf.int64)
        for k in sizes
    }

    parts = []
    if deep_inputs:
        deep = tf.keras.layers.concatenate(list(deep_inputs.values())) \
            if len(deep_inputs) > 1 else next(iter(deep_inputs.values()))
        for units in training.hidden_units:
            deep = tf.keras.layers.Dense(units, activation="relu")(deep)
        parts.append(deep)
    for key, size in sizes.items():
        parts.append(tf.keras.layers.CategoryEncoding(
            num_tokens=size, output_mode="one_hot")(wide_inputs[transformed_name(key)]))

    joined = tf.keras.layers.concatenate(parts) if len(parts) > 1 else parts[0]
    output, loss, metrics = _head(spec, joined, num_classes, label_mean, label_std)
    model = tf.keras.Model({**deep_inputs, **wide_inputs}, output)
    model.compile(
        loss=loss,
        optimizer=tf.keras.optimizers.Adam(learning_rate=training.learning_rate),
        metrics=metrics)
    return without_autograph(model)


def label_moments(dataset: tf.data.Dataset, batches: int = 50) -> tuple[float, float]:
    """Mean and standard deviation of the label over the first training batches."""
    values = [labels.numpy().ravel() for _, labels in dataset.take(batches)]
    joined = tf.concat(values, axis=0).numpy().astype("float64")
    std = float(joined.std())
    return float(joined.mean()), std if std > 0 else 1.0


def without_autograph(model: tf.keras.Model) -> tf.keras.Model:
    """Train and test steps traced without AutoGraph.

    Keras wraps its steps in a tf.function that AutoGraph-converts every
    layer, loss and metric on the first step: 15-30 s on two cores, most of
    the Trainer's time. Nothing here branches on tensor values, so plain
    tracing gives the same graph in a fraction of the time. (Keras keeps a
    preset `train_function` / `test_function` until the next `compile`.)
    """
    model.train_function = tf.function(
        lambda iterator: model.train_step(next(iterator)),
        autograph=False, reduce_retracing=True)
    model.test_function = tf.function(
        lambda iterator: model.test_step(next(iterator)),
        autograph=False, reduce_retracing=True)
    return model


def head_shape(spec: ModelInputs, tft_output: tft.TFTransformOutput,
               train: tf.data.Dataset) -> tuple[int, float, float]:
    """(num_classes, label mean, label std) that size the task's head."""
    num_classes, mean, std = 2, 0.0, 1.0
    if spec.label.task == "multiclass":
        num_classes = tft_output.vocabulary_size_by_name(LABEL_VOCABULARY)
    elif spec.label.task == "regression":
        mean, std = label_moments(train)
    return num_classes, mean, std


def run_fn(fn_args: FnArgs) -> None:
    """Trains the model and saves it with the serving and eval signatures."""
    # With a Tuner upstream, its best trial's values replace the configured ones.
    spec = apply_hyperparameters(ModelInputs.from_custom_config(fn_args.custom_config),
                                 fn_args.hyperparameters)
    tf.keras.utils.set_random_seed(spec.training.seed)
    tft_output = tft.TFTransformOutput(fn_args.transform_output)
    batch = spec.training.batch_size
    train = input_fn(fn_args.train_files, fn_args.data_accessor, tft_output, spec, batch)
    evaluation = input_fn(fn_args.eval_files, fn_args.data_accessor, tft_output, spec, batch)

    model = build_keras_model(spec, *head_shape(spec, tft_output, train))
    model.fit(
        train,
        steps_per_epoch=fn_args.train_steps,
        validation_data=evaluation,
        validation_steps=fn_args.eval_steps,
        callbacks=[tf.keras.callbacks.TensorBoard(
            log_dir=fn_args.model_run_dir, update_freq="epoch")],
        verbose=0)
    export(model, tft_output, spec, fn_args.serving_model_dir)
    record_hyperparameters(fn_args.serving_model_dir, spec.training,
                           tuned=bool(fn_args.hyperparameters),
                           gate=(fn_args.hyperparameters or {}).get(GATE_RECORD_KEY))
