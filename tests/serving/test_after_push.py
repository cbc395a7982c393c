"""After the push, on the real model the shared runs pushed (tests/lineage_runs.py):
warm-up requests, `tfxp predict` through BulkInferrer and `tfxp evaluate`
through TFMA.  The shared root is copied first (store and serving base path):
the jobs here record runs of their own, which the lineage tests must not see."""
from __future__ import annotations

import csv
import math
import os
import random
import shutil

import pytest

from pipeline.config import load_config
from tests.datasets import read_rows, write_rows
from tests.lineage_runs import jobs_root, served_version, tfxp

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def root(lineage_runs, tmp_path_factory) -> str:
    return jobs_root(lineage_runs, tmp_path_factory.mktemp("after-push"))


@pytest.fixture(scope="module")
def version_dir(lineage_runs) -> str:
    return os.path.join(lineage_runs.paths.serving, served_version(lineage_runs.paths))


@pytest.fixture(scope="module")
def signature(version_dir):
    import tensorflow as tf
    return tf.saved_model.load(version_dir).signatures["serving_default"]


ROW_ID = "oracle_row_id"  # a column the model does not read: it parses only its features


def ingested(header: list[str], rows: list[dict[str, str]], tmp_path) -> list[bytes]:
    """The tf.Examples the pipeline's own ingestion (CsvIngest's executor, as the
    training run calls it) makes of these rows, in the rows' order."""
    import glob

    import tensorflow as tf
    from tfx.dsl.components.base.base_beam_executor import BaseBeamExecutor
    from tfx.proto import example_gen_pb2
    from tfx.types import artifact_utils, standard_artifacts
    from tfx.utils import proto_utils

    from components.csv_ingest.component import custom_config
    from components.csv_ingest.executor import Executor
    from pipeline.local.beam_mode import with_code_in_place

    cfg = load_config()
    data = tmp_path / "ingest" / "data"
    write_rows(str(data / "rows.csv"), [*header, ROW_ID],
               [{**{h: r[h] for h in header}, ROW_ID: str(i)} for i, r in enumerate(rows)])
    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path / "ingest" / "examples")
    split = example_gen_pb2.SplitConfig.Split(name="all", hash_buckets=1)
    Executor(BaseBeamExecutor.Context(
        tmp_dir=str(tmp_path / "ingest" / "tmp"), unique_id="1",
        beam_pipeline_args=with_code_in_place(["--runner=DirectRunner"]))).Do(
        {}, {"examples": [examples]}, {
            "input_base": str(data),
            "input_config": proto_utils.proto_to_json(example_gen_pb2.Input(splits=[
                example_gen_pb2.Input.Split(name="single_split", pattern="*.csv")])),
            "output_config": proto_utils.proto_to_json(example_gen_pb2.Output(
                split_config=example_gen_pb2.SplitConfig(splits=[split]))),
            "custom_config": proto_utils.proto_to_json(custom_config(
                cfg.data.na_values, cfg.label.column, cfg.label.missing)),
            "output_data_format": example_gen_pb2.FORMAT_TF_EXAMPLE,
            "output_file_format": example_gen_pb2.FORMAT_TFRECORDS_GZIP,
        })
    files = sorted(glob.glob(os.path.join(artifact_utils.get_split_uri([examples], "all"), "*")))
    by_row = {}
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        example = tf.train.Example.FromString(record.numpy())
        [row] = example.features.feature[ROW_ID].int64_list.value
        by_row[row] = record.numpy()
    assert sorted(by_row) == list(range(len(rows)))  # every row, none dropped
    return [by_row[i] for i in range(len(rows))]


def test_warmup_requests_parse_and_score_through_the_signature(
        lineage_runs, version_dir, signature, tmp_path):
    import tensorflow as tf
    import tensorflow_data_validation as tfdv
    from tensorflow_serving.apis import prediction_log_pb2

    from components.atomic_pusher import warmup
    from pipeline.lineage import runs
    from pipeline.lineage.store import open_store_from

    cfg = load_config()
    model = str(tmp_path / "version")
    shutil.copytree(version_dir, model)
    examples = runs.run_record(open_store_from(lineage_runs.root),
                               lineage_runs.run_ids[0]).uri("Examples", "examples")
    path = warmup.write_warmup(model, warmup.eval_examples(examples, limit=5),
                               cfg.serving.model_name, tfdv.load_schema_text(cfg.schema_path))
    assert path == os.path.join(model, "assets.extra", "tf_serving_warmup_requests")
    records = [r.numpy() for r in tf.data.TFRecordDataset(path)]
    assert len(records) == 5
    for raw in records:
        request = prediction_log_pb2.PredictionLog.FromString(raw).predict_log.request
        assert request.model_spec.signature_name == "serving_default"
        [key] = request.inputs
        batch = tf.make_ndarray(request.inputs[key])
        sent = tf.train.Example.FromString(batch[0])
        assert cfg.label.column not in sent.features.feature  # as a client sends it
        [scores] = signature(**{key: tf.constant(batch)}).values()
        assert scores.shape[0] == 1 and bool(tf.reduce_all(tf.math.is_finite(scores)))


def test_each_push_carries_warmup_and_labels_itself_in_models_config(lineage_runs, signature):
    import tensorflow as tf
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2 as msc

    from components.atomic_pusher import warmup
    from pipeline.lineage.store import open_store_from

    base = lineage_runs.paths.serving
    pushed = [r.pushed_version for r in open_store_from(lineage_runs.root).runs()
              if r.pushed_version and r.pushed_in_this_run]
    assert pushed and all(os.path.isdir(os.path.join(base, v)) for v in pushed)
    with open(os.path.join(base, "models.config")) as f:
        config = text_format.Parse(f.read(), msc.ModelServerConfig())
    [model] = config.model_config_list.config
    expected = {"stable": int(pushed[0])}
    if len(pushed) > 1:
        expected["canary"] = int(pushed[-1])
    assert (model.name, model.base_path) == (lineage_runs.cfg.serving.model_name, base)
    assert dict(model.version_labels) == expected
    assert sorted(model.model_version_policy.specific.versions) == sorted(expected.values())
    logs = warmup.read_warmup(os.path.join(base, served_version(lineage_runs.paths)))
    assert logs
    for log in logs:
        [key] = log.predict_log.request.inputs
        [scores] = signature(**{key: tf.constant(
            tf.make_ndarray(log.predict_log.request.inputs[key]))}).values()
        assert scores.shape[0] == 1


def test_predict_scores_the_good_rows_and_names_the_bad_ones(root, tmp_path):
    import re

    import tensorflow as tf

    from components.atomic_pusher import model_config
    from pipeline.layout import RunLayout

    cfg = load_config()
    header, rows = read_rows()
    rows = rows[1::15]  # rows the model did not train on
    bad = {3, 10, 17}  # 1-based row numbers with text in a numeric column
    rows = [dict(r, fare="n/a") if i in bad else r for i, r in enumerate(rows, start=1)]
    header = [h for h in header if h != cfg.label.column]
    data = write_rows(str(tmp_path / "in" / "trips.csv"), header,
                      [{h: r[h] for h in header} for r in rows])
    output = str(tmp_path / "out" / "scored.csv")

    code, out, err = tfxp("predict", "--data", data, "--root", root, "--output", output)
    assert code == 3, out + err
    # By default the stable version scores (a later push is only the canary).
    serving = RunLayout.under(root, cfg).serving
    version = int(re.search(r"^Version (\d+) scored", out, re.M).group(1))
    assert version == model_config.labels(serving)["stable"]
    signature = tf.saved_model.load(os.path.join(serving, str(version))).signatures[
        "serving_default"]
    for n in sorted(bad):
        assert f"row {n}: fare: 'n/a' is not a number" in err
    assert f"{len(bad)} of {len(rows)} rows not scored" in err

    with open(output, newline="") as f:
        reader = csv.reader(f)
        out_header = next(reader)
        scored = list(reader)
    assert len(scored) == len(rows) - len(bad)
    assert out_header[:len(header)] == header
    added = out_header[len(header):]
    assert added  # one column per value the signature returns
    good = [r for i, r in enumerate(rows, start=1) if i not in bad]
    assert [s[:len(header)] for s in scored] == [[r[h] for h in header] for r in good]

    # The oracle is the training path: the same rows through CsvIngest, scored
    # by the signature directly; any skew of predict's reader shows here.
    batch = tf.constant(ingested(header, good, tmp_path))
    outputs = sorted(signature(examples=batch).items())
    direct = [v.numpy().reshape(len(good), -1) for _, v in outputs]
    expected = [[float(x) for part in direct for x in part[i]] for i in range(len(good))]
    for got, want in zip(scored, expected):
        assert [float(x) for x in got[len(header):]] == pytest.approx(want, abs=1e-5)


def test_predict_refuses_an_unknown_version(root, tmp_path):
    code, _, err = tfxp("predict", "--data", str(tmp_path / "none.csv"), "--root", root,
                        "--version", "123")
    assert code == 1 and "no version 123" in err


def _fresh(tmp_path, name: str, shuffle: bool) -> str:
    header, rows = read_rows()
    rows = rows[1::9]  # not the rows the shared runs trained or evaluated on
    if shuffle:
        labels = [r["tips"] for r in rows]
        random.Random(7).shuffle(labels)
        rows = [dict(r, tips=t) for r, t in zip(rows, labels)]
    return write_rows(str(tmp_path / name / "data.csv"), header, rows)


def test_evaluate_passes_on_fresh_data(root, tmp_path):
    code, out, err = tfxp("evaluate", "--data", _fresh(tmp_path, "fresh", False), "--root", root)
    assert code == 0, out + err
    assert "at push" in out and "CROSSED" not in out
    auc = [line for line in out.splitlines() if line.strip().startswith("ok") and "AUC on overall"
           in line]
    assert auc and not math.isnan(float(auc[0].split(":")[1].split()[0]))


def test_evaluate_exits_5_when_the_labels_are_shuffled(root, tmp_path):
    code, out, err = tfxp("evaluate", "--data", _fresh(tmp_path, "shuffled", True),
                          "--root", root)
    assert code == 5, out + err
    assert "tfxp evaluate: decayed: monitoring thresholds crossed: AUC on overall" in err
