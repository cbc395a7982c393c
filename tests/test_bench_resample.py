"""The bench's resampling writes a chunk at a time (so the bench process stays small
and the runs it starts report their own memory), drawing the same rows as one call."""
import random

from benchmarks import bench


def test_chunks_draw_the_rows_one_call_draws(tmp_path, monkeypatch):
    source = tmp_path / "source.csv"
    rows = [f"{i},{i * i}" for i in range(50)]
    source.write_text("a,b\n" + "\n".join(rows) + "\n")
    monkeypatch.setattr(bench, "RESAMPLE_CHUNK", 7)
    for n in (20, 50, 123):
        path, count = bench.resample(str(source), n, 1.0, str(tmp_path / f"x{n}"), seed=3)
        rng = random.Random(3)
        expected = rng.sample(rows, n) if n <= len(rows) else rng.choices(rows, k=n)
        with open(path) as f:
            assert f.read().splitlines() == ["a,b"] + expected
        assert count == n
