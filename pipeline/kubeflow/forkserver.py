"""One process that imports TF, TFX, TFMA and Beam once and forks a fresh child per task.

A rehearsal runs each task as its own process given its ExecutorInput, as a
pod would.  Started cold, each such process spends 20-70 s importing the same
libraries before any work; forked from a server that has imported them, a
task starts at once and is still a fresh process: its own working directory,
environment, argv, stdout/stderr (its log) and exit status, and nothing it
does reaches the server or the next task.  Only `python -m MODULE ARGS...`
commands go through the server; anything else runs as a plain subprocess.

Protocol (the server's stdin/stdout, one JSON object per line): the client
sends {"id", "module", "args", "cwd", "env", "log", "error"}; the server
answers {"id", "code"} when that child has ended.  When a task raises, the
child also pickles (class, args, attributes) of the exception to "error",
so the rehearsal can report a rejected dataset as `tfxp run` does.  A task
run from cold goes through the same code (`cold_command`), so it answers
alike.
"""
from __future__ import annotations

import importlib
import json
import os
import pickle
import select
import subprocess
import sys
import threading
import traceback
from typing import Optional

from pipeline.errors import RehearsalError

# What every TFX task would otherwise import itself (none of them runs as __main__).
PRELOAD = (
    "pipeline",  # sets TF_USE_LEGACY_KERAS before TensorFlow loads
    "tensorflow",
    "apache_beam",
    "tensorflow_data_validation",
    "tensorflow_transform",
    "tensorflow_model_analysis",
    "tfx.components",
    "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor",
    "tfx.orchestration.kubeflow.v2.file_based_example_gen.driver",
)


class ForkServerError(RehearsalError):
    """The server could not start (a preload failed) or died."""


# --------------------------------------------------------------------------- server side


def _exit_code(error: SystemExit) -> int:
    if error.code is None:
        return 0
    if isinstance(error.code, int):
        return error.code
    print(error.code, file=sys.stderr)
    return 1


def _save_error(path: str, error: BaseException) -> None:
    try:
        payload = pickle.dumps((type(error), error.args, dict(vars(error))))
    except Exception:  # unpicklable attributes: the class and message still tell
        payload = pickle.dumps((RuntimeError, (f"{type(error).__name__}: {error}",), {}))
    with open(path, "wb") as f:
        f.write(payload)


def run_module(module: str, args: list[str], error: Optional[str] = None) -> int:
    """`python -m module args...` in this process; its exit status.  When the task
    raises, its traceback goes to stderr and (class, args, attributes) to `error`."""
    import runpy

    sys.argv = [module, *args]
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        return 0
    except SystemExit as e:
        return _exit_code(e)
    except BaseException as e:  # the task failed: its traceback goes to its log
        traceback.print_exc()
        if error:
            _save_error(error, e)
        return 1


def _child(request: dict) -> None:
    """Runs in the forked child; never returns."""
    code = 1
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        sys.path[0] = request["cwd"]  # as `python -m` puts the working directory first
        code = run_module(request["module"], request["args"], request.get("error"))
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def serve(preload: list[str]) -> None:
    """The server loop: import, say ready, then fork a child per request line."""
    for module in preload:
        importlib.import_module(module)
    out = sys.stdout
    out.write(json.dumps({"ready": os.getpid()}) + "\n")
    out.flush()
    stdin, buffer, children, closed = sys.stdin.fileno(), b"", {}, False
    while not closed or children:
        if not closed and select.select([stdin], [], [], 0.1)[0]:
            chunk = os.read(stdin, 1 << 16)
            closed = not chunk
            buffer += chunk
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                request = json.loads(line)
                out.flush()
                pid = os.fork()
                if pid == 0:
                    _child(request)
                children[pid] = request["id"]
        elif closed:
            select.select([], [], [], 0.1)
        while children:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
            out.write(json.dumps({"id": children.pop(pid),
                                  "code": os.waitstatus_to_exitcode(status)}) + "\n")
            out.flush()


# --------------------------------------------------------------------------- client side


class ForkServer:
    """A started server; `run` blocks until its task's child ends (thread-safe)."""

    def __init__(self, python: str, env: dict[str, str], preload: tuple[str, ...] = PRELOAD,
                 log: Optional[str] = None):
        self._stderr = open(log, "w") if log else subprocess.DEVNULL
        self._process = subprocess.Popen(
            [python, "-m", __name__, *preload], stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=self._stderr, env=env, cwd="/")
        self._lock = threading.Lock()
        self._ready = threading.Event()
        self._waiting: dict[int, list] = {}
        self._next = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self._process.stdout:
            message = json.loads(line)
            if "ready" in message:
                self._ready.set()
                continue
            with self._lock:
                slot = self._waiting.pop(message["id"])
            slot[1] = message["code"]
            slot[0].set()
        # The server ended: nothing more will answer.
        self._ready.set()
        with self._lock:
            for slot in self._waiting.values():
                slot[0].set()

    def run(self, module: str, args: list[str], cwd: str, env: dict[str, str], log: str,
            error: Optional[str] = None) -> int:
        """Runs `python -m module args...` in a forked child; its exit status."""
        self._ready.wait()
        if self._process.poll() is not None:
            raise ForkServerError(f"the fork server exited ({self._process.returncode}) "
                                  f"before running {module}")
        slot: list = [threading.Event(), None]
        with self._lock:
            self._next += 1
            request_id = self._next
            self._waiting[request_id] = slot
            line = json.dumps({"id": request_id, "module": module, "args": args, "cwd": cwd,
                               "env": env, "log": log, "error": error})
            self._process.stdin.write(line.encode() + b"\n")
            self._process.stdin.flush()
        slot[0].wait()
        if slot[1] is None:
            raise ForkServerError(f"the fork server died while running {module}")
        return slot[1]

    def close(self) -> None:
        """Lets running children end, then the server exits (at once when idle,
        e.g. still importing when a spec turned out wrong)."""
        with self._lock:
            idle = not self._waiting
        try:
            self._process.stdin.close()
        except OSError:
            pass
        if idle:
            self._process.terminate()
        try:
            self._process.wait(timeout=600)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        if self._stderr is not subprocess.DEVNULL:
            self._stderr.close()

    def __enter__(self) -> "ForkServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def load_error(path: str) -> Optional[BaseException]:
    """The exception a child saved, rebuilt (None when it saved none)."""
    if not os.path.exists(path):
        return None
    with open(path, "rb") as f:
        cls, args, attributes = pickle.load(f)
    error = cls.__new__(cls)
    error.args = args
    error.__dict__.update(attributes)
    return error


# `python -m pipeline.kubeflow.forkserver --once ERROR MODULE ARGS...`: one task from
# cold, its failure saved as a forked child saves it (a rehearsal without the server).
ONCE = "--once"


def cold_command(python: str, module: str, args: list[str], error: str) -> list[str]:
    """The command line that runs one task from cold and saves its error to `error`."""
    return [python, "-m", __name__, ONCE, error, module, *args]


if __name__ == "__main__":
    if sys.argv[1:2] == [ONCE]:
        sys.path[0] = os.getcwd()
        sys.exit(run_module(sys.argv[3], sys.argv[4:], sys.argv[2]))
    serve(sys.argv[1:])
