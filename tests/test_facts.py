"""Run facts are built in one place (`pipeline.facts.gather`), for `tfxp run`
and for a Kubeflow task alike, so both record the same facts the same way."""
from __future__ import annotations

import json

import pipeline.facts
from pipeline.config import load_config
from pipeline.kubeflow.container.entrypoint import provenance
from pipeline.lineage.provenance import run_provenance


def test_local_and_pod_facts_come_from_one_builder(monkeypatch, tmp_path):
    calls = []

    def gather(config_json, data, data_path=None):
        calls.append((config_json, data, data_path))
        return {"built_by": "gather"}

    monkeypatch.setattr(pipeline.facts, "gather", gather)
    cfg = load_config()
    assert run_provenance(cfg) == {"built_by": "gather", "config_dir": cfg.base_dir}
    (tmp_path / "data.csv").write_text("a\n1\n")
    monkeypatch.setenv("TFXP_CONFIG", '{"pipeline_name": "p"}')
    executor_input = {"inputs": {"parameterValues": {
        "input_base": str(tmp_path),
        "input_config": json.dumps({"splits": [{"name": "s", "pattern": "data.csv"}]})}}}
    assert provenance(executor_input) == {"tfxp_built_by": "gather"}
    local, pod = calls
    assert json.loads(local[0])["pipeline_name"] == cfg.pipeline_name
    assert local[1] == cfg.resolve(cfg.data.path)
    assert pod == ('{"pipeline_name": "p"}', str(tmp_path / "data.csv"),
                   str(tmp_path / "data.csv"))


def test_the_facts_name_code_config_and_data(tmp_path):
    (tmp_path / "data.csv").write_text("a\n1\n")
    facts = pipeline.facts.gather('{"x": 1}', str(tmp_path / "data.csv"), "/data/x.csv")
    assert set(facts) == {"project_version", "git_commit", "tfx_version", "python_version",
                          "config", "config_sha256", "data_path", "data_digest"}
    assert facts["data_path"] == "/data/x.csv"
    assert facts["data_digest"].startswith("sha256:")
    assert pipeline.facts.as_properties({"a": 1}) == {"tfxp_a": "1"}
