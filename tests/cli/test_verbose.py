"""`-v` before or after any command; without it, only `tfxp`'s own words on the
terminal: no library log line, a failure's reason in one short line."""
import logging
import re
import sys

import pytest
from absl import flags

from pipeline.cli import lineage
from pipeline.cli.main import build_parser, main
from pipeline.errors import REASON_CHARS, DataRejected, ExitCode, NotBlessed, TfxpError, one_line
from pipeline.local.run import Outcome
from pipeline.local.runner import NodeResult, RunResult

# Every command `tfxp --help` lists, with what it cannot do without.
COMMANDS = re.search(r"\{([a-z,-]+)\}", build_parser().format_usage()).group(1).split(",")
REQUIRED = {"submit": ["spec.yaml"], "rehearse": ["spec.yaml"], "predict": ["--data", "x.csv"],
            "evaluate": ["--data", "x.csv"], "promote": ["3"], "new-component": ["thing"]}


@pytest.mark.parametrize("where", ["before", "after"])
@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_v_before_and_after_it(command, where):
    argv = [command, *REQUIRED.get(command, [])]
    assert build_parser().parse_args(argv).verbose is False
    argv = ["-v", *argv] if where == "before" else [*argv, "-v"]
    assert build_parser().parse_args(argv).verbose is True


def test_the_readme_invocation_keeps_our_arguments_from_absl(tmp_path, monkeypatch, capsys):
    # TFX's Beam executors parse sys.argv with absl's flags (base_beam_executor.py),
    # where `-v runs` reads as `--verbosity=runs`; the command runs as they do.
    seen = {}

    def cmd_runs(args):
        seen["argv"] = list(sys.argv)
        flags.FLAGS(sys.argv + ["--direct_num_workers=1"], known_only=True)
        return 0

    monkeypatch.setattr(lineage, "cmd_runs", cmd_runs)
    monkeypatch.setattr(sys, "argv", ["tfxp", "-v", "runs", "--root", str(tmp_path)])
    assert main() == 0
    assert seen["argv"] == ["tfxp"]
    assert sys.argv == ["tfxp", "-v", "runs", "--root", str(tmp_path)]  # restored after


def test_no_library_log_without_v_and_logs_with_it(tmp_path, monkeypatch):
    levels = {}

    def cmd_runs(args):
        levels["absl"] = logging.getLogger("absl").isEnabledFor(logging.ERROR)
        levels["beam"] = logging.getLogger("apache_beam").isEnabledFor(logging.WARNING)
        levels["info"] = logging.getLogger("absl").isEnabledFor(logging.INFO)
        return 0

    monkeypatch.setattr(lineage, "cmd_runs", cmd_runs)
    main(["runs", "--root", str(tmp_path)])
    # TFX logs a failed component as `ERROR:absl:Execution N failed.`: not even that.
    assert levels == {"absl": False, "beam": False, "info": False}
    main(["runs", "--root", str(tmp_path), "-v"])
    assert levels == {"absl": True, "beam": True, "info": True}
    # A caller in the same process gets its logging back.
    assert logging.getLogger("absl").isEnabledFor(logging.ERROR)


BEAM_MESSAGE = """Traceback (most recent call last):
  File "apache_beam/runners/common.py", line 1435, in process
    return self.do_fn_invoker.invoke_process(windowed_value)
  File "apache_beam/io/filebasedsink.py", line 421, in write
    self.temp_handle.write(value)
OSError: [Errno 28] No space left on device [while running 'WriteTransformFn/WriteMetadata']

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "apache_beam/runners/worker/operations.py", line 1001, in process
OSError: [Errno 28] No space left on device [while running 'Analyze/WriteCache']
"""


def test_a_traceback_in_a_message_becomes_the_line_naming_the_error():
    text = one_line(RuntimeError(BEAM_MESSAGE))
    assert text == ("RuntimeError: OSError: [Errno 28] No space left on device "
                    "[while running 'Analyze/WriteCache']")
    assert one_line(ValueError("x" * 5000)).endswith("...")
    assert len(one_line(ValueError("x" * 5000))) == REASON_CHARS
    assert one_line(KeyError()) == "KeyError"


def outcome(status: str, code: ExitCode, **kwargs) -> Outcome:
    nodes = [NodeResult("CsvExampleGen", "executed"), NodeResult("Transform", "failed")]
    return Outcome(status, code, RunResult("r1", "p", nodes), paths=None, **kwargs)


def test_each_outcome_is_one_error_line_with_its_exit_status():
    error = outcome("error", ExitCode.ERROR, error=RuntimeError(BEAM_MESSAGE)).failure()
    assert type(error) is TfxpError and error.exit_code == 1
    assert str(error).startswith("Transform failed: RuntimeError: OSError: [Errno 28]")
    assert isinstance(error.__cause__, RuntimeError)  # -v prints its traceback

    anomalies = [("eval", f"feature_{i}", "Expected data of type: FLOAT but got STRING")
                 for i in range(40)]
    rejected = outcome("data_rejected", ExitCode.DATA_REJECTED, anomalies=anomalies).failure()
    assert isinstance(rejected, DataRejected) and rejected.exit_code == 3
    assert str(rejected).startswith("40 anomalies against the schema: [eval] feature_0; ")
    assert str(rejected).endswith("more)") and len(str(rejected)) <= REASON_CHARS

    class Evaluation:
        blessed = False
        failures = ["auc on overall: 0.61 below 0.9"]

    refused = outcome("not_blessed", ExitCode.NOT_BLESSED, evaluation=Evaluation()).failure()
    assert isinstance(refused, NotBlessed) and refused.exit_code == 4
    assert str(refused) == "auc on overall: 0.61 below 0.9"
    assert outcome("pushed", ExitCode.PUSHED).failure() is None


def test_a_failure_with_v_shows_what_lies_behind_it(tmp_path, monkeypatch, capsys):
    def cmd_runs(args):
        raise outcome("error", ExitCode.ERROR, error=RuntimeError(BEAM_MESSAGE)).failure()

    monkeypatch.setattr(lineage, "cmd_runs", cmd_runs)
    assert main(["runs", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    [line] = err.splitlines()
    assert line.startswith("tfxp runs: error: Transform failed: RuntimeError: OSError")
    assert main(["runs", "--root", str(tmp_path), "-v"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and err.splitlines()[-1] == line


def test_an_unforeseen_library_error_is_one_line_and_its_traceback_is_a_v_away(
        tmp_path, monkeypatch, capsys):
    def cmd_runs(args):
        import json
        return json.loads("{" + "x" * 3000)  # a library's exception, long words and all

    monkeypatch.setattr(lineage, "cmd_runs", cmd_runs)
    assert main(["runs", "--root", str(tmp_path)]) == 1
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith("tfxp runs: unexpected error: JSONDecodeError: ")
    assert line.endswith("(tfxp runs -v shows the traceback)") and len(line) < 300
    with pytest.raises(ValueError):
        main(["runs", "--root", str(tmp_path), "-v"])


def test_an_unchanged_failed_outcome_is_one_line_on_stderr_too(capsys):
    from pipeline.cli.run import _print_unchanged
    from pipeline.local.unchanged import Previous

    previous = Previous(run_id="r1", status="data_rejected", exit_code=3,
                        summary="DATA REJECTED: ...", report=None)
    assert _print_unchanged(previous) == 3
    out, err = capsys.readouterr()
    assert "UNCHANGED" in out and "DATA REJECTED" in out
    assert err == "tfxp run: unchanged since run r1, whose outcome stands: data rejected " \
                  "(see its summary above)\n"
    assert _print_unchanged(Previous("r2", "pushed", 0, "BLESSED", None)) == 0
    assert capsys.readouterr().err == ""


def test_v_shows_absl_info_whatever_level_a_library_left_it_at(tmp_path, monkeypatch):
    # TF, TFX or an earlier command in the process may have set absl's logger to
    # WARNING; -v still shows TFX's INFO lines, and the level is given back after.
    absl = logging.getLogger("absl")
    monkeypatch.setattr(absl, "level", logging.WARNING)
    seen = {}

    def cmd_runs(args):
        seen["info"] = absl.isEnabledFor(logging.INFO)
        return 0

    monkeypatch.setattr(lineage, "cmd_runs", cmd_runs)
    main(["runs", "--root", str(tmp_path), "-v"])
    assert seen["info"] is True
    assert absl.level == logging.WARNING
