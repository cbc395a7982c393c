"""The input contract on the real model the shared runs pushed (tests/lineage_runs.py):
it is written at training, equals what the SavedModel's parsing says, and
`tfxp predict` scores a CSV as pandas writes it exactly as the model scores
the examples ingestion makes of the same file; a canary whose contract reads
one more column is scored by its own contract.  The shared root is copied
first: the jobs here record runs of their own."""
from __future__ import annotations

import csv
import dataclasses
import json
import os
import shutil

import pandas as pd
import pytest

from models import contract as contracts
from tests.datasets import taxi_csv
from tests.lineage_runs import jobs_root, served_version, tfxp

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def root(lineage_runs, tmp_path_factory) -> str:
    return jobs_root(lineage_runs, tmp_path_factory.mktemp("contract"))


@pytest.fixture(scope="module")
def version(lineage_runs) -> str:
    return served_version(lineage_runs.paths)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """300 taxi rows, their cells as the file has them; some optional cells emptied."""
    df = pd.read_csv(taxi_csv(), dtype=str, keep_default_na=False)
    df = df.iloc[::50].head(300).reset_index(drop=True)
    df.loc[::7, "trip_seconds"] = ""  # the model imputes it
    return df


def test_the_contract_is_written_at_training_and_matches_the_saved_model(lineage_runs,
                                                                          version):
    version_dir = os.path.join(lineage_runs.paths.serving, version)
    with open(os.path.join(version_dir, contracts.CONTRACT_FILE)) as f:
        recorded = contracts.InputContract.from_json(json.load(f))
    derived = contracts.derive(version_dir)
    assert recorded.serving == derived.serving
    assert recorded.evaluation == derived.evaluation
    assert recorded.label == lineage_runs.cfg.label.column
    assert recorded.label not in {c.name for c in recorded.serving}
    assert {c.name for c in recorded.serving} == set(
        lineage_runs.cfg.model_inputs().serving_columns())


def test_predict_scores_as_the_model_scores_ingested_rows(root, version, frame, tmp_path):
    import tensorflow as tf

    from components.csv_ingest.executor import Executor
    from components.csv_ingest.test_csv_ingest import execute
    data = tmp_path / "data"
    data.mkdir()
    frame.to_csv(data / "new.csv", index=False, quoting=csv.QUOTE_ALL)  # every cell quoted
    code, out, err = tfxp("predict", "--root", root, "--data", str(data / "new.csv"),
                          "--version", version)
    assert code == 0, out + err
    scored = pd.read_csv(data / "new.predictions.csv")
    assert len(scored) == len(frame)
    # The oracle: the examples ingestion writes for the same file, through the
    # version's own serving signature.
    _, found = execute(Executor, tmp_path, data, name="ingest", na_values=(), label=None,
                       input_splits=(("single_split", "new.csv"),))
    signature = tf.saved_model.load(os.path.join(root, "serving", "chicago_taxi", version)
                                    ).signatures["serving_default"]
    expected = signature(examples=tf.constant(found["train"]))["outputs"].numpy().reshape(-1)
    assert sorted(round(float(v), 5) for v in expected) == sorted(
        round(float(v), 5) for v in scored["outputs"])
    code, out, _ = tfxp("runs", "--root", root)
    assert f"version {version} on {data / 'new.csv'}" in out


def test_a_canary_is_scored_by_its_own_contract(root, version, frame, tmp_path):
    serving = os.path.join(root, "serving", "chicago_taxi")
    canary = str(int(version) + 1)
    shutil.copytree(os.path.join(serving, version), os.path.join(serving, canary))
    path = os.path.join(serving, canary, contracts.CONTRACT_FILE)
    with open(path) as f:
        recorded = contracts.InputContract.from_json(json.load(f))
    extra = contracts.Column("dep_delay", "INT", False)
    contracts.write(os.path.join(serving, canary), dataclasses.replace(
        recorded, serving=recorded.serving + (extra,)))
    frame.to_csv(tmp_path / "no_delay.csv", index=False)
    code, out, err = tfxp("predict", "--root", root, "--data", str(tmp_path / "no_delay.csv"),
                          "--version", canary)
    assert code == 1 and "no column dep_delay, which version" in err
    assert not os.path.exists(tmp_path / "no_delay.predictions.csv")
    # The stable version never reads dep_delay: text there is nothing to it.
    frame.assign(dep_delay=["late"] + [str(i) for i in range(1, len(frame))]).to_csv(
        tmp_path / "delay.csv", index=False)
    code, out, err = tfxp("predict", "--root", root, "--data", str(tmp_path / "delay.csv"),
                          "--version", version)
    assert code == 0, out + err
    code, out, err = tfxp("predict", "--root", root, "--data", str(tmp_path / "delay.csv"),
                          "--version", canary)
    assert code == 3 and "row 1: dep_delay: 'late' is not an integer" in err
    assert len(pd.read_csv(tmp_path / "delay.predictions.csv")) == len(frame) - 1


def test_no_readable_row_writes_the_header_alone(root, version, frame, tmp_path):
    frame.assign(fare="free").to_csv(tmp_path / "free.csv", index=False)
    code, out, err = tfxp("predict", "--root", root, "--data", str(tmp_path / "free.csv"),
                          "--version", version)
    assert code == 3 and f"{len(frame)} of {len(frame)} rows not scored" in err
    with open(tmp_path / "free.predictions.csv") as f:
        assert f.read().splitlines() == [",".join(f'"{c}"' for c in frame.columns)]
