"""The benchmark itself runs on a tiny input and writes its figures as JSON.
(Figures are printed by `make bench`; no timing is asserted here.)"""
import json

import pytest
import yaml

from benchmarks.bench import main
from pipeline.config import DEFAULT_CONFIG, load_config

pytestmark = pytest.mark.e2e


def test_benchmark_runs_on_a_tiny_input(tmp_path, capsys):
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["schema"] = load_config().schema_path
    raw["data"]["path"] = load_config().resolve(raw["data"]["path"])
    # 400 rows cannot meet the real bounds; any model with examples is blessed.
    raw["evaluation"]["thresholds"] = [{"metric": "ExampleCount", "lower": 1}]
    raw["training"].update(train_steps=20, eval_steps=2)
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(raw))
    out_json = tmp_path / "bench.json"
    assert main(["--rows", "400", "--repeat", "1", "--scales", "2", "--no-peer",
                 "--latency-repeats", "20", "--config", str(config),
                 "--workdir", str(tmp_path / "work"), "--output", str(out_json)]) == 0
    results = json.loads(out_json.read_text())
    assert results["rows"] == 400
    cold, cached = results["table"]["ours_cold"], results["table"]["ours_cached"]
    assert cold["components"]["Trainer"] > 0 and "Pusher" in cold["components"]
    assert cached["seconds"] > 0 and results["scaled"]["x2"]["exit_code"] == 0
    assert 0 <= results["quality"]["ours_auc"] <= 1
    assert results["serving"]["batch1_p50_ms"] > 0
    assert "Per component" in capsys.readouterr().out
