"""CsvIngest's executor on small CSVs through the real Beam runner: missing-value
tokens become missing, numeric columns stay numeric, rows without a label are
dropped and counted or rejected, and a header-only file does not crash."""
import glob
import os

import pytest
import tensorflow as tf
from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
from tfx.proto import example_gen_pb2
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import proto_utils

from components.csv_ingest.component import CsvIngest, custom_config
from components.csv_ingest.executor import DROPPED_PROPERTY, Executor, mark_missing, settings
from components.data_gate.component import DataRejectedError

CSV = """bill,island,species
39.1,Biscoe,Adelie
NA,Dream,Gentoo
40.3,?,Adelie
41.0,Dream,
38.2,Biscoe,NA
44.5,Dream,Gentoo
"""


def run(tmp_path, text: str, na_values=("NA", "?"), missing: str = "drop"):
    data = tmp_path / "data"
    data.mkdir()
    (data / "rows.csv").write_text(text)
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "examples")
    props = {
        "input_base": str(data),
        "input_config": proto_utils.proto_to_json(example_gen_pb2.Input(splits=[
            example_gen_pb2.Input.Split(name="single_split", pattern="*.csv")])),
        "output_config": proto_utils.proto_to_json(example_gen_pb2.Output(
            split_config=example_gen_pb2.SplitConfig(splits=[
                example_gen_pb2.SplitConfig.Split(name="train", hash_buckets=1)]))),
        "custom_config": proto_utils.proto_to_json(
            custom_config(list(na_values), "species", missing)),
        "output_data_format": example_gen_pb2.FORMAT_TF_EXAMPLE,
        "output_file_format": example_gen_pb2.FORMAT_TFRECORDS_GZIP,
    }
    executor = Executor(BaseBeamExecutor.Context(tmp_dir=str(tmp_path / "tmp"), unique_id="1",
                                             beam_pipeline_args=["--runner=DirectRunner"]))
    executor.Do({}, {"examples": [examples]}, props)
    files = glob.glob(os.path.join(artifact_utils.get_split_uri([examples], "train"), "*"))
    rows = [tf.train.Example.FromString(r.numpy()) for r in
            tf.data.TFRecordDataset(files, compression_type="GZIP")]
    return examples, rows


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
