"""The one CSV reader's dialect: files as R's write.csv and pandas write them
(quoted header and strings, a row-name column with no name, "NA" cells),
a UTF-8 BOM, CRLF line ends and gzip read like the plain file; a header or a
line it cannot read named by file, line and column."""
import csv
import gzip

import pandas as pd
import pytest
import tensorflow as tf

from components.csv_ingest import arrow_csv
from components.csv_ingest.executor import Executor
from components.csv_ingest.test_csv_ingest import execute

FRAME = pd.DataFrame({
    "carat": [0.23, 0.21, None, 0.29, 0.31, 0.24],
    "cut": ["Ideal", "Premium", "Good, very", 'say "ok"', None, "Ideal"],
    "price": [326, 326, 327, None, 335, 336],
    "species": ["A", "B", "A", "B", "A", "B"],
})


def r_style(path, frame=FRAME):
    """As R's write.csv writes it: row names in an unnamed first column, every
    string and name quoted, NA for missing."""
    frame.to_csv(path, index=True, quoting=csv.QUOTE_NONNUMERIC, na_rep="NA")
    return path


def plain(path, frame=FRAME):
    frame.to_csv(path, index=False, na_rep="")
    return path


def examples(tmp_path, name, writer, pattern="*.csv"):
    data = tmp_path / name
    data.mkdir()
    writer(data / "rows.csv")
    _, found = execute(Executor, tmp_path, data, name=name, label="species", na_values=("NA",),
                       input_splits=(("single_split", pattern),))
    return [dict(tf.train.Example.FromString(r).features.feature) for r in found["train"]]


def values(feature):
    kind = feature.WhichOneof("kind")
    return kind, list(getattr(feature, kind).value) if kind else []


def test_header_names_are_unquoted_and_an_unnamed_column_named(tmp_path):
    assert arrow_csv.read_header(str(r_style(tmp_path / "r.csv"))) == [
        "unnamed_1", "carat", "cut", "price", "species"]
    (tmp_path / "bom.csv").write_bytes(b'\xef\xbb\xbf"a b","c"\r\n1,2\r\n')
    assert arrow_csv.read_header(str(tmp_path / "bom.csv")) == ["a b", "c"]
    with gzip.open(tmp_path / "z.csv.gz", "wt") as f:
        f.write('"x","y,z"\n1,2\n')
    assert arrow_csv.read_header(str(tmp_path / "z.csv.gz")) == ["x", "y,z"]


def test_r_and_pandas_files_ingest_as_the_plain_file(tmp_path):
    ours = examples(tmp_path, "r", r_style)
    reference = examples(tmp_path, "plain", plain)
    assert len(ours) == len(reference) == 6
    key = lambda e: (values(e["price"]), values(e["cut"]))  # noqa: E731
    for got, want in zip(sorted(ours, key=key), sorted(reference, key=key)):
        assert {k: values(got[k]) for k in want} == {k: values(want[k]) for k in want}
        assert values(got["unnamed_1"])[0] == "int64_list"
    cuts = sorted(v for e in ours for v in values(e["cut"])[1])
    assert cuts == [b"Good, very", b"Ideal", b"Ideal", b"Premium", b'say "ok"']
    assert {values(e["carat"])[0] for e in ours} == {"float_list"}  # NA: missing, not text


def test_crlf_and_gzip_read_as_the_plain_file(tmp_path):
    reference = examples(tmp_path, "plain", plain)

    def crlf_gzip(path):
        text = FRAME.to_csv(index=False, lineterminator="\r\n", quoting=csv.QUOTE_ALL)
        with gzip.open(str(path) + ".gz", "wt", newline="") as f:
            f.write("\ufeff" + text)

    ours = examples(tmp_path, "gz", crlf_gzip, pattern="*.csv.gz")
    canonical = lambda found: sorted(  # noqa: E731
        str(sorted((k, values(v)) for k, v in e.items())) for e in found)
    assert canonical(ours) == canonical(reference)


def test_unreadable_header_and_lines_are_named(tmp_path):
    (tmp_path / "twice.csv").write_text("a,b,a\n1,2,3\n")
    with pytest.raises(arrow_csv.CsvFormatError,
                       match=r"twice.csv, line 1: column 3 repeats the name 'a' of column 1"):
        arrow_csv.read_header(str(tmp_path / "twice.csv"))
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(arrow_csv.CsvFormatError, match="empty.csv, line 1: no header"):
        arrow_csv.read_header(str(tmp_path / "empty.csv"))
    (tmp_path / "long.csv").write_text('a,b\n1,2\n"x\ny",3\n4,5,6\n')
    with pytest.raises(arrow_csv.CsvFormatError,
                       match=r"long.csv, line 5: 3 fields where the header has 2 "
                             r"\(extra fields after column 'b'\)"):
        list(arrow_csv.read_batches(str(tmp_path / "long.csv"), ["a", "b"]))
    (tmp_path / "short.csv").write_text("a,b,c\n1,2,3\n4\n")
    with pytest.raises(arrow_csv.CsvFormatError,
                       match=r"short.csv, line 3: 1 fields where the header has 3 "
                             r"\(the row ends after column 'a'\)"):
        list(arrow_csv.read_batches(str(tmp_path / "short.csv"), ["a", "b", "c"]))
