"""The benchmark itself runs on a tiny input and writes its figures as JSON.
(Figures are printed by `make bench`; no timing is asserted here.)"""
import json
import xml.etree.ElementTree as ET

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
                 # predict's throughput is measured by `make bench`; here, that it runs.
                 "--predict-rows", "500,1000",
                 "--workdir", str(tmp_path / "work"), "--output", str(out_json)]) == 0
    results = json.loads(out_json.read_text())
    assert results["rows"] == 400
    cold, cached = results["table"]["ours_cold"], results["table"]["ours_cached"]
    assert cold["components"]["Trainer"] > 0 and "Pusher" in cold["components"]
    assert cached["seconds"] > 0 and results["scaled"]["x2"]["exit_code"] == 0
    assert 0 <= results["quality"]["ours_auc"] <= 1
    assert results["serving"]["batch1_p50_ms"] > 0
    assert [(p["rows"], p["exit_code"]) for p in results["predict"].values()] == [
        (500, 0), (1000, 0)]
    # Memory per component, from the process tree's samples within each execution.
    assert set(cold["component_peak_mib"]) == set(cold["components"])
    assert cold["component_peak_mib"]["Trainer"] > 100  # TensorFlow alone is more than that
    assert cold["peak_mib"] >= max(cold["component_peak_mib"].values())
    assert cold["peak_mib"] >= cold["max_process_mib"] > 0
    assert cold["outside_components"]["seconds"] > 0
    # The re-run is measured by what it did, not by the cold run's executions.
    assert cached["components"].get("Transform") != cold["components"]["Transform"]
    x2 = results["scaled"]["x2"]
    assert x2["rows"] == 800 and x2["component_peak_mib"]["Trainer"] > 100
    # Scored again at its own size, on that size's eval examples; it pushed, so it
    # reached the Pusher.
    assert 0 <= x2["auc"] <= 1 and x2["reached"] == "Pusher" and x2["timed_out"] is False
    assert results["peer_scaled"] == {}
    verdicts = {t["target"]: t for t in results["targets"]}
    assert verdicts["100x data <= 5x cold, peak RSS <= 2.5 GiB"]["figure"] == "not run"
    assert verdicts["1000x: blessed and pushed, <= 20 min, peak <= 3 GiB"]["figure"] == "not run"
    assert verdicts["cold run <= 0.3x TFX's example, AUC >= example's - 0.005"]["passed"] is None
    # The verdict is the bound applied to the two measured times, as the figure shows them.
    rerun = verdicts["unchanged re-run <= 0.15x cold"]
    x = cached["seconds"] / cold["seconds"]
    assert rerun["figure"] == f"{x:.2f}x" and rerun["passed"] is (x <= 0.15)
    # The chart beside the JSON, two panels: time (our total at 400 and 800 rows,
    # and components) and the process tree's peak memory at the same sizes.
    svg = ET.parse(tmp_path / "bench.svg").getroot()
    assert results["chart"] == str(tmp_path / "bench.svg")
    time_panel, memory_panel = svg.findall("{http://www.w3.org/2000/svg}svg")
    for panel, drawn in ((time_panel, lambda r: r["seconds"]),
                         (memory_panel, lambda r: r["peak_mib"])):
        series = {g.get("data-name"): g for g in panel.iter("{http://www.w3.org/2000/svg}g")
                  if g.get("class") == "series"}
        assert "ours" in series and "TFX example" not in series
        points = [(float(c.get("data-x")), float(c.get("data-y")))
                  for c in series["ours"].iter("{http://www.w3.org/2000/svg}circle")]
        assert points == [(400, pytest.approx(drawn(cold), rel=1e-3)),
                          (800, pytest.approx(drawn(x2), rel=1e-3))]
    time_series = [g.get("data-name") for g in time_panel.iter("{http://www.w3.org/2000/svg}g")
                   if g.get("class") == "series"]
    assert 1 <= len([n for n in time_series if n.startswith("ours, ")]) <= 5
    out = capsys.readouterr().out
    assert "Per component" in out and "Scale x2 (800 rows" in out and "not run" in out
