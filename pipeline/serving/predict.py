"""`tfxp predict`: score a CSV with a served version through TFX's BulkInferrer.

The CSV is typed by the schema one row at a time (bad rows are reported, not
scored), the good rows go through a small pipeline (ImportExampleGen ->
BulkInferrer with the served version) recorded in the run root's store, and
the output CSV is the input columns plus one column per value the serving
signature returns: an output of one value per row keeps its key as the
column name, an output of k values becomes key_0 ... key_{k-1}.  Nothing
here knows the task; the columns follow the signature.
"""
from __future__ import annotations

import csv
import dataclasses
import glob
import os
from typing import Optional

from pipeline.config import PipelineConfig
from pipeline.errors import ConfigError
from pipeline.layout import RunLayout
from pipeline.serving import jobs, rows, versions

SIGNATURE = "serving_default"


@dataclasses.dataclass
class Prediction:
    run_id: str
    version: int
    output: str
    rows: int
    scored: int
    bad: list[rows.BadRow]
    columns: list[str]  # the prediction columns added


def _outputs(log) -> tuple[int, dict[str, list]]:
    """(row number, output key -> values of this example) from one PredictionLog."""
    import tensorflow as tf
    request, response = log.predict_log.request, log.predict_log.response
    [serialized] = tf.make_ndarray(next(iter(request.inputs.values()))).reshape(-1)
    example = tf.train.Example.FromString(serialized)
    number = example.features.feature[rows.ROW_FEATURE].int64_list.value[0]
    values = {}
    for key, tensor in response.outputs.items():
        array = tf.make_ndarray(tensor).reshape(-1)
        values[key] = [v.decode() if isinstance(v, bytes) else v.item() for v in array]
    return number, values


def _column_names(values: dict[str, list]) -> list[str]:
    names = []
    for key in sorted(values):
        n = len(values[key])
        names += [key] if n == 1 else [f"{key}_{i}" for i in range(n)]
    return names


def read_predictions(inference_uri: str) -> tuple[dict[int, list], list[str]]:
    """row number -> prediction values, and the column names, from an InferenceResult."""
    import tensorflow as tf
    from tensorflow_serving.apis import prediction_log_pb2
    files = sorted(glob.glob(os.path.join(inference_uri, "*.gz")))
    by_row: dict[int, list] = {}
    names: list[str] = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP"):
        number, values = _outputs(prediction_log_pb2.PredictionLog.FromString(record.numpy()))
        if not names:
            names = _column_names(values)
        by_row[number] = [v for key in sorted(values) for v in values[key]]
    return by_row, names


def default_output(csv_path: str) -> str:
    stem, _ = os.path.splitext(os.path.abspath(csv_path))
    return f"{stem}.predictions.csv"


def predict(cfg: PipelineConfig, layout: RunLayout, csv_path: str,
            version: Optional[str] = None, label: Optional[str] = None,
            output: Optional[str] = None) -> Prediction:
    """Scores the CSV's good rows with a served version; writes them with their predictions."""
    import tensorflow_data_validation as tfdv
    from tfx.components import BulkInferrer
    from tfx.proto import bulk_inferrer_pb2

    chosen = versions.resolve(layout.serving, version, label)
    output = os.path.abspath(output or default_output(csv_path))
    if output == os.path.abspath(csv_path):
        raise ConfigError("--output is the input CSV; choose another file")
    schema = tfdv.load_schema_text(cfg.schema_path)
    job = jobs.new_job(layout, "predict")
    converted = rows.to_examples(csv_path, schema, cfg.model_inputs().serving_columns(),
                                 job.examples_dir)
    by_row: dict[int, list] = {}
    names: list[str] = []
    if converted.good:
        examples, model = jobs.components(job, versions.version_path(layout.serving, chosen),
                                          chosen, layout.serving)
        inferrer = BulkInferrer(
            examples=examples.outputs["examples"], model=model.outputs["result"],
            data_spec=bulk_inferrer_pb2.DataSpec(example_splits=[jobs.EXAMPLES_SPLIT]),
            model_spec=bulk_inferrer_pb2.ModelSpec(model_signature_name=[SIGNATURE]),
        ).with_id("BulkInferrer")
        outputs = jobs.run(cfg, layout, job, "predict", [examples, model, inferrer],
                           os.path.abspath(csv_path))
        [result] = outputs["BulkInferrer"]["inference_result"]
        by_row, names = read_predictions(result.uri)
    _write(csv_path, output, by_row, names)
    return Prediction(job.run_id, chosen, output, converted.rows, len(by_row),
                      converted.bad, names)


def _write(csv_path: str, output: str, by_row: dict[int, list], names: list[str]) -> None:
    """The input rows that were scored, in file order, with their prediction columns."""
    header, reader, f = rows.open_csv(csv_path)
    os.makedirs(os.path.dirname(output), exist_ok=True)
    tmp = f"{output}.partial"
    with f, open(tmp, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(header + [n for n in names if n not in header])
        for number, row in enumerate(reader, start=1):
            values = by_row.get(number)
            if values is not None:
                writer.writerow([row.get(h, "") for h in header] + values)
    os.replace(tmp, output)
