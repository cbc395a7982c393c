"""ServingCheck executor: a TF Serving client's view of the exported model.

Checks, in order, stopping at the first that fails:
  1. the SavedModel loads and has the serving signature;
  2. input contract: one input, a batch of serialized tf.Example (strings);
  3. raw examples with the label removed are accepted (a signature that wants
     a transformed feature, or the label, fails here, and the reason says so);
  4. outputs, by task: binary, one probability per example (finite, in
     [0, 1]); multiclass, a probability per class summing to 1 and the class
     names beside them; regression, one finite value per example;
  5. p50 latency of batch 1 and of a larger batch within the thresholds.
The result is an InfraBlessing: `blessed` (1/0) and `reason` custom
properties (what TFX's Pusher checks and what a person reads), the files
INFRA_BLESSED / INFRA_NOT_BLESSED as InfraValidator writes them, and a JSON
report with every measurement.
"""
from __future__ import annotations

import dataclasses
import json
import os
import statistics
import time
from typing import Any, Optional

import numpy as np
import tensorflow as tf
from tfx import types
from tfx.dsl.components.base import base_executor
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.utils import path_utils

DEFAULT_SIGNATURE = "serving_default"
DEFAULT_INPUT_KEY = "examples"
DEFAULT_OUTPUT_KEY = "outputs"
CLASSES_KEY = "classes"  # a multi-class model's class names, beside the scores
TASKS = ("binary", "multiclass", "regression")
REPORT_FILE = "serving_check.json"
BLESSED_FILE, NOT_BLESSED_FILE = "INFRA_BLESSED", "INFRA_NOT_BLESSED"


@dataclasses.dataclass
class Thresholds:
    max_p50_ms_single: float = 100.0
    max_p50_ms_batch: float = 1000.0
    batch_size: int = 64
    repeats: int = 20


@dataclasses.dataclass
class CheckResult:
    blessed: bool
    reason: str
    checked: list[str] = dataclasses.field(default_factory=list)
    p50_ms_single: Optional[float] = None
    p50_ms_batch: Optional[float] = None
    batch_size: int = 0


class ContractError(Exception):
    """The model does not answer a serving request as a client expects."""


def read_examples(examples: types.Artifact, split: str, limit: int) -> list[bytes]:
    """Up to `limit` serialized tf.Examples from one split of an Examples artifact."""
    uri = artifact_utils.get_split_uri([examples], split)
    files = sorted(fileio.glob(os.path.join(uri, "*")))
    records = []
    for record in tf.data.TFRecordDataset(files, compression_type="GZIP").take(limit):
        records.append(record.numpy())
    if not records:
        raise ValueError(f"no examples in split {split!r} of {examples.uri}")
    return records


def as_client_request(serialized: list[bytes], label_column: str) -> list[bytes]:
    """The examples a TF Serving client sends: the raw row without the label."""
    out = []
    for raw in serialized:
        example = tf.train.Example.FromString(raw)
        if label_column in example.features.feature:
            del example.features.feature[label_column]
        out.append(example.SerializeToString())
    return out


def _first_line(e: BaseException) -> str:
    """The line of an error a person needs (TF wraps it in graph boilerplate)."""
    text = e.message if isinstance(e, tf.errors.OpError) else str(e)
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("Graph execution error", "Detected at node",
                                         "File ", "[[", "Traceback", "<stack traces")):
            return line.removeprefix("Name: <unknown>, ")[:300]
    return type(e).__name__


def _check_signature(fn: Any, input_key: str, output_key: str) -> None:
    args, kwargs = fn.structured_input_signature
    inputs = dict(kwargs)
    if args or list(inputs) != [input_key]:
        raise ContractError(
            f"input contract: expected exactly one input {input_key!r}, "
            f"got {sorted(inputs) + ['<positional>'] * len(args)}")
    spec = inputs[input_key]
    if spec.dtype != tf.string or spec.shape.rank != 1:
        raise ContractError(
            f"input contract: {input_key!r} must be a batch of serialized tf.Example "
            f"(string, shape [None]), got {spec.dtype.name} {spec.shape}")
    if output_key not in fn.structured_outputs:
        raise ContractError(f"output {output_key!r} missing; outputs are "
                            f"{sorted(fn.structured_outputs)}")


def _call(fn: Any, input_key: str, output_key: str, batch: list[bytes]) -> np.ndarray:
    return fn(**{input_key: tf.constant(batch)})[output_key].numpy()


def _check_outputs(scores: np.ndarray, n: int, task: str = "binary") -> None:
    if task == "multiclass":
        if scores.ndim != 2 or scores.shape[0] != n or scores.shape[1] < 2:
            raise ContractError(f"outputs: expected a probability per class for each "
                                f"example, shape [{n}, classes], got {list(scores.shape)}")
    elif scores.shape not in ((n,), (n, 1)):
        raise ContractError(f"outputs: expected one score per example, shape [{n}] or "
                            f"[{n}, 1], got {list(scores.shape)}")
    if not np.all(np.isfinite(scores)):
        bad = int(np.sum(~np.isfinite(scores)))
        raise ContractError(f"outputs: {bad} of {scores.size} scores are not finite "
                            f"(NaN or inf)")
    if task == "regression":
        return
    if scores.min() < 0.0 or scores.max() > 1.0:
        raise ContractError(f"outputs: scores must lie in [0, 1], got "
                            f"[{scores.min():.4g}, {scores.max():.4g}]")
    if task == "multiclass":
        sums = scores.sum(axis=1)
        if not np.allclose(sums, 1.0, atol=1e-3):
            raise ContractError(f"outputs: class probabilities must sum to 1 per example, "
                                f"got sums in [{sums.min():.4g}, {sums.max():.4g}]")


def _check_classes(fn: Any, input_key: str, batch: list[bytes], n_classes: int) -> None:
    """A multi-class model names its classes beside the scores, one per column."""
    if CLASSES_KEY not in fn.structured_outputs:
        raise ContractError(f"outputs: a multi-class model must return the class names "
                            f"as {CLASSES_KEY!r}; outputs are {sorted(fn.structured_outputs)}")
    names = _call(fn, input_key, CLASSES_KEY, batch)
    if names.shape != (len(batch), n_classes):
        raise ContractError(f"outputs: {CLASSES_KEY!r} must name each of the {n_classes} "
                            f"classes per example, got shape {list(names.shape)}")
    if len(set(names[0].tolist())) != n_classes:
        raise ContractError(f"outputs: {CLASSES_KEY!r} repeats a class name: "
                            f"{[v.decode() for v in names[0].tolist()]}")


def p50_ms(fn: Any, input_key: str, output_key: str, batch: list[bytes],
           repeats: int) -> float:
    """Median wall time of one request, after a warm-up call."""
    _call(fn, input_key, output_key, batch)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        _call(fn, input_key, output_key, batch)
        times.append((time.perf_counter() - started) * 1000.0)
    return statistics.median(times)


def check_model(model_path: str, serialized: list[bytes], label_column: str,
                thresholds: Thresholds, signature_name: str = DEFAULT_SIGNATURE,
                input_key: str = DEFAULT_INPUT_KEY, output_key: str = DEFAULT_OUTPUT_KEY,
                task: str = "binary") -> CheckResult:
    """Runs every check on the SavedModel at `model_path`; never raises for a bad model."""
    result = CheckResult(blessed=False, reason="")
    try:
        try:
            loaded = tf.saved_model.load(model_path)
        except Exception as e:  # a model that does not load is not servable
            raise ContractError(f"cannot load the SavedModel: {_first_line(e)}") from e
        fn = loaded.signatures.get(signature_name)
        if fn is None:
            raise ContractError(f"no {signature_name!r} signature; has "
                                f"{sorted(loaded.signatures)}")
        result.checked.append("signature")
        _check_signature(fn, input_key, output_key)
        result.checked.append("input contract")

        request = as_client_request(serialized, label_column)
        batch = request[:thresholds.batch_size]
        result.batch_size = len(batch)
        try:
            scores = _call(fn, input_key, output_key, batch)
        except (tf.errors.OpError, ValueError, TypeError) as e:
            hint = ""
            try:  # does it work when the client (wrongly) sends the label?
                _call(fn, input_key, output_key, serialized[:len(batch)])
                hint = f" (it requires the label {label_column!r}, which clients never send)"
            except Exception:
                pass
            raise ContractError(
                f"raw examples without the label are rejected{hint}: {_first_line(e)}") from e
        result.checked.append("raw features in, no label")
        _check_outputs(scores, len(batch), task)
        if task == "multiclass":
            _check_classes(fn, input_key, batch, scores.shape[1])
        result.checked.append("outputs")

        result.p50_ms_single = p50_ms(fn, input_key, output_key, batch[:1], thresholds.repeats)
        result.p50_ms_batch = p50_ms(fn, input_key, output_key, batch, thresholds.repeats)
        if result.p50_ms_single > thresholds.max_p50_ms_single:
            raise ContractError(f"latency: p50 {result.p50_ms_single:.1f} ms at batch 1 > "
                                f"{thresholds.max_p50_ms_single:g} ms")
        if result.p50_ms_batch > thresholds.max_p50_ms_batch:
            raise ContractError(f"latency: p50 {result.p50_ms_batch:.1f} ms at batch "
                                f"{len(batch)} > {thresholds.max_p50_ms_batch:g} ms")
        result.checked.append("latency")
    except ContractError as e:
        result.reason = str(e)
        return result
    result.blessed = True
    result.reason = (f"serving contract kept; p50 {result.p50_ms_single:.1f} ms at batch 1, "
                     f"{result.p50_ms_batch:.1f} ms at batch {result.batch_size}")
    return result


def write_blessing(blessing: types.Artifact, result: CheckResult) -> None:
    """Records the result where Pusher and people look for it."""
    fileio.makedirs(blessing.uri)
    with fileio.open(os.path.join(blessing.uri,
                                  BLESSED_FILE if result.blessed else NOT_BLESSED_FILE), "w") as f:
        f.write("")
    with fileio.open(os.path.join(blessing.uri, REPORT_FILE), "w") as f:
        f.write(json.dumps(dataclasses.asdict(result), indent=2))
    blessing.set_int_custom_property("blessed", int(result.blessed))
    blessing.set_string_custom_property("reason", result.reason)
    for name in ("p50_ms_single", "p50_ms_batch"):
        value = getattr(result, name)
        if value is not None:
            blessing.set_float_custom_property(name, value)


class Executor(base_executor.BaseExecutor):
    """Checks the model from `model` against examples from `examples`."""

    def Do(self, input_dict: dict[str, list[types.Artifact]],
           output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model = artifact_utils.get_single_instance(input_dict["model"])
        examples = artifact_utils.get_single_instance(input_dict["examples"])
        blessing = artifact_utils.get_single_instance(output_dict["blessing"])
        thresholds = Thresholds(
            max_p50_ms_single=float(exec_properties.get("max_p50_ms_single") or 100.0),
            max_p50_ms_batch=float(exec_properties.get("max_p50_ms_batch") or 1000.0),
            batch_size=int(exec_properties.get("batch_size") or 64),
            repeats=int(exec_properties.get("repeats") or 20))
        serialized = read_examples(examples, exec_properties.get("split") or "eval",
                                   thresholds.batch_size)
        result = check_model(
            path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model)),
            serialized, exec_properties["label_column"], thresholds,
            signature_name=exec_properties.get("signature_name") or DEFAULT_SIGNATURE,
            input_key=exec_properties.get("input_key") or DEFAULT_INPUT_KEY,
            output_key=exec_properties.get("output_key") or DEFAULT_OUTPUT_KEY,
            task=exec_properties.get("task") or "binary")
        write_blessing(blessing, result)
