"""`tfxp submit` against a loopback HTTP server that answers the KFP v2beta1
REST calls `kfp.Client` makes: what is uploaded, which run is created with
which pipeline root and credentials, and how refusals and silence read."""
from __future__ import annotations

import base64
import datetime
import json
import logging
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
                 get_run_error: int | None = None, basic: str | None = None):
        self.token, self.refuse, self.fail_run = token, refuse, fail_run
        # The Authorization header every call must carry: a bearer token or basic auth.
        self.authorization = (f"Basic {base64.b64encode(basic.encode()).decode()}" if basic
                              else f"Bearer {token}" if token else None)
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
            if state.authorization and self.headers.get("Authorization") != state.authorization:
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
    assert len(state.requests) >= 6  # healthz, experiments, pipelines, upload, run, get
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
    assert [m for m, _, _ in state.requests].count("POST") >= 3  # experiment, upload, run
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


def _closed_port() -> int:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_host_is_reported(spec_file):
    with pytest.raises(SubmitError, match=r"cannot reach KFP at http://127.0.0.1.*"
                                          r"nothing answered \(connection refused"):
        _submit(f"http://127.0.0.1:{_closed_port()}", spec_file)


@pytest.fixture
def plain_server():
    """A loopback HTTP server that is not KFP: it answers every request `status`."""
    servers = []

    def start(status: int):
        class Handler(BaseHTTPRequestHandler):
            server_version, sys_version = "edge-proxy/1.0", ""

            def log_message(self, *args):
                pass

            def do_GET(self):
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"
    yield start
    for server in servers:
        server.shutdown()


def _cli_submit(spec_file, host, capsys, caplog) -> tuple[int, str]:
    from pipeline.kubeflow.compiler import REPO_ROOT
    with caplog.at_level(logging.INFO):
        code = main(["submit", spec_file, "--config", str(REPO_ROOT / "configs" / "taxi.yaml"),
                     "--host", host])
    out = capsys.readouterr()
    # No library log record with a traceback (kfp's health-check retries log five).
    assert not [r for r in caplog.records if r.exc_info], caplog.text
    assert "Traceback" not in out.err and "Traceback" not in out.out
    return code, out.err


@pytest.mark.parametrize("status, words", [
    (404, "answered HTTP 404 Not Found (server: edge-proxy/1.0) to /apis/v2beta1/healthz: "
          "not the KFP API"),
    (503, "answered HTTP 503 Service Unavailable (server: edge-proxy/1.0)")])
def test_a_proxy_that_is_not_kfp_is_reported_as_what_answered(
        plain_server, spec_file, capsys, caplog, monkeypatch, status, words):
    monkeypatch.setenv("KFP_BEARER_TOKEN", TOKEN)
    host = plain_server(status)
    code, err = _cli_submit(spec_file, host, capsys, caplog)
    assert code == ExitCode.ERROR
    assert f"{host} {words}" in err and err.count("\n") == 1
    assert len(err.replace(host, "")) < 200  # one short line, whatever the host's length
    assert "nothing answered" not in err


def test_a_closed_port_is_one_line_saying_nothing_answered(spec_file, capsys, caplog,
                                                          monkeypatch):
    monkeypatch.delenv("KFP_BEARER_TOKEN", raising=False)
    code, err = _cli_submit(spec_file, f"http://127.0.0.1:{_closed_port()}", capsys, caplog)
    assert code == ExitCode.ERROR and err.count("\n") == 1
    assert "nothing answered (connection refused" in err and len(err) < 200


def test_credentials_in_the_host_url_are_used_and_never_shown(kfp_server, spec_file, capsys,
                                                             monkeypatch):
    from pipeline.kubeflow.compiler import REPO_ROOT
    monkeypatch.delenv("KFP_BEARER_TOKEN", raising=False)
    monkeypatch.delenv("KFP_SESSION_COOKIE", raising=False)
    host, state = kfp_server(basic="admin:pw-s3cret")
    with_credentials = host.replace("http://", "http://admin:pw-s3cret@")
    code = main(["submit", spec_file, "--config", str(REPO_ROOT / "configs" / "taxi.yaml"),
                 "--host", with_credentials])
    out = capsys.readouterr()
    assert code == 0, out.err
    assert len(state.runs) == 1 and len(state.requests) >= 6
    # Every call, kfp.Client's too, authenticated with the URL's user and password.
    assert all(h.get("authorization") == state.authorization for _, _, h in state.requests)
    assert f"to {host} (auth: basic)" in out.out and f"{host}/#/runs/details/" in out.out
    assert "pw-s3cret" not in out.out + out.err and "admin" not in out.out + out.err


@pytest.mark.parametrize("where", ["wrong-password", "closed-port"])
def test_a_failure_with_credentials_in_the_url_hides_them(kfp_server, spec_file, where):
    host, _ = kfp_server(basic="admin:right")
    if where == "closed-port":
        host = f"http://127.0.0.1:{_closed_port()}"
    with pytest.raises(SubmitError) as err:
        _submit(host.replace("http://", "http://admin:pw-s3cret@"), spec_file,
                auth=Auth("none"))
    text = str(err.value)
    assert "pw-s3cret" not in text and "admin" not in text
    assert host in text  # parsed: the host is the host, not "admin:pw-s3cret@127.0.0.1"
    assert "Name or service" not in text
    assert ("HTTP 401" in text) if where == "wrong-password" else ("connection refused" in text)


def test_host_urls_are_parsed():
    from pipeline.errors import ConfigError
    from pipeline.kubeflow.submit import parse_host, redact
    parsed = parse_host("https://us%40r:p%3Aw@kfp.example.org:8443/pipeline/")
    assert parsed.url == "https://kfp.example.org:8443/pipeline"
    assert parsed.userinfo == "us@r:p:w" and "p:w" not in repr(parsed)
    assert parse_host("http://[::1]:8080").url == "http://[::1]:8080"
    assert parse_host("http://localhost:8080").userinfo is None
    for bad in ("localhost:8080", "ftp://host", "http://admin:pw@host:port"):
        with pytest.raises(ConfigError) as e:
            parse_host(bad)
        assert "pw" not in str(e.value)
    assert redact("at http://a:b@h:1/x and https://h2") == "at http://***@h:1/x and https://h2"


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


def _run_polls(state: FakeKfp) -> int:
    return sum(1 for m, p, _ in state.requests
               if m == "GET" and p.startswith("/apis/v2beta1/runs/"))


def test_a_canceled_run_ends_the_wait_at_once(kfp_server, spec_file):
    # Had the wait gone on past CANCELED, it would have seen SUCCEEDED next.
    host, state = kfp_server(states=("RUNNING", "CANCELED", "SUCCEEDED"))
    result, _ = _submit(host, spec_file, wait=True, poll_seconds=0.01,
                        timeout=datetime.timedelta(hours=6))
    assert result.state == "CANCELED" and result.exit_code == ExitCode.CANCELED
    assert _run_polls(state) == 2


def test_a_timeout_says_so_with_the_last_state(kfp_server, spec_file):
    # A wait of no time polls once: the state it names is that first answer.
    host, state = kfp_server(states=("PENDING", "RUNNING"))
    with pytest.raises(WaitTimedOut) as err:
        _submit(host, spec_file, wait=True, poll_seconds=0.05,
                timeout=datetime.timedelta(0))
    text = str(err.value)
    assert _run_polls(state) == 1
    assert "still PENDING" in text and "/#/runs/details/run-1" in text
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


def test_kfp_health_check_retries_are_not_logged_and_read_as_such(caplog):
    from pipeline.kubeflow.submit import _classify, _quiet_kfp_healthz
    with caplog.at_level(logging.INFO):
        with _quiet_kfp_healthz():
            try:
                raise RuntimeError("(404) Reason: Not Found")
            except RuntimeError:  # what kfp.Client logs on each of its five attempts
                logging.exception("Failed to get healthz info attempt 1 of 5.")
            logging.error("another library's error")
        assert [r.getMessage() for r in caplog.records] == ["another library's error"]
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.exception("Failed to get healthz info attempt 1 of 5.")
        assert len(caplog.records) == 2  # outside kfp.Client's construction, kept
    error = _classify(TimeoutError("Failed getting healthz endpoint after 5 attempts."),
                      "http://h:1", Auth("none"))
    assert "did not pass its health check" in str(error) and "nothing answered" not in str(error)
