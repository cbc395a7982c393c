"""CsvIngest's executor on small CSVs through the real Beam runner: missing-value
tokens become missing, numeric columns stay numeric, rows without a label are
dropped and counted or rejected, and a header-only file does not crash.

The columnar executor is checked against the per-row one it replaced
(tests/csv_ingest_rowwise.py: TFX's CsvExampleGen path plus the same two steps): the same
examples in the same splits, on the taxi CSV and on CSVs made of edge cases;
and its serialized examples are the bytes TFX hashes to split them."""
import collections
import glob
import os
import random
from importlib import resources

import numpy as np
import pyarrow as pa
import pytest
import tensorflow as tf
from tfx.components.example_gen.base_example_gen_executor import _PartitionFn
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import proto_utils
from tfx_bsl.coders import example_coder
from tfx_bsl.coders.csv_decoder import ColumnType, _InferValueType

from components.csv_ingest import arrow_csv, columnar, tfrecord_gzip
from components.csv_ingest.columnar import splitter
from components.csv_ingest.component import CsvIngest, custom_config
from components.csv_ingest.example_bytes import Column, as_bytes, serialize
from components.csv_ingest.executor import DROPPED_PROPERTY, Executor, settings
from components.data_gate.component import DataRejectedError
from pipeline.local.beam_mode import with_code_in_place  # else TFX packages itself per run
from tests.csv_ingest_rowwise import RowwiseExecutor, mark_missing

CSV = """bill,island,species
39.1,Biscoe,Adelie
NA,Dream,Gentoo
40.3,?,Adelie
41.0,Dream,
38.2,Biscoe,NA
44.5,Dream,Gentoo
"""

TRAIN_EVAL = (("train", 2), ("eval", 1))


def execute(executor_class, tmp_path, data, *, name="out", splits=(("train", 1),),
            input_splits=(("single_split", "*.csv"),), na_values=("NA", "?"),
            label="species", missing="drop", partition_feature=None):
    """Runs an executor on the CSVs in `data`; the artifact and each split's records."""
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / name / "examples")
    split_config = example_gen_pb2.SplitConfig(splits=[
        example_gen_pb2.SplitConfig.Split(name=n, hash_buckets=b) for n, b in splits])
    if partition_feature:
        split_config.partition_feature_name = partition_feature
    props = {
        "input_base": str(data),
        "input_config": proto_utils.proto_to_json(example_gen_pb2.Input(splits=[
            example_gen_pb2.Input.Split(name=n, pattern=p) for n, p in input_splits])),
        "output_config": proto_utils.proto_to_json(example_gen_pb2.Output(
            split_config=split_config if splits else None)),
        "custom_config": proto_utils.proto_to_json(
            custom_config(list(na_values), label, missing)),
        "output_data_format": example_gen_pb2.FORMAT_TF_EXAMPLE,
        "output_file_format": example_gen_pb2.FORMAT_TFRECORDS_GZIP,
    }
    executor = executor_class(BaseBeamExecutor.Context(
        tmp_dir=str(tmp_path / name / "tmp"), unique_id="1",
        beam_pipeline_args=with_code_in_place(["--runner=DirectRunner"])))
    executor.Do({}, {"examples": [examples]}, props)
    names = [n for n, _ in splits] or [n for n, _ in input_splits]
    found = {}
    for split in names:
        files = sorted(glob.glob(os.path.join(
            artifact_utils.get_split_uri([examples], split), "*")))
        found[split] = [r.numpy() for r in
                        tf.data.TFRecordDataset(files, compression_type="GZIP")]
    return examples, found


def run(tmp_path, text: str, na_values=("NA", "?"), missing: str = "drop"):
    data = tmp_path / "data"
    data.mkdir()
    (data / "rows.csv").write_text(text)
    examples, found = execute(Executor, tmp_path, data, na_values=na_values, missing=missing)
    return examples, [tf.train.Example.FromString(r) for r in found["train"]]


def canonical(record: bytes) -> bytes:
    return tf.train.Example.FromString(record).SerializeToString(deterministic=True)


def assert_same_as_rowwise(tmp_path, data, executor_class=Executor, **kwargs):
    """The columnar executor writes the per-row one's examples to the same splits, as
    the bytes TFX hashes (deterministic serialization); returns its records."""
    old, old_splits = execute(RowwiseExecutor, tmp_path, data, name="rowwise", **kwargs)
    new, new_splits = execute(executor_class, tmp_path, data, name="columnar", **kwargs)
    assert old_splits.keys() == new_splits.keys()
    for split, records in new_splits.items():
        assert [canonical(r) for r in records] == records
        assert collections.Counter(records) == collections.Counter(
            canonical(r) for r in old_splits[split]), split
    assert (new.get_int_custom_property(DROPPED_PROPERTY)
            == old.get_int_custom_property(DROPPED_PROPERTY))
    assert new.split_names == old.split_names
    return new, new_splits


class SmallBlocks(Executor):
    """Blocks of 64 KiB, so that a small CSV is read in many."""
    block_size = 64 << 10


def test_tokens_are_missing_and_rows_without_label_dropped(tmp_path):
    examples, rows = run(tmp_path, CSV)
    assert len(rows) == 4  # the empty label and the "NA" label are left out
    assert examples.get_int_custom_property(DROPPED_PROPERTY) == 2
    bills = [list(e.features.feature["bill"].float_list.value) for e in rows]
    # A number column with "NA" stays a float column; the "NA" is no value.
    assert sorted(b[0] for b in bills if b) == pytest.approx([39.1, 40.3, 44.5])
    assert sum(not b for b in bills) == 1
    assert all(not e.features.feature["bill"].bytes_list.value for e in rows)
    islands = sorted(b"".join(e.features.feature["island"].bytes_list.value) for e in rows)
    assert islands == [b"", b"Biscoe", b"Dream", b"Dream"]  # "?" became missing


def test_without_na_values_the_column_is_strings(tmp_path):
    _, rows = run(tmp_path, CSV, na_values=())
    assert any(e.features.feature["bill"].bytes_list.value == [b"NA"] for e in rows)


def test_reject_names_the_label_and_the_count(tmp_path):
    with pytest.raises(DataRejectedError) as e:
        run(tmp_path, CSV, missing="reject")
    [(_, feature, text)] = e.value.problems
    assert feature == "species" and text.startswith("2 rows have no label")


def test_header_only_csv_gives_no_examples(tmp_path):
    examples, rows = run(tmp_path, "bill,island,species\n")
    assert rows == [] and examples.get_int_custom_property(DROPPED_PROPERTY) == 0


def test_mark_missing_and_settings_round_trip():
    assert mark_missing([b"NA", b" ? ", b"1.5", b""], frozenset({b"NA", b"?"})) == [
        b"", b"", b"1.5", b""]
    component = CsvIngest(input_base="/data", na_values=["NA"], label_column="y",
                          label_missing="reject")
    props = {"custom_config": component.exec_properties["custom_config"]}
    assert settings(props) == {"na_values": ["NA"], "label_column": "y",
                               "label_missing": "reject"}
    with pytest.raises(ValueError, match="label_missing"):
        CsvIngest(input_base="/data", label_missing="keep")


def taxi_rows(n: int) -> str:
    source = resources.files("tfx") / "examples/chicago_taxi_pipeline/data/simple/data.csv"
    with source.open() as f:
        return "".join(line for _, line in zip(range(n + 1), f))


def test_taxi_csv_same_examples_and_splits_as_rowwise(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "data.csv").write_text(taxi_rows(3000))
    _, found = assert_same_as_rowwise(tmp_path, data, SmallBlocks, splits=TRAIN_EVAL,
                                      na_values=(), label="tips")
    assert sum(map(len, found.values())) == 3000
    assert 0.6 < len(found["train"]) / 3000 < 0.73  # 2 of 3 hash buckets


EDGES = '''id,mixed,padded,big,floats,date,flag,text,nothing,na_num,species
1,1,  7,9223372036854775807,1e3,2024-01-05,true,"Smith, John",,NA,Adelie
2,2,1_000,1,NaN,2024-01-06,false,"say ""hi""",,3,Gentoo
3,2.5,+3,-9223372036854775808,-inf,2024-02-01,TRUE,"two
lines",,?,Adelie

4,4,-0,4,.5,2024-03-01,false,café,,4.5,
5,5,007,2,5.,2024-03-02,true,null,,,NA
6,6,8,3,1_0.5,2024-03-03,true,N/A,, ? , ?
7,7,9,9223372036854775808, 2.25 ,2024-03-04,false,,,7,Chinstrap
8,8,10,5,3.4028236e38,2024-03-05,false,"",,8,Gentoo
'''


def test_edge_cases_same_as_rowwise(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "edges.csv").write_text(EDGES)
    new, found = assert_same_as_rowwise(tmp_path, data, splits=TRAIN_EVAL)
    assert new.get_int_custom_property(DROPPED_PROPERTY) == 3  # "", "NA", " ?"
    rows = [tf.train.Example.FromString(r).features.feature for s in found.values() for r in s]
    kinds = {name: rows[0][name].WhichOneof("kind") for name in rows[0]}
    assert kinds == {"id": "int64_list", "mixed": "float_list", "padded": "int64_list",
                     "big": "bytes_list", "floats": "float_list", "date": "bytes_list",
                     "flag": "bytes_list", "text": "bytes_list", "nothing": None,
                     "na_num": "int64_list", "species": "bytes_list"}  # 4.5: a dropped row
    text = sorted(v for f in rows for v in f["text"].bytes_list.value)
    assert text == [b"Smith, John", b'say "hi"', b"two\nlines"]


def test_several_files_types_over_all_of_them(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("x,when,species\n1,2024-01-01,A\n2,2024-01-02,B\n")
    (data / "b.csv").write_bytes(b'x,when,species\r\n3.5,7,A\r\n4,"8\r\n9",\r\n')
    (data / "c.csv").write_text("x,when,species\n")
    new, found = assert_same_as_rowwise(tmp_path, data)
    xs = sorted(tf.train.Example.FromString(r).features.feature["x"].float_list.value[0]
                for r in found["train"])
    assert xs == [1.0, 2.0, 3.5]  # a FLOAT column though a.csv alone is all ints
    assert new.get_int_custom_property(DROPPED_PROPERTY) == 1
    assert len(glob.glob(str(tmp_path / "columnar/examples/Split-train/*.gz"))) == 3


def test_a_large_file_is_written_in_shards_of_the_same_examples(tmp_path, monkeypatch):
    # Shards are what lets Beam's multi-processing runner share the reading steps
    # out; a file over SHARD_BYTES is dealt to several, each split in each shard.
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text(taxi_rows(3000))
    (data / "b.csv").write_text(taxi_rows(10))
    size = (data / "a.csv").stat().st_size
    monkeypatch.setattr(columnar, "_RECORDS_AT_ONCE", 400)
    _, whole = execute(Executor, tmp_path, data, name="whole", splits=TRAIN_EVAL)
    monkeypatch.setattr(columnar, "SHARD_BYTES", size // 3 + 1)
    assert [columnar.shard_count(n) for n in (0, size // 3, size, 100 * size)] == [
        1, 1, 3, columnar.MAX_SHARDS]
    _, sharded = execute(Executor, tmp_path, data, name="sharded", splits=TRAIN_EVAL)
    for split, records in sharded.items():
        assert collections.Counter(records) == collections.Counter(whole[split])
        files = sorted(os.path.basename(f) for f in glob.glob(
            str(tmp_path / f"sharded/examples/Split-{split}/*.gz")))
        assert files == [f"data_tfrecord-0000{i}-of-00004.gz" for i in range(4)]
        sizes = [sum(1 for _ in tf.data.TFRecordDataset(
            str(tmp_path / f"sharded/examples/Split-{split}" / f), compression_type="GZIP"))
            for f in files]
        assert min(sizes[:3]) > 0 and sizes[3] <= 10  # b.csv: its one shard
    assert execute(Executor, tmp_path, data, name="again", splits=TRAIN_EVAL)[1] == sharded


def test_input_splits_and_partition_feature_same_as_rowwise(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    rows = [f"{i},{i % 7},{'NA' if i % 5 == 0 else i / 4}\n" for i in range(200)]
    (data / "train.csv").write_text("id,group,species\n" + "".join(rows))
    (data / "eval.csv").write_text("id,group,species\n" + "".join(rows[:50]))
    by_input = dict(splits=(), input_splits=(("train", "train.csv"), ("eval", "eval.csv")))
    _, found = assert_same_as_rowwise(tmp_path, data, **by_input)
    assert [len(found["train"]), len(found["eval"])] == [160, 40]
    # Rows are shuffled (within a block), with a fixed seed: a second run writes them
    # in the same order.
    ids = [tf.train.Example.FromString(r).features.feature["id"].int64_list.value[0]
           for r in found["train"]]
    assert sorted(ids) == [i for i in range(200) if i % 5] and ids != sorted(ids)
    assert execute(Executor, tmp_path, data, name="again", **by_input)[1] == found
    _, found = assert_same_as_rowwise(tmp_path / "by_group", data, splits=TRAIN_EVAL,
                                      input_splits=(("all", "train.csv"),),
                                      partition_feature="group")
    groups = {s: {tf.train.Example.FromString(r).features.feature["group"].int64_list.value[0]
                  for r in records} for s, records in found.items()}
    assert groups["train"] and groups["eval"] and not groups["train"] & groups["eval"]


def test_errors_name_the_file(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "a.csv").write_text("x,species\n1,A\n")
    (data / "b.csv").write_text("x,label\n2,B\n")
    with pytest.raises(RuntimeError, match="b.csv: its header"):
        execute(Executor, tmp_path, data)
    (data / "b.csv").write_text("x,species\n2,B,3\n")
    with pytest.raises(Exception, match="b.csv"):
        execute(Executor, tmp_path, data, name="again")


LITERALS = ["0", "-0", "007", "+5", " 5", "5\t", "\x0b5\x0c", "1_000", "1__0", "_1", "1_",
            "9223372036854775807", "9223372036854775808", "-9223372036854775808",
            "-9223372036854775809", "1" * 5000, "1.5", "1.", ".5", ".", "1e5", "1E-5",
            "1e+05", "1e", "e5", "1_0.5_5", "1e1_0", "1._5", "nan", "NaN", "-nan", "+nan",
            "inf", "-Infinity", "INF", "infinit", "nan(1)", "0x10", "1,5", "1 5", "true",
            "\u0663", "1" * 400 + ".5", "3.4028236e38", "1e-46", "0.1" + "0" * 30 + "1"]


def literals(seed: int, count: int) -> list[str]:
    rnd = random.Random(seed)
    alphabet = "0123456789" * 3 + "_+-. eEinfaINFx\t"
    return LITERALS + ["".join(rnd.choice(alphabet) for _ in range(rnd.randint(1, 7)))
                       for _ in range(count)]


def test_cell_types_and_numbers_are_python_s():
    cells = literals(0, 20000)
    python_types = [_InferValueType(c.encode()) for c in cells]
    for cell, expected in zip(cells, python_types):
        assert arrow_csv.value_type(pa.array([cell])) == expected, repr(cell)
    ints = [c for c, t in zip(cells, python_types) if t == ColumnType.INT]
    numbers = [c for c, t in zip(cells, python_types) if t <= ColumnType.FLOAT]
    assert arrow_csv.value_type(pa.array(ints)) == ColumnType.INT
    assert arrow_csv.value_type(pa.array(numbers)) == ColumnType.FLOAT
    assert arrow_csv.to_int64(pa.array(ints)).tolist() == [int(c) for c in ints]
    floats = arrow_csv.to_float32(pa.array(numbers))
    with np.errstate(over="ignore"):
        expected = np.array([float(c) for c in numbers]).astype(np.float32)
    assert floats.view(np.uint32).tolist() == expected.view(np.uint32).tolist()
    assert len(ints) > 1000 and len(numbers) > len(ints) + 500


def test_missing_cells_are_empty_or_stripped_tokens():
    cells = pa.array(["", " ", "NA", " NA\t", "NA?", "?", "x"])
    assert arrow_csv.missing(cells, pa.array(["NA", "?"])).to_pylist() == [
        True, False, True, True, False, True, False]
    assert arrow_csv.missing(cells, None).to_pylist() == [True] + [False] * 6


def python_example(columns, row: int) -> tf.train.Example:
    feature = {}
    for c in columns:
        gap = c.missing is not None and c.missing[row]
        if c.kind == ColumnType.INT:
            feature[c.name] = tf.train.Feature(int64_list=tf.train.Int64List(
                value=[] if gap else [int(c.values[row])]))
        elif c.kind == ColumnType.FLOAT:
            feature[c.name] = tf.train.Feature(float_list=tf.train.FloatList(
                value=[] if gap else [float(c.values[row])]))
        elif c.kind == ColumnType.STRING:
            feature[c.name] = tf.train.Feature(bytes_list=tf.train.BytesList(
                value=[] if gap else [c.values[row].as_py().encode()]))
        else:
            feature[c.name] = tf.train.Feature()
    return tf.train.Example(features=tf.train.Features(feature=feature))


def test_serialized_bytes_are_the_deterministic_serialization():
    rnd = random.Random(1)
    n = 3000
    gaps = [np.array([rnd.random() < 0.2 for _ in range(n)]) for _ in range(4)]
    text = ["".join(rnd.choice("ab,é\n\"") for _ in range(rnd.choice([0, 1, 5, 130])))
            for _ in range(n)]
    columns = [
        Column("zeta", ColumnType.INT, np.array([rnd.choice(
            [0, -1, 127, 128, 2**40, -2**63, 2**63 - 1, rnd.randint(-10**6, 10**6)])
            for _ in range(n)], np.int64), gaps[0]),
        Column("alpha", ColumnType.FLOAT, np.array([rnd.choice(
            [0.0, -0.0, 1.5, float("nan"), float("-inf"), rnd.random()]) for _ in range(n)],
            np.float32), gaps[1]),
        Column("é", ColumnType.STRING, pa.array(text), gaps[2]),
        Column("Zed", ColumnType.STRING, pa.array([t[:100] for t in text]), gaps[3]),
        Column("k" * 200, ColumnType.INT, np.arange(n), None),
        Column("", ColumnType.UNKNOWN)]
    order = np.random.default_rng(0).permutation(n)
    records = serialize(columns, n, order).to_pylist()
    for i, row in enumerate(order):
        assert records[i] == python_example(columns, row).SerializeToString(
            deterministic=True), i
    # tfx_bsl's encoder makes the same examples, its map in another order: not hashable as is.
    batch = pa.RecordBatch.from_arrays([
        pa.array([[] if g else [v] for v, g in zip(values, gaps[k])], pa.large_list(t))
        for k, (values, t) in enumerate([
            (columns[0].values.tolist(), pa.int64()), (columns[1].values.tolist(), pa.float32()),
            ([t.encode() for t in text], pa.large_binary())])], ["zeta", "alpha", "é"])
    encoded = example_coder.RecordBatchToExamplesEncoder().encode(batch)
    ours = serialize(columns[:3], n).to_pylist()
    assert [canonical(e) for e in encoded] == ours
    assert sum(e != o for e, o in zip(encoded, ours)) > n / 2


def test_split_of_a_record_is_tfx_s():
    config = example_gen_pb2.SplitConfig(splits=[
        example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=7),
        example_gen_pb2.SplitConfig.Split(name="eval", hash_buckets=3),
        example_gen_pb2.SplitConfig.Split(name="test", hash_buckets=2)])
    column = Column("a", ColumnType.INT, np.arange(3000) * 7919)
    records = serialize([column], 3000).to_pylist()
    ours = splitter([7, 10, 12], config)(records).tolist()
    assert ours == [_PartitionFn(python_example([column], i), 3, [7, 10, 12], config)
                    for i in range(3000)]
    assert set(ours) == {0, 1, 2}
    config.partition_feature_name = "a"
    assert splitter([7, 10, 12], config)(records[:300]).tolist() == [
        _PartitionFn(python_example([column], i), 3, [7, 10, 12], config) for i in range(300)]


def test_gzipped_tfrecords_read_back_by_tensorflow(tmp_path):
    rnd = random.Random(2)
    records = [rnd.randbytes(rnd.choice([0, 1, 300, 70000])) for _ in range(300)]
    writer = tfrecord_gzip.Writer(str(tmp_path / "a.gz"))
    for start in range(0, 300, 128):
        batch = records[start:start + 128]
        writer.write(pa.array(batch, pa.binary()),
                     np.array([tfrecord_gzip.crc32c(r) for r in batch], np.uint32))
    writer.close()
    tfrecord_gzip.Writer(str(tmp_path / "empty.gz")).close()
    read = [r.numpy() for r in tf.data.TFRecordDataset(  # checks both CRCs of each record
        [str(tmp_path / "a.gz"), str(tmp_path / "empty.gz")], compression_type="GZIP")]
    assert read == records


def test_records_as_python_bytes():
    records = pa.array([b"a", b"", b"bcd", b"e" * 1000, b""], pa.large_binary())
    for part in [records, records.slice(2, 3), records.slice(1, 1), records.slice(5, 0)]:
        assert as_bytes(part) == part.to_pylist()
