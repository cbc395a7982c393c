"""`tfxp runs | lineage | diff | report`: questions answered from ML Metadata.

Imports nothing heavy at module level: `tfxp --help` must stay instant.
"""
from __future__ import annotations

import argparse
import json
import os
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from pipeline.lineage.store import Store


def _store_args(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group("metadata store (default: ./runs/<pipeline>/metadata.sqlite)")
    where.add_argument("--root", help="run root; its metadata.sqlite is read")
    where.add_argument("--config", help="pipeline config naming the default root")
    where.add_argument("--metadata-sqlite", metavar="FILE", help="an SQLite ML Metadata file")
    where.add_argument("--metadata-mysql", metavar="USER@HOST[:PORT]/DB",
                       help="a MySQL store (password from MLMD_MYSQL_PASSWORD)")
    where.add_argument("--metadata-grpc", metavar="HOST:PORT",
                       help="an ML Metadata gRPC service, e.g. a Kubeflow cluster's "
                            "(also MLMD_GRPC_ADDRESS)")


def _root(args: argparse.Namespace) -> Optional[str]:
    """The run root whose store is read; None when another store is named."""
    if args.root:
        return os.path.abspath(args.root)
    if args.metadata_sqlite or args.metadata_mysql or args.metadata_grpc \
            or os.environ.get("MLMD_GRPC_ADDRESS") or os.environ.get("MLMD_MYSQL"):
        return None
    from pipeline.config import load_config
    from pipeline.layout import default_root
    return default_root(load_config(args.config))


def _open(args: argparse.Namespace) -> "Store":
    from pipeline.lineage.store import open_store_from
    return open_store_from(_root(args), args.metadata_sqlite, args.metadata_mysql,
                           args.metadata_grpc)


def _write(text: str, output: Optional[str]) -> None:
    if output:
        with open(output, "w", encoding="utf-8") as f:
            f.write(text)
        print(f"Written to {output}")
    else:
        print(text)


def cmd_runs(args: argparse.Namespace) -> int:
    """Every run in the store: status per component, blessing, push."""
    import dataclasses

    from pipeline.layout import RunLayout
    from pipeline.lineage.render import runs_text
    from pipeline.local.lock import holder
    runs = _open(args).runs()
    root = _root(args)
    if root is not None:
        # One run per root: only the lock's holder can still be running.
        live = holder(RunLayout.at(root).lock)
        for r in runs:
            r.live = live is not None and live.run_id == r.run_id
    if args.format == "json":
        print(json.dumps([dict(dataclasses.asdict(r), status=r.status) for r in runs],
                         indent=2, default=str))
    else:
        print(runs_text(runs))
    return 0


def cmd_lineage(args: argparse.Namespace) -> int:
    """Where a model came from, as text, JSON, DOT or an HTML page."""
    from pipeline.lineage import html, render
    trace = _open(args).trace(args.target)
    text = {"text": render.trace_text, "json": render.trace_json, "dot": render.trace_dot,
            "html": html.trace_html}[args.format](trace)
    _write(text, args.output)
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    """What changed between two runs."""
    from pipeline.lineage.diff import diff_runs
    print(diff_runs(_open(args), args.run_a, args.run_b))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Writes one run's self-contained HTML report."""
    from pipeline.lineage.report import write_report
    path = write_report(_open(args), args.run, path=args.output, root=_root(args))
    print(f"Report: {path}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds runs, lineage, diff and report to `tfxp`."""
    runs = subparsers.add_parser(
        "runs", help="the runs in the metadata store: status per component, blessing, push")
    _store_args(runs)
    runs.add_argument("--format", choices=["text", "json"], default="text")
    runs.set_defaults(func=cmd_runs)

    lineage = subparsers.add_parser(
        "lineage", help="where a model came from: data, schema, code and config, drawn")
    lineage.add_argument("target", nargs="?", metavar="MODEL",
                         help="a pushed version, a model artifact id or a run (id, unique prefix, "
                              "'latest' or 'previous'); default: the newest pushed model")
    _store_args(lineage)
    lineage.add_argument("--format", choices=["text", "json", "dot", "html"], default="text")
    lineage.add_argument("--output", help="write to this file instead of stdout")
    lineage.set_defaults(func=cmd_lineage)

    diff = subparsers.add_parser(
        "diff", help="what changed between two runs: data, schema, config, code, metrics")
    diff.add_argument("run_a", nargs="?", metavar="RUN_A", help="default: the previous run")
    diff.add_argument("run_b", nargs="?", metavar="RUN_B", help="default: the latest run")
    _store_args(diff)
    diff.set_defaults(func=cmd_diff)

    report = subparsers.add_parser(
        "report", help="one self-contained HTML page for a run (opens offline)")
    report.add_argument("run", nargs="?", metavar="RUN", help="default: the latest run")
    _store_args(report)
    report.add_argument("--output", help="default: ROOT/reports/run-<id>.html")
    report.set_defaults(func=cmd_report)
