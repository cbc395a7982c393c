"""The Evaluator's extractors: TFMA's, with only the sliced features split per example."""
import numpy as np
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.extractors import unbatch_extractor

from models import extractors
from pipeline.config import load_config
from pipeline.dag.evaluation import eval_config


def test_the_sliced_columns_are_those_the_slicing_specs_name():
    cfg = load_config()
    config = eval_config(cfg.evaluation, cfg.model_inputs())
    assert extractors.sliced_columns(config) == {
        key for keys in cfg.evaluation.slices for key in keys}
    config.cross_slicing_specs.add(
        baseline_spec=tfma.SlicingSpec(feature_values={"company": "x"}),
        slicing_specs=[tfma.SlicingSpec(feature_keys=["dropoff_latitude"])])
    assert {"company", "dropoff_latitude"} <= extractors.sliced_columns(config)
    config.slicing_specs.add(slice_keys_sql="SELECT STRUCT(a) FROM example.a")
    assert extractors.sliced_columns(config) is None  # keeps every feature


def test_the_projection_keeps_sliced_features_labels_and_predictions():
    batch = {
        tfma.constants.INPUT_KEY: np.array([b"a", b"b"], dtype=object),
        tfma.constants.FEATURES_KEY: {"payment_type": np.array([[b"Cash"], [b"Card"]]),
                                      "fare": np.array([[1.0], [2.0]])},
        tfma.constants.LABELS_KEY: np.array([0, 1]),
        tfma.constants.PREDICTIONS_KEY: np.array([[0.2], [0.9]]),
    }
    kept = extractors._keep(batch, frozenset({"payment_type"}))
    assert set(kept) == {tfma.constants.FEATURES_KEY, tfma.constants.LABELS_KEY,
                         tfma.constants.PREDICTIONS_KEY}
    assert set(kept[tfma.constants.FEATURES_KEY]) == {"payment_type"}
    assert set(batch[tfma.constants.FEATURES_KEY]) == {"payment_type", "fare"}  # not mutated


def taxi_config(**evaluation) -> tfma.EvalConfig:
    """The taxi EvalConfig, without the thresholds that compare with a model
    (TFMA's extractors are built without one: materialized predictions)."""
    cfg = load_config()
    return eval_config(cfg.evaluation.model_copy(update={"thresholds": [], **evaluation}),
                       cfg.model_inputs())


def test_the_projection_runs_just_before_the_batches_are_split(caplog):
    # A metric of TFMA's own (MeanLabel) reads examples one by one: no groups.
    config = taxi_config(metrics=["AUC", "MeanLabel"])
    assert not extractors.rows_groupable(config)
    with caplog.at_level("INFO", logger=extractors.__name__):
        stages = [e.stage_name for e in extractors.custom_extractors(None, config, None)]
    assert "rows not grouped by slice" in caplog.text  # the fast path says it is off
    split = stages.index(unbatch_extractor.UNBATCH_EXTRACTOR_STAGE_NAME)
    assert stages[split - 1] == extractors.PROJECT_STAGE
    assert stages.count(extractors.PROJECT_STAGE) == 1
    assert extractors.GROUP_STAGE not in stages


def test_rows_are_grouped_in_place_of_the_split_where_every_metric_is_the_histograms():
    config = taxi_config()
    assert extractors.rows_groupable(config)
    stages = [e.stage_name for e in extractors.custom_extractors(None, config, None)]
    assert unbatch_extractor.UNBATCH_EXTRACTOR_STAGE_NAME not in stages
    assert stages.index(extractors.GROUP_STAGE) < stages.index(
        tfma.extractors.SLICE_KEY_EXTRACTOR_STAGE_NAME)


def test_rows_are_not_grouped_where_a_metric_needs_examples_one_by_one():
    assert not extractors.rows_groupable(taxi_config(metrics=["AUC", "MeanPrediction"]))
    # A threshold inside a histogram bucket: TFMA's exact confusion matrices.
    config = taxi_config(metrics=["AUC"])
    config.metrics_specs[0].metrics.add(class_name="FallOutFromHistogram",
                                        module="models.metrics", config='"thresholds": 0.37005')
    assert not extractors.rows_groupable(config)
    config = taxi_config()
    config.options.compute_confidence_intervals.value = True  # resamples examples
    assert not extractors.rows_groupable(config)
    cfg = load_config()
    regression = cfg.model_inputs().model_copy(update={"label": cfg.model_inputs().label.model_copy(
        update={"task": "regression", "threshold": None, "relative_to": None})})
    assert not extractors.rows_groupable(eval_config(
        cfg.evaluation.model_copy(update={"thresholds": [], "metrics": None}), regression))


def batch(**extra):
    return {
        tfma.constants.INPUT_KEY: np.array([b"a", b"b", b"c", b"d"], dtype=object),
        tfma.constants.FEATURES_KEY: {
            "payment_type": np.array([[b"Cash"], [b"Card"], [b"Cash"], [b"Cash"]],
                                     dtype=object),
            "trip_start_hour": np.array([[1], [1], [2], [1]]),
            "fare": np.array([[1.0], [2.0], [3.0], [4.0]])},
        tfma.constants.LABELS_KEY: np.array([0, 1, 1, 0]),
        tfma.constants.PREDICTIONS_KEY: {"": np.array([[0.1], [0.2], [0.3], [0.4]]),
                                         "baseline": np.array([[0.5], [0.6], [0.7], [0.8]])},
        **extra,
    }


def test_a_batch_is_grouped_by_the_values_of_its_sliced_columns():
    groups = extractors._group_rows(batch(), frozenset({"payment_type", "trip_start_hour"}))
    assert sorted(tuple(g[tfma.constants.PREDICTIONS_KEY][""].ravel().tolist())
                  for g in groups) == [(0.1, 0.4), (0.2,), (0.3,)]
    cash_1 = next(g for g in groups if g[tfma.constants.LABELS_KEY].size == 2)
    np.testing.assert_array_equal(cash_1[tfma.constants.PREDICTIONS_KEY]["baseline"],
                                  [[0.5], [0.8]])
    # The group's features: its sliced values, as TFMA splits them per example.
    assert set(cash_1[tfma.constants.FEATURES_KEY]) == {"payment_type", "trip_start_hour"}
    np.testing.assert_array_equal(cash_1[tfma.constants.FEATURES_KEY]["payment_type"],
                                  [b"Cash"])
    assert tfma.constants.INPUT_KEY not in cash_1
    # Only the overall slice: one group of the whole batch.
    (whole,) = extractors._group_rows(batch(), frozenset())
    assert whole[tfma.constants.LABELS_KEY].tolist() == [0, 1, 1, 0]


def test_a_batch_with_a_value_that_is_not_rows_is_split_as_tfma_splits_it():
    odd = batch(**{"attributions": [{"x": 1}, {"x": 2}, {"x": 3}, {"x": 4}]})
    out = extractors._group_rows(odd, frozenset({"payment_type"}))
    assert len(out) == 4
    assert [e[tfma.constants.LABELS_KEY].tolist() for e in out] == [[0], [1], [1], [0]]
