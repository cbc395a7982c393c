"""What a run produced, read back from ML Metadata and the artifacts it names.

The runner knows which executions belong to a run; everything else (the
anomalies, the metrics per slice, the blessing, the pushed version) is read
from the store, so a summary is true to what was recorded.
"""
from __future__ import annotations

import dataclasses
import math
import os
from typing import Any, Optional

from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2

SliceKey = tuple[tuple[str, Any], ...]  # () is the whole eval split


def open_store(connection_config: metadata_store_pb2.ConnectionConfig
               ) -> metadata_store.MetadataStore:
    return metadata_store.MetadataStore(connection_config)


def sqlite_connection(path: str, must_exist: bool = False
                      ) -> metadata_store_pb2.ConnectionConfig:
    if must_exist and not os.path.exists(path):
        raise FileNotFoundError(f"no metadata store at {path}: run the pipeline first")
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = (
        metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE
        if must_exist else metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE)
    return config


def output_artifacts(store: metadata_store.MetadataStore, execution_id: int
                     ) -> dict[str, list[metadata_store_pb2.Artifact]]:
    """Output artifacts of an execution, by output key (cached outputs included)."""
    events = store.get_events_by_execution_ids([execution_id])
    keyed: dict[int, str] = {}
    for e in events:
        if e.type in (metadata_store_pb2.Event.OUTPUT,
                      metadata_store_pb2.Event.DECLARED_OUTPUT):
            keyed[e.artifact_id] = e.path.steps[0].key if e.path.steps else ""
    by_key: dict[str, list[metadata_store_pb2.Artifact]] = {}
    for artifact in store.get_artifacts_by_id(list(keyed)):
        by_key.setdefault(keyed[artifact.id], []).append(artifact)
    return by_key


def custom_value(artifact: metadata_store_pb2.Artifact, name: str) -> Any:
    if name not in artifact.custom_properties:
        return None
    value = artifact.custom_properties[name]
    kind = value.WhichOneof("value")
    return getattr(value, kind) if kind else None


@dataclasses.dataclass
class Evaluation:
    metrics: dict[SliceKey, dict[str, float]]
    blessed: Optional[bool]
    failures: list[str]  # one readable line per failed threshold


def _slice_key(raw) -> SliceKey:
    return tuple((str(k), v.decode() if isinstance(v, bytes) else v) for k, v in raw)


def slice_label(key: SliceKey) -> str:
    return "overall" if not key else ", ".join(f"{k}={v}" for k, v in key)


def read_evaluation(evaluation_uri: str, blessing_uri: Optional[str] = None
                    ) -> Evaluation:
    """Metrics per slice and threshold failures from an Evaluator's outputs."""
    import tensorflow_model_analysis as tfma

    result = tfma.load_eval_result(evaluation_uri)
    metrics: dict[SliceKey, dict[str, float]] = {}
    for raw_key, by_output in result.slicing_metrics:
        values: dict[str, float] = {}
        for by_sub_key in by_output.values():
            for by_name in by_sub_key.values():
                for name, value in by_name.items():
                    number = value.get("doubleValue") if isinstance(value, dict) else None
                    if number is not None:
                        values[name] = float(number)
        metrics[_slice_key(raw_key)] = values

    failures = []
    blessed = None
    validation = tfma.load_validation_result(evaluation_uri)
    if validation is not None:
        blessed = bool(validation.validation_ok)
        for per_slice in validation.metric_validations_per_slice:
            where = slice_label(_slice_key(
                (s.column, s.bytes_value or s.int64_value or s.float_value)
                for s in per_slice.slice_key.single_slice_keys))
            for f in per_slice.failures:
                failures.append(f"{f.metric_key.name} on {where}: {f.metric_value.double_value.value:.4g}"
                                f" ({f.message or 'threshold not met'})")
        for missing in validation.missing_slices:
            failures.append(f"slice {list(missing.feature_keys) or 'overall'} missing from eval data")
    if blessing_uri and os.path.exists(os.path.join(blessing_uri, "BLESSED")):
        blessed = True
    elif blessing_uri and os.path.exists(os.path.join(blessing_uri, "NOT_BLESSED")):
        blessed = False
    return Evaluation(metrics=metrics, blessed=blessed, failures=failures)


def finite(x: Optional[float]) -> bool:
    return x is not None and not math.isnan(x)
