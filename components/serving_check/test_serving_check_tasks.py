"""The serving check judges a model's outputs by the label's task: a multi-class
model must return a probability per class (summing to 1) and the class names;
a regression model finite values, in any range."""
import numpy as np
import pytest
import tensorflow as tf

from components.serving_check.executor import (
    ContractError,
    Thresholds,
    _check_outputs,
    check_model,
)


def example(x: float, label: str = "b") -> bytes:
    return tf.train.Example(features=tf.train.Features(feature={
        "x": tf.train.Feature(float_list=tf.train.FloatList(value=[x])),
        "y": tf.train.Feature(bytes_list=tf.train.BytesList(value=[label.encode()])),
    })).SerializeToString()


def save(tmp_path, outputs) -> str:
    """A SavedModel whose serving signature parses `x` and returns `outputs(x)`."""
    module = tf.Module()

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
    def serve(examples):
        x = tf.io.parse_example(examples, {"x": tf.io.FixedLenFeature([1], tf.float32)})["x"]
        return outputs(x)

    path = str(tmp_path / "model")
    tf.saved_model.save(module, path, signatures={"serving_default": serve})
    return path


def check(path, task):
    return check_model(path, [example(float(i)) for i in range(8)], "y",
                       Thresholds(batch_size=8, repeats=2), task=task)


def three_classes(x):
    probs = tf.nn.softmax(tf.concat([x, -x, x * 0], axis=1))
    names = tf.tile(tf.constant([["a", "b", "c"]]), [tf.shape(x)[0], 1])
    return {"outputs": probs, "classes": names}


def test_multiclass_probabilities_and_class_names_pass(tmp_path):
    result = check(save(tmp_path, three_classes), "multiclass")
    assert result.blessed, result.reason
    assert "outputs" in result.checked


def test_multiclass_without_class_names_fails(tmp_path):
    result = check(save(tmp_path, lambda x: {"outputs": tf.nn.softmax(
        tf.concat([x, -x], axis=1))}), "multiclass")
    assert not result.blessed and "class names" in result.reason


def test_multiclass_scores_that_do_not_sum_to_one_fail(tmp_path):
    result = check(save(tmp_path, lambda x: {
        "outputs": tf.sigmoid(tf.concat([x, -x, x], axis=1)),
        "classes": tf.tile(tf.constant([["a", "b", "c"]]), [tf.shape(x)[0], 1])}),
        "multiclass")
    assert not result.blessed and "sum to 1" in result.reason


def test_regression_values_need_not_be_probabilities(tmp_path):
    result = check(save(tmp_path, lambda x: {"outputs": x * 1000.0 - 5.0}), "regression")
    assert result.blessed, result.reason
    # The same values are no binary probabilities.
    assert not check(save(tmp_path / "b", lambda x: {"outputs": x * 1000.0 - 5.0}),
                     "binary").blessed


def test_output_shapes_and_values_by_task():
    _check_outputs(np.full((4, 1), 1e6), 4, "regression")
    with pytest.raises(ContractError, match="not finite"):
        _check_outputs(np.array([[1.0], [np.nan]]), 2, "regression")
    with pytest.raises(ContractError, match="probability per class"):
        _check_outputs(np.full((4, 1), 0.5), 4, "multiclass")
    _check_outputs(np.full((4, 2), 0.5), 4, "multiclass")
