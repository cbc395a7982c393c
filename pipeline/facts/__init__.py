"""Facts about the code and data a run used, gathered where the run happens.

`tfxp run` gathers them on this machine and a Kubeflow task in its pod, so
both record the same: the project version, the git commit (from the checkout,
or baked into the image at build time as GIT_COMMIT), and a content digest of
the input data.  `gather` builds them, once for both: `tfxp run` records
them on the run's context (`pipeline.lineage.provenance`), a Kubeflow task as
its output's metadata (`pipeline.kubeflow.container.entrypoint`).
"""
from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from pathlib import Path
from typing import Optional

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


def gather(config_json: str, data: str, data_path: Optional[str] = None) -> dict[str, str]:
    """The facts about code, config and data that TFX itself does not record.

    `config_json` is the config as the run uses it, `data` the file or directory
    the run reads (digested here) and `data_path` how to name it (default `data`).
    """
    from tfx import version as tfx_version

    return {
        "project_version": project_version(),
        "git_commit": git_commit() or "unknown",
        "tfx_version": tfx_version.__version__,
        "python_version": platform.python_version(),
        "config": config_json,
        "config_sha256": hashlib.sha256(config_json.encode()).hexdigest() if config_json else "",
        "data_path": data if data_path is None else data_path,
        "data_digest": data_digest(data) or "",
    }


def as_properties(facts: dict[str, object]) -> dict[str, str]:
    """Facts under their recorded names (`tfxp_<fact>`), as strings."""
    return {PREFIX + k: str(v) for k, v in facts.items()}
