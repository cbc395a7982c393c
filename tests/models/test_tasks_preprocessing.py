"""Mean imputation, missing indicators and the label of each task, through
tf.Transform's Beam implementation on a small batch."""
import functools

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils

from models.features import LABEL_VOCABULARY, ModelInputs
from models.preprocessing import preprocessing_fn

RAW_SPEC = {
    "bill": tf.io.VarLenFeature(tf.float32),  # a column with missing cells
    "flipper": tf.io.FixedLenFeature([], tf.int64),
    "island": tf.io.FixedLenFeature([], tf.string),
    "year": tf.io.VarLenFeature(tf.int64),
    "species": tf.io.FixedLenFeature([], tf.string),
    "mass": tf.io.FixedLenFeature([], tf.float32),
}

ROWS = [
    {"bill": [40.0], "flipper": 180, "island": b"Dream", "year": [1], "species": b"Gentoo",
     "mass": 3000.0},
    {"bill": [], "flipper": 190, "island": b"Dream", "year": [], "species": b"Adelie",
     "mass": 4000.0},
    {"bill": [50.0], "flipper": 200, "island": b"Biscoe", "year": [2], "species": b"Gentoo",
     "mass": 5000.0},
    {"bill": [45.0], "flipper": 210, "island": b"Biscoe", "year": [0], "species": b"Gentoo",
     "mass": 3500.0},
]


def transform(tmp_path, label, features=None):
    spec = ModelInputs.model_validate({
        "features": features or {"numeric": ["bill", "flipper"],
                                 "bucketized": {"keys": ["mass"], "buckets": 2},
                                 "categorical": {"year": 3},
                                 "missing_indicators": True},
        "label": label})
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(RAW_SPEC))
    with tft_beam.Context(temp_dir=str(tmp_path / "tft")):
        (rows, _), transform_fn = (ROWS, metadata) | tft_beam.AnalyzeAndTransformDataset(
            functools.partial(preprocessing_fn, custom_config=spec.to_custom_config()))
        out = str(tmp_path / "out")
        _ = transform_fn | tft_beam.WriteTransformFn(out)
    return {k: np.array([r[k] for r in rows]) for k in rows[0]}, tft.TFTransformOutput(out)


@pytest.fixture(scope="module")
def multiclass(tmp_path_factory):
    return transform(tmp_path_factory.mktemp("multiclass"),
                     {"column": "species", "task": "multiclass"})


def test_missing_number_is_the_training_mean(multiclass):
    rows, _ = multiclass
    # bill: 40, missing, 50, 45 -> z-scored by the mean and deviation of the
    # present values; the missing value is their mean, 0.
    present = np.array([40.0, 50.0, 45.0])
    expected = (np.array([40.0, 45.0, 50.0, 45.0]) - present.mean()) / present.std()
    np.testing.assert_allclose(rows["bill_xf"], expected, rtol=1e-5)


def test_missing_indicator_marks_only_missing_cells(multiclass):
    rows, _ = multiclass
    assert rows["bill_missing_xf"].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert rows["flipper_missing_xf"].tolist() == [0.0, 0.0, 0.0, 0.0]
    assert rows["mass_missing_xf"].tolist() == [0.0] * 4


def test_missing_id_joins_the_out_of_range_ids(multiclass):
    rows, _ = multiclass
    assert rows["year_xf"].tolist() == [1, 3, 2, 0]


def test_multiclass_label_is_an_index_in_the_class_vocabulary(multiclass):
    rows, output = multiclass
    classes = [c.decode() for c in output.vocabulary_by_name(LABEL_VOCABULARY)]
    assert sorted(classes) == ["Adelie", "Gentoo"]
    assert [classes[i] for i in rows["species_xf"]] == ["Gentoo", "Adelie", "Gentoo", "Gentoo"]


def test_binary_label_from_a_class_value(tmp_path):
    rows, _ = transform(tmp_path, {"column": "species", "positive": "Gentoo"})
    assert rows["species_xf"].tolist() == [1, 0, 1, 1]


def test_regression_label_is_the_value(tmp_path):
    rows, _ = transform(tmp_path, {"column": "mass", "task": "regression"},
                        features={"numeric": ["bill"]})
    assert rows["mass_xf"].tolist() == [3000.0, 4000.0, 5000.0, 3500.0]
    assert "bill_missing_xf" not in rows  # indicators only when asked for
