"""The model card writer runs where the Pusher runs (in the Kubeflow pod too), loaded
by the dotted path the DAG names: it obeys the pod's import rules, and writes
no record the readers in pipeline/lineage would share."""
from __future__ import annotations

import importlib
from pathlib import Path

from pipeline.pipeline import STAGE_FN
from tests.test_architecture import ROOT, imports

# What the pod may not import (tests/test_architecture.py's container rule).
POD_FORBIDDEN = ("pipeline.cli", "pipeline.local", "pipeline.lineage",
                 "pipeline.kubeflow.compiler", "pipeline.kubeflow.rehearse",
                 "pipeline.kubeflow.submit")


def project_imports(module: str, seen: set[str]) -> set[str]:
    """Every project module `module` imports, at any depth (lazy imports too)."""
    if module in seen:
        return seen
    seen.add(module)
    path = ROOT / Path(*module.split("."))
    source = path.with_suffix(".py") if path.with_suffix(".py").exists() else path / "__init__.py"
    if not source.exists():
        return seen
    for _, name in imports(source):
        for candidate in (name, name.rsplit(".", 1)[0]):
            root = candidate.split(".")[0]
            if root in ("pipeline", "models", "components") and (
                    (ROOT / Path(*candidate.split("."))).with_suffix(".py").exists()
                    or (ROOT / Path(*candidate.split(".")) / "__init__.py").exists()):
                project_imports(candidate, seen)
                break
    return seen


def test_the_stage_fn_the_pusher_loads_is_a_writer_the_pod_may_import():
    module, _, function = STAGE_FN.rpartition(".")
    assert callable(getattr(importlib.import_module(module), function))
    reached = project_imports(module, set())
    assert module in reached and len(reached) > 1
    bad = sorted(m for m in reached if any(m == f or m.startswith(f + ".")
                                           for f in POD_FORBIDDEN))
    assert bad == [], f"{STAGE_FN} reaches {bad}"
