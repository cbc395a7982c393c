"""`tfxp new-component` writes a component folder whose own test passes unchanged."""
import os
import subprocess
import sys

import pytest

from pipeline.cli.main import main
from pipeline.cli.new_component import class_name, scaffold
from pipeline.errors import ScaffoldError


def test_generated_component_passes_its_own_test(tmp_path):
    target = tmp_path / "components"
    assert main(["new-component", "label_audit", "--dir", str(target)]) == 0
    folder = target / "label_audit"
    assert sorted(os.listdir(folder)) == ["__init__.py", "component.py", "executor.py",
                                          "test_label_audit.py"]
    assert "class LabelAudit(base_component.BaseComponent)" in (folder / "component.py").read_text()
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(folder)],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "3 passed" in done.stdout


def test_never_overwrites_and_rejects_bad_names(tmp_path):
    scaffold("label_audit", str(tmp_path))
    with pytest.raises(ScaffoldError, match="already exists"):
        scaffold("label_audit", str(tmp_path))
    for bad in ("LabelAudit", "label-audit", "1st", "class"):
        with pytest.raises(ScaffoldError, match="lower_snake_case"):
            scaffold(bad, str(tmp_path))
    with pytest.raises(ScaffoldError):
        from argparse import Namespace

        from pipeline.cli.new_component import cmd_new_component
        cmd_new_component(Namespace(name="label_audit", dir=str(tmp_path)))


@pytest.mark.parametrize("name, what", [
    ("json", "standard library's 'json'"), ("os", "standard library"),
    ("sys", "standard library"), ("numpy", "installed module 'numpy'"),
    ("tfx", "installed module 'tfx'"), ("pipeline", "installed module 'pipeline'")])
def test_refuses_names_that_shadow_other_modules(tmp_path, capsys, name, what):
    assert main(["new-component", name, "--dir", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert f"'{name}' would shadow the {what}" in err and err.count("\n") == 1
    assert not (tmp_path / name).exists()


def test_class_name():
    assert class_name("label_audit") == "LabelAudit"
    assert class_name("drift2_check") == "Drift2Check"
