"""One store with three real runs, shared by the lineage and notebook tests:
a first run through `tfxp run` on a sample of the taxi CSV, a second on a
different sample (the data changed), and a third whose data the gate rejects."""
from __future__ import annotations

import dataclasses
import io
import os
from contextlib import redirect_stdout

import pytest

from pipeline.cli.main import main
from pipeline.config import load_config
from pipeline.layout import RunLayout
from pipeline.lineage.store import open_store_from
from tests.datasets import taxi_sample, unseen_category


@dataclasses.dataclass
class Runs:
    root: str
    paths: RunLayout
    csv: list[str]  # the data file of each run, in order
    run_ids: list[str]
    statuses: list[str]
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
    assert second.status in ("pushed", "not_blessed"), second.error
    assert rejected.status == "data_rejected"
    return Runs(root, RunLayout.under(root, cfg), csv,
                [first_id, second.run.run_id, rejected.run.run_id],
                ["pushed", second.status, rejected.status], out.getvalue(), cfg)


def served_version(paths) -> str:
    return max((v for v in os.listdir(paths.serving) if v.isdigit()), key=int)
