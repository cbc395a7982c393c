"""What a run records about itself beyond what TFX records: code and config.

TFX stores each component's inputs, outputs and execution properties, but not
which version of this project ran, nor the whole configuration file, nor a
content digest of the input data (ExampleGen's fingerprint is sizes and
modification times).  These go on the run's `pipeline_run` context as custom
properties, written after the nodes ran: caching keys on a node's inputs and
properties, never on the run context, so a re-run with nothing changed is
still served from cache.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

from ml_metadata.proto import metadata_store_pb2

if TYPE_CHECKING:
    from pipeline.config import PipelineConfig
    from pipeline.lineage.store import Store

PROJECT = "tfx-kfp-reference"
PREFIX = "tfxp_"  # custom property names on the pipeline_run context
# A content digest is worth reading the data once; past this size it is not.
MAX_DIGEST_BYTES = 512 * 1024 * 1024
HERE = str(Path(__file__).resolve().parents[2])  # the checkout (or installed tree)


def project_version() -> str:
    """The installed project version (setup.py), or 'unknown'."""
    from importlib import metadata
    try:
        return metadata.version(PROJECT)
    except metadata.PackageNotFoundError:
        return "unknown"


def git_commit(directory: str = HERE) -> Optional[str]:
    """HEAD of the checkout the code ran from, '+dirty' when edited; None outside git.

    An image build without .git can set GIT_COMMIT instead.
    """
    if os.environ.get("GIT_COMMIT"):
        return os.environ["GIT_COMMIT"]
    try:
        head = subprocess.run(["git", "-C", directory, "rev-parse", "HEAD"],
                              capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        status = subprocess.run(
            ["git", "-C", directory, "status", "--porcelain", "--untracked-files=no",
             "--", "pipeline", "models", "components", "configs", "schemas"],
            capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    dirty = "+dirty" if status.returncode == 0 and status.stdout.strip() else ""
    return head.stdout.strip() + dirty


def data_digest(path: str) -> Optional[str]:
    """sha256 over the input files' names and bytes (local files only, bounded size)."""
    if "://" in path or not os.path.exists(path):
        return None
    files = ([path] if os.path.isfile(path) else sorted(
        os.path.join(d, f) for d, _, names in os.walk(path) for f in names))
    if sum(os.path.getsize(f) for f in files) > MAX_DIGEST_BYTES:
        return None
    digest = hashlib.sha256()
    for name in files:
        digest.update(os.path.relpath(name, os.path.dirname(path)).encode() + b"\0")
        with open(name, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    return "sha256:" + digest.hexdigest()


def run_provenance(cfg: "PipelineConfig", data_path: Optional[str] = None) -> dict[str, Any]:
    """The facts about code, config and data that TFX itself does not record."""
    from tfx import version as tfx_version

    data = cfg.resolve(data_path or cfg.data.path)
    config = cfg.model_dump(mode="json", by_alias=True)
    config_json = json.dumps(config, sort_keys=True)
    return {
        "project_version": project_version(),
        "git_commit": git_commit() or "unknown",
        "tfx_version": tfx_version.__version__,
        "python_version": platform.python_version(),
        "config": config_json,
        "config_sha256": hashlib.sha256(config_json.encode()).hexdigest(),
        "config_dir": cfg.base_dir,
        "data_path": data,
        "data_digest": data_digest(data) or "",
    }


def record_run(store: "Store", run_id: str, facts: dict[str, Any]) -> bool:
    """Adds the facts to the run's pipeline_run context; False when no node ran."""
    context = store.run_context(run_id)
    if context is None:
        return False
    for key, value in facts.items():
        context.custom_properties[PREFIX + key].string_value = str(value)
    store.store.put_contexts([context])
    return True


def read_run(context: metadata_store_pb2.Context) -> dict[str, str]:
    """The recorded facts of a pipeline_run context ({} for runs recorded elsewhere)."""
    return {k[len(PREFIX):]: v.string_value for k, v in context.custom_properties.items()
            if k.startswith(PREFIX)}
