"""tf.Examples read a file at a time and decoded a batch at a time, for the steps
that scan every example (StatisticsGen, Transform, Evaluator).

TFX's executors read an Examples artifact through tfx_bsl's `TFExampleRecord`,
whose Beam source is Beam's `ReadFromTFRecord`: a Python loop per record
(the length, two CRCs, a buffered gzip read), after which each record travels
as its own Beam element through telemetry and `BatchElements` before its batch
is decoded. Profiled at 100x the taxi data (1.5M rows, in-memory runner), that
path was most of StatisticsGen's and Transform's time; TFDV's generators and
tf.Transform's analyzers were the rest.

`BatchedTFExampleRecord` is that TFXIO with another Beam source: TensorFlow's
C++ TFRecord reader reads each file, `batch_size` records at a time
(DEFAULT_BATCH_SIZE when not given), and tfx_bsl's decoder (the one TFX uses)
turns each batch into a RecordBatch: the same columns and types, the raw
records appended when the caller asks for them, with a few Python steps per
batch instead of per row. A file is the unit of work, as it is for Beam's
reader of gzip files, which cannot split one; CsvIngest writes large data in
shards. tfx_bsl's per-record telemetry counters are not kept.

`reading_in_batches()` has TFX's `make_tfxio` return this TFXIO wherever it
would return a plain `TFExampleRecord`, for the duration of an executor's `Do`
(components.batched_read.executors); any other format is read by TFX's own
reader, and the log says so.

This module relies on names tfx_bsl and TFX do not publish, checked when it
loads against the pinned versions (README, "Upgrading TFX").
"""
from __future__ import annotations

import contextlib
import functools
import logging
from typing import Any, Callable, Iterator, Optional

import apache_beam as beam
import pyarrow as pa
from tfx.components.util import tfxio_utils
from tfx_bsl import version as tfx_bsl_version
from tfx_bsl.coders import example_coder
from tfx_bsl.tfxio import record_based_tfxio, tf_example_record

log = logging.getLogger(__name__)

# The tfx_bsl these names were read from (requirements.lock pins it).
PINNED_VERSION = "1.16.1"
# Rows per RecordBatch when the caller names no size (TFX's three executors
# name none). TFMA pays per batch, so the Evaluator takes about half as long
# with 4096 rows as with 1000 (tfx_bsl's cap on the batches it sizes itself);
# StatisticsGen and Transform are indifferent (`make bench`, 100x).
DEFAULT_BATCH_SIZE = 4096


class TfxBslChanged(ImportError):
    """A private name of tfx_bsl or TFX is gone or has another shape."""


def _check() -> None:
    """TFExampleRecord keeps its file patterns and schema where this module reads
    them, projects through `_ProjectImpl`, and TFX builds TFXIOs with `make_tfxio`."""
    probe = tf_example_record.TFExampleRecord("probe-*", raw_record_column_name="raw")
    missing = [name for name in ("_file_pattern", "_schema", "_GetSchemaForDecoding",
                                 "_ProjectImpl") if not hasattr(probe, name)]
    if missing or probe._file_pattern != ["probe-*"] or not callable(
            getattr(tfxio_utils, "make_tfxio", None)):
        raise TfxBslChanged(
            f"tfx_bsl {tfx_bsl_version.__version__} installed: "
            f"{', '.join(missing) or 'TFExampleRecord._file_pattern or make_tfxio'} "
            f"not as components/batched_read/tfxio.py expects (written against tfx_bsl "
            f"{PINNED_VERSION}, requirements.lock): re-read the names it lists")


_check()


def _compression(path: str) -> str:
    return "GZIP" if path.endswith(".gz") else ""


def read_batches(path: str, batch_size: int) -> Iterator[list[bytes]]:
    """The serialized records of one TFRecord file (gzip by its name), in file
    order, `batch_size` at a time."""
    import tensorflow as tf
    records = tf.data.TFRecordDataset(path, compression_type=_compression(path))
    for batch in records.batch(batch_size).as_numpy_iterator():
        yield batch.tolist()


class _ReadAndDecode(beam.DoFn):
    """A file's records, a batch at a time, as RecordBatches (raw records appended
    under `raw_column` when given)."""

    def __init__(self, schema: Optional[bytes], raw_column: Optional[str], batch_size: int):
        self._schema = schema
        self._raw_column = raw_column
        self._batch_size = batch_size
        self._decoder: Any = None

    def setup(self) -> None:
        self._decoder = (example_coder.ExamplesToRecordBatchDecoder(self._schema)
                         if self._schema else example_coder.ExamplesToRecordBatchDecoder())

    def process(self, path: str) -> Iterator[pa.RecordBatch]:
        for records in read_batches(path, self._batch_size):
            decoded = self._decoder.DecodeBatch(records)
            yield (record_based_tfxio.AppendRawRecordColumn(decoded, self._raw_column, records)
                   if self._raw_column else decoded)


def _matched(pattern: str) -> list[str]:
    from apache_beam.io.filesystems import FileSystems
    return sorted(m.path for r in FileSystems.match([pattern]) for m in r.metadata_list)


class BatchedTFExampleRecord(tf_example_record.TFExampleRecord):
    """TFExampleRecord whose Beam source reads and decodes a batch at a time."""

    @classmethod
    def like(cls, other: tf_example_record.TFExampleRecord) -> "BatchedTFExampleRecord":
        return cls(file_pattern=list(other._file_pattern), schema=other._schema,
                   raw_record_column_name=other.raw_record_column_name,
                   telemetry_descriptors=other.telemetry_descriptors)

    def BeamSource(self, batch_size: Optional[int] = None) -> beam.PTransform:
        schema = self._GetSchemaForDecoding()
        read = _ReadAndDecode(schema.SerializeToString() if schema is not None else None,
                              self.raw_record_column_name, batch_size or DEFAULT_BATCH_SIZE)
        patterns = list(self._file_pattern)

        @beam.typehints.with_input_types(Any)
        @beam.typehints.with_output_types(pa.RecordBatch)
        def expand(pipeline_or_pcoll: Any) -> beam.PCollection:
            return (pipeline_or_pcoll
                    | "Patterns" >> beam.Create(patterns)
                    | "Files" >> beam.FlatMap(_matched)
                    # One file per worker at a time, wherever the runner has them.
                    | "Spread" >> beam.Reshuffle()
                    | "ReadAndDecode" >> beam.ParDo(read))

        return beam.ptransform_fn(expand)()

    def _ProjectImpl(self, tensor_names: list[str]) -> "BatchedTFExampleRecord":
        return BatchedTFExampleRecord.like(super()._ProjectImpl(tensor_names))


def batched(make_tfxio: Callable[..., Any]) -> Callable[..., Any]:
    """`make_tfxio` returning a BatchedTFExampleRecord where it returns a TFExampleRecord."""

    @functools.wraps(make_tfxio)
    def make(*args: Any, **kwargs: Any) -> Any:
        found = make_tfxio(*args, **kwargs)
        if type(found) is tf_example_record.TFExampleRecord:
            return BatchedTFExampleRecord.like(found)
        log.info("%s: read by TFX's own reader (batched reading covers tf.Examples in "
                 "TFRecord files)", type(found).__name__)
        return found

    return make


@contextlib.contextmanager
def reading_in_batches() -> Iterator[None]:
    """While open, TFX's executors build BatchedTFExampleRecords for tf.Example files."""
    original = tfxio_utils.make_tfxio
    tfxio_utils.make_tfxio = batched(original)
    try:
        yield
    finally:
        tfxio_utils.make_tfxio = original
