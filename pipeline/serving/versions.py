"""The versions under a TF Serving base path: labels, push-time metrics, retention.

A version is an all-digit directory the Pusher renamed into place.  Its labels
come from `models.config`; its metrics and its run from ML Metadata (the
PushedModel whose `pushed_version` it is, and that run's Evaluator output).
Retention (`retain`, run by the Pusher) keeps the newest `keep` versions and
never removes a labelled one.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

from components.atomic_pusher import model_config
from components.atomic_pusher.model_config import CANARY, STABLE, on_disk, retain
from pipeline.errors import ConfigError


@dataclasses.dataclass
class Version:
    version: int
    path: str
    labels: list[str]
    run_id: Optional[str] = None
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)  # overall, at push


def version_path(base_path: str, version: int) -> str:
    return os.path.join(base_path, str(int(version)))


def resolve(base_path: str, version: Optional[str] = None, label: Optional[str] = None) -> int:
    """A version by number or label (default: `stable`, else the newest on disk)."""
    versions = on_disk(base_path)
    if not versions:
        raise ConfigError(f"no model version under {base_path}; `tfxp run` pushes one")
    if version is not None:
        if not str(version).isdigit() or int(version) not in versions:
            raise ConfigError(f"no version {version} under {base_path}; on disk: "
                              + ", ".join(map(str, versions)))
        return int(version)
    labels = model_config.labels(base_path)
    if label is not None:
        if label not in labels:
            raise ConfigError(f"no version is labelled {label!r} under {base_path}")
        return labels[label]
    return labels.get(STABLE, versions[-1])


def _labels_of(labels: dict[str, int], version: int) -> list[str]:
    return [name for name, v in labels.items() if v == version]


def push_records(store, versions: list[int]) -> dict[int, tuple[str, dict[str, float]]]:
    """version -> (run id, overall metrics at push time) from ML Metadata."""
    from pipeline.lineage import results, runs, trace
    from pipeline.lineage.store import custom

    out: dict[int, tuple[str, dict[str, float]]] = {}
    for pushed in trace.pushed_models(store):
        value = str(custom(pushed, "pushed_version") or "")
        if not value.isdigit() or int(value) not in versions:
            continue
        execution = trace.producer(store, pushed.id)
        run_id = store.run_of(execution.id) if execution else None
        metrics: dict[str, float] = {}
        if run_id:
            evaluation, _ = results.evaluation(runs.run_record(store, run_id))
            if evaluation is not None:
                metrics = evaluation.metrics.get((), {})
        out[int(value)] = (run_id or "", metrics)
    return out


def list_versions(base_path: str, store=None) -> list[Version]:
    """What is on disk, newest first, with labels (and run and metrics given a store)."""
    labels = model_config.labels(base_path)
    versions = on_disk(base_path)
    records = push_records(store, versions) if store is not None else {}
    out = []
    for v in reversed(versions):
        run_id, metrics = records.get(v, (None, {}))
        out.append(Version(v, version_path(base_path, v), _labels_of(labels, v), run_id, metrics))
    return out


def promote(model_name: str, base_path: str, version: int, label: str) -> dict[str, int]:
    """Points `label` at `version`; promoting the canary to stable retires the canary label."""
    if label not in model_config.LABELS:
        raise ConfigError(f"--label must be one of {', '.join(model_config.LABELS)}")
    if int(version) not in on_disk(base_path):
        raise ConfigError(f"no version {version} under {base_path}")
    labels = model_config.labels(base_path)
    labels[label] = int(version)
    if label == STABLE and labels.get(CANARY) == int(version):
        labels.pop(CANARY)
    model_config.write(model_name, base_path, labels)
    return labels


def rollback(model_name: str, base_path: str) -> tuple[int, int]:
    """Stable back to the version that was stable before it: (from, to)."""
    labels = model_config.labels(base_path)
    history = model_config.stable_history(base_path)
    present = set(on_disk(base_path))
    current = labels.get(STABLE)
    if current is None:
        raise ConfigError(f"no stable version under {base_path}; nothing to roll back")
    earlier = [v for v in history[:-1] if v != current and v in present] \
        if history and history[-1] == current else []
    if not earlier:
        raise ConfigError(f"version {current} is the first stable version under "
                          f"{base_path}; there is no earlier one to roll back to")
    target = earlier[-1]
    labels[STABLE] = target
    if labels.get(CANARY) == target:
        labels.pop(CANARY)
    model_config.rollback(model_name, base_path, labels, history[:history.index(target) + 1])
    return current, target


__all__ = ["Version", "on_disk", "version_path", "resolve", "push_records", "list_versions",
           "promote", "rollback", "retain"]
