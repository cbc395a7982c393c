"""RunLayout: every path under a run root, from the root and the config alone."""
import os

from pipeline.config import load_config
from pipeline.layout import RehearsalLayout, RunLayout, default_root, spec_path


def test_paths_under_a_root(tmp_path):
    cfg = load_config()
    layout = RunLayout.under(str(tmp_path / "r"), cfg)
    root = str(tmp_path / "r")
    assert layout.root == root
    assert layout.pipeline_root == os.path.join(root, "pipeline")
    assert layout.metadata == os.path.join(root, "metadata.sqlite")
    assert layout.serving == os.path.join(root, "serving", cfg.serving.model_name)
    assert layout.report("2026-11-28T09:00:00") == os.path.join(
        root, "reports", "run-2026-11-28T09_00_00.html")
    draft = layout.schema_draft
    assert draft.metadata == os.path.join(root, "schema-draft", "metadata.sqlite")
    assert draft.pipeline_root.startswith(draft.root) and draft.root != root


def test_default_root_and_relative_roots_are_absolute(tmp_path, monkeypatch):
    cfg = load_config()
    monkeypatch.chdir(tmp_path)
    assert RunLayout.under(None, cfg).root == default_root(cfg) == os.path.join(
        str(tmp_path), "runs", cfg.pipeline_name)
    assert RunLayout.under("elsewhere", cfg).root == str(tmp_path / "elsewhere")
    assert spec_path(cfg) == os.path.join(str(tmp_path), "build", f"{cfg.pipeline_name}.kfp.yaml")


def test_a_configured_serving_base_path_is_kept(tmp_path):
    cfg = load_config(overrides={"serving.base_path": str(tmp_path / "models")})
    assert RunLayout.under(str(tmp_path / "r"), cfg).serving == str(tmp_path / "models")
    assert RunLayout.at(str(tmp_path / "r")).serving is None


def test_rehearsal_paths(tmp_path):
    rehearsal = RehearsalLayout(str(tmp_path / "w"))
    assert rehearsal.launcher == str(tmp_path / "w" / "launcher")
    assert rehearsal.task_log("Trainer") == str(tmp_path / "w" / "tasks" / "Trainer" / "log.txt")
    assert rehearsal.executor_output("Trainer").endswith("Trainer/executor_output.json")
    assert rehearsal.volume("pvc") == str(tmp_path / "w" / "volumes" / "pvc")
