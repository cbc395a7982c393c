"""One store with three real runs, shared by the lineage and notebook tests:
a first run through `tfxp run` on a sample of the taxi CSV, a second on a
different sample (the data changed), and a third whose data the gate rejects."""
from __future__ import annotations

import dataclasses
import io
import os
import shutil
from contextlib import redirect_stderr, redirect_stdout

import pytest

from pipeline.cli.main import main
from pipeline.config import load_config
from pipeline.layout import RunLayout
from pipeline.lineage.store import open_store, open_store_from, sqlite_connection
from tests.datasets import taxi_sample, unseen_category


@dataclasses.dataclass
class Runs:
    root: str
    paths: RunLayout
    csv: list[str]  # the data file of each run, in order
    run_ids: list[str]
    statuses: list[str]  # pushed, pushed, data_rejected
    first_output: str  # what `tfxp run` printed
    cfg: object  # the PipelineConfig the runs used (the file may change meanwhile)


def _last_rows_dropped(header, rows):
    return header, rows[:-50]  # a different file, the same distribution


@pytest.fixture(scope="session")
def lineage_runs(tmp_path_factory) -> Runs:
    from pipeline.local.run import run_pipeline  # loads TFX: only when used
    cfg = load_config()
    root = str(tmp_path_factory.mktemp("lineage-root"))
    data = tmp_path_factory.mktemp("lineage-data")
    csv = [taxi_sample(str(data / "first"), every=3),
           taxi_sample(str(data / "second"), every=3, change=_last_rows_dropped),
           taxi_sample(str(data / "rejected"), every=3,
                       change=unseen_category("payment_type", "Bitcoin"))]
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["run", "--root", root, "--data", csv[0]])
    assert code == 0, out.getvalue()
    first_id = open_store_from(root).find_run("latest").name
    second = run_pipeline(cfg, root, data_path=csv[1])
    rejected = run_pipeline(cfg, root, data_path=csv[2])
    # The second model is judged against the first (the served baseline) and
    # passes: the tests read the baseline path and the second push.
    assert second.status == "pushed", (second.status, second.error, second.evaluation)
    assert rejected.status == "data_rejected", (rejected.status, rejected.error)
    return Runs(root, RunLayout.under(root, cfg), csv,
                [first_id, second.run.run_id, rejected.run.run_id],
                ["pushed", second.status, rejected.status], out.getvalue(), cfg)


def tfxp(*argv: str) -> tuple[int, str, str]:
    """`tfxp ARGV` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def jobs_root(runs: "Runs", target) -> str:
    """The shared root's store and serving base path copied to `target`, for jobs
    after the push (predict, evaluate) that record runs the lineage tests must
    not see."""
    shutil.copy(runs.paths.metadata, os.path.join(target, os.path.basename(runs.paths.metadata)))
    serving = runs.paths.serving
    shutil.copytree(serving, os.path.join(target, os.path.relpath(serving, runs.root)),
                    symlinks=True)
    return str(target)


def served_version(paths) -> str:
    return max((v for v in os.listdir(paths.serving) if v.isdigit()), key=int)


def copy_root(root: str, target: str, own_artifacts: bool = True) -> str:
    """A copy of a run root, for a test that changes a root without touching the
    shared one: its records (models.config, the JSON files) name the copy.

    With `own_artifacts`, the store names the copy's artifacts too (every URI
    and string property under `root` rewritten), for a test that moves or
    deletes them. Without, the store is left byte for byte: TFX's cache key
    hashes the input artifacts, URIs included, so a run on the copy is served
    from cache as on the original; it reads the original's artifacts and
    writes its own under the copy."""
    shutil.copytree(root, target, symlinks=True, ignore=shutil.ignore_patterns("run.lock"))
    old, new = os.path.join(root, ""), os.path.join(target, "")
    for directory, _, files in os.walk(target):
        if os.path.relpath(directory, target).split(os.sep)[0] == "pipeline":
            continue  # artifacts: the store names them
        for name in files:
            if name.endswith((".json", ".config")):
                path = os.path.join(directory, name)
                with open(path, encoding="utf-8") as f:
                    text = f.read()
                if old in text:
                    with open(path, "w", encoding="utf-8") as f:
                        f.write(text.replace(old, new))
    if not own_artifacts:
        return target
    store = open_store(sqlite_connection(os.path.join(target, "metadata.sqlite"),
                                         must_exist=True))
    changed = []
    for artifact in store.get_artifacts():
        before = artifact.SerializeToString()
        if artifact.uri.startswith(old):
            artifact.uri = new + artifact.uri[len(old):]
        for properties in (artifact.properties, artifact.custom_properties):
            for value in properties.values():
                if value.HasField("string_value") and old in value.string_value:
                    value.string_value = value.string_value.replace(old, new)
        if artifact.SerializeToString() != before:
            changed.append(artifact)
    store.put_artifacts(changed)
    return target
