"""EvalSample: the eval split the Evaluator reads, sampled where a slice is large.

TFMA's cost is per example and per slice (each metric combines every example
of every slice it is in), so on a large eval split the Evaluator dominates a
run. Sampling each slice down to about `above` examples bounds that cost at
the price of a sampling error (a rate r measured on n examples of its class
is off by about sqrt(r(1-r)/n)), which is why the pipeline samples only when
the config sets `evaluation.sample_above`. Each example is kept with probability
    p = max over the slices it is in (overall included) of min(1, above / slice size)
and carries the weight 1/p in `weight_feature`, with which TFMA computes
every metric (Horvitz-Thompson): each slice's metrics estimate those of the
whole split, and a slice smaller than `above` keeps every one of its examples
(p = 1). While no slice is larger than `above` nothing is dropped and every
weight is 1, so the metrics are exactly those of the whole split.

Which examples are kept is a hash of each example's bytes and its position in
the split, so a re-run keeps the same ones, and identical rows (a resampled or
duplicated CSV) are kept or dropped each on its own, not all together: a hash
of the bytes alone made 100 copies of a row one draw, and the estimates' error
that of a sample a hundred times smaller. The sample's size and the split's
are custom properties of the output (`examples_in_split`, `examples_kept`),
which the run summary prints.
"""

import functools
import hashlib
import json
import os
from collections import Counter
from typing import Iterator

from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.types.standard_artifacts import Examples

IN_SPLIT = "examples_in_split"
KEPT = "examples_kept"
ABOVE = "sample_above"
# The custom properties of the output, in the order a reader takes them.
SAMPLE_PROPERTIES = (IN_SPLIT, KEPT, ABOVE)
_BATCH = 20_000


def _records(uri: str, split: str) -> Iterator[list[bytes]]:
    """Batches of the split's serialized examples."""
    import tensorflow as tf
    files = sorted(fileio.glob(os.path.join(uri, f"Split-{split}", "*")))
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").batch(_BATCH)
    for batch in dataset.as_numpy_iterator():
        yield list(batch)


def _slice_keys(batch: list[bytes], slices: list[list[str]]) -> list[list[tuple]]:
    """Per example, the key of each slice it is in (TFMA's: one value per feature)."""
    from tfx_bsl.coders import example_coder
    names = sorted({name for spec in slices for name in spec})
    table = example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(batch)
    columns = {}
    for name in names:
        index = table.schema.get_field_index(name)
        columns[name] = (table.column(index).to_pylist() if index >= 0
                         else [None] * len(batch))
    keys: list[list[tuple]] = []
    for row in range(len(batch)):
        mine: list[tuple] = [()]
        for spec in slices:
            values = [columns[name][row] for name in spec]
            if all(values):  # a missing feature puts the example in no slice of it
                mine.append(tuple((name, v[0]) for name, v in zip(spec, values)))
        keys.append(mine)
    return keys


def keep_probability(keys: list[tuple], sizes: Counter, above: int) -> float:
    return max(min(1.0, above / sizes[key]) for key in keys)


def _uniform(record: bytes, position: int) -> float:
    digest = hashlib.sha256(position.to_bytes(8, "big") + record).digest()
    return int.from_bytes(digest[:8], "big") / 2.0 ** 64


@functools.lru_cache(maxsize=4096)
def weight_entry(name: str, weight: float) -> bytes:
    """A serialized Features entry; appended to an Example's bytes it adds the feature
    (protobuf merges concatenated messages, and a map merges its entries)."""
    import tensorflow as tf
    example = tf.train.Example()
    example.features.feature[name].float_list.value.append(weight)
    return example.SerializeToString()


def sample_split(uri: str, out_uri: str, split: str, slices: list[list[str]], above: int,
                 weight_feature: str) -> tuple[int, int]:
    """Writes the sample of `split`; returns (examples in the split, examples kept)."""
    import tensorflow as tf
    sizes: Counter = Counter()
    for batch in _records(uri, split):
        for keys in _slice_keys(batch, slices):
            sizes.update(keys)
    total, kept, position = sizes[()], 0, 0
    out_dir = os.path.join(out_uri, f"Split-{split}")
    fileio.makedirs(out_dir)
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    with tf.io.TFRecordWriter(os.path.join(out_dir, "data_tfrecord-00000-of-00001.gz"),
                              options) as writer:
        for batch in _records(uri, split):
            for record, keys in zip(batch, _slice_keys(batch, slices)):
                p = keep_probability(keys, sizes, above)
                position += 1
                if p >= 1.0 or _uniform(record, position) < p:
                    writer.write(record + weight_entry(weight_feature, 1.0 / p))
                    kept += 1
    return total, kept


@component
def EvalSample(examples: InputArtifact[Examples], sample: OutputArtifact[Examples],
               slices: Parameter[str], above: Parameter[int], weight_feature: Parameter[str],
               split: Parameter[str] = "eval") -> None:
    spec: list[list[str]] = json.loads(slices)
    if split not in artifact_utils.decode_split_names(examples.split_names):
        raise RuntimeError(f"EvalSample: the examples have no {split!r} split")
    total, kept = sample_split(examples.uri, sample.uri, split, spec, above, weight_feature)
    sample.split_names = artifact_utils.encode_split_names([split])
    sample.set_int_custom_property(IN_SPLIT, total)
    sample.set_int_custom_property(KEPT, kept)
    sample.set_int_custom_property(ABOVE, above)

