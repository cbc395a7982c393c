"""make bench's targets: a run that ends not blessed is timed, a failed one is not."""
from benchmarks.report import targets

QUALITY = {"ours_auc": 0.94, "peer_auc": 0.93}
LATENCY = {"batch1_p50_ms": 1.0}


def run(seconds: float, exit_code: int = 0, peak_mib: float = 1024.0) -> dict:
    return {"seconds": seconds, "exit_code": exit_code, "peak_mib": peak_mib}


def by_name(found: list[dict]) -> dict[str, dict]:
    return {t["target"].split(" <=")[0]: t for t in found}


def test_not_blessed_is_a_completed_run_and_an_error_is_not():
    table = {"ours_cold": run(100), "ours_cached": run(5), "peer": run(200)}
    found = by_name(targets(table, {"x100": run(450, exit_code=4, peak_mib=2048),
                                    "x10": run(250, exit_code=1)}, QUALITY, LATENCY))
    assert found["100x data"] == {"target": found["100x data"]["target"], "passed": True,
                                  "figure": "4.50x, peak 2.00 GiB (not blessed)"}
    assert found["10x data"]["figure"] == "failed (exit 1)"
    assert found["10x data"]["passed"] is False
    assert found["cold run"]["passed"] is False and found["cold run"]["figure"].startswith(
        "0.50x")
    assert found["unchanged re-run"]["passed"] is True


def test_the_memory_bound_holds_at_100x_only():
    table = {"ours_cold": run(100), "ours_cached": run(50)}
    found = by_name(targets(table, {"x100": run(400, peak_mib=4096), "x10": run(150,
                                                                                peak_mib=9000)},
                            QUALITY, LATENCY))
    assert found["100x data"]["passed"] is False and "4.00 GiB" in found["100x data"]["figure"]
    assert found["10x data"] == {"target": found["10x data"]["target"], "figure": "1.50x",
                                 "passed": True}
    assert found["cold run"]["figure"] == "not run"
    assert found["unchanged re-run"]["passed"] is False
