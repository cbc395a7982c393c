"""Uploads a compiled spec to Kubeflow Pipelines and starts a run (`kfp.Client`).

Credentials come from the environment, never from the command line (which
ends up in shell history) and never into the spec or the logs:

- `KFP_BEARER_TOKEN`: an existing bearer token (OIDC / service account);
- `KFP_SESSION_COOKIE`: a session cookie, e.g. `authservice_session=...`
  from a Kubeflow (Dex / oauth2-proxy) login;
- `--in-cluster`: the pod's projected service-account token
  (`KF_PIPELINES_SA_TOKEN_PATH`, default /var/run/secrets/kubeflow/pipelines/token);
- `--kube-context`: reach the API through the Kubernetes API server proxy;
- `http://USER:PASSWORD@host`: HTTP basic auth (e.g. a proxy in front of
  KFP); the URL is shown without them.

Before anything is created, one read-only call checks the host answers and
accepts the credentials, so an unreachable host or a 401/403 leaves nothing
behind, and says what answered: the KFP API, something else (a proxy's 404,
an HTTP status), or nothing. A run that cannot be created removes the
pipeline version uploaded for it.
"""
from __future__ import annotations

import base64
import contextlib
import dataclasses
import datetime
import logging
import os
import re
import time
import urllib.parse
from typing import Any, Callable, Iterator, Optional

from pipeline.errors import ConfigError, ExitCode, SubmitError, WaitTimedOut

TOKEN_ENV = "KFP_BEARER_TOKEN"
COOKIE_ENV = "KFP_SESSION_COOKIE"
SA_TOKEN_ENV = "KF_PIPELINES_SA_TOKEN_PATH"
# A run's final states (KFP v2beta1 RuntimeState) and the exit status of
# `tfxp submit --wait` for each; any other state (PENDING, RUNNING, CANCELING,
# PAUSED) is waited on.
FINAL_STATES = {"SUCCEEDED": ExitCode.PUSHED, "FAILED": ExitCode.ERROR,
                "SKIPPED": ExitCode.ERROR, "CANCELED": ExitCode.CANCELED,
                "CANCELLED": ExitCode.CANCELED}


HEALTHZ = "/apis/v2beta1/healthz"
_USERINFO = re.compile(r"(?<=://)[^/@\s]*@")


def redact(text: str) -> str:
    """`text` with the user and password of any URL in it replaced by `***`."""
    return _USERINFO.sub("***@", text)


@dataclasses.dataclass(frozen=True)
class Host:
    """A KFP endpoint: its URL without credentials, and those it carried."""

    url: str
    userinfo: Optional[str] = dataclasses.field(default=None, repr=False)  # "user:password"


def parse_host(host: str) -> Host:
    """`http(s)://[user:password@]host[:port][/path]`, the credentials taken out.

    (Given whole to urllib, `admin:pw@host` reads as a host name with a port,
    which DNS then cannot find.)
    """
    parts = urllib.parse.urlsplit(host.strip())
    try:
        port = parts.port
    except ValueError:
        raise ConfigError(f"--host {redact(host)}: the port is not a number") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"--host {redact(host)}: expected http://HOST[:PORT] or "
                          f"https://HOST[:PORT], optionally with a path")
    name = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    netloc = name + (f":{port}" if port is not None else "")
    userinfo = None
    if parts.username is not None:
        userinfo = (f"{urllib.parse.unquote(parts.username)}:"
                    f"{urllib.parse.unquote(parts.password or '')}")
    return Host(urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", "")),
                userinfo)


def _basic_credentials(userinfo: str):
    """kfp.Client credentials that send HTTP basic auth (kfp's own extension point)."""
    from kfp.client import TokenCredentialsBase

    class BasicCredentials(TokenCredentialsBase):
        def refresh_api_key_hook(self, config) -> None:
            config.api_key["authorization"] = base64.b64encode(userinfo.encode()).decode()
            config.api_key_prefix["authorization"] = "Basic"

    return BasicCredentials()


@dataclasses.dataclass(frozen=True)
class Auth:
    """How to authenticate; holds the secret only in memory. `repr` hides it."""

    kind: str  # "token" | "cookie" | "basic" | "in-cluster" | "kube-context" | "none"
    secret: Optional[str] = dataclasses.field(default=None, repr=False)
    kube_context: Optional[str] = None

    def headers(self) -> dict[str, str]:
        """The HTTP headers these credentials add to a request."""
        if self.kind == "token":
            return {"Authorization": f"Bearer {self.secret}"}
        if self.kind == "cookie":
            return {"Cookie": self.secret or ""}
        if self.kind == "basic":
            encoded = base64.b64encode((self.secret or "").encode()).decode()
            return {"Authorization": f"Basic {encoded}"}
        return {}

    def hide(self, text: str) -> str:
        """`text` without these credentials, in any form they were sent in."""
        text = redact(text)
        for secret in (self.secret, *self.headers().values()):
            if secret:
                text = text.replace(secret, "***")
        if self.kind == "basic" and self.secret and ":" in self.secret:
            password = self.secret.split(":", 1)[1]
            if password:
                text = text.replace(password, "***")
        return text

    def client_kwargs(self) -> dict[str, Any]:
        if self.kind == "token":
            return {"existing_token": self.secret}
        if self.kind == "basic":
            return {"credentials": _basic_credentials(self.secret or "")}
        if self.kind == "cookie":
            return {"cookies": self.secret}
        if self.kind == "in-cluster":
            from kfp.client import ServiceAccountTokenVolumeCredentials
            return {"credentials": ServiceAccountTokenVolumeCredentials(
                os.environ.get(SA_TOKEN_ENV))}
        if self.kind == "kube-context":
            return {"kube_context": self.kube_context}
        return {}


def auth_from_env(in_cluster: bool = False, kube_context: Optional[str] = None,
                  environ: Optional[dict[str, str]] = None) -> Auth:
    """The one credential to use: explicit flags first, then the environment."""
    environ = os.environ if environ is None else environ
    if in_cluster:
        return Auth("in-cluster")
    if kube_context:
        return Auth("kube-context", kube_context=kube_context)
    if environ.get(TOKEN_ENV):
        return Auth("token", environ[TOKEN_ENV].strip())
    if environ.get(COOKIE_ENV):
        return Auth("cookie", environ[COOKIE_ENV].strip())
    return Auth("none")


def with_host_credentials(auth: Auth, host: Host) -> Auth:
    """Basic auth from the URL's user and password, unless other credentials are given."""
    if host.userinfo is None:
        return auth
    if auth.kind != "none":
        raise ConfigError(f"--host {host.url} carries a user and password, and {auth.kind} "
                          f"credentials are given too; give one of them")
    return Auth("basic", host.userinfo)


@dataclasses.dataclass
class Submitted:
    run_id: str
    run_name: str
    experiment_id: str
    pipeline_id: str
    version_id: str
    url: str
    state: Optional[str] = None

    @property
    def exit_code(self) -> ExitCode:
        """0 unless waited on and not SUCCEEDED (see FINAL_STATES)."""
        return FINAL_STATES.get((self.state or "SUCCEEDED").upper(), ExitCode.ERROR)


def _classify(error: BaseException, host: str, auth: Auth) -> SubmitError:
    """A clear message for what went wrong, without echoing any credential."""
    status = getattr(error, "status", None) or getattr(error, "code", None)
    if status in (401, 403):
        hint = ("no credentials were given; set KFP_BEARER_TOKEN or KFP_SESSION_COOKIE, "
                "or use --in-cluster / --kube-context" if auth.kind == "none"
                else f"the {auth.kind} credentials were not accepted (expired, or no access "
                     f"to the namespace)")
        word = "Unauthorized" if status == 401 else "Forbidden"
        return SubmitError(f"KFP at {host} refused the request (HTTP {status} {word}): {hint}")
    if status is not None:
        reason = getattr(error, "reason", "") or ""
        return SubmitError(f"KFP at {host} answered HTTP {status} {reason}".rstrip())
    name = type(error).__name__
    text = auth.hide(str(error)).strip().splitlines()
    text = text[0][:200] if text else ""
    if "healthz" in text:  # kfp.Client's own health check, after its retries
        return SubmitError(f"KFP at {host} did not pass its health check ({text})")
    if any(k in name for k in ("MaxRetry", "NewConnection", "Connection", "Timeout")
           ) or any(k in text for k in ("Connection refused", "Max retries", "Name or service")):
        return SubmitError(f"cannot reach KFP at {host}: nothing answered "
                           f"(check the host, the port-forward or the ingress)")
    return SubmitError(f"KFP at {host}: {name}: {text}")


def _no_answer(reason: object) -> str:
    """Why nothing answered, in words: refused, timed out, or no such host."""
    import socket

    if isinstance(reason, ConnectionRefusedError):
        return "connection refused: nothing listens on that port"
    if isinstance(reason, (TimeoutError, socket.timeout)):
        return "no answer in the time allowed"
    if isinstance(reason, socket.gaierror):
        return f"the host name does not resolve: {reason.strerror}"
    return str(getattr(reason, "strerror", None) or reason)


class _DropHealthzRetries(logging.Filter):
    """kfp.Client logs a traceback for each failed health check it retries; the
    outcome is reported once, in our words."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and "healthz" in record.getMessage())


@contextlib.contextmanager
def _quiet_kfp_healthz() -> Iterator[None]:
    root, drop = logging.getLogger(), _DropHealthzRetries()
    root.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)


def preflight(host: str, auth: Auth, timeout: float = 10.0) -> None:
    """One GET of the health endpoint, with the credentials, without retries.

    `kfp.Client` retries its health check five times, five seconds apart, with
    a traceback each, and follows a Dex login redirect as if it were an
    answer; this says at once what answered: the KFP API (2xx), a login page
    (3xx), a refusal (401/403), something that is not the KFP API (a proxy's
    404, a 5xx), or nothing. `host` carries no credentials (`parse_host`).
    """
    import http.client
    import urllib.error
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    request = urllib.request.Request(f"{host.rstrip('/')}{HEALTHZ}", headers=auth.headers())
    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(request, timeout=timeout).close()
    except urllib.error.HTTPError as e:
        if 300 <= e.code < 400:
            raise SubmitError(
                f"KFP at {host} redirected to a login page (HTTP {e.code}): it needs a "
                f"session; set KFP_SESSION_COOKIE (e.g. authservice_session=...) or "
                f"KFP_BEARER_TOKEN") from None
        if e.code in (401, 403):
            raise _classify(e, host, auth) from None
        server = (e.headers.get("Server") or "").strip() if e.headers else ""
        who = f" (server: {server})" if server else ""
        what = ("not the KFP API (a proxy without a route to it, or the wrong port or path)"
                if e.code == 404 else "the KFP API, or a proxy in front of it, is failing")
        raise SubmitError(f"{host} answered HTTP {e.code} {e.reason}{who} to {HEALTHZ}: "
                          f"{what}") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise SubmitError(f"cannot reach KFP at {host}: nothing answered "
                          f"({_no_answer(reason)}); check the host, the port-forward or "
                          f"the ingress") from None
    except http.client.HTTPException as e:
        raise SubmitError(f"{host} answered, but not in HTTP ({type(e).__name__}): is it "
                          f"the KFP API's port?") from None


def submit(spec_path: str, *, host: Optional[str], namespace: Optional[str], experiment: str,
           run_name: Optional[str] = None, pipeline_root: Optional[str] = None,
           enable_caching: Optional[bool] = None, service_account: Optional[str] = None,
           auth: Auth = Auth("none"), wait: bool = False,
           timeout: datetime.timedelta = datetime.timedelta(hours=6),
           say: Callable[[str], None] = print, poll_seconds: float = 5.0) -> Submitted:
    """Uploads the spec as a pipeline (version), creates the run, optionally waits."""
    import kfp

    from pipeline.kubeflow.compiler import load_spec

    spec, _ = load_spec(spec_path)
    name = spec["pipelineInfo"]["name"]
    run_name = run_name or f"{name}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    if host:
        parsed = parse_host(host)
        host, auth = parsed.url, with_host_credentials(auth, parsed)
    where = host or "(in-cluster / kube context)"

    def call(fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:  # kfp_server_api / urllib3 errors, classified
            raise _classify(e, where, auth) from None

    # Read-only checks first: nothing is created on an unreachable host or a 401/403.
    if host:
        preflight(host, auth)
    with _quiet_kfp_healthz():
        client = call(kfp.Client, host=host, namespace=namespace or "kubeflow",
                      **auth.client_kwargs())
    call(client.list_experiments, page_size=1, namespace=namespace)
    exp = call(client.create_experiment, name=experiment, namespace=namespace)

    pipeline_id = call(client.get_pipeline_id, name)
    created_pipeline = pipeline_id is None
    if created_pipeline:
        pipeline = call(client.upload_pipeline, spec_path, pipeline_name=name,
                        namespace=namespace)
        pipeline_id = pipeline.pipeline_id
        versions = call(client.list_pipeline_versions, pipeline_id, page_size=1,
                        sort_by="created_at desc").pipeline_versions or []
        if not versions:
            raise SubmitError(f"KFP at {where} stored pipeline {name} without a version")
        version_id = versions[0].pipeline_version_id
    else:
        version_id = call(client.upload_pipeline_version, spec_path,
                          pipeline_version_name=run_name, pipeline_id=pipeline_id
                          ).pipeline_version_id
    try:
        run = call(client.run_pipeline, experiment_id=exp.experiment_id, job_name=run_name,
                   pipeline_id=pipeline_id, version_id=version_id, pipeline_root=pipeline_root,
                   enable_caching=enable_caching, service_account=service_account)
    except SubmitError:
        # Nothing half-created: remove what this submission uploaded.
        try:
            client.delete_pipeline_version(pipeline_id, version_id)
            if created_pipeline:
                client.delete_pipeline(pipeline_id)
        except Exception:  # the original error matters more
            say(f"warning: could not remove pipeline version {version_id}")
        raise
    url = f"{(host or '').rstrip('/')}/#/runs/details/{run.run_id}"
    result = Submitted(run.run_id, run_name, exp.experiment_id, pipeline_id, version_id, url)
    say(f"Run {run_name} started: {url}")
    if wait:
        result.state = wait_for_run(lambda: call(client.get_run, run.run_id), run_name, url,
                                    timeout, say, poll_seconds)
        say(f"Run {run_name} ended: {result.state} ({url})")
    return result


def wait_for_run(get_run: Callable[[], Any], run_name: str, url: str,
                 timeout: datetime.timedelta, say: Callable[[str], None],
                 poll_seconds: float = 5.0) -> str:
    """Polls the run until a final state (FINAL_STATES), saying each new state;
    WaitTimedOut with the last state seen when `timeout` passes first.

    (`kfp.Client.wait_for_run_completion` waits out the whole timeout on a
    canceled run, and its TimeoutError reads like an unreachable host.)
    """
    deadline = time.monotonic() + timeout.total_seconds()
    last = None
    while True:
        state = str(getattr(get_run(), "state", "") or "UNKNOWN").upper()
        if state != last:
            say(f"Run {run_name}: {state}")
            last = state
        if state in FINAL_STATES:
            return state
        left = deadline - time.monotonic()
        if left <= 0:
            raise WaitTimedOut(f"run {run_name} was still {state} after waiting "
                               f"{timeout}; it goes on on the cluster ({url})")
        time.sleep(min(poll_seconds, left))
