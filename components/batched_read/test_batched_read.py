"""Batched reading gives TFX's executors the RecordBatches tfx_bsl's own reader gives."""
from __future__ import annotations

import logging

import apache_beam as beam
import pyarrow as pa
import pytest
import tensorflow as tf
from apache_beam.options.pipeline_options import PipelineOptions
from tensorflow_metadata.proto.v0 import schema_pb2
from tfx.components.util import tfxio_utils
from tfx.proto import example_gen_pb2
from tfx_bsl.tfxio import tf_example_record

from components.batched_read import tfxio
from components.batched_read.executors import (
    EvaluatorExecutor,
    StatisticsGenExecutor,
    TransformExecutor,
)

RAW = "__raw_record__"


def example(i: int) -> bytes:
    """Ints, floats and strings, each missing in some rows."""
    features = {"n": tf.train.Feature(int64_list=tf.train.Int64List(value=[i]))}
    if i % 3:
        features["x"] = tf.train.Feature(float_list=tf.train.FloatList(value=[i / 7]))
    if i % 4:
        features["s"] = tf.train.Feature(bytes_list=tf.train.BytesList(
            value=[f"v{i % 5}".encode()]))
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> str:
    """Three gzip shards of 700 examples (one empty), as ExampleGen writes a split."""
    root = tmp_path_factory.mktemp("split")
    options = tf.io.TFRecordOptions(compression_type="GZIP")
    for shard, rows in enumerate([range(0, 400), range(400, 700), range(0)]):
        with tf.io.TFRecordWriter(str(root / f"data_tfrecord-{shard:05d}-of-00003.gz"),
                                  options) as w:
            for i in rows:
                w.write(example(i))
    return str(root / "*")


SCHEMA = schema_pb2.Schema(feature=[
    schema_pb2.Feature(name="n", type=schema_pb2.INT),
    schema_pb2.Feature(name="x", type=schema_pb2.FLOAT),
    schema_pb2.Feature(name="s", type=schema_pb2.BYTES)])


def rows(batches: list[pa.RecordBatch]) -> list[dict]:
    """Every row of the batches as a dict of its present columns, ordered by `n` (readers
    may order files apart; without a schema each batch has the columns it saw)."""
    found = [{k: v for k, v in row.items() if v is not None}
             for batch in batches for row in batch.to_pylist()]
    return sorted(found, key=lambda r: r["n"])


# What a pipeline's last step saw: Beam pickles the steps it runs, so a list in
# a closure would be a copy; a module's global is the same object in this process.
_SEEN: list[pa.RecordBatch] = []


def _keep(batch: pa.RecordBatch) -> None:
    _SEEN.append(batch)


def read(source, batch_size=None) -> list[pa.RecordBatch]:
    """The batches a TFXIO's BeamSource yields, run by Beam's in-memory runner."""
    _SEEN.clear()
    with beam.Pipeline(options=PipelineOptions(["--direct_running_mode=in_memory"])) as p:
        _ = p | source.BeamSource(batch_size) | beam.Map(_keep)
    found = list(_SEEN)
    _SEEN.clear()
    return found


@pytest.mark.parametrize("schema, raw", [(None, None), (SCHEMA, RAW)],
                         ids=["inferred", "schema and raw records"])
def test_the_same_rows_types_and_raw_records_as_tfx_bsl(files, schema, raw):
    theirs = tf_example_record.TFExampleRecord(files, schema=schema,
                                               raw_record_column_name=raw)
    ours = tfxio.BatchedTFExampleRecord.like(theirs)
    got, want = read(ours, batch_size=128), read(theirs)
    assert len(rows(got)) == 700 and rows(got) == rows(want)
    if schema is not None:
        assert {b.schema for b in got} == {b.schema for b in want}
        assert ours.ArrowSchema() == theirs.ArrowSchema()
    # A file is read a batch at a time: no batch larger than asked, none across files.
    assert max(b.num_rows for b in got) == 128 and len(got) == 4 + 3
    if raw:  # each row carries its own record (compared parsed: map order may vary)
        for row in rows(got):
            assert tf.train.Example.FromString(row[RAW][0]) == \
                tf.train.Example.FromString(example(row["n"][0]))


def test_the_default_batch_is_large_and_a_projection_stays_batched(files):
    ours = tfxio.BatchedTFExampleRecord(files, schema=SCHEMA)
    assert {b.num_rows for b in read(ours)} == {400, 300}  # DEFAULT_BATCH_SIZE > a file
    projected = ours.Project(["n", "s"])
    assert isinstance(projected.projected, tfxio.BatchedTFExampleRecord)
    assert rows(read(projected)) == rows(read(
        tf_example_record.TFExampleRecord(files, schema=SCHEMA).Project(["n", "s"])))
    assert set().union(*rows(read(projected))) == {"n", "s"}


def make_examples_tfxio(files: str):
    return tfxio_utils.make_tfxio(
        file_pattern=files, telemetry_descriptors=["test"],
        payload_format=example_gen_pb2.PayloadFormat.FORMAT_TF_EXAMPLE)


def test_tfx_builds_batched_readers_only_while_an_executor_runs(files):
    assert type(make_examples_tfxio(files)) is tf_example_record.TFExampleRecord
    with tfxio.reading_in_batches():
        assert type(make_examples_tfxio(files)) is tfxio.BatchedTFExampleRecord
    assert type(make_examples_tfxio(files)) is tf_example_record.TFExampleRecord
    with pytest.raises(RuntimeError), tfxio.reading_in_batches():
        raise RuntimeError("an executor failed")
    assert tfxio_utils.make_tfxio.__module__ == tfxio_utils.__name__


def test_another_format_is_read_by_tfx_and_the_log_says_so(files, caplog):
    with caplog.at_level(logging.INFO, logger=tfxio.__name__), tfxio.reading_in_batches():
        found = tfxio_utils.make_tfxio(
            file_pattern=files, telemetry_descriptors=["test"],
            payload_format=example_gen_pb2.PayloadFormat.FORMAT_TF_SEQUENCE_EXAMPLE)
    assert not isinstance(found, tfxio.BatchedTFExampleRecord)
    assert "read by TFX's own reader" in caplog.text


def test_the_pipeline_gives_the_scanning_steps_these_executors():
    from pipeline.config import load_config
    from pipeline.pipeline import create_pipeline

    nodes = {n.id: n for n in create_pipeline(load_config(), pipeline_root="/nonexistent/root",
                                               serving_dir="/nonexistent/serving").components}
    assert nodes["StatisticsGen"].executor_spec.executor_class is StatisticsGenExecutor
    assert nodes["Transform"].executor_spec.executor_class is TransformExecutor
    assert nodes["Evaluator"].executor_spec.executor_class is EvaluatorExecutor
    # Still Beam executors: the run's Beam arguments reach them.
    assert nodes["Transform"].executor_spec.beam_pipeline_args == \
        nodes["StatisticsGen"].executor_spec.beam_pipeline_args != []


def test_statisticsgen_computes_the_statistics_tfx_s_executor_computes(files, tmp_path):
    import glob
    import os

    import tensorflow_data_validation as tfdv
    from tfx.components.statistics_gen import executor as tfx_executor
    from tfx.types import artifact_utils, standard_artifacts

    split_dir = tmp_path / "examples" / "Split-train"
    split_dir.mkdir(parents=True)
    for f in glob.glob(files):
        os.symlink(f, split_dir / os.path.basename(f))
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    examples.split_names = artifact_utils.encode_split_names(["train"])
    found = {}
    for name, cls in (("tfx", tfx_executor.Executor), ("ours", StatisticsGenExecutor)):
        stats = standard_artifacts.ExampleStatistics()
        stats.uri = str(tmp_path / name)
        context = tfx_executor.base_beam_executor.BaseBeamExecutor.Context(
            beam_pipeline_args=["--direct_running_mode=in_memory"], tmp_dir=str(tmp_path))
        cls(context).Do({"examples": [examples]}, {"statistics": [stats]}, {})
        found[name] = tfdv.load_stats_binary(
            str(tmp_path / name / "Split-train" / "FeatureStats.pb")).datasets[0]
    assert found["ours"].num_examples == found["tfx"].num_examples == 700
    # Counts, missing values, top values and bounds are the same; sums may differ
    # in the last bits (another order of addition).
    for ours, theirs in zip(found["ours"].features, found["tfx"].features):
        assert ours.path == theirs.path
        ours_common = (ours.num_stats or ours.string_stats).common_stats
        theirs_common = (theirs.num_stats or theirs.string_stats).common_stats
        assert ours_common.num_non_missing == theirs_common.num_non_missing
        assert ours_common.num_missing == theirs_common.num_missing
        if ours.HasField("num_stats"):
            assert (ours.num_stats.min, ours.num_stats.max) == \
                (theirs.num_stats.min, theirs.num_stats.max)
            assert ours.num_stats.mean == pytest.approx(theirs.num_stats.mean, rel=1e-12)
        else:
            assert ours.string_stats.top_values == theirs.string_stats.top_values


def test_the_pinned_tfx_bsl_is_the_one_installed():
    from tfx_bsl import version
    # Bumping tfx_bsl: re-read the names tfxio.py lists, then its PINNED_VERSION.
    assert tfxio.PINNED_VERSION == version.__version__
