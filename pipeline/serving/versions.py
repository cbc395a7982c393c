"""The versions under a TF Serving base path: labels, push-time metrics, relabelling.

What is served, and under which labels, is read by the one reader of served
state (`components.atomic_pusher.served_state`: `models.config` and the
version directories); a version's metrics and run come from ML Metadata (the
PushedModel whose `pushed_version` it is, and that run's Evaluator output).
A version directory that `models.config` does not serve is listed as not
served: one a push renamed into place and died before its config is removed by
the next push; any other (no push recorded, or taken out of service) is kept
until retention removes it.

`promote` and `rollback` take the Pusher's lock and rebuild `models.config`
from the versions on disk: a label pointing at a deleted version is dropped,
a config or history that does not parse is written anew, and each such
repair is reported as one line naming the file. Damage they cannot work
around is a `StateError`, one line naming the file and the problem.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional

from components.atomic_pusher import model_config, served_state
from components.atomic_pusher.model_config import CANARY, STABLE, push_lock, retain
from components.atomic_pusher.served_state import ServedState, on_disk
from pipeline.errors import ConfigError, StateError


@dataclasses.dataclass
class Version:
    version: int
    path: str
    labels: list[str]
    run_id: Optional[str] = None
    metrics: dict[str, float] = dataclasses.field(default_factory=dict)  # overall, at push
    served: bool = True  # models.config serves it
    pending: bool = False  # a push died before its config: the next push removes it


@dataclasses.dataclass
class Listing:
    """What `tfxp versions` shows: the versions newest first, labels that point at no
    version on disk, and files that do not parse (one line each)."""

    base_path: str
    versions: list[Version]
    dangling: dict[str, int]
    problems: list[str]
    config_readable: bool = True  # False: which versions are served is not known


@dataclasses.dataclass
class Relabelled:
    """The outcome of `promote` or `rollback`."""

    labels: dict[str, int]
    before: Optional[int]  # rollback: the version stable was
    after: int
    repaired: list[str]  # one line per damaged file rebuilt from the versions on disk


def version_path(base_path: str, version: int) -> str:
    return os.path.join(base_path, str(int(version)))


def read(base_path: str) -> ServedState:
    return served_state.read(base_path)


def _readable(state: ServedState) -> ServedState:
    try:
        state.require_readable()
    except served_state.ServedStateError as e:
        raise StateError(str(e)) from None
    return state


def resolve(base_path: str, version: Optional[str] = None, label: Optional[str] = None) -> int:
    """A version by number or label (default: `stable`, else the newest served, else the
    newest on disk)."""
    state = read(base_path)
    versions = list(state.on_disk)
    if not versions:
        raise StateError(f"no model version under {base_path}; `tfxp run` pushes one")
    if version is not None:
        if not str(version).isdigit() or int(version) not in versions:
            raise StateError(f"no version {version} under {base_path}; on disk: "
                             + ", ".join(map(str, versions)))
        return int(version)
    _readable(state)
    if label is not None:
        if label not in state.labels:
            raise StateError(f"no version is labelled {label!r} in {state.config_path}")
        if label in state.dangling:
            raise StateError(f"{state.config_path}: label {label!r} points at version "
                             f"{state.labels[label]}, which is not on disk")
        return state.labels[label]
    live = state.live_labels
    if STABLE in live:
        return live[STABLE]
    return (state.served or versions)[-1]


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


def list_versions(base_path: str, store=None) -> Listing:
    """What is on disk, newest first, with labels and whether it is served (and run and
    metrics given a store); never raises for a damaged serving file."""
    state = read(base_path)
    records = push_records(store, list(state.on_disk)) if store is not None else {}
    out = []
    for v in reversed(state.on_disk):
        run_id, metrics = records.get(v, (None, {}))
        out.append(Version(v, version_path(base_path, v), state.labels_of(v), run_id, metrics,
                           served=state.serves(v), pending=v in state.pending))
    return Listing(base_path, out, state.dangling, [str(p) for p in state.problems],
                   config_readable=not any(p.path == state.config_path
                                           for p in state.unreadable()))


def _rebuilt(state: ServedState) -> tuple[dict[str, int], list[int], list[str]]:
    """(labels, stable history, repairs): the state's labels and history with what is
    damaged or dangling dropped, as the versions on disk allow."""
    repaired = [f"{p.path}: {p.problem}; rebuilt from the versions on disk"
                for p in state.problems]
    present = set(state.on_disk)
    history = [v for v in state.history if v in present]
    return dict(state.live_labels), history, repaired


def promote(model_name: str, base_path: str, version: int, label: str) -> Relabelled:
    """Points `label` at `version`; promoting the canary to stable retires the canary label."""
    if label not in model_config.LABELS:
        raise ConfigError(f"--label must be one of {', '.join(model_config.LABELS)}")
    with push_lock(base_path):  # a push's label update never interleaves with this one
        state = read(base_path)
        if int(version) not in state.on_disk:
            raise StateError(f"no version {version} under {base_path}"
                             + ("; on disk: " + ", ".join(map(str, state.on_disk))
                                if state.on_disk else ""))
        labels, history, repaired = _rebuilt(state)
        labels[label] = int(version)
        if label == STABLE and labels.get(CANARY) == int(version):
            labels.pop(CANARY)
        model_config.write(model_name, base_path, labels,
                           model_config.with_stable(history, labels))
    return Relabelled(labels, None, int(version), repaired)


def rollback(model_name: str, base_path: str) -> Relabelled:
    """Stable back to the version that was stable before it."""
    with push_lock(base_path):  # a push's label update never interleaves with this one
        state = read(base_path)
        history_problems = [p for p in state.problems
                            if p.path == served_state.history_path(base_path)]
        if history_problems:
            p = history_problems[0]
            raise StateError(f"{p.path}: {p.problem}, so the earlier stable version is not "
                             f"known; `tfxp promote VERSION` sets stable directly")
        labels, history, repaired = _rebuilt(state)
        current = state.labels.get(STABLE)
        if current is None and history:
            current = history[-1]  # a models.config that does not parse: the last stable
        if current is None:
            raise StateError(f"no stable version in {state.config_path}; nothing to roll "
                             f"back")
        # Before the last time `current` became stable (all of the history when the
        # stable label points at a version no longer on disk).
        last = len(history) - 1 - history[::-1].index(current) if current in history \
            else len(history)
        earlier = [i for i in range(last) if history[i] != current]
        if not earlier and current not in state.on_disk:
            raise StateError(f"{state.config_path}: stable points at version {current}, "
                             f"which is not on disk, and no earlier stable version is; "
                             f"`tfxp promote VERSION` sets stable")
        if not earlier:
            raise StateError(f"version {current} is the first stable version under "
                             f"{base_path} ({served_state.history_path(base_path)}); there "
                             f"is no earlier one on disk to roll back to")
        target = history[earlier[-1]]
        labels[STABLE] = target
        if labels.get(CANARY) == target:
            labels.pop(CANARY)
        model_config.write(model_name, base_path, labels, history[:earlier[-1] + 1])
    return Relabelled(labels, current, target, repaired)


__all__ = ["Version", "Listing", "Relabelled", "on_disk", "version_path", "resolve",
           "push_records", "list_versions", "promote", "rollback", "retain"]
