"""The shape of the code: which package may import which, one ML Metadata
constructor, one owner of a run root's paths.  Read from the source (ast), so a
new import that breaks a rule fails here with the file and line named."""
from __future__ import annotations

import ast
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def modules(*packages: str, tests: bool = False) -> list[Path]:
    """The .py files of the packages (test files excluded unless asked for)."""
    found = []
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            if tests or not path.name.startswith("test_"):
                found.append(path)
    return found


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file, at any depth (lazy imports too)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the file's package
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            out.append((node.lineno, base))
            out += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    return out


def offenders(files: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return [f"{path.relative_to(ROOT)}:{line} imports {name}"
            for path in files for line, name in imports(path)
            if any(name == f or name.startswith(f + ".") for f in forbidden)]


def test_imports_are_read_from_the_source():
    found = dict((name, line) for line, name in imports(ROOT / "pipeline" / "cli" / "main.py"))
    assert "pipeline.errors.TfxpError" in found and "pipeline.cli.run" in found


@pytest.mark.parametrize("packages, forbidden", [
    # What runs in the pod: TFX and the model code, not the laptop side.
    (("pipeline/kubeflow/container",), ("pipeline.cli", "pipeline.local", "pipeline.lineage",
                                        "pipeline.kubeflow.compiler", "pipeline.kubeflow.rehearse",
                                        "pipeline.kubeflow.submit")),
    # Model code and components are loaded by TFX anywhere: no runner, no command line.
    (("models", "components"), ("pipeline",)),
    # The lineage package reads stores; it never runs or compiles a pipeline.
    (("pipeline/lineage",), ("pipeline.local", "pipeline.kubeflow", "pipeline.cli",
                             "pipeline.pipeline")),
    # Runners build on the DAG, never on each other or on the command line.
    (("pipeline/local",), ("pipeline.kubeflow", "pipeline.cli")),
    (("pipeline/kubeflow",), ("pipeline.local", "pipeline.cli")),
    # What defines the DAG knows nothing of how it is run or read back.
    (("pipeline/config.py", "pipeline/pipeline.py", "pipeline/dag", "pipeline/layout.py",
      "pipeline/errors.py"),
     ("pipeline.local", "pipeline.kubeflow", "pipeline.lineage", "pipeline.cli")),
])
def test_dependencies_point_one_way(packages, forbidden):
    files = [ROOT / p for p in packages if p.endswith(".py")] + modules(
        *[p for p in packages if not p.endswith(".py")])
    assert files
    assert offenders(files, forbidden) == []


def test_nothing_imports_the_command_line():
    outside = [p for p in modules("pipeline", "models", "components", "benchmarks")
               if "cli" not in p.relative_to(ROOT).parts and p.name != "__main__.py"]
    assert offenders(outside, ("pipeline.cli",)) == []


def test_ml_metadata_stores_are_constructed_in_one_module():
    constructs = re.compile(r"\bMetadataStore\(")
    found = [str(p.relative_to(ROOT)) for p in modules("pipeline", "components", "benchmarks")
             if constructs.search(p.read_text())]
    assert found == [os.path.join("pipeline", "lineage", "store.py")]


def test_the_paths_of_a_run_root_are_named_in_layout_only():
    # The names of what lives under a run root, as string literals.
    names = {"metadata.sqlite", "schema-draft", "reports", "rehearsal", "volumes", "launcher"}
    found = []
    for path in modules("pipeline"):
        if path.name == "layout.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in names:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value!r}")
    assert found == []


def test_pipeline_top_level_stays_small():
    # What ARCHITECTURE.md draws at the top; everything else lives in a package.
    top = sorted(p.name for p in (ROOT / "pipeline").glob("*.py"))
    assert top == ["__init__.py", "__main__.py", "config.py", "errors.py", "layout.py",
                   "pipeline.py"]
    assert not [n for n in os.listdir(ROOT / "pipeline")
                if n.startswith(("kfp_", "lineage_", "kubeflow_"))]


# --------------------------------------------------------------------------- at run time

# What a pod runs: TFX and the model code, never the laptop side.
POD_FORBIDDEN = ("pipeline.cli", "pipeline.local", "pipeline.kubeflow.compiler",
                 "pipeline.kubeflow.rehearse", "pipeline.kubeflow.submit")
# TFX's tasks and their project code: not the store's readers either.
TASK_FORBIDDEN = POD_FORBIDDEN + ("pipeline.lineage",)
# The one task that reads the run back (as `tfxp report` does) and publishes it
# in KFP's types: pipeline.kubeflow.report_task.
READER_TASKS = {"RunReport"}
DOTTED = re.compile(r"\b(?:models|components|pipeline)(?:\.[A-Za-z_][A-Za-z0-9_]*)+")


def module_file(dotted: str) -> tuple[str, Path] | None:
    """The project module a dotted path names (a module, or an attribute of one)."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:n])
        for path in (base.with_suffix(".py"), base / "__init__.py"):
            if path.is_file():
                return ".".join(parts[:n]), path
    return None


def closure(module: str) -> dict[str, Path]:
    """A project module and every project module it imports, at any depth."""
    found: dict[str, Path] = {}
    todo = [module]
    while todo:
        resolved = module_file(todo.pop())
        if resolved is None or resolved[0] in found:
            continue
        name, path = resolved
        found[name] = path
        todo += [imported for _, imported in imports(path)]
        # A package's __init__ runs before any of its modules.
        parent = name.rpartition(".")[0]
        if parent:
            todo.append(parent)
    return found


def strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def dotted_paths(spec: dict) -> dict[str, set[str]]:
    """task -> the project code its container loads by name: `python -m` modules,
    executor classes, and what its parameters name (run_fn, module_path, stage_fn,
    metric modules inside the EvalConfig's JSON, ...)."""
    executors = spec["deploymentSpec"]["executors"]
    found: dict[str, set[str]] = {}
    for name, task in spec["root"]["dag"]["tasks"].items():
        label = spec["components"][task["componentRef"]["name"]]["executorLabel"]
        texts = strings(executors[label]) + strings(task.get("inputs", {}).get("parameters", {}))
        found[name] = {m for text in texts for m in DOTTED.findall(text) if module_file(m)}
    return found


@pytest.fixture(scope="module")
def compiled_spec(tmp_path_factory):
    """The shipped config compiled as `tfxp compile` does (its data named on the cluster)."""
    from pipeline.kubeflow.compiler import cluster_config, compile_spec

    cfg = cluster_config(str(ROOT / "configs" / "taxi.yaml"))
    cfg = cfg.model_copy(update={"kubeflow": cfg.kubeflow.model_copy(
        update={"data_path": "/data/taxi/data.csv"})})
    spec, _ = compile_spec(cfg)
    return spec


def test_the_compiled_spec_names_the_code_it_loads(compiled_spec):
    paths = dotted_paths(compiled_spec)
    assert "models.model.run_fn" in paths["Trainer"]
    assert "models.preprocessing.preprocessing_fn" in paths["Transform"]
    assert "models.extractors" in paths["Evaluator"]
    assert "pipeline.kubeflow.container.entrypoint" in paths["Pusher"]
    assert "pipeline.kubeflow.report_task" in paths["RunReport"]


def test_what_the_pod_loads_by_name_obeys_the_import_rules(compiled_spec):
    """The rules above read the source; a dotted path in the spec is an import too,
    made in the pod (e.g. the Pusher's stage_fn): the same rules hold for it and for
    everything it imports."""
    problems = []
    for task, names in sorted(dotted_paths(compiled_spec).items()):
        forbidden = POD_FORBIDDEN if task in READER_TASKS else TASK_FORBIDDEN
        for dotted in sorted(names):
            for module, path in sorted(closure(dotted).items()):
                if any(module == f or module.startswith(f + ".") for f in forbidden):
                    problems.append(f"task {task}: {dotted} loads {module} "
                                    f"({path.relative_to(ROOT)})")
    assert problems == []
