"""`tfxp compile`, `tfxp submit`, `tfxp rehearse`: the pipeline on Kubeflow Pipelines v2.

Imports nothing heavy at module level: `tfxp --help` must stay fast.
"""
from __future__ import annotations

import argparse
import os
import time
from typing import TYPE_CHECKING

from pipeline.errors import ConfigError

if TYPE_CHECKING:  # typing only: nothing heavy is imported until a command runs
    from pipeline.config import PipelineConfig
    from pipeline.kubeflow.rehearse import Rehearsal, TaskResult
    from pipeline.layout import RehearsalLayout
    from pipeline.local.run import Outcome
    from pipeline.local.runner import NodeResult


def _config(args: argparse.Namespace) -> "PipelineConfig":
    """The config as compiled for the cluster (`kubeflow.overrides` applied)."""
    from pipeline.kubeflow.compiler import cluster_config
    return cluster_config(args.config)


def cmd_compile(args: argparse.Namespace) -> int:
    """Writes the spec; the compile step carries every open-source KFP fix."""
    from pipeline.kubeflow.compiler import compile_spec, write_spec
    from pipeline.layout import spec_path

    cfg = _config(args)
    image = args.image or cfg.kubeflow.image
    spec, platform = compile_spec(cfg, image=image)
    path = write_spec(spec, platform, args.output or spec_path(cfg))
    tasks = spec["root"]["dag"]["tasks"]
    print(f"Compiled {cfg.pipeline_name}: {len(tasks)} tasks, image {image}, "
          f"schema {spec['schemaVersion']}, pipeline root {spec['defaultPipelineRoot']}")
    print(f"Wrote {path}")
    return 0


def cmd_rehearse(args: argparse.Namespace) -> int:
    """Runs a compiled spec here; exit status and summary as for `tfxp run`."""
    import importlib.util

    from pipeline.kubeflow.compiler import REPO_ROOT, load_spec
    from pipeline.kubeflow.rehearse import rehearse
    from pipeline.layout import RehearsalLayout, RunLayout
    from pipeline.local.summary import progress_line, summary

    cfg = _config(args)
    kf = cfg.kubeflow
    spec, platform = load_spec(args.spec)
    layout = (RehearsalLayout(args.workdir) if args.workdir
              else RunLayout.under(None, cfg).rehearsal)
    # Where tfx is installed, found without importing it (the tasks import it).
    site_packages = os.path.dirname(os.path.dirname(importlib.util.find_spec("tfx").origin))
    mounts = {kf.site_packages: site_packages, kf.project_dir: str(REPO_ROOT)}
    for item in args.mount or []:
        inside, sep, outside = item.partition("=")
        if not sep or not inside.startswith("/"):
            raise ConfigError(f"--mount {item!r}: expected /path/in/container=LOCAL_DIR")
        mounts[inside] = os.path.abspath(outside)
    volumes = {kf.serving_mount: layout.volume(kf.serving_pvc)}
    os.makedirs(volumes[kf.serving_mount], exist_ok=True)
    print(f"Rehearsing {args.spec} under {layout.root}", flush=True)

    def progress(event, task):
        if event == "end":
            print(progress_line(event, _node(task)), flush=True)

    started = time.monotonic()
    result = rehearse(spec, platform, layout.root, mounts, volumes=volumes, listener=progress,
                      image_code=str(REPO_ROOT), fork=not args.no_fork,
                      image=args.image or kf.image, raise_on_failure=False)
    outcome = rehearsal_outcome(result, layout)
    print(summary(outcome, cfg), flush=True)
    serving = os.path.join(volumes[kf.serving_mount], cfg.serving.model_name)
    from components.atomic_pusher.served_state import read as read_served

    versions = [str(v) for v in read_served(serving).served]  # what models.config serves
    print(f"Rehearsal {result.run_id}: {len(result.tasks)} tasks, "
          f"{time.monotonic() - started:.1f}s; served versions: {', '.join(versions) or 'none'} "
          f"in {serving}")
    if outcome.status == "error" and result.failure is not None:
        raise result.failure
    return outcome.exit_code


def _node(task: "TaskResult") -> "NodeResult":
    """A rehearsed task as the local runner reports a node (the one summary reads both)."""
    from pipeline.lineage.store import EXECUTED, FAILED
    from pipeline.local.runner import NodeResult

    return NodeResult(task.name, FAILED if task.code else EXECUTED, task.seconds,
                      task.execution_id, task.error)


def rehearsal_outcome(result: "Rehearsal", layout: "RehearsalLayout") -> "Outcome":
    """What came of a rehearsal, read from its ML Metadata store as for `tfxp run`."""
    from pipeline.layout import RunLayout
    from pipeline.lineage.store import open_store_from
    from pipeline.local.run import read_outcome
    from pipeline.local.runner import RunResult

    nodes = [_node(task) for task in result.tasks]
    for node in nodes:
        if node.state == "failed" and node.error is None:
            node.error = result.failure
    run = RunResult(result.run_id, result.pipeline_name, nodes)
    return read_outcome(run, RunLayout.at(layout.root), open_store_from(sqlite=result.metadata))


def cmd_submit(args: argparse.Namespace) -> int:
    """Uploads and starts a run; with --wait, the exit status of its final state
    (0 succeeded, 1 failed or skipped, 5 canceled, 6 still running at the timeout)."""
    import datetime

    from pipeline.kubeflow.submit import auth_from_env, parse_host, submit, with_host_credentials

    cfg = _config(args)
    kf = cfg.kubeflow
    auth = auth_from_env(in_cluster=args.in_cluster, kube_context=args.kube_context)
    host = args.host or kf.host
    if host:  # shown and used without the user and password it may carry
        shown = parse_host(host)
        auth, host = with_host_credentials(auth, shown), shown.url
    print(f"Submitting {args.spec} to {host or 'the in-cluster endpoint'} "
          f"(auth: {auth.kind})", flush=True)
    result = submit(
        args.spec, host=host, namespace=args.namespace or kf.namespace,
        experiment=args.experiment or kf.experiment, run_name=args.run_name,
        pipeline_root=args.pipeline_root or kf.pipeline_root,
        enable_caching=False if args.no_cache else None,
        service_account=kf.service_account, auth=auth, wait=args.wait,
        timeout=datetime.timedelta(minutes=args.timeout_minutes))
    return result.exit_code


def register(subparsers: "argparse._SubParsersAction") -> None:
    """Adds compile, submit and rehearse to `tfxp`."""
    comp = subparsers.add_parser("compile", help="compile the pipeline to a KFP v2 spec (YAML)")
    comp.add_argument("--config")
    comp.add_argument("--image", help="pipeline image (default: kubeflow.image in the config)")
    comp.add_argument("--output", help="spec file (default: ./build/<pipeline>.kfp.yaml)")
    comp.set_defaults(func=cmd_compile)

    sub = subparsers.add_parser(
        "submit", help="upload a compiled spec to Kubeflow Pipelines and start a run",
        description="Credentials: KFP_BEARER_TOKEN or KFP_SESSION_COOKIE in the "
                    "environment, or --in-cluster, or --kube-context.")
    sub.add_argument("spec", help="compiled spec from `tfxp compile`")
    sub.add_argument("--config")
    sub.add_argument("--host", help="KFP API endpoint (default: kubeflow.host)")
    sub.add_argument("--namespace")
    sub.add_argument("--experiment")
    sub.add_argument("--run-name")
    sub.add_argument("--pipeline-root")
    sub.add_argument("--no-cache", action="store_true", help="disable caching for this run")
    sub.add_argument("--in-cluster", action="store_true",
                     help="use the pod's service-account token")
    sub.add_argument("--kube-context", help="reach KFP through this kube context")
    sub.add_argument("--wait", action="store_true", help="follow the run to its end")
    sub.add_argument("--timeout-minutes", type=int, default=360)
    sub.set_defaults(func=cmd_submit)

    reh = subparsers.add_parser(
        "rehearse", help="run a compiled spec here, task by task, as KFP would")
    reh.add_argument("spec")
    reh.add_argument("--config")
    reh.add_argument("--workdir", help="default: ./runs/<pipeline>/rehearsal")
    reh.add_argument("--mount", action="append", metavar="IN_CONTAINER=LOCAL",
                     help="map a path inside the image or cluster to a local directory")
    reh.add_argument("--image", help="the image the spec names (recorded in ML Metadata)")
    reh.add_argument("--no-fork", action="store_true",
                     help="start every task from cold (no fork server): slower, the same result")
    reh.set_defaults(func=cmd_rehearse)

