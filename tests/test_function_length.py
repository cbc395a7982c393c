"""Functions that fit on a screen: none in the project's code grows past 120 lines
(about 80 is the aim). Read from the source, so a long function is named here
with its file and line before review has to scroll through it."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIMIT = 120


def long_functions(packages: tuple[str, ...], limit: int = LIMIT, root: Path = ROOT) -> list[str]:
    found = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            if path.name.startswith("test_"):
                continue
            for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
                if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    lines = node.end_lineno - node.lineno + 1
                    if lines > limit:
                        found.append(f"{path.relative_to(root)}:{node.lineno} {node.name} "
                                     f"({lines} lines)")
    return found


def test_the_check_sees_a_long_function(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(LIMIT))
    (package / "long.py").write_text(f"def long():\n{body}\n\n\ndef short():\n    pass\n")
    assert long_functions(("pkg",), root=tmp_path) == [f"pkg/long.py:1 long ({LIMIT + 1} lines)"]


def test_no_function_is_longer_than_a_screen_or_two():
    assert long_functions(("pipeline", "components", "models", "benchmarks")) == []
