"""TF Serving's model config file: the writer of which versions are served, under
which labels.

Written by the Pusher as part of each push (`stage_push`, then `commit` once the
version is in place) and by `tfxp promote` / `tfxp rollback`
(pipeline/serving/versions.py, `write`). Reading it is `served_state`'s job.

TF Serving started with `--model_config_file` re-reads the file every poll
interval, so labels move without a restart.  The file is the text form of
`ModelServerConfig` (tensorflow-serving-api's proto) and is always replaced
in one rename: a server that reads it mid-write sees the old file or the new,
never half of one.  The labels live only here; a small history of the
`stable` label beside it lets `rollback` go back one step.
"""
from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import json
import os
import shutil
import tempfile
from typing import Iterator

from absl import logging
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2 as msc

from components.atomic_pusher import served_state
from components.atomic_pusher.served_state import (  # noqa: F401  (the names callers use)
    CANARY,
    CONFIG_FILE,
    HISTORY_FILE,
    LABELS,
    STABLE,
    ServedState,
    ServedStateError,
    config_path,
    history_path,
    on_disk,
)

LOCK_FILE = ".push.lock"


@contextlib.contextmanager
def push_lock(base_directory: str) -> Iterator[None]:
    """The Pusher's lock: exclusive for one push, promote or rollback; released if the
    process dies."""
    os.makedirs(base_directory, exist_ok=True)
    with open(os.path.join(base_directory, LOCK_FILE), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _write_atomically(path: str, text: str) -> None:
    """`text` at `path`, replaced in one rename (a reader sees the old file or the new)."""
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def build(model_name: str, base_path: str, labels: dict[str, int]) -> msc.ModelServerConfig:
    """A config serving exactly the labelled versions of one model."""
    config = msc.ModelServerConfig()
    model = config.model_config_list.config.add(
        name=model_name, base_path=base_path, model_platform="tensorflow")
    for version in sorted(set(labels.values())):
        model.model_version_policy.specific.versions.append(int(version))
    for label in LABELS:
        if label in labels:
            model.version_labels[label] = int(labels[label])
    return config


def labels(base_path: str) -> dict[str, int]:
    """label -> version, as the config file says (empty when there is none)."""
    return dict(served_state.read(base_path).labels)


def stable_history(base_path: str) -> list[int]:
    return list(served_state.read(base_path).history)


def with_stable(history: list[int], new_labels: dict[str, int]) -> list[int]:
    """The stable history once `new_labels` are written: a moved `stable` is appended."""
    stable = new_labels.get(STABLE)
    if stable is not None and (not history or history[-1] != int(stable)):
        return list(history) + [int(stable)]
    return list(history)


def write(model_name: str, base_path: str, new_labels: dict[str, int],
          history: list[int]) -> msc.ModelServerConfig:
    """Replaces the config, then the stable history when it changed, each in one rename.

    The config is what TF Serving reads; the history only serves `rollback`."""
    state = served_state.read(base_path)
    damaged = any(p.path == history_path(base_path) for p in state.unreadable())
    config = build(model_name, base_path, new_labels)
    _write_atomically(config_path(base_path), text_format.MessageToString(config))
    history = [int(v) for v in history]
    if damaged or history != list(state.history) or not os.path.exists(history_path(base_path)):
        _write_atomically(history_path(base_path), json.dumps(history))
    return config


def labels_after_push(state: ServedState, version: int) -> dict[str, int]:
    """A new version is the canary; when no version on disk is stable, it is stable too.
    Labels pointing at versions no longer on disk are dropped."""
    current = dict(state.live_labels)
    current.setdefault(STABLE, int(version))
    if current[STABLE] == int(version):
        current.pop(CANARY, None)
    else:
        current[CANARY] = int(version)
    return current


@dataclasses.dataclass(frozen=True)
class Staged:
    """Files written beside a push's staging directory, each with where it goes.
    The first, the config, is the commit point: once it is in place the push has
    happened, and a history that could not follow stays staged for the next push
    (`executor.recover`) to put in place."""

    moves: tuple[tuple[str, str], ...]

    def commit(self) -> None:
        if not self.moves:
            return
        (staged, final), rest = self.moves[0], self.moves[1:]
        os.replace(staged, final)
        for staged, final in rest:
            try:
                os.replace(staged, final)
            except OSError as e:
                logging.warning("%s stays staged as %s (%s); the next push puts it in place",
                                final, staged, e)

    def discard(self) -> None:
        for staged, _ in self.moves:
            if os.path.exists(staged):
                os.unlink(staged)


def stage_push(model_name: str, base_path: str, version: int,
               state: ServedState) -> Staged:
    """Writes the config (and history) that serve `version`, beside its staging directory.

    Raises ServedStateError, naming the file, when the current config or history
    does not parse: their labels cannot be carried over."""
    state.require_readable()
    new_labels = labels_after_push(state, version)
    history = with_stable(list(state.history), new_labels)
    moves = []
    staged = served_state.staged_config_path(base_path, version)
    _write_atomically(staged, text_format.MessageToString(
        build(model_name, base_path, new_labels)))
    moves.append((staged, config_path(base_path)))
    if history != list(state.history) or not os.path.exists(history_path(base_path)):
        staged = served_state.staged_history_path(base_path, version)
        _write_atomically(staged, json.dumps(history))
        moves.append((staged, history_path(base_path)))
    return Staged(tuple(moves))


def after_push(model_name: str, base_path: str, version: int) -> msc.ModelServerConfig:
    """Labels an existing version directory as a push does (staged, then committed)."""
    stage_push(model_name, base_path, version, served_state.read(base_path)).commit()
    return served_state.read(base_path).config


def retain(base_path: str, keep: int) -> list[int]:
    """Removes the oldest versions beyond `keep`, never a served one; returns those removed."""
    state = served_state.read(base_path)
    state.require_readable()
    kept = set(state.wanted) | set(state.labels.values())
    versions = list(state.on_disk)
    newest = set(versions[-keep:]) if keep > 0 else set()
    removed = []
    for v in versions:
        if v not in kept and v not in newest:
            shutil.rmtree(os.path.join(base_path, str(v)))
            removed.append(v)
    return removed
