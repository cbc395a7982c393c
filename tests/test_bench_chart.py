"""The benchmark's pure parts: the SVG chart of time against data size, read
back as XML, and how a process tree's memory samples are given to components."""
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET

from benchmarks.chart import HEIGHT, Series, log_ticks, short_number, stacked, svg_chart
from benchmarks.memory import TreeSampler, outside_windows, peaks_by_window, tree_pids

NS = {"svg": "http://www.w3.org/2000/svg"}
# How long a step may take before the test calls it hung (a bound, not a speed check).
HANG_SECONDS = 60


def chart(series) -> ET.Element:
    return ET.fromstring(svg_chart(series, "Wall time against data size (2 cores)",
                                   "rows of data (log scale)", "wall seconds (log scale)"))


def texts(root: ET.Element, cls: str) -> list[str]:
    return [t.text for t in root.iter(f"{{{NS['svg']}}}text") if t.get("class") == cls]


def series_points(root: ET.Element) -> dict[str, list[tuple[float, float, float, float]]]:
    """name -> [(x, y, cx, cy)] in document order."""
    return {g.get("data-name"): [(float(c.get("data-x")), float(c.get("data-y")),
                                  float(c.get("cx")), float(c.get("cy")))
                                 for c in g.findall("svg:circle", NS)]
            for g in root.iter(f"{{{NS['svg']}}}g") if g.get("class") == "series"}


def test_every_series_is_drawn_in_x_order_with_its_points():
    root = chart([Series("ours, total", [(150_000, 90.0), (15_000, 30.0), (1_500_000, 400.0)]),
                  Series("TFX example, total", [(15_000, 100.0)]),
                  Series("ours, Trainer", [(15_000, 10.0), (150_000, 12.0)], dashed=True)])
    found = series_points(root)
    assert list(found) == ["ours, total", "TFX example, total", "ours, Trainer"]
    ours = found["ours, total"]
    assert [p[0] for p in ours] == [15_000, 150_000, 1_500_000]
    # Screen x grows with rows; screen y shrinks (upwards) as seconds grow.
    assert ours[0][2] < ours[1][2] < ours[2][2]
    assert ours[0][3] > ours[1][3] > ours[2][3]
    # Same x, same column, whichever series.
    assert found["TFX example, total"][0][2] == ours[0][2]
    polyline = root.find("svg:g[@data-name='ours, total']/svg:polyline", NS)
    assert len(polyline.get("points").split()) == 3
    assert root.find("svg:g[@data-name='ours, Trainer']/svg:polyline", NS).get(
        "stroke-dasharray")


def test_axes_ticks_legend_and_title_are_labelled():
    root = chart([Series("ours, total", [(400, 20.0), (40_000, 300.0)])])
    assert texts(root, "title") == ["Wall time against data size (2 cores)"]
    assert texts(root, "x-label") == ["rows of data (log scale)"]
    assert texts(root, "y-label") == ["wall seconds (log scale)"]
    assert texts(root, "legend-label") == ["ours, total"]
    tick_labels = texts(root, "tick-label")
    assert {"1k", "10k", "100"} <= set(tick_labels)
    x_ticks = [t.find("svg:line", NS) for t in root.find("svg:g[@class='x-ticks']", NS)]
    xs = [float(line.get("x1")) for line in x_ticks]
    assert xs == sorted(xs) and len(xs) >= 2


def test_points_a_log_axis_cannot_show_are_left_out():
    found = series_points(chart([Series("ours, total", [(400, 2.0), (800, 0.0)]),
                                 Series("ours, Pusher", [(400, 0.0)]),
                                 Series("peer", [(400, float("nan"))])]))
    assert list(found) == ["ours, total"] and len(found["ours, total"]) == 1


def test_ticks_span_the_data_in_round_steps():
    assert log_ticks(400, 40_000) == [200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000]
    assert log_ticks(3, 30_000) == [1, 10, 100, 1000, 10_000, 100_000]
    assert [short_number(v) for v in (400, 4000, 1_500_000)] == ["400", "4k", "1.5M"]


def test_a_component_gets_the_peak_of_the_samples_taken_while_it_ran():
    samples = [(10.0, 100.0), (10.25, 300.0), (10.5, 200.0), (10.75, 900.0), (11.0, 150.0)]
    peaks = peaks_by_window(samples, {"Transform": (10.1, 10.6), "Trainer": (10.6, 11.0),
                                      "Pusher": (10.95, 10.96)})
    # A window shorter than the sampling interval takes the nearest sample.
    assert peaks == {"Transform": 300.0, "Trainer": 900.0, "Pusher": 150.0}
    assert peaks_by_window([], {"Trainer": (0, 1)}) == {}


def test_what_no_component_covers_is_reported_apart():
    samples = [(0.5, 400.0), (2.0, 900.0), (3.5, 700.0), (6.0, 1200.0)]
    # Overlapping windows count once; the span clips them.
    windows = {"Transform": (1.0, 3.0), "Trainer": (2.5, 4.0), "Pusher": (4.5, 9.0)}
    assert outside_windows(samples, windows, (0.0, 8.0)) == {"seconds": 1.5, "peak_mib": 400.0}
    assert outside_windows(samples, {}, (0.0, 8.0)) == {"seconds": 8.0, "peak_mib": 1200.0}


def test_the_sampler_counts_the_children_of_the_process_it_watches():
    # A parent that starts a child holding ~200 MiB until the test closes their
    # stdin: the sampler is read while the child is known to hold the bytes, so
    # nothing depends on how fast either starts.
    child = ("import sys; b = b'x' * (200 * 1024 * 1024); print('ready', flush=True); "
             "sys.stdin.read()")
    parent = (f"import subprocess, sys; p = subprocess.Popen([sys.executable, '-c', {child!r}]);"
              "sys.exit(p.wait())")
    proc = subprocess.Popen([sys.executable, "-c", parent], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        with TreeSampler(proc.pid, interval=0.1) as sampler:
            assert proc.stdout.readline() == "ready\n"
            ready = time.time()
            # Only a bound on a hang: the sampler takes a sample every 0.1 s.
            deadline = ready + HANG_SECONDS
            while not [t for t, _ in sampler.samples if t > ready] and time.time() < deadline:
                time.sleep(0.05)
            held = [m for t, m in sampler.samples if t > ready]
            proc.stdin.close()
            assert proc.wait(timeout=HANG_SECONDS) == 0
        # The parent alone is a bare interpreter (~10 MiB); the tree holds the child's bytes.
        assert held and held[0] > 200
        assert sampler.peak_mib > 200
        assert [t for t, _ in sampler.samples] == sorted(t for t, _ in sampler.samples)
    finally:
        proc.kill()
        proc.wait()
    assert tree_pids(os.getpid())[0] == os.getpid()


def test_stacked_charts_share_one_svg_each_below_the_last():
    time_panel = svg_chart([Series("ours", [(400, 20.0), (4000, 40.0)])], "Wall time", "rows",
                           "s")
    memory_panel = svg_chart([Series("ours", [(400, 900.0), (4000, 1200.0)])], "Peak memory",
                             "rows", "MiB", y_unit="MiB")
    root = ET.fromstring(stacked([time_panel, memory_panel]))
    panels = root.findall("svg:svg", NS)
    assert [float(p.get("y")) for p in panels] == [0.0, float(HEIGHT)]
    assert float(root.get("height")) == 2 * HEIGHT
    assert [texts(p, "title") for p in panels] == [["Wall time"], ["Peak memory"]]
    assert [t.text for t in panels[1].iterfind(".//svg:circle/svg:title", NS)] == [
        "ours: 400 rows, 900.0 MiB", "ours: 4,000 rows, 1200.0 MiB"]


def test_a_process_tree_past_its_timeout_is_killed_whole_and_says_so():
    from benchmarks.bench import timed_process
    # A parent whose child would outlive it by minutes: both must be gone.
    child = "import time; time.sleep(300)"
    parent = (f"import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', "
              f"{child!r}]); print('started', flush=True); time.sleep(300)")
    run = timed_process([sys.executable, "-c", parent], timeout=2)
    assert run["timed_out"] is True and run["exit_code"] == -9
    assert run["output"] == "started\n"
    assert run["seconds"] < HANG_SECONDS
    finished = timed_process([sys.executable, "-c", "print('done')"], timeout=HANG_SECONDS)
    assert finished["timed_out"] is False and finished["exit_code"] == 0
