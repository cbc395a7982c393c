"""`tfxp schema --output` compares the draft with the curated schema the config
names, read before the draft is written; with none, it says so."""
from pathlib import Path

import pytest
import yaml

from pipeline.cli.main import main
from pipeline.config import DEFAULT_CONFIG
from tests.datasets import taxi_sample

pytestmark = pytest.mark.e2e  # runs the data stage (ExampleGen, StatisticsGen, SchemaGen)


def test_the_draft_is_compared_with_the_curated_schema_never_with_itself(tmp_path, capsys):
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    shipped = (DEFAULT_CONFIG.parent / raw["schema"]).resolve()
    curated = tmp_path / "schemas" / "schema.pbtxt"
    raw["schema"] = str(curated)
    raw["data"]["path"] = taxi_sample(str(tmp_path / "data"), every=30)
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(raw))
    root = str(tmp_path / "root")

    # No curated schema yet, and the draft written where the config looks for one.
    assert main(["schema", "--config", str(config), "--root", root,
                 "--output", str(curated)]) == 0
    out = capsys.readouterr().out
    assert curated.is_file()
    assert "no differences" not in out
    assert f"No curated schema was at {curated}" in out

    # A curated schema in place: the draft (written elsewhere) is compared with it.
    curated.write_text(Path(shipped).read_text())
    assert main(["schema", "--config", str(config), "--root", root,
                 "--output", str(tmp_path / "draft.pbtxt")]) == 0
    out = capsys.readouterr().out
    assert f"Draft vs curated {curated}:" in out
    assert "No curated schema" not in out
