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


def test_the_projection_runs_just_before_the_batches_are_split():
    cfg = load_config()
    # Without a model (TFMA's extractors for materialized predictions), and so
    # without the thresholds that compare with one.
    config = eval_config(cfg.evaluation.model_copy(update={"thresholds": []}),
                         cfg.model_inputs())
    stages = [e.stage_name for e in extractors.custom_extractors(None, config, None)]
    split = stages.index(unbatch_extractor.UNBATCH_EXTRACTOR_STAGE_NAME)
    assert stages[split - 1] == extractors.PROJECT_STAGE
    assert stages.count(extractors.PROJECT_STAGE) == 1
