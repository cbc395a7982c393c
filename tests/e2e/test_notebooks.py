"""The three notebooks, executed top to bottom against a store of real runs
(tests/lineage_runs.py); any error in any cell fails the test."""
import os
import re

import pytest

NOTEBOOKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "notebooks")
pytestmark = pytest.mark.e2e


def execute(name: str, env: dict[str, str]):
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(os.path.join(NOTEBOOKS, name), as_version=4)
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1 and "RUN_ROOT" in params[0].source
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": NOTEBOOKS}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/html", ""))
                     for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))


def test_data_validation_notebook(lineage_runs):
    out = execute("data_validation.ipynb",
                  {"RUN_ROOT": lineage_runs.root, "RUN": lineage_runs.run_ids[2]})
    assert lineage_runs.run_ids[2] in out
    assert "payment_type" in out and "anomalies" in out  # the rejected run's unseen value
    assert "<svg" in out and "trip_miles" in out


def test_model_analysis_notebook(lineage_runs):
    out = execute("model_analysis.ipynb",
                  {"RUN_ROOT": lineage_runs.root, "RUN": lineage_runs.run_ids[0]})
    assert "false positive rate by trip_start_hour" in out
    assert "payment_type=Credit Card" in out and "threshold 0.15" in out
    # The verdict line itself ("NOT BLESSED" also holds the word).
    assert re.search(r"^BLESSED$", out, re.M) and "NOT BLESSED" not in out


def test_lineage_notebook(lineage_runs):
    out = execute("lineage.ipynb", {"RUN_ROOT": lineage_runs.root, "RUN": ""})
    assert "<svg" in out and "Lineage of the served model" in out
    assert all(run_id in out for run_id in lineage_runs.run_ids)
    assert "fingerprint: CHANGED" in out  # the last two runs read different files
