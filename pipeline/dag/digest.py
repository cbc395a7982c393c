"""Digests of the code a node runs, for the cache key and the lineage.

TFX hashes code into a node's cache key only when it is given a
`module_file`; model code passed by dotted path (as here, so the same module
runs from a checkout and inside the pipeline image) is not hashed at all, and
a re-run after an edit would be served from cache. `create_pipeline` puts the
digest of each node's code into that node's execution properties under
`code_digest`: locally TFX's cache key includes it, on Kubeflow it is a task
parameter and so part of KFP's cache key.

A node's code is a set of entry points (a module such as
`models.preprocessing`, or a whole package such as `components.data_gate`)
and every project module they import, followed through the source: editing
models/model.py changes the Trainer's digest, not the Transform's.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import os
from pathlib import Path
from typing import Iterable, Optional

CODE_DIGEST = "code_digest"
# The bytes of a file a node reads by path (the curated schema), in its cache key.
CONTENT_DIGEST = "content_digest"
# Execution properties that name project code TFX loads: a function by dotted
# path, or a module (the Evaluator's `custom_extractors`).
FUNCTION_PROPERTIES = ("preprocessing_fn", "stats_options_updater_fn", "run_fn", "trainer_fn",
                       "tuner_fn")
MODULE_PROPERTIES = ("module_path",)
# The top-level packages of project code; imports of anything else (TFX,
# TensorFlow, ...) are versions in the lock, not code to hash.
PROJECT_PACKAGES = ("models", "components")
_SKIP_DIRS = {"__pycache__", ".ipynb_checkpoints"}


@functools.lru_cache(maxsize=None)
def _top_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ValueError(f"{package!r} is not an importable package")
    return Path(list(spec.submodule_search_locations)[0])


def _source(dotted: str) -> Optional[Path]:
    """The file of a project module or package (its __init__), without importing it."""
    top, _, rest = dotted.partition(".")
    if top not in PROJECT_PACKAGES:
        return None
    base = _top_dir(top).joinpath(*rest.split(".")) if rest else _top_dir(top)
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _package_files(dotted: str) -> list[Path]:
    top, _, rest = dotted.partition(".")
    root = _top_dir(top).joinpath(*rest.split(".")) if rest else _top_dir(top)
    found = []
    for directory, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in _SKIP_DIRS)
        found += [Path(directory) / f for f in sorted(files)
                  if f.endswith(".py") and not f.startswith("test_")]
    return found


def _module_name(path: Path) -> str:
    for top in PROJECT_PACKAGES:
        root = _top_dir(top)
        if path.is_relative_to(root):
            parts = [top, *path.relative_to(root).with_suffix("").parts]
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    raise ValueError(f"{path} is not project code")


def _imports(path: Path) -> set[str]:
    """Project modules a file imports (absolute and relative), as dotted names."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_bytes(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")
                parent = parent[:len(parent) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    # Importing a.b.c runs a/__init__ and a/b/__init__ too.
    for name in list(names):
        parts = name.split(".")
        names.update(".".join(parts[:i]) for i in range(1, len(parts)))
    return {n for n in names if n.partition(".")[0] in PROJECT_PACKAGES}


def source_files(entries: Iterable[str]) -> list[Path]:
    """The files a node's code entries need: packages whole, modules with their imports."""
    pending: list[Path] = []
    for entry in entries:
        source = _source(entry)
        if source is None:
            raise ValueError(f"{entry!r} is not a module of {', '.join(PROJECT_PACKAGES)}")
        pending += _package_files(entry) if source.name == "__init__.py" else [source]
    seen: set[Path] = set()
    while pending:
        path = pending.pop()
        if path in seen:
            continue
        seen.add(path)
        pending += [p for p in map(_source, _imports(path)) if p is not None]
    return sorted(seen)


def code_digest(*entries: str) -> str:
    """A short sha256 over the entries' sources (module name and bytes of each file)."""
    digest = hashlib.sha256()
    for path in source_files(entries):
        digest.update(f"{_module_name(path)}\0".encode())
        digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


def file_digest(path: str) -> str:
    """A short sha256 of a file's bytes.

    TFX keys a node that reads a file by path (ImportSchemaGen) by the path
    alone: an edited file would be served from cache as the copy made before.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]
