"""Pusher executor: whole versions, one at a time, never the same model twice.

TF Serving watches `<base>/<model>/` and loads any all-digit sub-directory as
soon as it appears. TFX's own Pusher copies straight into `<base>/<version>`,
so a poll during the copy can find a partial model. Here, under an exclusive
lock on the base path:

1. a model whose SavedModel fingerprint equals the newest served version's is
   not published again ("already serving version V");
2. staging directories left by a killed push are swept;
3. the version number is allocated by creating its staging directory
   (`os.mkdir` fails if it exists: never two pushes in one directory);
4. the model and the files that belong beside it are written there, and the
   directory is renamed into place, which is atomic on a POSIX filesystem.

An object-store base path (gs://, s3://) is refused: rename is a copy there.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import time
from typing import Any, Iterator, Optional

from absl import logging
from tfx import types
from tfx.components.pusher import executor as tfx_pusher
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import import_utils, io_utils, json_utils, proto_utils

from components.atomic_pusher import model_config, warmup

STAGING_PREFIX = ".staging-"
LOCK_FILE = ".push.lock"
FINGERPRINT_FILE = "fingerprint.pb"
# Beside every version (TF Serving ignores assets.extra/): the statistics of
# the data that trained it, the drift baseline while it is served.
STATISTICS_DIR = os.path.join("assets.extra", "training_statistics")


class PushRefused(ValueError):
    """The push destination cannot be published to atomically."""


def check_base_directory(base_directory: str) -> None:
    if "://" in base_directory:
        raise PushRefused(
            f"model base path {base_directory}: an object store cannot rename a version "
            f"into place atomically, so TF Serving could load a half-copied model. Use a "
            f"filesystem path: a volume shared with TF Serving (a PVC on Kubernetes), "
            f"or a bucket mounted with a FUSE driver")


@contextlib.contextmanager
def push_lock(base_directory: str) -> Iterator[None]:
    """Exclusive for the duration of one push; released if the process dies."""
    os.makedirs(base_directory, exist_ok=True)
    with open(os.path.join(base_directory, LOCK_FILE), "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def versions(base_directory: str) -> list[int]:
    """Complete versions under a base path, oldest first."""
    if not os.path.isdir(base_directory):
        return []
    return sorted(int(n) for n in os.listdir(base_directory) if n.isdigit())


def fingerprint(saved_model_dir: str) -> Optional[str]:
    """A digest of a SavedModel's fingerprint.pb (or, lacking one, its graph and variables)."""
    names = [FINGERPRINT_FILE] if os.path.exists(
        os.path.join(saved_model_dir, FINGERPRINT_FILE)) else ["saved_model.pb", "variables"]
    digest = hashlib.sha256()
    found = False
    for name in names:
        path = os.path.join(saved_model_dir, name)
        files = ([path] if os.path.isfile(path) else
                 sorted(os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs))
        for file in files:
            found = True
            digest.update(os.path.relpath(file, saved_model_dir).encode())
            with open(file, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest() if found else None


def sweep_staging(base_directory: str) -> list[str]:
    """Removes staging directories of pushes that died (only call under the lock)."""
    swept = []
    for name in os.listdir(base_directory):
        if name.startswith(STAGING_PREFIX):
            shutil.rmtree(os.path.join(base_directory, name), ignore_errors=True)
            swept.append(name)
    return swept


def allocate_staging(base_directory: str) -> tuple[str, str]:
    """(version, staging dir): a Unix-time version past any existing one, claimed by mkdir."""
    version = max([int(time.time())] + [v + 1 for v in versions(base_directory)])
    while True:
        staging = os.path.join(base_directory, f"{STAGING_PREFIX}{version}")
        final = os.path.join(base_directory, str(version))
        if not os.path.exists(final):
            try:
                os.mkdir(staging)
                return str(version), staging
            except FileExistsError:
                pass
        version += 1


def already_serving(model_path: str, base_directory: str) -> Optional[str]:
    """The newest version, when it is this very model."""
    existing = versions(base_directory)
    if not existing:
        return None
    newest = str(existing[-1])
    mine = fingerprint(model_path)
    return newest if mine is not None and mine == fingerprint(
        os.path.join(base_directory, newest)) else None


def publish_atomically(model_path: str, base_directory: str,
                       stage=None) -> tuple[str, bool]:
    """(version, published): the model as a new version, or the newest if it is this model.

    `stage(staging_dir)` writes what belongs beside the model before it appears.
    """
    check_base_directory(base_directory)
    with push_lock(base_directory):
        current = already_serving(model_path, base_directory)
        if current is not None:
            return current, False
        swept = sweep_staging(base_directory)
        if swept:
            logging.info("Removed staging left by interrupted pushes: %s", swept)
        version, staging = allocate_staging(base_directory)
        try:
            shutil.copytree(model_path, staging, dirs_exist_ok=True)
            if stage is not None:
                stage(staging)
            os.rename(staging, os.path.join(base_directory, version))
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return version, True


def _custom_config(exec_properties: dict[str, Any]) -> dict[str, Any]:
    """The Pusher's custom_config (model_name, keep_versions), {} when not given."""
    raw = exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY)
    return (json_utils.loads(raw) if isinstance(raw, str) else raw) or {}


class Executor(tfx_pusher.Executor):

    def Do(self, input_dict: dict[str, list[types.Artifact]],
           output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        self._log_startup(input_dict, output_dict, exec_properties)
        model_push = artifact_utils.get_single_instance(
            output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(model_push)
            return
        model_path = self.GetModelPath(input_dict)
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(
            exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        if destination.WhichOneof("destination") != "filesystem":
            raise PushRefused("AtomicPusher pushes to a filesystem destination only")
        base = destination.filesystem.base_directory
        version, published = publish_atomically(
            model_path, base, stage=lambda staging: self._stage(
                staging, input_dict, exec_properties))
        where = os.path.join(base, version)
        if not published:
            logging.info("Already serving version %s (same SavedModel fingerprint)", version)
            self._MarkNotPushed(model_push)
            model_push.set_string_custom_property("already_serving", version)
            model_push.set_string_custom_property("pushed_destination", where)
            return
        logging.info("Model version %s published under %s", version, base)
        self._published(base, version, input_dict, exec_properties)
        io_utils.copy_dir(model_path, model_push.uri)
        self._MarkPushed(model_push, pushed_destination=where, pushed_version=version)

    def _stage(self, staging: str, input_dict: dict[str, list[types.Artifact]],
               exec_properties: dict[str, Any]) -> None:
        """Files that belong to the version, written before it appears."""
        statistics = input_dict.get("statistics") or []
        if statistics:
            shutil.copytree(statistics[0].uri, os.path.join(staging, STATISTICS_DIR))
        warmup.stage(staging, input_dict.get("examples"), input_dict.get("schema"),
                     _custom_config(exec_properties))
        if exec_properties.get("stage_fn"):
            module, _, name = exec_properties["stage_fn"].rpartition(".")
            stage_fn = import_utils.import_func_from_module(module, name)
            facts = json.loads(exec_properties.get("version_facts") or "{}")
            stage_fn(staging, os.path.basename(staging)[len(STAGING_PREFIX):], input_dict, facts)

    def _published(self, base: str, version: str,
                   input_dict: dict[str, list[types.Artifact]],
                   exec_properties: dict[str, Any]) -> None:
        """What follows a new version: TF Serving's models.config labels it, old ones go."""
        model_config.published(base, version, _custom_config(exec_properties))
