"""models.config and the labels: parsed back as TF Serving's ModelServerConfig
after every change, never half-written, and retention that spares labels."""
from __future__ import annotations

import os

import pytest
from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2 as msc

from components.atomic_pusher import model_config
from pipeline.cli.main import main
from pipeline.config import ConfigError, load_config
from pipeline.errors import StateError
from pipeline.serving import versions

NAME = "chicago_taxi"


def parsed(base: str) -> msc.ModelServerConfig:
    with open(model_config.config_path(base)) as f:
        return text_format.Parse(f.read(), msc.ModelServerConfig())


def served(base: str) -> tuple[dict[str, int], list[int]]:
    [model] = parsed(base).model_config_list.config
    assert model.name == NAME and model.base_path == base
    return dict(model.version_labels), list(model.model_version_policy.specific.versions)


def push(base: str, version: int) -> None:
    """What the Pusher does for a version: the directory, then the config."""
    os.makedirs(os.path.join(base, str(version), "variables"))
    model_config.after_push(NAME, base, version)


@pytest.fixture
def base(tmp_path) -> str:
    return str(tmp_path / "serving" / NAME)


def test_first_push_is_stable_and_the_next_one_canary(base):
    push(base, 100)
    assert served(base) == ({"stable": 100}, [100])
    push(base, 200)
    assert served(base) == ({"stable": 100, "canary": 200}, [100, 200])
    push(base, 300)  # a newer canary replaces the older one
    assert served(base) == ({"stable": 100, "canary": 300}, [100, 300])


def test_promote_then_rollback(base):
    for v in (100, 200, 300):
        push(base, v)
    versions.promote(NAME, base, 300, "stable")
    assert served(base) == ({"stable": 300}, [300])
    versions.promote(NAME, base, 200, "canary")
    assert served(base) == ({"stable": 300, "canary": 200}, [200, 300])
    done = versions.rollback(NAME, base)
    assert (done.before, done.after, done.repaired) == (300, 100, [])
    assert served(base) == ({"stable": 100, "canary": 200}, [100, 200])
    with pytest.raises(StateError, match="first stable version"):
        versions.rollback(NAME, base)


def test_promote_refuses_a_version_not_on_disk(base):
    push(base, 100)
    with pytest.raises(StateError, match="no version 999"):
        versions.promote(NAME, base, 999, "stable")
    assert served(base) == ({"stable": 100}, [100])


def test_a_failed_write_leaves_the_previous_config_whole(base, monkeypatch):
    push(base, 100)
    push(base, 200)
    before = open(model_config.config_path(base)).read()

    def crash(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(model_config.os, "replace", crash)
    with pytest.raises(OSError):
        versions.promote(NAME, base, 200, "stable")
    assert open(model_config.config_path(base)).read() == before
    assert served(base) == ({"stable": 100, "canary": 200}, [100, 200])
    assert not [n for n in os.listdir(base) if n.startswith(".tmp-")]


def test_retention_never_removes_a_labelled_version(base):
    for v in (100, 200, 300, 400, 500):
        push(base, v)
    versions.promote(NAME, base, 200, "stable")
    versions.promote(NAME, base, 100, "canary")
    removed = versions.retain(base, keep=2)
    assert removed == [300]
    assert versions.on_disk(base) == [100, 200, 400, 500]


def test_cli_promote_rollback_and_versions(tmp_path, capsys):
    cfg = load_config()
    root = str(tmp_path / "root")
    base = os.path.join(root, "serving", cfg.serving.model_name)
    for v in (100, 200):
        os.makedirs(os.path.join(base, str(v)))
        model_config.after_push(cfg.serving.model_name, base, v)
    assert main(["promote", "200", "--label", "stable", "--root", root]) == 0
    assert model_config.labels(base) == {"stable": 200}
    assert main(["versions", "--root", root]) == 0
    out = capsys.readouterr().out
    assert "200  stable" in out and "100  -" in out
    assert main(["rollback", "--root", root]) == 0
    assert model_config.labels(base) == {"stable": 100}
    assert main(["promote", "12x", "--root", root]) == 1
    assert "VERSION must be a number" in capsys.readouterr().err


def test_monitoring_slices_must_be_evaluation_slices(tmp_path):
    text = open(os.path.join(os.path.dirname(__file__), "..", "..", "configs",
                             "taxi.yaml")).read()
    bad = text.replace("slice: {payment_type: Credit Card}, max_decrease: 0.1",
                       "slice: [company], max_decrease: 0.1")
    assert bad != text
    path = tmp_path / "bad.yaml"
    path.write_text(bad.replace("../schemas", os.path.abspath("schemas").rsplit("/", 1)[0]
                                + "/schemas"))
    with pytest.raises(ConfigError, match=r"monitoring\.thresholds\[2\]\.slice"):
        load_config(path)


def test_the_pusher_labels_its_version_in_models_config(tmp_path):
    import json

    from components.atomic_pusher import executor
    from components.atomic_pusher.test_atomic_pusher import executor_inputs
    inputs, outputs, props = executor_inputs(tmp_path, blessed=True)
    props["custom_config"] = json.dumps({"model_name": NAME, "keep_versions": 3})
    executor.Executor().Do(inputs, outputs, props)
    version = int(outputs["pushed_model"][0].get_string_custom_property("pushed_version"))
    base = str(tmp_path / "serving")
    [model] = parsed(base).model_config_list.config
    assert (model.name, dict(model.version_labels)) == (NAME, {"stable": version})


@pytest.fixture
def pushed_root(tmp_path) -> tuple[str, str]:
    """A run root whose base path has two pushed versions: 100 stable, 200 canary."""
    root = str(tmp_path / "root")
    base = os.path.join(root, "serving", load_config().serving.model_name)
    for v in (100, 200):
        os.makedirs(os.path.join(base, str(v)))
        model_config.after_push(NAME, base, v)
    return root, base


def one_line(err: str) -> str:
    assert "Traceback" not in err
    [line] = err.strip().splitlines()
    return line


def test_a_models_config_that_does_not_parse_is_named_and_promote_rebuilds_it(
        pushed_root, capsys):
    root, base = pushed_root
    config = model_config.config_path(base)
    with open(config, "w") as f:
        f.write("garbage {{{\n")
    assert main(["versions", "--root", root]) == 1
    captured = capsys.readouterr()
    line = one_line(captured.err)
    assert line.startswith("tfxp versions: cannot do that: " + config)
    assert "does not parse" in line and "tfxp promote VERSION" in line
    assert "200" in captured.out and "100" in captured.out  # what there is to promote
    # promote rebuilds models.config from the versions on disk, saying what it repaired.
    assert main(["promote", "200", "--root", root]) == 0
    captured = capsys.readouterr()
    assert f"repaired {config}: does not parse" in one_line(captured.err)
    assert served(base) == ({"stable": 200}, [200])
    assert main(["versions", "--root", root]) == 0


def test_a_label_pointing_at_a_deleted_version_is_shown_and_dropped_by_promote(
        pushed_root, capsys):
    root, base = pushed_root
    os.rmdir(os.path.join(base, "200"))  # the canary's directory deleted by hand
    assert main(["versions", "--root", root]) == 1
    captured = capsys.readouterr()
    assert "canary -> 200: not on disk" in captured.out
    line = one_line(captured.err)
    assert model_config.config_path(base) in line and "'canary'" in line
    assert main(["promote", "100", "--root", root]) == 0
    assert served(base) == ({"stable": 100}, [100])
    assert "repaired" in capsys.readouterr().err


def test_a_damaged_stable_history_is_one_line_and_rollback_says_how_to_repair(
        pushed_root, capsys):
    root, base = pushed_root
    assert main(["promote", "200", "--root", root]) == 0
    history = model_config.history_path(base)
    with open(history, "w") as f:
        f.write("[100, ")
    capsys.readouterr()
    assert main(["rollback", "--root", root]) == 1
    line = one_line(capsys.readouterr().err)
    assert line.startswith(f"tfxp rollback: cannot do that: {history}: is not a JSON list")
    assert "tfxp promote VERSION" in line
    assert served(base) == ({"stable": 200}, [200])  # untouched
    # promote starts the history again.
    assert main(["promote", "100", "--root", root]) == 0
    assert model_config.stable_history(base) == [100]


def test_rollback_works_from_the_history_when_models_config_does_not_parse(pushed_root, capsys):
    root, base = pushed_root
    assert main(["promote", "200", "--root", root]) == 0
    with open(model_config.config_path(base), "w") as f:
        f.write("model_config_list { config { name: \n")
    assert main(["rollback", "--root", root]) == 0
    assert "stable rolled back from 200 to 100" in capsys.readouterr().out
    assert served(base) == ({"stable": 100}, [100])


def test_state_errors_are_not_configuration_errors(pushed_root, capsys):
    root, _ = pushed_root
    assert main(["rollback", "--root", root]) == 1
    line = one_line(capsys.readouterr().err)
    assert line.startswith("tfxp rollback: cannot do that: version 100 is the first stable")
    assert main(["promote", "999", "--root", root]) == 1
    assert one_line(capsys.readouterr().err).startswith(
        "tfxp promote: cannot do that: no version 999")


def test_versions_without_config_takes_the_model_from_the_root(tmp_path, capsys):
    root = str(tmp_path / "root")
    base = os.path.join(root, "serving", "penguins")
    os.makedirs(os.path.join(base, "7"))
    model_config.after_push("penguins", base, 7)
    assert main(["versions", "--root", root]) == 0
    out = capsys.readouterr().out
    assert f"Versions under {base}:" in out and "7  stable" in out
    # Two models under one root, or none: which one is not guessed.
    os.makedirs(os.path.join(root, "serving", "other", "8"))
    assert main(["versions", "--root", root]) == 1
    assert "models other, penguins; name the pipeline with --config" in one_line(
        capsys.readouterr().err)
    empty = str(tmp_path / "empty")
    assert main(["versions", "--root", empty]) == 1
    assert "holds no model; name the pipeline with --config" in one_line(
        capsys.readouterr().err)


def test_versions_shows_a_version_nothing_serves_and_no_push_recorded(pushed_root, capsys):
    root, base = pushed_root
    os.makedirs(os.path.join(base, "300"))  # e.g. left by a push that failed
    assert main(["versions", "--root", root]) == 0
    out = capsys.readouterr().out
    [line] = [x for x in out.splitlines() if x.strip().startswith("300")]
    assert "not served (no push recorded; retention may remove it)" in line
    [line] = [x for x in out.splitlines() if x.strip().startswith("200")]
    assert "canary" in line and "not served" not in line


def test_rollback_with_a_stable_label_pointing_at_a_deleted_version(pushed_root, capsys):
    root, base = pushed_root
    assert main(["promote", "200", "--root", root]) == 0
    capsys.readouterr()
    os.rmdir(os.path.join(base, "200"))  # the stable version's directory deleted by hand
    assert main(["rollback", "--root", root]) == 0  # back to the stable before it, on disk
    assert "stable rolled back from 200 to 100" in capsys.readouterr().out
    assert served(base) == ({"stable": 100}, [100])
    os.rmdir(os.path.join(base, "100"))
    assert main(["rollback", "--root", root]) == 1
    assert "stable points at version 100, which is not on disk" in one_line(
        capsys.readouterr().err)
