"""Warm-up requests saved with each pushed version.

TF Serving replays `assets.extra/tf_serving_warmup_requests` (a TFRecord file
of `PredictionLog`s) when it loads a version, before it marks the version
available, so the first live request does not pay for graph initialisation.
The requests are what a client sends: a few real eval rows as serialized
tf.Examples, with the columns the schema keeps out of the SERVING
environment (the label) removed.
"""
from __future__ import annotations

import os
from typing import Iterable, Optional

WARMUP_DIR = "assets.extra"
WARMUP_FILE = "tf_serving_warmup_requests"
SERVING_ENVIRONMENT = "SERVING"
DEFAULT_SIGNATURE = "serving_default"


def warmup_path(model_dir: str) -> str:
    """<version>/assets.extra/tf_serving_warmup_requests, where TF Serving looks."""
    return os.path.join(model_dir, WARMUP_DIR, WARMUP_FILE)


def not_served(schema) -> set[str]:
    """Columns the schema says a serving request does not carry (e.g. the label)."""
    return {f.name for f in schema.feature
            if SERVING_ENVIRONMENT in f.not_in_environment}


def client_examples(serialized: Iterable[bytes], drop: set[str]) -> list[bytes]:
    """The examples without the columns a client does not send."""
    import tensorflow as tf
    out = []
    for raw in serialized:
        example = tf.train.Example.FromString(raw)
        for name in drop & set(example.features.feature):
            del example.features.feature[name]
        out.append(example.SerializeToString())
    return out


def signature_input(model_dir: str, signature: str = DEFAULT_SIGNATURE) -> str:
    """The one input key of a serving signature, read from saved_model.pb (no loading)."""
    from tensorflow.python.saved_model import loader_impl
    saved = loader_impl.parse_saved_model(model_dir)
    for meta_graph in saved.meta_graphs:
        if signature in meta_graph.signature_def:
            inputs = list(meta_graph.signature_def[signature].inputs)
            if len(inputs) != 1:
                raise ValueError(f"signature {signature!r} takes {inputs}, not one input")
            return inputs[0]
    raise ValueError(f"{model_dir} has no signature {signature!r}")


def requests(serialized: list[bytes], model_name: str, input_key: str,
             signature: str = DEFAULT_SIGNATURE) -> list:
    """One PredictionLog per example (batch of one), as TF Serving replays them."""
    import tensorflow as tf
    from tensorflow_serving.apis import model_pb2, predict_pb2, prediction_log_pb2
    logs = []
    for raw in serialized:
        request = predict_pb2.PredictRequest(
            model_spec=model_pb2.ModelSpec(name=model_name, signature_name=signature))
        request.inputs[input_key].CopyFrom(tf.make_tensor_proto([raw], dtype=tf.string))
        logs.append(prediction_log_pb2.PredictionLog(
            predict_log=prediction_log_pb2.PredictLog(request=request)))
    return logs


def write_warmup(model_dir: str, serialized: list[bytes], model_name: str,
                 schema=None, signature: str = DEFAULT_SIGNATURE) -> Optional[str]:
    """Writes the warm-up file into a (staged) version; returns its path, None without rows."""
    import tensorflow as tf
    if not serialized:
        return None
    drop = not_served(schema) if schema is not None else set()
    logs = requests(client_examples(serialized, drop), model_name,
                    signature_input(model_dir, signature), signature)
    path = warmup_path(model_dir)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with tf.io.TFRecordWriter(path) as writer:
        for log in logs:
            writer.write(log.SerializeToString())
    return path


def read_warmup(model_dir: str) -> list:
    """The PredictionLogs of a version's warm-up file."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2
    return [prediction_log_pb2.PredictionLog.FromString(r.numpy())
            for r in tf.data.TFRecordDataset(warmup_path(model_dir))]


def eval_examples(examples_uri: str, split: str = "eval", limit: int = 10) -> list[bytes]:
    """Up to `limit` serialized tf.Examples from one split of an ExampleGen output."""
    import tensorflow as tf
    files = sorted(tf.io.gfile.glob(os.path.join(examples_uri, f"Split-{split}", "*")))
    return [r.numpy() for r in
            tf.data.TFRecordDataset(files, compression_type="GZIP").take(limit)]


def stage(staging: str, examples: Optional[list], schema: Optional[list],
          custom_config: dict, limit: int = 10) -> Optional[str]:
    """At push time: warm-up requests from the eval rows, written into the staged version."""
    import json

    import tensorflow_data_validation as tfdv
    if not examples:
        return None
    splits = json.loads(examples[0].split_names or "[]")
    split = "eval" if "eval" in splits else (splits[0] if splits else "eval")
    loaded = (tfdv.load_schema_text(os.path.join(schema[0].uri, "schema.pbtxt"))
              if schema else None)
    name = custom_config.get("model_name") or os.path.basename(
        os.path.dirname(os.path.normpath(staging)))
    return write_warmup(staging, eval_examples(examples[0].uri, split, limit), name, loaded)
