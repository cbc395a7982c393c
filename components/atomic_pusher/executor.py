"""Pusher executor: whole versions, one at a time, each published with its labels.

TF Serving watches `<base>/<model>/` and loads any all-digit sub-directory as
soon as it appears. TFX's own Pusher copies straight into `<base>/<version>`,
so a poll during the copy can find a partial model. Here, under an exclusive
lock on the base path, a push is one transaction with its labels:

1. a push that died between renaming its version into place and writing
   `models.config` is undone (its version moved back to staging), and staging
   left by killed pushes is swept;
2. a model whose SavedModel fingerprint equals a version `models.config`
   serves is not published again ("already serving version V");
3. the version number is allocated by creating its staging directory
   (`os.mkdir` fails if it exists: never two pushes in one directory);
4. the model and the files that belong beside it are written there, and so is
   the next `models.config` (and stable history), beside it;
5. the directory is renamed into place, which is atomic on a POSIX filesystem,
   then the staged config replaces `models.config` (the commit point). If that
   fails, the version is moved back to staging and swept: it never appears
   without the config that serves it, except to a process killed between the
   two renames, which step 1 of the next push undoes.

An object-store base path (gs://, s3://) is refused: rename is a copy there.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from typing import Any, Optional

from absl import logging
from tfx import types
from tfx.components.pusher import executor as tfx_pusher
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import import_utils, io_utils, json_utils, proto_utils

from components.atomic_pusher import model_config, served_state, warmup
from components.atomic_pusher.model_config import LOCK_FILE, push_lock  # noqa: F401
from components.atomic_pusher.served_state import (  # noqa: F401  (re-exported)
    FINGERPRINT_FILE,
    STAGING_PREFIX,
    STATISTICS_DIR,
    ServedStateError,
    fingerprint,
)


class PushRefused(ValueError):
    """The push destination cannot be published to atomically."""


class PushFailed(RuntimeError):
    """A step of the push failed; the version was not published (the message names the file)."""


def check_base_directory(base_directory: str) -> None:
    if "://" in base_directory:
        raise PushRefused(
            f"model base path {base_directory}: an object store cannot rename a version "
            f"into place atomically, so TF Serving could load a half-copied model. Use a "
            f"filesystem path: a volume shared with TF Serving (a PVC on Kubernetes), "
            f"or a bucket mounted with a FUSE driver")


def versions(base_directory: str) -> list[int]:
    """Version directories under a base path, oldest first."""
    return served_state.on_disk(base_directory)


def _staging_dir(base_directory: str, version: int) -> str:
    return os.path.join(base_directory, f"{STAGING_PREFIX}{int(version)}")


def recover(base_directory: str) -> list[int]:
    """Undoes pushes that died between their two renames (only call under the lock).

    A staged history whose version the config already serves as stable is put in
    place (the config was committed); a version the config does not serve, with its
    staged config still there, goes back to staging for `sweep_staging`."""
    state = served_state.read(base_directory)
    for version in state.on_disk:
        staged = served_state.staged_history_path(base_directory, version)
        if os.path.exists(staged) and state.labels.get(model_config.STABLE) == version:
            os.replace(staged, served_state.history_path(base_directory))
    for version in state.pending:
        os.rename(state.version_path(version), _staging_dir(base_directory, version))
    return list(state.pending)


def sweep_staging(base_directory: str) -> list[str]:
    """Removes staging left by pushes that died (only call under the lock)."""
    swept = []
    for name in os.listdir(base_directory):
        if name.startswith(STAGING_PREFIX):
            path = os.path.join(base_directory, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)
            swept.append(name)
    return swept


def allocate_staging(base_directory: str) -> tuple[str, str]:
    """(version, staging dir): a Unix-time version past any existing one, claimed by mkdir."""
    version = max([int(time.time())] + [v + 1 for v in versions(base_directory)])
    while True:
        staging = _staging_dir(base_directory, version)
        final = os.path.join(base_directory, str(version))
        if not os.path.exists(final):
            try:
                os.mkdir(staging)
                return str(version), staging
            except FileExistsError:
                pass
        version += 1


def _model_name(base_directory: str, model_name: Optional[str]) -> str:
    return model_name or os.path.basename(os.path.normpath(base_directory))


def publish_atomically(model_path: str, base_directory: str, stage=None,
                       model_name: Optional[str] = None,
                       keep_versions: Optional[int] = None) -> tuple[str, bool]:
    """(version, published): the model as a new version served by models.config, or
    the served version that is this model.

    `stage(staging_dir)` writes what belongs beside the model before it appears.
    `model_name` names it in models.config (default: the base path's last part);
    `keep_versions` removes the oldest versions beyond it that nothing serves.
    Raises ServedStateError (naming the file) when models.config or the stable
    history does not parse, and PushFailed when a step fails: either way the
    version does not appear.
    """
    check_base_directory(base_directory)
    with push_lock(base_directory):
        undone = recover(base_directory)
        if undone:
            logging.warning("Undid versions of interrupted pushes (never served): %s", undone)
        swept = sweep_staging(base_directory)
        if swept:
            logging.info("Removed staging left by interrupted pushes: %s", swept)
        state = served_state.read(base_directory)
        state.require_readable()
        current = state.serving(model_path)
        if current is not None:
            return str(current), False
        version, staging = allocate_staging(base_directory)
        final = os.path.join(base_directory, version)
        staged = model_config.Staged(())
        try:
            shutil.copytree(model_path, staging, dirs_exist_ok=True)
            if stage is not None:
                stage(staging)
            staged = model_config.stage_push(_model_name(base_directory, model_name),
                                             base_directory, int(version), state)
            _rename(staging, final, "the version directory")
            try:
                _commit(staged, base_directory)
            except BaseException:
                os.rename(final, staging)  # never a version without the config serving it
                raise
        except BaseException:
            staged.discard()
            shutil.rmtree(staging, ignore_errors=True)
            raise
        if keep_versions:
            removed = model_config.retain(base_directory, int(keep_versions))
            if removed:
                logging.info("Removed versions beyond keep_versions=%s: %s", keep_versions,
                             removed)
        return version, True


def _rename(source: str, target: str, what: str) -> None:
    try:
        os.rename(source, target)
    except OSError as e:
        raise PushFailed(f"{target}: could not rename {what} into place "
                         f"({e.strerror or e}); the version was not published") from e


def _commit(staged: "model_config.Staged", base_directory: str) -> None:
    try:
        staged.commit()
    except OSError as e:
        raise PushFailed(f"{served_state.config_path(base_directory)}: could not be replaced "
                         f"({e.strerror or e}); the version was not published") from e


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
        custom = _custom_config(exec_properties)
        version, published = publish_atomically(
            model_path, base,
            stage=lambda staging: self._stage(staging, input_dict, exec_properties),
            model_name=custom.get("model_name"), keep_versions=custom.get("keep_versions"))
        where = os.path.join(base, version)
        if not published:
            logging.info("Already serving version %s (same SavedModel fingerprint)", version)
            self._MarkNotPushed(model_push)
            model_push.set_string_custom_property("already_serving", version)
            model_push.set_string_custom_property("pushed_destination", where)
            return
        logging.info("Model version %s published under %s", version, base)
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
