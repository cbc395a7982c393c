"""Rows typed by a version's input contract (pipeline/serving/rows.py), the contract
read or derived from a SavedModel (models/contract.py), and a job's record in
ML Metadata (pipeline/serving/records.py): no pipeline runs here."""
from __future__ import annotations

import csv
import json
import os

import pytest
import tensorflow as tf

from models import contract as contracts
from models.contract import Column, InputContract
from pipeline.errors import DataError, TfxpError
from pipeline.serving import rows
from pipeline.serving.predict import default_output

CONTRACT = InputContract(
    serving=(Column("fare", "FLOAT", False), Column("hour", "INT", True),
             Column("kind", "BYTES", True)),
    evaluation=(Column("fare", "FLOAT", False), Column("hour", "INT", True),
                Column("kind", "BYTES", True), Column("tips", "FLOAT", False)),
    label="tips", na_values=("NA", "?"))


def write(path, header, data, quoting=csv.QUOTE_NONNUMERIC):
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, quoting=quoting)
        writer.writerow(header)
        writer.writerows(data)
    return str(path)


def parsed(block: rows.Block, spec=None) -> list[dict]:
    spec = spec or {"fare": tf.io.FixedLenFeature([1], tf.float32),
                    "hour": tf.io.VarLenFeature(tf.int64),
                    "kind": tf.io.VarLenFeature(tf.string)}
    out = tf.io.parse_example(tf.constant(block.records()), spec)
    return [{k: (out[k][i].numpy().tolist() if not isinstance(out[k], tf.SparseTensor)
                 else tf.sparse.to_dense(out[k])[i].numpy().tolist()) for k in spec}
            for i in range(len(block.kept))]


def read(path, columns=CONTRACT.serving, label=None):
    names = rows.header(path)
    return list(rows.blocks(path, names, CONTRACT, columns, 7, label=label))


def test_missing_cells_are_read_as_training_reads_them(tmp_path):
    # "NA" and "?" are this version's missing-value markers; hour and kind may be
    # missing (Transform imputes them), so those rows are scored.
    path = write(tmp_path / "a.csv", ["fare", "hour", "kind", "extra"],
                 [["1.5", "3", "x", "NA"], ["2", "NA", "?", "?"], ["2.5", "", "", "1"]])
    [block] = read(path)
    assert block.bad == [] and list(block.kept) == [0, 1, 2]
    assert [r["fare"] for r in parsed(block)] == [[1.5], [2.0], [2.5]]
    assert [r["hour"] for r in parsed(block)] == [[3], [0], [0]]


def test_unreadable_cells_refuse_their_row_by_row_and_column(tmp_path):
    path = write(tmp_path / "a.csv", ["fare", "hour", "kind"],
                 [["1", "2", "a"], ["", "2", "b"], ["oops", "x", "c"], ["3", "2.5", "d"],
                  ["4", "99999999999999999999", "e"], ["5", "1", "f"]])
    [block] = read(path)
    assert [str(b) for b in block.bad] == [
        "row 2: fare: no value, and version 7 cannot read a row without one",
        "row 3: fare: 'oops' is not a number; if it marks a missing value, it belongs in "
        "data.na_values",
        "row 4: hour: '2.5' is not an integer",
        "row 5: hour: beyond the range of a 64-bit integer"]
    assert list(block.kept) == [0, 5]
    assert [r["fare"] for r in parsed(block)] == [[1.0], [5.0]]


def test_a_row_without_a_label_is_counted_as_such(tmp_path):
    path = write(tmp_path / "a.csv", ["fare", "hour", "kind", "tips"],
                 [["1", "2", "a", "0.5"], ["NA", "2", "b", "NA"], ["2", "3", "c", ""],
                  ["x", "1", "d", "1"]])
    [block] = read(path, CONTRACT.evaluation, label="tips")
    assert block.unlabelled == 2
    assert [str(b) for b in block.bad] == [
        "row 4: fare: 'x' is not a number; if it marks a missing value, it belongs in "
        "data.na_values"]
    assert list(block.kept) == [0]


def test_a_column_the_version_reads_must_be_in_the_file(tmp_path):
    path = write(tmp_path / "a.csv", ["fare", "kind"], [["1", "a"]])
    with pytest.raises(DataError, match=r"a.csv: no column hour, which version 7 reads "
                                        r"\(contract recorded\); the file's columns: fare, kind"):
        rows.require_columns(path, rows.header(path), CONTRACT, CONTRACT.serving, 7)
    with pytest.raises(DataError, match="no such CSV file"):
        rows.header(str(tmp_path / "none.csv"))


def test_blocks_stream_a_file_and_number_rows_across_blocks(tmp_path):
    data = [[str(i), str(i % 24), "k"] for i in range(3000)]
    data[2500][0] = "bad"
    path = write(tmp_path / "a.csv", ["fare", "hour", "kind"], data, csv.QUOTE_MINIMAL)
    blocks = list(rows.blocks(path, rows.header(path), CONTRACT, CONTRACT.serving, 7,
                              block_size=8 << 10))
    assert len(blocks) > 3
    assert sum(len(b.kept) for b in blocks) == 2999
    assert [str(b) for bl in blocks for b in bl.bad][0].startswith("row 2501: fare: 'bad'")
    fares = [r["fare"][0] for b in blocks for r in parsed(b)]
    assert fares == [float(i) for i in range(3000) if i != 2500]


def test_prediction_file_name_is_beside_the_input():
    assert default_output("/d/small.csv") == "/d/small.predictions.csv"
    assert default_output("/d/small.csv.gz") == "/d/small.predictions.csv"
    assert default_output("/d/table") == "/d/table.predictions.csv"


class _Parser(tf.Module):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve(self, examples):
        parsed = tf.io.parse_example(examples, {
            "fare": tf.io.FixedLenFeature([1], tf.float32),
            "hour": tf.io.VarLenFeature(tf.int64),
            "kind": tf.io.FixedLenFeature([1], tf.string, default_value=[""])})
        return {"outputs": parsed["fare"] * 2.0}


def test_contract_is_derived_from_a_saved_model_without_one(tmp_path):
    module = _Parser()
    path = str(tmp_path / "model")
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    derived = contracts.read(path, label="tips", na_values=["NA"])
    assert derived.source == "derived from the SavedModel"
    assert derived.serving == (Column("fare", "FLOAT", False), Column("hour", "INT", True),
                               Column("kind", "BYTES", True))
    assert derived.na_values == ("NA",) and derived.label == "tips"
    # A recorded contract wins, and round-trips through its JSON file.
    contracts.write(path, CONTRACT)
    assert contracts.read(path) == CONTRACT
    with open(os.path.join(path, contracts.CONTRACT_FILE)) as f:
        assert json.load(f)["format"] == contracts.FORMAT
    with open(os.path.join(path, contracts.CONTRACT_FILE), "w") as f:
        f.write("{")
    with pytest.raises(contracts.ContractError, match="input_contract.json: not an input"):
        contracts.read(path)
    # ...which predict and evaluate say in one line, not a traceback.
    with pytest.raises(TfxpError, match="input_contract.json: not an input"):
        rows.version_contract(path, "tips", ())


def test_a_prediction_job_is_a_run_that_names_its_version_and_file(tmp_path):
    from pipeline.lineage.render import runs_text
    from pipeline.lineage.store import open_store_from
    from pipeline.serving.records import record_job
    metadata = str(tmp_path / "metadata.sqlite")
    record_job(metadata, "taxi-predict", "BatchPredict", "predict-1",
               {"data_path": "/d/new.csv", "served_version": 12, "served_label": "canary"},
               {"model": ("Model", "/s/12", {"served_version": "12"})},
               {"inference_result": ("InferenceResult", "/d/new.predictions.csv",
                                     {"rows": 3})}, 0.0)
    store = open_store_from(sqlite=metadata)
    [run] = store.runs()
    assert run.run_id == "predict-1" and run.pipeline == "taxi-predict"
    assert [(n.node_id, n.state) for n in run.nodes] == [("BatchPredict", "executed")]
    text = runs_text([run])
    assert "version 12 (canary) on /d/new.csv" in text.splitlines()[0]
    [execution] = store.store.get_executions()
    outputs = store.output_artifacts(execution.id)
    assert [a.uri for a in outputs["inference_result"]] == ["/d/new.predictions.csv"]
