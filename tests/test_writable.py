"""Every place a local run writes is checked before anything runs: a read-only
or blocked serving base path, run root or output file stops `tfxp run` at once,
naming the key, instead of failing in the Pusher after the whole pipeline."""
import os

import pytest
import yaml

from pipeline.cli.main import main
from pipeline.config import DEFAULT_CONFIG, load_config
from pipeline.errors import ConfigError
from pipeline.local.writable import require_writable, why_unwritable


def taxi_config(tmp_path, **serving):
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    raw["schema"] = str(DEFAULT_CONFIG.parent.parent / "schemas" / "taxi" / "schema.pbtxt")
    raw["data"]["path"] = load_config().resolve(raw["data"]["path"])
    raw["serving"].update(serving)
    path = tmp_path / "cfg.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_a_serving_path_below_a_file_stops_the_run_before_it_starts(tmp_path, capsys):
    (tmp_path / "blocker").write_text("a file where a directory must go")
    config = taxi_config(tmp_path, base_path=str(tmp_path / "blocker" / "serving"))
    root = tmp_path / "run"
    assert main(["run", "--config", str(config), "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert f"serving.base_path: {tmp_path / 'blocker' / 'serving'}: " in err
    assert "is a file, so nothing can be created below it" in err
    assert "Traceback" not in err and err.count("\n") == 1
    assert not root.exists()  # nothing ran, not even the root was made


def test_the_local_runner_checks_too(tmp_path):
    from pipeline.local.run import run_pipeline

    (tmp_path / "root").write_text("")
    cfg = load_config(taxi_config(tmp_path))
    with pytest.raises(ConfigError, match="is a file"):
        run_pipeline(cfg, str(tmp_path / "root" / "below"))


def test_a_read_only_directory_reads_as_a_write_would(tmp_path):
    # Root may write anywhere; the check must agree with a real attempt either way.
    target = tmp_path / "ro"
    target.mkdir()
    os.chmod(target, 0o555)
    try:
        try:
            (target / "x").write_text("")
            writable = True
        except PermissionError:
            writable = False
        why = why_unwritable(str(target / "serving" / "model"))
        assert (why is None) == writable
        if not writable:
            assert why == f"{target} cannot be written (permission denied)"
    finally:
        os.chmod(target, 0o755)


def test_files_and_directories(tmp_path):
    assert why_unwritable(str(tmp_path / "new" / "deeper")) is None
    assert why_unwritable(str(tmp_path / "out.pbtxt"), directory=False) is None
    (tmp_path / "d").mkdir()
    assert "is a directory, not a file" in why_unwritable(str(tmp_path / "d"), directory=False)
    (tmp_path / "f").write_text("")
    assert "is a file, not a directory" in why_unwritable(str(tmp_path / "f"))
    assert why_unwritable("gs://bucket/serving") is None
    with pytest.raises(ConfigError) as e:
        require_writable([("--output", str(tmp_path / "f" / "x.pbtxt"), False),
                          ("--root", str(tmp_path / "ok"), True)])
    assert str(e.value).startswith("--output: ") and "\n" not in str(e.value)


def test_tfxp_schema_refuses_an_output_it_cannot_write(tmp_path, capsys):
    (tmp_path / "f").write_text("")
    code = main(["schema", "--config", str(taxi_config(tmp_path)),
                 "--root", str(tmp_path / "run"), "--output", str(tmp_path / "f" / "s.pbtxt")])
    assert code == 1
    assert "--output: " in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
