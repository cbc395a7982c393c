"""`tfxp submit` against a loopback HTTP server that answers the KFP v2beta1
REST calls `kfp.Client` makes: what is uploaded, which run is created with
which pipeline root and credentials, and how refusals and silence read."""
from __future__ import annotations

import json
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from pipeline.cli.main import main
from pipeline.errors import ExitCode, SubmitError, WaitTimedOut
from pipeline.kubeflow.submit import Auth, auth_from_env, submit

TOKEN = "t0ken-under-test-9f3a"


class FakeKfp:
    """In-memory KFP API server state; `refuse` makes it answer 401 or 403."""

    def __init__(self, token: str | None = TOKEN, refuse: int | None = None,
                 fail_run: bool = False, states: tuple[str, ...] = ("SUCCEEDED",),
                 get_run_error: int | None = None):
        self.token, self.refuse, self.fail_run = token, refuse, fail_run
        # What successive GETs of a run answer (the last one repeats), or an HTTP error.
        self.states, self.get_run_error = list(states), get_run_error
        self.requests: list[tuple[str, str, dict]] = []
        self.experiments: dict[str, dict] = {}
        self.pipelines: dict[str, dict] = {}
        self.versions: dict[str, dict] = {}
        self.uploads: list[bytes] = []
        self.runs: dict[str, dict] = {}
        self.deleted: list[str] = []


def _handler(state: FakeKfp):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def _send(self, code: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _route(self, method: str) -> None:
            body = self._body() if method == "POST" else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.requests.append((method, self.path, headers))
            if state.refuse:
                return self._send(state.refuse, {"error": "denied", "code": 16})
            if state.token and self.headers.get("Authorization") != f"Bearer {state.token}":
                return self._send(401, {"error": "missing or bad token", "code": 16})
            path = self.path.split("?")[0]
            if method == "GET" and path == "/apis/v2beta1/healthz":
                return self._send(200, {"multi_user": False})
            if method == "GET" and path == "/apis/v2beta1/experiments":
                query = self.path.partition("?")[2]
                wanted = [e for e in state.experiments.values()
                          if e["display_name"] in _unquote(query)]
                return self._send(200, {"experiments": wanted, "total_size": len(wanted)}
                                  if wanted else {})
            if method == "POST" and path == "/apis/v2beta1/experiments":
                exp = dict(json.loads(body), experiment_id=f"exp-{len(state.experiments) + 1}")
                state.experiments[exp["experiment_id"]] = exp
                return self._send(200, exp)
            if method == "GET" and path == "/apis/v2beta1/pipelines":
                wanted = [p for p in state.pipelines.values()
                          if p["display_name"] in _unquote(self.path)]
                return self._send(200, {"pipelines": wanted} if wanted else {})
            if method == "POST" and path in ("/apis/v2beta1/pipelines/upload",
                                             "/apis/v2beta1/pipelines/upload_version"):
                state.uploads.append(body)
                pid = f"pipe-{len(state.pipelines) + 1}"
                if path.endswith("upload"):
                    state.pipelines[pid] = {"pipeline_id": pid,
                                            "display_name": _query(self.path, "name")}
                else:
                    pid = _query(self.path, "pipelineid")
                vid = f"ver-{len(state.versions) + 1}"
                state.versions[vid] = {"pipeline_version_id": vid, "pipeline_id": pid}
                return self._send(200, state.versions[vid] if "version" in path
                                  else state.pipelines[pid])
            m = re.fullmatch(r"/apis/v2beta1/pipelines/([^/]+)/versions", path)
            if method == "GET" and m:
                return self._send(200, {"pipeline_versions": [
                    v for v in state.versions.values() if v["pipeline_id"] == m.group(1)]})
            if method == "POST" and path == "/apis/v2beta1/runs":
                if state.fail_run:
                    return self._send(400, {"error": "invalid pipeline spec"})
                run = dict(json.loads(body), run_id=f"run-{len(state.runs) + 1}",
                           state="PENDING")
                state.runs[run["run_id"]] = run
                return self._send(200, run)
            m = re.fullmatch(r"/apis/v2beta1/runs/([^/]+)", path)
            if method == "GET" and m:
                if state.get_run_error:
                    return self._send(state.get_run_error, {"error": "internal error"})
                now = state.states.pop(0) if len(state.states) > 1 else state.states[0]
                return self._send(200, dict(state.runs[m.group(1)], state=now))
            if method == "DELETE":
                state.deleted.append(path)
                return self._send(200, {})
            return self._send(404, {"error": f"no route {method} {path}"})

        def do_GET(self):
            self._route("GET")

        def do_POST(self):
            self._route("POST")

        def do_DELETE(self):
            self._route("DELETE")
    return Handler


def _unquote(text: str) -> str:
    from urllib.parse import unquote
    return unquote(text)


def _query(path: str, key: str) -> str:
    from urllib.parse import parse_qs, urlsplit
    return parse_qs(urlsplit(path).query)[key][0]


@pytest.fixture
def kfp_server():
    servers = []

    def start(**kwargs):
        state = FakeKfp(**kwargs)
        server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", state
    yield start
    for server in servers:
        server.shutdown()


SPEC = {"pipelineInfo": {"name": "chicago-taxi"}, "schemaVersion": "2.1.0",
        "sdkVersion": "tfx-1.16.0", "defaultPipelineRoot": "minio://mlpipeline/v2/artifacts",
        "root": {"dag": {"tasks": {}}}, "components": {}, "deploymentSpec": {"executors": {}}}


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "chicago-taxi.kfp.yaml"
    path.write_text(yaml.safe_dump_all([SPEC, {"platforms": {"kubernetes": {}}}]))
    return str(path)


def _submit(host, spec_file, auth=Auth("token", TOKEN), **kwargs):
    out: list[str] = []
    result = submit(spec_file, host=host, namespace=None, experiment="taxi-exp",
                    run_name="run-under-test", pipeline_root="minio://mlpipeline/test-root",
                    auth=auth, say=out.append, **kwargs)
    return result, out


def test_uploads_the_spec_and_starts_the_run(kfp_server, spec_file):
    host, state = kfp_server()
    result, out = _submit(host, spec_file, wait=True)
    # The uploaded file is the compiled spec, byte for byte.
    [upload] = state.uploads
    assert open(spec_file, "rb").read() in upload
    [run] = state.runs.values()
    assert run["display_name"] == "run-under-test"
    assert run["runtime_config"]["pipeline_root"] == "minio://mlpipeline/test-root"
    assert run["pipeline_version_reference"] == {"pipeline_id": result.pipeline_id,
                                                 "pipeline_version_id": result.version_id}
    assert run["experiment_id"] == result.experiment_id
    assert [e["display_name"] for e in state.experiments.values()] == ["taxi-exp"]
    # Every call carried the bearer token; none of the output shows it.
    assert all(h.get("authorization") == f"Bearer {TOKEN}" for _, _, h in state.requests)
    assert result.state == "SUCCEEDED"
    assert any(f"/#/runs/details/{result.run_id}" in line for line in out)
    assert not any(TOKEN in line for line in out)
    assert TOKEN not in repr(Auth("token", TOKEN))


def test_second_submission_adds_a_version(kfp_server, spec_file):
    host, state = kfp_server()
    first, _ = _submit(host, spec_file)
    second, _ = _submit(host, spec_file)
    assert first.pipeline_id == second.pipeline_id
    assert first.version_id != second.version_id
    assert len(state.pipelines) == 1 and len(state.runs) == 2


def test_session_cookie_is_sent(kfp_server, spec_file):
    host, state = kfp_server(token=None)
    _submit(host, spec_file, auth=auth_from_env(environ={
        "KFP_SESSION_COOKIE": "authservice_session=abc123"}))
    assert all("authservice_session=abc123" in h.get("cookie", "") for _, _, h in state.requests)


@pytest.mark.parametrize("code, word", [(401, "Unauthorized"), (403, "Forbidden")])
def test_refusal_is_reported_and_nothing_is_created(kfp_server, spec_file, code, word):
    host, state = kfp_server(refuse=code)
    with pytest.raises(SubmitError) as err:
        _submit(host, spec_file)
    assert f"HTTP {code} {word}" in str(err.value) and host in str(err.value)
    assert TOKEN not in str(err.value)
    assert [m for m, _, _ in state.requests] == ["GET"]  # only the read-only check
    assert not state.experiments and not state.uploads and not state.runs


def test_missing_credentials_say_how_to_give_them(kfp_server, spec_file):
    host, _ = kfp_server()
    with pytest.raises(SubmitError, match="HTTP 401.*KFP_BEARER_TOKEN"):
        _submit(host, spec_file, auth=Auth("none"))


def test_unreachable_host_is_reported(spec_file):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SubmitError, match="cannot reach KFP at http://127.0.0.1"):
        _submit(f"http://127.0.0.1:{port}", spec_file)


def test_rejected_run_leaves_no_uploaded_version(kfp_server, spec_file):
    host, state = kfp_server(fail_run=True)
    with pytest.raises(SubmitError, match="HTTP 400"):
        _submit(host, spec_file)
    [(pid, _)] = [(p, v) for p, v in state.pipelines.items()]
    [vid] = state.versions
    assert f"/apis/v2beta1/pipelines/{pid}/versions/{vid}" in state.deleted
    assert f"/apis/v2beta1/pipelines/{pid}" in state.deleted


def test_auth_precedence():
    env = {"KFP_BEARER_TOKEN": "x", "KFP_SESSION_COOKIE": "y"}
    assert auth_from_env(environ=env).kind == "token"
    assert auth_from_env(environ={"KFP_SESSION_COOKIE": "y"}).kind == "cookie"
    assert auth_from_env(in_cluster=True, environ=env).kind == "in-cluster"
    assert auth_from_env(kube_context="kind-kfp", environ=env).client_kwargs() == {
        "kube_context": "kind-kfp"}
    assert auth_from_env(environ={}).kind == "none"


@pytest.mark.parametrize("states, final, code", [
    (("PENDING", "RUNNING", "SUCCEEDED"), "SUCCEEDED", ExitCode.PUSHED),
    (("RUNNING", "FAILED"), "FAILED", ExitCode.ERROR),
    (("RUNNING", "CANCELING", "CANCELED"), "CANCELED", ExitCode.CANCELED),
])
def test_wait_follows_the_run_to_its_final_state(kfp_server, spec_file, states, final, code):
    host, _ = kfp_server(states=states)
    result, out = _submit(host, spec_file, wait=True, poll_seconds=0.01)
    assert result.state == final and result.exit_code == code
    # Each state the run went through is said once, in order.
    assert [line.split(": ", 1)[1] for line in out if line.startswith("Run run-under-test: ")
            ] == list(dict.fromkeys(states))


def test_a_canceled_run_ends_the_wait_at_once(kfp_server, spec_file):
    host, _ = kfp_server(states=("RUNNING", "CANCELED"))
    started = __import__("time").monotonic()
    result, _ = _submit(host, spec_file, wait=True, poll_seconds=0.01,
                        timeout=__import__("datetime").timedelta(hours=6))
    assert result.exit_code == ExitCode.CANCELED
    assert __import__("time").monotonic() - started < 30


def test_a_timeout_says_so_with_the_last_state(kfp_server, spec_file):
    import datetime
    host, _ = kfp_server(states=("PENDING", "RUNNING"))
    with pytest.raises(WaitTimedOut) as err:
        _submit(host, spec_file, wait=True, poll_seconds=0.05,
                timeout=datetime.timedelta(seconds=0.3))
    text = str(err.value)
    assert "still RUNNING" in text and "/#/runs/details/run-1" in text
    assert "cannot reach" not in text
    assert err.value.exit_code == ExitCode.TIMED_OUT


def test_a_server_error_while_waiting_is_the_server_s(kfp_server, spec_file):
    host, _ = kfp_server(get_run_error=500)
    with pytest.raises(SubmitError) as err:
        _submit(host, spec_file, wait=True, poll_seconds=0.01)
    assert "answered HTTP 500" in str(err.value)
    assert "configuration" not in str(err.value) and "cannot reach" not in str(err.value)


def test_submit_wait_exit_status_of_a_canceled_run(kfp_server, spec_file, capsys,
                                                   monkeypatch, tmp_path):
    from pipeline.kubeflow.compiler import REPO_ROOT
    host, _ = kfp_server(states=("CANCELED",))
    monkeypatch.setenv("KFP_BEARER_TOKEN", TOKEN)
    code = main(["submit", spec_file, "--config", str(REPO_ROOT / "configs" / "taxi.yaml"),
                 "--host", host, "--wait"])
    assert code == ExitCode.CANCELED == 6
    assert "ended: CANCELED" in capsys.readouterr().out
