"""Before a local run starts: every place it will write can be written.

A read-only serving base path used to surface in the Pusher, after the whole
pipeline had run. Each target is probed where it will be created (its nearest
existing directory) with a real, nameless temporary file, so permissions,
read-only mounts and a file in the way all read as they would to the run.
"""
from __future__ import annotations

import errno
import os
import tempfile
from typing import TYPE_CHECKING, Iterable, Optional

from pipeline.errors import ConfigError

if TYPE_CHECKING:
    from pipeline.config import PipelineConfig
    from pipeline.layout import RunLayout

_WHY = {errno.EROFS: "on a read-only file system", errno.EACCES: "permission denied",
        errno.EPERM: "permission denied", errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "disk quota exceeded"}


def why_unwritable(path: str, directory: bool = True) -> Optional[str]:
    """Why `path` (a directory, or with `directory=False` a file) cannot be
    created or written, or None when it can. Object-store URIs are not probed."""
    if "://" in path:
        return None
    path = os.path.abspath(path)
    if os.path.exists(path):
        if directory and not os.path.isdir(path):
            return f"{path} is a file, not a directory"
        if not directory and os.path.isdir(path):
            return f"{path} is a directory, not a file"
    probe = path if directory else os.path.dirname(path)
    while not os.path.exists(probe):
        probe = os.path.dirname(probe)
    if not os.path.isdir(probe):
        return f"{probe} is a file, so nothing can be created below it"
    try:
        with tempfile.TemporaryFile(dir=probe):
            pass
    except OSError as e:
        return f"{probe} cannot be written ({_WHY.get(e.errno, e.strerror or str(e))})"
    return None


def require_writable(targets: Iterable[tuple[str, str, bool]]) -> None:
    """A ConfigError naming each (key, path, is_directory) that cannot be written."""
    problems = [f"{key}: {path}: {why}" for key, path, directory in targets
                if (why := why_unwritable(path, directory))]
    if problems:
        raise ConfigError("\n".join(problems))


def run_targets(cfg: "PipelineConfig", layout: "RunLayout") -> list[tuple[str, str, bool]]:
    """Where `tfxp run` writes: the run root, and the serving base path when the
    config puts it elsewhere (under the root, the root's check covers it)."""
    targets = [("--root", layout.root, True)]
    if cfg.serving.base_path and layout.serving:
        targets.append(("serving.base_path", layout.serving, True))
    return targets


def require_run_writable(cfg: "PipelineConfig", layout: "RunLayout") -> None:
    """The run root and the serving base path can be written, before anything runs;
    and the serving files the Pusher rewrites (models.config, the stable history)
    parse, or the run would train for a push that cannot happen (StateError naming
    the file and its repair)."""
    require_writable(run_targets(cfg, layout))
    if layout.serving:
        from components.atomic_pusher.served_state import ServedStateError, read
        from pipeline.errors import StateError
        try:
            read(layout.serving).require_readable()
        except ServedStateError as e:
            raise StateError(str(e)) from None
