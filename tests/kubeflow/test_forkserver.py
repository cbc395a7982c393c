"""The rehearsal's fork server: each task a fresh process forked from one that
imported once, with its own working directory, environment, argv, log and
exit status, and the exception a failed task raised brought back whole."""
from __future__ import annotations

import os
import sys
import threading

from pipeline.kubeflow.compiler import REPO_ROOT
from pipeline.kubeflow.forkserver import ForkServer, load_error

ERRORS = '''
class Refused(RuntimeError):
    def __init__(self, problems):
        self.problems = problems
        super().__init__(f"refused: {problems}")
'''

TASK = '''
import os, sys, json
import tfxp_test_preloaded as preloaded
from tfxp_test_errors import Refused
print(json.dumps({"pid": os.getpid(), "ppid": os.getppid(), "cwd": os.getcwd(),
                  "argv": sys.argv[1:], "env": os.environ.get("TASK_ENV"),
                  "imports": preloaded.IMPORTS, "main": __name__}))
preloaded.IMPORTS += 1  # a later task must not see this
if sys.argv[1:] == ["refuse"]:
    raise Refused([("train", "payment_type", "unexpected value")])
sys.exit(int(sys.argv[1]) if sys.argv[1:] and sys.argv[1].isdigit() else 0)
'''


def _server(tmp_path, monkeypatch):
    (tmp_path / "tfxp_test_errors.py").write_text(ERRORS)
    (tmp_path / "tfxp_test_preloaded.py").write_text("IMPORTS = 1\n")
    (tmp_path / "tfxp_test_task.py").write_text(TASK)
    monkeypatch.syspath_prepend(str(tmp_path))
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{REPO_ROOT}")
    return ForkServer(sys.executable, env, preload=("tfxp_test_preloaded",),
                      log=str(tmp_path / "server.log")), env


def _read(path) -> dict:
    import json
    return json.loads(open(path).read().splitlines()[0])


def test_each_task_is_a_fresh_child_with_its_own_cwd_env_argv_and_status(tmp_path,
                                                                         monkeypatch):
    server, env = _server(tmp_path, monkeypatch)
    with server:
        runs = {}

        def task(name, args):
            cwd = tmp_path / name
            cwd.mkdir()
            code = server.run("tfxp_test_task", args, str(cwd), dict(env, TASK_ENV=name),
                              str(cwd / "log.txt"), str(cwd / "error.pickle"))
            runs[name] = (code, _read(cwd / "log.txt"))

        threads = [threading.Thread(target=task, args=(n, a))
                   for n, a in (("a", ["0"]), ("b", ["7"]))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    (code_a, a), (code_b, b) = runs["a"], runs["b"]
    assert (code_a, code_b) == (0, 7)
    assert a["pid"] != b["pid"] and a["ppid"] == b["ppid"] != os.getpid()
    assert (a["cwd"], b["cwd"]) == (str(tmp_path / "a"), str(tmp_path / "b"))
    assert (a["env"], b["env"]) == ("a", "b") and a["argv"] == ["0"]
    # Imported once in the server; what one task changed, the next does not see.
    assert a["imports"] == b["imports"] == 1 and a["main"] == "__main__"


def test_a_failed_task_brings_its_exception_back(tmp_path, monkeypatch):
    server, env = _server(tmp_path, monkeypatch)
    with server:
        code = server.run("tfxp_test_task", ["refuse"], str(tmp_path), env,
                          str(tmp_path / "log.txt"), str(tmp_path / "error.pickle"))
    assert code == 1
    error = load_error(str(tmp_path / "error.pickle"))
    assert type(error).__name__ == "Refused"
    assert error.problems == [("train", "payment_type", "unexpected value")]
    assert "Traceback" in (tmp_path / "log.txt").read_text()
    assert load_error(str(tmp_path / "nothing.pickle")) is None


def test_a_cold_task_brings_its_error_back_as_a_forked_one_does(tmp_path, monkeypatch):
    """`tfxp rehearse --no-fork`: the same task run from cold through
    `cold_command` saves the same exception, so the rehearsal answers alike."""
    import subprocess

    from pipeline.kubeflow.forkserver import cold_command
    (tmp_path / "tfxp_test_errors.py").write_text(ERRORS)
    (tmp_path / "tfxp_test_preloaded.py").write_text("IMPORTS = 1\n")
    (tmp_path / "tfxp_test_task.py").write_text(TASK)
    monkeypatch.syspath_prepend(str(tmp_path))  # to unpickle the task's error class here
    env = dict(os.environ, PYTHONPATH=f"{tmp_path}{os.pathsep}{REPO_ROOT}")
    error = str(tmp_path / "error.pickle")
    with open(tmp_path / "log.txt", "w") as log:
        code = subprocess.call(cold_command(sys.executable, "tfxp_test_task", ["refuse"], error),
                               cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT)
    assert code == 1
    refused = load_error(error)
    assert type(refused).__name__ == "Refused"
    assert refused.problems == [("train", "payment_type", "unexpected value")]
    assert "Traceback" in (tmp_path / "log.txt").read_text()  # the task's log, as forked
    # A task that exits with a status passes it on, and saves no error.
    os.remove(error)
    assert subprocess.call(cold_command(sys.executable, "tfxp_test_task", ["4"], error),
                           cwd=tmp_path, env=env, stdout=subprocess.DEVNULL) == 4
    assert load_error(error) is None
