"""TF Serving's model config file: which versions it serves, under which labels.

Written by the Pusher after each push (`after_push`, then `retain`), and by
`tfxp promote` / `tfxp rollback` (pipeline/serving/versions.py).

TF Serving started with `--model_config_file` re-reads the file every poll
interval, so labels move without a restart.  The file is the text form of
`ModelServerConfig` (tensorflow-serving-api's proto) and is always replaced
in one rename: a server that reads it mid-write sees the old file or the new,
never half of one.  The labels also live only here; a small history of the
`stable` label beside it lets `rollback` go back one step.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Optional

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2 as msc

STABLE, CANARY = "stable", "canary"
LABELS = (STABLE, CANARY)
# Both names hold no digits-only part, so TF Serving never mistakes them for versions.
CONFIG_FILE = "models.config"
HISTORY_FILE = "stable-history.json"


def config_path(base_path: str) -> str:
    """<base>/models.config: what TF Serving's --model_config_file points at."""
    return os.path.join(base_path, CONFIG_FILE)


def history_path(base_path: str) -> str:
    """<base>/stable-history.json: every version that was `stable`, oldest first."""
    return os.path.join(base_path, HISTORY_FILE)


def _write_atomically(path: str, text: str) -> None:
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


def read(base_path: str) -> Optional[msc.ModelServerConfig]:
    """The config under a base path, or None when there is none yet."""
    path = config_path(base_path)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return text_format.Parse(f.read(), msc.ModelServerConfig())


def labels(base_path: str) -> dict[str, int]:
    """label -> version, as the config file says (empty when there is no file)."""
    config = read(base_path)
    if config is None:
        return {}
    out: dict[str, int] = {}
    for model in config.model_config_list.config:
        out.update({k: int(v) for k, v in model.version_labels.items()})
    return out


def stable_history(base_path: str) -> list[int]:
    path = history_path(base_path)
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [int(v) for v in json.load(f)]


def write(model_name: str, base_path: str, new_labels: dict[str, int]) -> msc.ModelServerConfig:
    """Replaces the config (and the stable history when `stable` moved), each in one rename."""
    history = stable_history(base_path)
    stable = new_labels.get(STABLE)
    if stable is not None and (not history or history[-1] != stable):
        history = history + [int(stable)]
    return _replace(model_name, base_path, new_labels, history)


def rollback(model_name: str, base_path: str, new_labels: dict[str, int],
             history: list[int]) -> msc.ModelServerConfig:
    """Like `write`, with the stable history cut back to the version now stable."""
    return _replace(model_name, base_path, new_labels, history)


def _replace(model_name: str, base_path: str, new_labels: dict[str, int],
             history: list[int]) -> msc.ModelServerConfig:
    config = build(model_name, base_path, new_labels)
    if history != stable_history(base_path):
        _write_atomically(history_path(base_path), json.dumps([int(v) for v in history]))
    _write_atomically(config_path(base_path), text_format.MessageToString(config))
    return config


def after_push(model_name: str, base_path: str, version: int) -> msc.ModelServerConfig:
    """A new version is the canary; the first version ever pushed is also stable."""
    current = labels(base_path)
    current.setdefault(STABLE, int(version))
    if current[STABLE] == int(version):
        current.pop(CANARY, None)
    else:
        current[CANARY] = int(version)
    return write(model_name, base_path, current)


def on_disk(base_path: str) -> list[int]:
    """Every version TF Serving could load (all-digit directories), oldest first."""
    if not os.path.isdir(base_path):
        return []
    return sorted(int(n) for n in os.listdir(base_path)
                  if n.isdigit() and os.path.isdir(os.path.join(base_path, n)))


def retain(base_path: str, keep: int) -> list[int]:
    """Removes the oldest versions beyond `keep`, never a labelled one; returns those removed."""
    labelled = set(labels(base_path).values())
    versions = on_disk(base_path)
    newest = set(versions[-keep:]) if keep > 0 else set()
    removed = []
    for v in versions:
        if v not in labelled and v not in newest:
            shutil.rmtree(os.path.join(base_path, str(v)))
            removed.append(v)
    return removed


def published(base_path: str, version: str, custom_config: dict) -> list[int]:
    """After a push: the new version labelled, then old unlabelled versions removed.

    `custom_config` may name `model_name` (default: the base path's last part)
    and `keep_versions` (default: keep everything).
    """
    name = custom_config.get("model_name") or os.path.basename(os.path.normpath(base_path))
    after_push(name, base_path, int(version))
    keep = custom_config.get("keep_versions")
    return retain(base_path, int(keep)) if keep else []
