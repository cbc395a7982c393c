"""`tfxp predict`: score a CSV with a served version, streamed in batches.

The CSV is read by the project's one reader and typed by the input contract
of the version it is scored with (pipeline/serving/rows.py): rows become the
same tf.Example bytes training saw, and go through the version's own
`serving_default` signature (the call TF Serving makes) a batch at a time.
The output CSV is written as the blocks are scored, so memory stays flat in
the number of rows: the input columns as they were read plus one column per
value the signature returns (an output of one value per row keeps its key
as the column name, an output of k values becomes key_0 ... key_{k-1}).
Nothing here knows the task; the columns follow the signature.

The job is recorded in the run root's ML Metadata store as a one-node run
(pipeline/serving/records.py), so `tfxp runs` and `tfxp lineage` say which
version scored which file.
"""
from __future__ import annotations

import dataclasses
import datetime
import os
import queue
import threading
import time
from typing import Iterator, Optional

import numpy as np

from pipeline.config import PipelineConfig
from pipeline.errors import ConfigError, TfxpError
from pipeline.layout import RunLayout
from pipeline.serving import rows, versions

SIGNATURE = "serving_default"
INPUT = "examples"
BATCH_ROWS = 2048  # rows per signature call: past this, no faster; memory grows


@dataclasses.dataclass
class Prediction:
    run_id: str
    version: int
    label: Optional[str]  # the label the version was chosen by, if any
    output: str
    rows: int
    scored: int
    bad: list[rows.BadRow]
    columns: list[str]  # the prediction columns added
    contract: str  # where the input contract came from


def default_output(csv_path: str) -> str:
    """`<name>.predictions.csv` beside `<name>.csv` (or `<name>.csv.gz`)."""
    path = os.path.abspath(csv_path)
    for suffix in (".gz", ".csv"):
        if path.lower().endswith(suffix):
            path = path[:-len(suffix)]
    return f"{path}.predictions.csv"


def _column_names(outputs: dict[str, np.ndarray]) -> list[str]:
    names = []
    for key in sorted(outputs):
        width = int(np.prod(outputs[key].shape[1:])) if outputs[key].ndim > 1 else 1
        names += [key] if width == 1 else [f"{key}_{i}" for i in range(width)]
    return names


def _arrays(outputs: dict[str, np.ndarray]) -> list:
    """One Arrow array per output column, in `_column_names` order."""
    import pyarrow as pa
    arrays = []
    for key in sorted(outputs):
        value = outputs[key].reshape(len(outputs[key]), -1)
        for i in range(value.shape[1]):
            column = value[:, i]
            if column.dtype == object:
                column = np.array([v.decode() if isinstance(v, bytes) else v for v in column])
            arrays.append(pa.array(column))
    return arrays


class _Scorer:
    """The version's serving signature on batches of serialized examples."""

    def __init__(self, version_dir: str):
        import tensorflow as tf
        self._tf = tf
        loaded = tf.saved_model.load(version_dir)
        if SIGNATURE not in loaded.signatures:
            raise TfxpError(f"{version_dir}: no {SIGNATURE} signature")
        self._loaded = loaded  # keeps the signature's variables alive
        self._fn = loaded.signatures[SIGNATURE]

    def __call__(self, records: list[bytes]) -> dict[str, np.ndarray]:
        out = self._fn(**{INPUT: self._tf.constant(records, self._tf.string)})
        return {k: v.numpy() for k, v in out.items()}


def predict(cfg: PipelineConfig, layout: RunLayout, csv_path: str,
            version: Optional[str] = None, label: Optional[str] = None,
            output: Optional[str] = None) -> Prediction:
    """Scores the CSV's readable rows with a served version; writes them with their
    predictions, in file order."""
    started = time.time()
    chosen = versions.resolve(layout.serving, version, label)
    version_dir = versions.version_path(layout.serving, chosen)
    output = os.path.abspath(output or default_output(csv_path))
    if output == os.path.abspath(csv_path):
        raise ConfigError("--output is the input CSV; choose another file")
    contract = rows.version_contract(version_dir, cfg.label.column, cfg.data.na_values)
    names = rows.header(csv_path)
    rows.require_columns(csv_path, names, contract, contract.serving, chosen)
    run_id = f"predict-{datetime.datetime.now().strftime('%Y%m%dT%H%M%S.%f')}"
    scorer = _Scorer(version_dir)
    total, scored, bad, columns = _score(csv_path, names, contract, chosen, scorer, output)
    from pipeline.serving.records import record_job
    record_job(layout.metadata, f"{cfg.pipeline_name}-predict", "BatchPredict", run_id,
               _facts(csv_path, chosen, label, contract.source),
               {"model": ("Model", os.path.abspath(version_dir),
                          {"served_version": str(chosen),
                           "served_base_path": layout.serving})},
               {"inference_result": ("InferenceResult", output,
                                     {"rows": total, "scored": scored, "refused": len(bad)})},
               started)
    return Prediction(run_id, chosen, label, output, total, scored, bad, columns,
                      contract.source)


def _facts(csv_path: str, version: int, label: Optional[str], contract: str) -> dict:
    from pipeline.facts import data_digest, git_commit, project_version
    data = os.path.abspath(csv_path)
    return {"project_version": project_version(), "git_commit": git_commit() or "unknown",
            "data_path": data, "data_digest": data_digest(data) or "",
            "served_version": version, "served_label": label or "",
            "input_contract": contract}


def _read_ahead(blocks: Iterator[rows.Block], depth: int = 2) -> Iterator[tuple]:
    """(block, its kept rows' text, their serialized examples), read in a thread.

    Reading, checking and serializing the next block overlaps the model's
    work on this one (TensorFlow and Arrow release the GIL): both cores work.
    """
    import pyarrow as pa
    done = object()
    ready: queue.Queue = queue.Queue(maxsize=depth)

    def produce() -> None:
        try:
            for block in blocks:
                ready.put((block, block.text.take(pa.array(block.kept)), block.records()))
            ready.put(done)
        except BaseException as e:  # handed to the consumer, raised there
            ready.put(e)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    while True:
        item = ready.get()
        if item is done:
            return
        if isinstance(item, BaseException):
            raise item
        yield item


def _score(csv_path: str, names: list[str], contract, version: int, scorer: _Scorer,
           output: str) -> tuple[int, int, list[rows.BadRow], list[str]]:
    """Streams the file through the scorer into `output` (written whole or not at all)."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    os.makedirs(os.path.dirname(output), exist_ok=True)
    tmp = f"{output}.partial"
    writer = None
    total = scored = 0
    bad: list[rows.BadRow] = []
    columns: list[str] = []
    try:
        with open(tmp, "wb") as sink:
            for block, text, records in _read_ahead(
                    rows.blocks(csv_path, names, contract, contract.serving, version)):
                total += block.text.num_rows
                bad += block.bad
                for start in range(0, len(records), BATCH_ROWS):
                    outputs = scorer(records[start:start + BATCH_ROWS])
                    named = [(c, a) for c, a in zip(_column_names(outputs), _arrays(outputs))
                             if c not in names]
                    if writer is None:
                        columns = [c for c, _ in named]
                        schema = pa.schema([(n, pa.string()) for n in names]
                                           + [(c, a.type) for c, a in named])
                        writer = pacsv.CSVWriter(sink, schema)
                    part = text.slice(start, BATCH_ROWS)
                    writer.write_batch(pa.record_batch(
                        list(part.columns) + [a for _, a in named], schema=schema))
                    scored += part.num_rows
            if writer is None:  # no row could be scored: the header alone
                pacsv.write_csv(pa.table({n: pa.array([], pa.string()) for n in names}), sink)
            else:
                writer.close()
        os.replace(tmp, output)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return total, scored, bad, columns


__all__ = ["Prediction", "default_output", "predict"]
