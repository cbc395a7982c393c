"""The Keras model builds and trains, and its serving signature scores raw
serialized tf.Examples with the Transform graph applied inside."""

import numpy as np
import pytest
import tensorflow as tf

from models.model import build_keras_model, without_autograph
from models.signatures import OUTPUT_KEY, SERVING_SIGNATURE, TRANSFORM_SIGNATURE, export
from pipeline.config import load_config
from tests.datasets import read_rows
from tests.taxi_examples import raw_feature_spec, to_example, transform_rows

N_ROWS = 600


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    cfg = load_config(overrides={"training.batch_size": 32})
    spec = cfg.model_inputs()
    raw_spec = raw_feature_spec()
    _, rows = read_rows()
    rows = rows[:N_ROWS]
    work = tmp_path_factory.mktemp("model")
    tft_output, features, label = transform_rows(rows, spec, str(work))
    model = build_keras_model(spec)
    history = model.fit(features, label, batch_size=32, epochs=3, verbose=0)
    path = str(work / "saved_model")
    export(model, tft_output, spec, path)
    return dict(spec=spec, rows=rows, raw_spec=raw_spec, history=history,
                loaded=tf.saved_model.load(path), label=label)


def test_model_trains(trained):
    losses = trained["history"].history["loss"]
    assert len(losses) == 3 and all(np.isfinite(losses))
    assert losses[-1] < losses[0]


def test_serving_signature_scores_raw_examples_without_label(trained):
    spec, rows = trained["spec"], trained["rows"][:50]
    serve = trained["loaded"].signatures[SERVING_SIGNATURE]
    examples = [to_example(r, trained["raw_spec"], drop=(spec.label.column,)) for r in rows]
    scores = serve(examples=tf.constant(examples))[OUTPUT_KEY].numpy()
    assert scores.shape == (50, 1)
    assert np.all((scores >= 0) & (scores <= 1))
    assert len(np.unique(scores.round(6))) > 1  # depends on the input


def test_serving_signature_input_contract(trained):
    serve = trained["loaded"].signatures[SERVING_SIGNATURE]
    [(name, spec)] = serve.structured_input_signature[1].items()
    assert name == "examples" and spec.dtype == tf.string


def test_transform_signature_yields_the_label(trained):
    spec = trained["spec"]
    rows = trained["rows"][:20]
    transform = trained["loaded"].signatures[TRANSFORM_SIGNATURE]
    out = transform(examples=tf.constant([to_example(r, trained["raw_spec"]) for r in rows]))
    assert set(out) == {spec.label_key}  # TFMA reads only the label
    np.testing.assert_array_equal(out[spec.label_key].numpy().ravel(), trained["label"][:20])


def test_fit_and_evaluate_run_the_steps_traced_without_autograph():
    """Keras keeps a preset train_function / test_function until the next
    compile; if an upgrade rebuilt them, fit would quietly trace with AutoGraph
    again (15-30 s of the Trainer)."""
    inputs = tf.keras.Input(shape=(2,))
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(1, activation="sigmoid")(inputs))
    model.compile(loss="binary_crossentropy", optimizer=tf.keras.optimizers.SGD(0.5))
    model = without_autograph(model)
    train, test = model.train_function, model.test_function
    x = np.array([[0.0, 1.0], [1.0, 0.0]] * 32, dtype=np.float32)
    y = np.array([[1.0], [0.0]] * 32, dtype=np.float32)
    losses = model.fit(x, y, batch_size=16, epochs=4, verbose=0).history["loss"]
    model.evaluate(x, y, batch_size=16, verbose=0)
    assert model.train_function is train and model.test_function is test
    assert train.experimental_get_tracing_count() >= 1
    assert test.experimental_get_tracing_count() >= 1
    assert losses[-1] < losses[0]
