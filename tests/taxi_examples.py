"""Raw taxi rows as typed instances and as serialized tf.Examples (what a
TF Serving client sends), typed by the curated schema."""
from __future__ import annotations

import functools
import os

import numpy as np
import tensorflow as tf
import tensorflow_data_validation as tfdv
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils

from models.features import ModelInputs
from models.preprocessing import preprocessing_fn
from pipeline.config import load_config


def raw_feature_spec() -> dict:
    schema = tfdv.load_schema_text(load_config().schema_path)
    return schema_utils.schema_as_feature_spec(schema).feature_spec


def _value(text: str, dtype):
    if dtype == tf.string:
        return text.encode()
    return float(text) if dtype == tf.float32 else int(float(text))


def to_instance(row: dict, spec: dict) -> dict:
    """A CSV row as tf.Transform's instance dict (empty cells as [] values)."""
    out = {}
    for name, feature in spec.items():
        text = row.get(name, "")
        if isinstance(feature, tf.io.VarLenFeature):
            out[name] = [_value(text, feature.dtype)] if text != "" else []
        else:
            value = _value(text, feature.dtype)
            out[name] = [value] if list(feature.shape) == [1] else value
    return out


def to_example(row: dict, spec: dict, drop: tuple[str, ...] = ()) -> bytes:
    """A CSV row as a serialized tf.Example; empty cells and `drop` left out."""
    features = {}
    for name, feature in spec.items():
        text = row.get(name, "")
        if name in drop or text == "":
            continue
        value = _value(text, feature.dtype)
        if feature.dtype == tf.string:
            features[name] = tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))
        elif feature.dtype == tf.float32:
            features[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
        else:
            features[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def transform_rows(rows: list[dict], spec: ModelInputs, workdir: str
                   ) -> tuple[tft.TFTransformOutput, dict, np.ndarray]:
    """preprocessing_fn over raw rows with tf.Transform's Beam implementation:
    the written transform output, the transformed features and the label."""
    raw_spec = raw_feature_spec()
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(raw_spec))
    out = os.path.join(workdir, "transform")
    with tft_beam.Context(temp_dir=os.path.join(workdir, "tmp")):
        (transformed, _), transform_fn = (
            [to_instance(r, raw_spec) for r in rows], metadata
        ) | tft_beam.AnalyzeAndTransformDataset(
            functools.partial(preprocessing_fn, custom_config=spec.to_custom_config()))
        _ = transform_fn | tft_beam.WriteTransformFn(out)
    metadata_io.write_metadata(metadata, os.path.join(out, tft.TFTransformOutput.RAW_METADATA_DIR))
    features = {k: np.array([t[k] for t in transformed]) for k in transformed[0]}
    label = features.pop(spec.label_key)
    return tft.TFTransformOutput(out), features, label
