"""ServingCheck blesses a real trained model and rejects broken serving signatures.

The model is the project's own (preprocessing_fn, Keras model, signatures),
trained briefly on rows of the shipped taxi CSV; the broken variants are the
mistakes that pass training and evaluation but fail a TF Serving client.
"""
import json
import os

import pytest
import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts

from components.atomic_pusher.executor import Executor as PusherExecutor
from components.serving_check import executor as check
from components.serving_check.component import ServingCheck
from models.model import build_keras_model
from models.signatures import OUTPUT_KEY, SERVING_SIGNATURE, serving_fn, signatures
from pipeline.config import load_config
from tests.datasets import read_rows
from tests.taxi_examples import raw_feature_spec, to_example, transform_rows

N_ROWS = 400
EXAMPLES_SPEC = tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """A trained model exported several ways, and an Examples artifact of raw rows."""
    cfg = load_config()
    spec = cfg.model_inputs()
    raw_spec = raw_feature_spec()
    _, rows = read_rows()
    rows = rows[:N_ROWS]
    work = tmp_path_factory.mktemp("serving_check")
    tft_output, features, label = transform_rows(rows, spec, str(work))
    model = build_keras_model(spec)
    model.fit(features, label, batch_size=32, epochs=1, verbose=0)

    def export(name, serve):
        path = str(work / name / "Format-Serving")
        tf.saved_model.save(model, path, signatures={SERVING_SIGNATURE: serve})
        return path

    good = str(work / "good" / "Format-Serving")
    tf.saved_model.save(model, good, signatures=signatures(model, tft_output, spec))

    transformed_spec = {k: v for k, v in tft_output.transformed_feature_spec().items()
                        if k != spec.label_key}

    @tf.function(input_signature=[EXAMPLES_SPEC])
    def wants_transformed(examples):
        return {OUTPUT_KEY: model(tf.io.parse_example(examples, transformed_spec))}

    real = serving_fn(model, tft_output, spec)

    @tf.function(input_signature=[EXAMPLES_SPEC])
    def returns_nan(examples):
        return {OUTPUT_KEY: real(examples)[OUTPUT_KEY] * float("nan")}

    @tf.function(input_signature=[EXAMPLES_SPEC])
    def returns_logits(examples):
        return {OUTPUT_KEY: real(examples)[OUTPUT_KEY] * 10.0 - 5.0}

    model.tft_layer_label = tft_output.transform_features_layer()

    @tf.function(input_signature=[EXAMPLES_SPEC])
    def needs_label(examples):
        raw = tf.io.parse_example(examples, tft_output.raw_feature_spec())
        return {OUTPUT_KEY: model(model.tft_layer_label(raw))}

    @tf.function(input_signature=[tf.TensorSpec(shape=[None, 3], dtype=tf.float32, name="x")])
    def wrong_input(x):
        return {OUTPUT_KEY: tf.reduce_mean(x, axis=1, keepdims=True)}

    examples = standard_artifacts.Examples()
    examples.uri = str(work / "examples")
    examples.split_names = artifact_utils.encode_split_names(["eval"])
    os.makedirs(os.path.join(examples.uri, "Split-eval"))
    with tf.io.TFRecordWriter(os.path.join(examples.uri, "Split-eval", "data.gz"),
                              options="GZIP") as writer:
        for row in rows[:100]:
            writer.write(to_example(row, raw_spec))  # label included, as ExampleGen writes

    return dict(good=good, examples=examples, label=spec.label.column,
                wants_transformed=export("wants_transformed", wants_transformed),
                returns_nan=export("returns_nan", returns_nan),
                returns_logits=export("returns_logits", returns_logits),
                needs_label=export("needs_label", needs_label),
                wrong_input=export("wrong_input", wrong_input))


def run_check(built, tmp_path, model_key, **props):
    model = standard_artifacts.Model()
    model.uri = os.path.dirname(built[model_key])
    blessing = standard_artifacts.InfraBlessing()
    blessing.uri = str(tmp_path / f"blessing-{model_key}")
    props = {"label_column": built["label"], "batch_size": 32, "repeats": 5, **props}
    ServingCheck.EXECUTOR_SPEC.executor_class().Do(
        {"model": [model], "examples": [built["examples"]]}, {"blessing": [blessing]}, props)
    return model, blessing


def test_client_request_drops_only_the_label(built):
    serialized = check.read_examples(built["examples"], "eval", 10)
    assert len(serialized) == 10
    [before] = [tf.train.Example.FromString(s) for s in serialized[:1]]
    [after] = [tf.train.Example.FromString(s)
               for s in check.as_client_request(serialized[:1], "tips")]
    assert "tips" in before.features.feature and "tips" not in after.features.feature
    assert set(before.features.feature) - set(after.features.feature) == {"tips"}


# Latency limits no machine running the tests reaches but a hung call would: the
# speed of the check belongs to `make bench`, not to these tests.
HANG_MS = 60_000.0


def test_real_model_is_blessed_with_latencies(built, tmp_path):
    _, blessing = run_check(built, tmp_path, "good", max_p50_ms_single=HANG_MS,
                            max_p50_ms_batch=HANG_MS)
    assert blessing.get_int_custom_property("blessed") == 1, \
        blessing.get_string_custom_property("reason")
    assert os.path.exists(os.path.join(blessing.uri, check.BLESSED_FILE))
    report = json.load(open(os.path.join(blessing.uri, check.REPORT_FILE)))
    assert report["checked"] == ["signature", "input contract", "raw features in, no label",
                                 "outputs", "latency"]
    assert 0 < report["p50_ms_single"] < HANG_MS and 0 < report["p50_ms_batch"] < HANG_MS
    assert report["batch_size"] == 32
    assert blessing.get_float_custom_property("p50_ms_batch") == report["p50_ms_batch"]


@pytest.mark.parametrize("model_key, reason", [
    ("wants_transformed", "_xf (data type: "),
    ("needs_label", "it requires the label 'tips'"),
    ("returns_nan", "not finite"),
    ("returns_logits", "must lie in [0, 1]"),
    ("wrong_input", "input contract: expected exactly one input 'examples'"),
])
def test_broken_signature_is_not_blessed_and_not_pushed(built, tmp_path, model_key, reason):
    model, blessing = run_check(built, tmp_path, model_key)
    text = blessing.get_string_custom_property("reason")
    assert blessing.get_int_custom_property("blessed") == 0
    assert reason in text, text
    assert os.path.exists(os.path.join(blessing.uri, check.NOT_BLESSED_FILE))

    # TFX's Pusher logic (here the AtomicPusher) refuses the model.
    evaluator_blessing = standard_artifacts.ModelBlessing()
    evaluator_blessing.set_int_custom_property("blessed", 1)
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed")
    serving = tmp_path / "serving"
    PusherExecutor().Do(
        {"model": [model], "model_blessing": [evaluator_blessing], "infra_blessing": [blessing]},
        {"pushed_model": [pushed]},
        {"push_destination": json.dumps({"filesystem": {"baseDirectory": str(serving)}})})
    assert pushed.get_int_custom_property("pushed") == 0
    assert not serving.exists()


def test_slow_model_fails_the_latency_threshold(built, tmp_path):
    _, blessing = run_check(built, tmp_path, "good", max_p50_ms_batch=1e-6)
    assert blessing.get_int_custom_property("blessed") == 0
    assert blessing.get_string_custom_property("reason").startswith("latency: p50 ")
    assert "at batch 32 > 1e-06 ms" in blessing.get_string_custom_property("reason")
