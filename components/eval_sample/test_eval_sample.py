"""EvalSample keeps small slices whole, samples large ones with weights that
stand for the whole split, and keeps everything when no slice is large."""
import os

import pytest
import tensorflow as tf

from components.eval_sample.component import sample_split

WEIGHT = "eval_sample_weight"


def example(kind: str, i: int) -> bytes:
    e = tf.train.Example()
    e.features.feature["kind"].bytes_list.value.append(kind.encode())
    e.features.feature["i"].int64_list.value.append(i)
    return e.SerializeToString()


@pytest.fixture
def split(tmp_path):
    records = [example("a", i) for i in range(2800)] + [example("b", i) for i in range(200)]
    os.makedirs(tmp_path / "in" / "Split-eval")
    with tf.io.TFRecordWriter(str(tmp_path / "in" / "Split-eval" / "data.gz"),
                              tf.io.TFRecordOptions(compression_type="GZIP")) as w:
        for r in records:
            w.write(r)
    return tmp_path, records


def read(path):
    files = tf.io.gfile.glob(os.path.join(path, "Split-eval", "*"))
    out = []
    for r in tf.data.TFRecordDataset(files, compression_type="GZIP").as_numpy_iterator():
        f = tf.train.Example.FromString(r).features.feature
        out.append((f["kind"].bytes_list.value[0].decode(), f["i"].int64_list.value[0],
                    f[WEIGHT].float_list.value[0], r))
    return out


def test_large_slices_are_sampled_and_weighted_small_ones_kept(split):
    tmp, records = split
    total, kept = sample_split(str(tmp / "in"), str(tmp / "out"), "eval", [["kind"]], 500, WEIGHT)
    rows = read(str(tmp / "out"))
    assert total == 3000 and kept == len(rows)
    small = [r for r in rows if r[0] == "b"]
    large = [r for r in rows if r[0] == "a"]
    assert len(small) == 200 and {w for _, _, w, _ in small} == {1.0}
    assert 400 < len(large) < 600  # about 500 of 2800
    assert abs(sum(w for _, _, w, _ in large) - 2800) < 0.15 * 2800
    # The kept examples are the originals, with the weight feature added.
    assert all(r[3].startswith(records[r[1] + (2800 if r[0] == "b" else 0)]) for r in rows)
    again = sample_split(str(tmp / "in"), str(tmp / "again"), "eval", [["kind"]], 500, WEIGHT)
    assert again == (total, kept) and [r[:2] for r in read(str(tmp / "again"))] == \
        [r[:2] for r in rows]


def test_nothing_is_dropped_while_no_slice_is_large(split):
    tmp, _ = split
    total, kept = sample_split(str(tmp / "in"), str(tmp / "out"), "eval", [["kind"]], 5000, WEIGHT)
    rows = read(str(tmp / "out"))
    assert total == kept == len(rows) == 3000
    assert {w for _, _, w, _ in rows} == {1.0}


def test_identical_rows_are_drawn_each_on_its_own(tmp_path):
    # 100 copies of each of 30 rows: a draw per distinct row would keep whole
    # groups of 100, and the weighted count would miss the split's by far more.
    records = [example("a", i) for i in range(30) for _ in range(100)]
    os.makedirs(tmp_path / "in" / "Split-eval")
    with tf.io.TFRecordWriter(str(tmp_path / "in" / "Split-eval" / "data.gz"),
                              tf.io.TFRecordOptions(compression_type="GZIP")) as w:
        for r in records:
            w.write(r)
    sample_split(str(tmp_path / "in"), str(tmp_path / "out"), "eval", [["kind"]], 1500, WEIGHT)
    rows = read(str(tmp_path / "out"))
    per_row = {i: sum(1 for r in rows if r[1] == i) for i in range(30)}
    assert all(20 <= n <= 80 for n in per_row.values())  # about half of each row's 100
    assert abs(sum(r[2] for r in rows) - 3000) < 0.1 * 3000
