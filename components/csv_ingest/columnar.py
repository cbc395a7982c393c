"""The columnar ingestion of CsvIngest as a Beam transform: CSV files of one input split
to gzipped TFRecords of tf.Examples in the output splits, a block at a time.

Each input file is one Beam element, streamed twice in Arrow blocks
(arrow_csv.py): first to infer its column types (merged over the files of the
split, as CsvExampleGen infers them over all rows), then to type each block,
serialize its rows (example_bytes.py: the bytes TFX hashes), put each row in
its split by _PartitionFn's hash, and write it to that split's
`data_tfrecord-<shard>-of-<shards>.gz` (tfrecord_gzip.py), compressing in a
background thread.  Nothing is held beyond a few blocks per worker: no side
input of rows, no shuffle of the data set.

Shuffling: rows are shuffled within each block only (numpy, seeded by the
file's first shard and the block's number, so the output is deterministic); TFX's
WriteSplit shuffles the whole split, which needs all of it at once.

Parallelism is one worker per input file; files are not split into byte
ranges (quoted fields may span lines).  A file of more than SHARD_BYTES is
written to several shards per split (shard_count), its rows dealt out
_RECORDS_AT_ONCE at a time: each shard is a unit of work that Beam's
multi-processing runner hands to a worker in the steps that read the
examples (StatisticsGen, Transform, Evaluator); one file would keep them all
on one worker.  A file's outputs are written under a
temporary name and renamed when complete, so a retried element overwrites,
never duplicates.
"""
from __future__ import annotations

import bisect
import hashlib
import os
import uuid
from typing import Callable, Iterator, NamedTuple, Optional, Sequence

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow as tf
from tfx.components.example_gen import write_split
from tfx.components.example_gen.base_example_gen_executor import _PartitionFn
from tfx.dsl.io import fileio
from tfx.proto import example_gen_pb2
from tfx_bsl.coders.csv_decoder import ColumnType

from components.csv_ingest import arrow_csv, tfrecord_gzip
from components.csv_ingest.arrow_csv import typed
from components.csv_ingest.example_bytes import as_bytes, serialize

COUNT_PREFIX = "dropped-label-rows-"
_RECORDS_AT_ONCE = 16384  # serialized records turned into Python bytes at a time
SHARD_BYTES = 8 << 20  # CSV bytes per output shard: the 15k-row taxi CSV (2 MiB) is one
MAX_SHARDS = 16  # per input file: more cores than this are rare on one machine


def shard_count(size: int) -> int:
    """Output shards per split for an input file of `size` bytes."""
    return max(1, min(MAX_SHARDS, -(-size // SHARD_BYTES)))


class Plan(NamedTuple):
    """How to read the files of one input split (picklable, for the workers)."""
    columns: tuple[str, ...]
    na_values: tuple[str, ...] = ()
    label: Optional[str] = None
    block_size: int = arrow_csv.BLOCK_SIZE


def blocks(path: str, plan: Plan) -> Iterator[tuple[list[pa.Array], list[pa.Array], int]]:
    """Each block's text columns and missing-cell masks, rows without a label left out,
    and how many were."""
    na_values = pa.array(plan.na_values, pa.string()) if plan.na_values else None
    label = plan.columns.index(plan.label) if plan.label in plan.columns else None
    for batch in arrow_csv.read_batches(path, plan.columns, plan.block_size):
        values = list(batch.columns)
        gaps = [arrow_csv.missing(v, na_values) for v in values]
        dropped = 0
        if label is not None:
            dropped = pc.sum(gaps[label]).as_py() or 0
            if dropped:
                keep = pc.invert(gaps[label])
                values = [v.filter(keep) for v in values]
                gaps = [g.filter(keep) for g in gaps]
        yield values, gaps, dropped


class _InferTypes(beam.DoFn):
    """A file's column types, as ColumnTypeInferrer would give them."""

    def __init__(self, plan: Plan):
        self._plan = plan

    def process(self, path: str) -> Iterator[list[int]]:
        kinds = [ColumnType.UNKNOWN] * len(self._plan.columns)
        for values, gaps, _ in blocks(path, self._plan):
            for i, (column, gap) in enumerate(zip(values, gaps)):
                if kinds[i] != ColumnType.STRING:
                    present = column.filter(pc.invert(gap))
                    kinds[i] = max(kinds[i], arrow_csv.value_type(present))
        yield [int(k) for k in kinds]


class _MergeTypes(beam.CombineFn):
    """Column types over files: the widest (UNKNOWN < INT < FLOAT < STRING)."""

    def __init__(self, num_columns: int):
        self._n = num_columns

    def create_accumulator(self) -> list[int]:
        return [int(ColumnType.UNKNOWN)] * self._n

    def add_input(self, accumulator: list[int], kinds: list[int]) -> list[int]:
        return [max(a, k) for a, k in zip(accumulator, kinds)]

    def merge_accumulators(self, accumulators) -> list[int]:
        merged = self.create_accumulator()
        for accumulator in accumulators:
            merged = self.add_input(merged, accumulator)
        return merged

    def extract_output(self, accumulator: list[int]) -> list[int]:
        return accumulator


def splitter(buckets: Sequence[int],
             config: example_gen_pb2.SplitConfig) -> Callable[[list[bytes]], np.ndarray]:
    """The output split of each serialized example, as TFX's _PartitionFn assigns it.

    Hashing the bytes is _PartitionFn's own arithmetic written inline (it runs
    once a row); by a partition feature, _PartitionFn itself."""
    buckets = list(buckets)
    if len(buckets) == 1:
        return lambda records: np.zeros(len(records), np.int64)
    if config.HasField("partition_feature_name"):
        return lambda records: np.array([_PartitionFn(
            tf.train.Example.FromString(r), len(buckets), buckets, config) for r in records],
            np.int64)

    def split(records: list[bytes]) -> np.ndarray:
        sha256, total, find = hashlib.sha256, buckets[-1], bisect.bisect
        return np.array([find(buckets, int.from_bytes(sha256(r).digest(), "big") % total)
                         for r in records], np.int64)
    return split


class _WriteExamples(beam.DoFn):
    """Streams a file into its examples, written straight to their splits' files."""

    def __init__(self, plan: Plan, split_dirs: Sequence[str], buckets: Sequence[int],
                 split_config: example_gen_pb2.SplitConfig, work_dir: str, num_shards: int):
        self._plan = plan
        self._split_dirs = list(split_dirs)
        self._buckets = list(buckets)
        self._split_config = split_config
        self._work_dir = work_dir
        self._num_shards = num_shards
        self._tag = uuid.uuid4().hex

    def setup(self) -> None:
        self._split_of = splitter(self._buckets, self._split_config)

    def _write(self, records: pa.Array, shards: list[list[tfrecord_gzip.Writer]],
               dealt: int) -> int:
        """Each record to the writer of its split, in the shard whose turn it is;
        returns how many chunks have been dealt."""
        for start in range(0, len(records), _RECORDS_AT_ONCE):
            part = records.slice(start, _RECORDS_AT_ONCE)
            writers = shards[dealt % len(shards)]
            dealt += 1
            chunk = as_bytes(part)
            crcs = np.fromiter(map(tfrecord_gzip.crc32c, chunk), np.uint32, len(chunk))
            if len(writers) == 1:
                writers[0].write(part, crcs)
                continue
            splits = self._split_of(chunk)
            for split, writer in enumerate(writers):
                chosen = np.flatnonzero(splits == split)
                writer.write(part.take(pa.array(chosen)), crcs[chosen])
        return dealt

    def process(self, element: tuple[str, int, int], kinds: list[int]) -> Iterator[int]:
        path, first, count = element
        names = [f"{write_split.DEFAULT_TF_RECORD_FILE_NAME}-{first + shard:05d}-of-"
                 f"{self._num_shards:05d}.gz" for shard in range(count)]
        attempt = uuid.uuid4().hex
        temps = [[os.path.join(self._work_dir, f"{attempt}-{i}-{name}")
                  for i in range(len(self._split_dirs))] for name in names]
        shards = [[tfrecord_gzip.Writer(t) for t in shard] for shard in temps]
        dropped, dealt = 0, 0
        try:
            for number, (values, gaps, block_dropped) in enumerate(blocks(path, self._plan)):
                dropped += block_dropped
                rows = len(values[0]) if values else 0
                if not rows:
                    continue
                columns = [typed(*c) for c in zip(self._plan.columns,
                                                   map(ColumnType, kinds), values, gaps)]
                order = np.random.default_rng([first, number]).permutation(rows)
                dealt = self._write(serialize(columns, rows, order), shards, dealt)
        finally:
            for writer in (w for shard in shards for w in shard):
                writer.close()
        for name, shard in zip(names, temps):
            for temp, split_dir in zip(shard, self._split_dirs):
                fileio.rename(temp, os.path.join(split_dir, name), overwrite=True)
        counted = os.path.join(self._work_dir, f"{COUNT_PREFIX}{self._tag}-{first}")
        with fileio.open(counted, "w") as f:
            f.write(str(dropped))
        yield dropped


class CsvToSplits(beam.PTransform):
    """The CSV files of one input split, written as examples to the output splits."""

    def __init__(self, pattern: str, plan: Plan, split_dirs: Sequence[str],
                 buckets: Sequence[int], split_config: example_gen_pb2.SplitConfig,
                 work_dir: str):
        super().__init__()
        self._pattern, self._plan, self._work_dir = pattern, plan, work_dir
        self._split_dirs, self._buckets, self._split_config = split_dirs, buckets, split_config

    def expand(self, pipeline: beam.Pipeline) -> beam.PCollection:
        files = sorted(fileio.glob(self._pattern))
        if not files:
            raise RuntimeError(f"split pattern {self._pattern} does not match any files")
        columns = arrow_csv.read_header(files[0])
        for name in files[1:]:
            found = arrow_csv.read_header(name)
            if found != columns:
                raise RuntimeError(f"{name}: its header {found} differs from the header "
                                   f"{columns} of {files[0]} (files matching {self._pattern})")
        plan = self._plan._replace(columns=tuple(columns))
        kinds = (pipeline
                 | "TypeFiles" >> beam.Create(files)
                 | "InferTypes" >> beam.ParDo(_InferTypes(plan))
                 | "MergeTypes" >> beam.CombineGlobally(_MergeTypes(len(columns))))
        counts = [shard_count(tf.io.gfile.stat(name).length) for name in files]
        firsts = np.cumsum([0, *counts]).tolist()
        return (pipeline
                | "Files" >> beam.Create(list(zip(files, firsts, counts)))
                | "Write" >> beam.ParDo(
                    _WriteExamples(plan, self._split_dirs, self._buckets, self._split_config,
                                   self._work_dir, firsts[-1]),
                    beam.pvalue.AsSingleton(kinds)))


__all__ = ["CsvToSplits", "Plan", "COUNT_PREFIX", "SHARD_BYTES", "blocks",
           "shard_count", "splitter", "typed"]
