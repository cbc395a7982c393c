"""A label with one class stops the run as rejected data, end to end: with
`tips` 0.0 on every row, a threshold on accuracy alone used to bless and push
a constant model (AUC printed 0.000)."""
import os

import pytest
import yaml

from pipeline.cli.main import main
from pipeline.config import DEFAULT_CONFIG, load_config
from pipeline.errors import ExitCode
from tests.datasets import taxi_sample

pytestmark = pytest.mark.e2e


def no_tips(header, rows):
    return header, [dict(row, tips="0.0") for row in rows]


def test_tips_zero_everywhere_is_rejected_before_training(tmp_path, capsys):
    data = taxi_sample(str(tmp_path / "data"), every=3, change=no_tips)
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["schema"] = load_config().schema_path
    raw["data"]["path"] = data
    raw["evaluation"]["thresholds"] = [{"metric": "BinaryAccuracy", "lower": 0.5}]
    raw["training"].update(train_steps=50, eval_steps=10)
    config = tmp_path / "cfg.yaml"
    config.write_text(yaml.safe_dump(raw))
    root = tmp_path / "run"
    code = main(["run", "--config", str(config), "--root", str(root)])
    out = capsys.readouterr().out
    assert code == ExitCode.DATA_REJECTED == 3, out
    for split in ("train", "eval"):
        assert f"[{split}] tips: a binary label with one class: 0 positive" in out, out
    assert not os.path.isdir(root / "serving")  # nothing trained or pushed
