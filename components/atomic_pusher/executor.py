"""Pusher executor that never lets TF Serving see a half-written version.

TF Serving watches `<base>/<model>/` and loads any all-digit sub-directory as
soon as it appears. TFX's own Pusher copies straight into `<base>/<version>`,
so a poll during the copy can find a partial model. Here the model is copied
into a hidden staging directory (not all digits, so ignored by the server) and
then renamed into place, which is atomic on a POSIX filesystem.
"""
from __future__ import annotations

import os
import time
from typing import Any

from absl import logging
from tfx import types
from tfx.components.pusher import executor as tfx_pusher
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

STAGING_PREFIX = ".staging-"


def next_version(base_directory: str) -> str:
    """A Unix-time version, bumped past any version already there."""
    existing = [int(n) for n in (fileio.listdir(base_directory)
                                 if fileio.exists(base_directory) else [])
                if n.isdigit()]
    return str(max([int(time.time())] + [v + 1 for v in existing]))


def publish_atomically(model_path: str, base_directory: str) -> str:
    """Copies the model under a staging name, then renames it to its version."""
    fileio.makedirs(base_directory)
    version = next_version(base_directory)
    staging = os.path.join(base_directory, f"{STAGING_PREFIX}{version}")
    if fileio.exists(staging):
        fileio.rmtree(staging)
    io_utils.copy_dir(model_path, staging)
    final = os.path.join(base_directory, version)
    fileio.rename(staging, final, overwrite=False)
    return version


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
            raise ValueError("AtomicPusher pushes to a filesystem destination only")
        base = destination.filesystem.base_directory
        version = publish_atomically(model_path, base)
        logging.info("Model version %s published under %s", version, base)
        io_utils.copy_dir(model_path, model_push.uri)
        self._MarkPushed(model_push, pushed_destination=os.path.join(base, version),
                         pushed_version=version)
