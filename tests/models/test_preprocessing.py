"""preprocessing_fn through tf.Transform's Beam implementation on a small batch."""
import functools

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from models.features import ModelInputs
from models.preprocessing import preprocessing_fn

SPEC = ModelInputs.model_validate({
    "features": {
        "numeric": ["miles"],
        "bucketized": {"keys": ["lat"], "buckets": 2},
        "vocabulary": {"keys": ["payment"], "top_k": 10, "oov_buckets": 1},
        "categorical": {"hour": 24},
    },
    "label": {"column": "tips", "threshold": 0.2, "relative_to": "fare"},
})

RAW_SPEC = {
    "miles": tf.io.FixedLenFeature([], tf.float32),
    "lat": tf.io.VarLenFeature(tf.float32),  # a CSV column with empty cells
    "payment": tf.io.FixedLenFeature([], tf.string),
    "hour": tf.io.FixedLenFeature([], tf.int64),
    "tips": tf.io.FixedLenFeature([], tf.float32),
    "fare": tf.io.FixedLenFeature([], tf.float32),
}

ROWS = [
    {"miles": 1.0, "lat": [41.0], "payment": b"Cash", "hour": 0, "tips": 0.0, "fare": 1.0},
    {"miles": 2.0, "lat": [42.0], "payment": b"Cash", "hour": 23, "tips": 1.0, "fare": 2.0},
    {"miles": 3.0, "lat": [], "payment": b"Credit Card", "hour": 25, "tips": 0.5, "fare": 10.0},
    {"miles": 4.0, "lat": [42.5], "payment": b"Cash", "hour": -1, "tips": 0.0, "fare": 0.0},
]


@pytest.fixture(scope="module")
def transformed(tmp_path_factory):
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(RAW_SPEC))
    with tft_beam.Context(temp_dir=str(tmp_path_factory.mktemp("tft"))):
        (rows, _), _ = (ROWS, metadata) | tft_beam.AnalyzeAndTransformDataset(
            functools.partial(preprocessing_fn, custom_config=SPEC.to_custom_config()))
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}


def test_numeric_is_z_scored(transformed):
    miles = transformed["miles_xf"]
    np.testing.assert_allclose(miles, (np.array([1, 2, 3, 4]) - 2.5) / np.sqrt(1.25), rtol=1e-5)


def test_vocabulary_ids_by_frequency(transformed):
    assert transformed["payment_xf"].tolist() == [0, 0, 1, 0]


def test_categorical_out_of_range_shares_one_id(transformed):
    assert transformed["hour_xf"].tolist() == [0, 23, 24, 24]


def test_missing_value_is_filled_then_bucketized(transformed):
    buckets = transformed["lat_xf"].tolist()
    assert all(0 <= b < 2 for b in buckets)
    # The empty cell is the mean of the present values (41.83): below the
    # median boundary of 41, 42 and 42.5, with 41.
    assert buckets[2] == buckets[0] == 0
    assert buckets[0] <= buckets[1] <= buckets[3]


def test_label_is_tips_above_share_of_fare(transformed):
    # 0 > 0.2; 1 > 0.4; 0.5 > 2; 0 > 0
    assert transformed["tips_xf"].tolist() == [0, 1, 0, 0]
