"""Nothing changed since the last run: its outcome stands, without starting TFX.

An unchanged re-run is a cache hit in TFX (every node comes from cache), but
getting that answer costs importing TensorFlow, TFX and Beam, which is most of
its wall time. So before any of that, `tfxp run` compares a key of everything
that decides a run's result with the key the last completed run on this root
recorded (ROOT/last-run.json):

  - the configuration as loaded (every setting) and the curated schema's bytes;
  - the data files: paths, sizes and modification times, which is what TFX's
    ExampleGen driver fingerprints to decide that the input is the same span;
  - the project's code (every module of its packages) and the versions of the
    libraries that run it;
  - what is served (`components.atomic_pusher.served_state`): TF Serving's
    models.config and the version directories, as the last run left them (a
    push, promote, rollback or an edit by hand since changes it);
  - the ML Metadata store holding that run (the same file, the run still in it).

Equal keys mean TFX would take every node from cache and reach the same
outcome, so that outcome is printed again and nothing is recorded. Any
difference, a killed run (the record is removed when a run starts and written
only when one completes), or `--recheck` goes through TFX as before.
"""
from __future__ import annotations

import dataclasses
import hashlib
import importlib.metadata
import json
import os
from pathlib import Path
from typing import Any, Optional

from pipeline.config import PipelineConfig
from pipeline.layout import RunLayout

# Outcomes that TFX would reach again from cache; a failed run re-runs its failed node.
REPEATABLE = ("pushed", "unchanged", "already_serving", "not_blessed")
LIBRARIES = ("tfx", "tensorflow", "tensorflow-transform", "tensorflow-model-analysis",
             "tensorflow-data-validation", "tfx-bsl", "apache-beam", "ml-metadata")
PACKAGES = ("components", "models", "pipeline")
_PROJECT = Path(__file__).resolve().parents[2]


@dataclasses.dataclass(frozen=True)
class Previous:
    """The last completed run whose key equals this one's."""

    run_id: str
    status: str
    exit_code: int
    summary: str
    report: Optional[str]


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def _stat(path: str) -> Any:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_size, st.st_mtime_ns]


def _code() -> str:
    sha = hashlib.sha256()
    for package in PACKAGES:
        for path in sorted((_PROJECT / package).rglob("*.py")):
            sha.update(str(path.relative_to(_PROJECT)).encode() + b"\0" + path.read_bytes())
    return sha.hexdigest()


def _libraries() -> dict[str, Optional[str]]:
    found: dict[str, Optional[str]] = {}
    for name in LIBRARIES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def inputs_key(cfg: PipelineConfig, files: Optional[list[str]]) -> Optional[str]:
    """What a run starts from: configuration, schema, data files (`cfg.data_files`), code
    and libraries. None for data that is not local files: never taken as unchanged."""
    if files is None:
        return None
    schema = cfg.schema_path
    return _digest({
        "config": cfg.model_dump(mode="json"),
        "schema": hashlib.sha256(Path(schema).read_bytes()).hexdigest()
        if os.path.isfile(schema) else None,
        "data": {path: _stat(path) for path in files},
        "code": _code(),
        "libraries": _libraries(),
    })


def serving_key(layout: RunLayout) -> str:
    """What is served, as the one reader of served state reads it: models.config as
    written, the version directories, and any push that died before its config."""
    from components.atomic_pusher import served_state

    base = layout.serving
    if not base or not os.path.isdir(base):
        return _digest(None)
    return _digest(served_state.read(base).key())


def _store(layout: RunLayout) -> Optional[int]:
    try:
        return os.stat(layout.metadata).st_ino
    except OSError:
        return None


def _store_has_run(layout: RunLayout, run_id: str) -> bool:
    """The run is still in the store (ml_metadata alone, no TFX)."""
    from pipeline.errors import StoreError
    from pipeline.lineage.store import RUN_CONTEXT_TYPE, open_store, sqlite_connection
    try:
        store = open_store(sqlite_connection(layout.metadata, must_exist=True))
        return store.get_context_by_type_and_name(RUN_CONTEXT_TYPE, run_id) is not None
    except StoreError:
        return False


def forget(layout: RunLayout) -> None:
    """A run is starting: whatever was recorded no longer describes the root."""
    try:
        os.remove(layout.last_run)
    except FileNotFoundError:
        pass


def lookup(layout: RunLayout, inputs: Optional[str]) -> Optional[Previous]:
    """The last completed run, if nothing that decides a run's result changed since."""
    if inputs is None:
        return None
    try:
        record = json.loads(Path(layout.last_run).read_text())
        previous = Previous(**record["outcome"])
        same = (record["inputs"] == inputs and record["serving"] == serving_key(layout)
                and record["store"] == _store(layout))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return previous if same and _store_has_run(layout, previous.run_id) else None


def record(layout: RunLayout, inputs: Optional[str], previous: Previous) -> None:
    """After a completed run: the key the next run compares with (written atomically)."""
    if inputs is None or previous.status not in REPEATABLE:
        return
    content = {"inputs": inputs, "serving": serving_key(layout), "store": _store(layout),
               "outcome": dataclasses.asdict(previous)}
    partial = f"{layout.last_run}.partial"
    with open(partial, "w") as f:
        json.dump(content, f, indent=1)
    os.replace(partial, layout.last_run)
