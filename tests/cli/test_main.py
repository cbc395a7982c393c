"""`tfxp` maps every expected failure to its own words and exit status, never a traceback."""
import pytest

from pipeline.cli.main import error_message, main
from pipeline.config import DEFAULT_CONFIG
from pipeline.errors import (
    CompileError,
    ConfigError,
    DataRejected,
    ExitCode,
    NotBlessed,
    RehearsalError,
    StoreError,
    SubmitError,
    TfxpError,
)


@pytest.mark.parametrize("error, code, words", [
    (ConfigError("configs/x.yaml: training.steps: bad"), 1, "configuration error"),
    (DataRejected("[train] fare: unexpected string"), 3, "data rejected"),
    (NotBlessed("AUC on overall: 0.4"), 4, "not blessed"),
    (CompileError("resolver"), 1, "cannot compile for Kubeflow"),
    (RehearsalError("task Trainer failed"), 1, "rehearsal failed"),
    (SubmitError("KFP at http://h refused the request (HTTP 401 Unauthorized)"), 1,
     "Kubeflow Pipelines"),
])
def test_each_error_has_its_exit_status_and_words(error, code, words):
    assert isinstance(error, TfxpError) and error.exit_code == code
    assert error_message("cmd", error) == f"tfxp cmd: {words}: {error}"


def test_multi_line_messages_start_on_their_own_line():
    text = error_message("run", ConfigError("a.yaml: x: bad\na.yaml: y: bad"))
    assert text == "tfxp run: configuration error:\na.yaml: x: bad\na.yaml: y: bad"
    assert error_message("runs", StoreError("no runs")) == "tfxp runs: no runs"


def test_a_cluster_that_cannot_be_reached_is_not_a_configuration_error(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text("pipelineInfo: {name: p}\nroot: {dag: {tasks: {}}}\n")
    # Port 1 on the loopback: nothing listens, the connection is refused at once.
    code = main(["submit", str(spec), "--host", "http://127.0.0.1:1"])
    err = capsys.readouterr().err
    assert code == ExitCode.ERROR
    assert err.startswith("tfxp submit: Kubeflow Pipelines: cannot reach KFP at http://127.0.0.1:1")
    assert "configuration error" not in err and "Traceback" not in err


def test_a_bad_config_names_the_key_and_exits_1(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    text = DEFAULT_CONFIG.read_text()
    config.write_text(text.replace("pipeline_name: chicago-taxi", "pipeline_name: Not Valid"))
    assert main(["compile", "--config", str(config)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"tfxp compile: configuration error: {config}: pipeline_name: ")
