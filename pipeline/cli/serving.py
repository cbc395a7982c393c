"""`tfxp predict | evaluate | versions | promote | rollback`: after the push.

Exit status: 0 done; 3 rows the schema rejects (predict: the good rows are
still written) or no readable row; 5 the served version decayed (evaluate);
1 any other error, as for `tfxp run`.
"""
from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from pipeline.errors import ConfigError

if TYPE_CHECKING:
    from pipeline.config import PipelineConfig
    from pipeline.layout import RunLayout

SHOWN_BAD_ROWS = 20
# The commands that read the run root's ML Metadata store.
STORE_COMMANDS = ("predict", "evaluate", "versions")


def _setup(args: argparse.Namespace) -> tuple["PipelineConfig", "RunLayout"]:
    from pipeline.config import load_config
    from pipeline.layout import RunLayout
    from pipeline.lineage.store import check_sqlite
    cfg = load_config(args.config)
    layout = RunLayout.under(args.root, cfg)
    if args.command in STORE_COMMANDS:  # promote and rollback touch serving files only
        check_sqlite(layout.metadata)  # a damaged store is named before anything reads it
    return cfg, layout


def _report_bad(bad: list) -> None:
    for b in bad[:SHOWN_BAD_ROWS]:
        print(f"  {b}", file=sys.stderr)
    if len(bad) > SHOWN_BAD_ROWS:
        print(f"  ... and {len(bad) - SHOWN_BAD_ROWS} more", file=sys.stderr)


def cmd_predict(args: argparse.Namespace) -> int:
    """Scores a CSV with a served version; exit 3 when some rows could not be scored."""
    from pipeline.errors import DataRejected
    from pipeline.serving.predict import predict

    cfg, layout = _setup(args)
    p = predict(cfg, layout, args.data, version=args.version, label=args.label,
                output=args.output)
    print(f"Version {p.version} scored {p.scored} of {p.rows} rows of {args.data} "
          f"(run {p.run_id}; input contract {p.contract}); predictions in {p.output}")
    if p.bad:
        _report_bad(p.bad)
        raise DataRejected(f"{len(p.bad)} of {p.rows} rows not scored (listed above); "
                           f"the other rows are in {p.output}")
    return 0


def _metric_lines(e) -> list[str]:
    from pipeline.lineage.results import TABLE_METRICS, fmt_metric, slice_label
    lines = [f"  {'slice':<28}" + "".join(f" {c.header:>15}" for c in TABLE_METRICS)]
    for key in sorted(e.metrics, key=lambda k: (len(k), str(k))):
        now, then = e.metrics[key], e.at_push.get(key, {})
        cells = []
        for c in TABLE_METRICS:
            cell = fmt_metric(now.get(c.key), c.metric)
            if c.key in then:
                cell += f" ({fmt_metric(then.get(c.key), c.metric)})"
            cells.append(f" {cell:>15}")
        lines.append(f"  {slice_label(key)[:28]:<28}" + "".join(cells))
    return lines


def _print_report(layout: "RunLayout", run_id: str) -> None:
    """The evaluation's HTML report, as `tfxp run` writes one; a problem here fails nothing."""
    from pipeline.lineage.report import write_report
    from pipeline.lineage.store import open_store_from
    try:
        print(f"Report: {write_report(open_store_from(layout.root), run_id, root=layout.root)}")
    except Exception as e:  # the evaluation's outcome stands; say why there is no report
        print(f"No report written ({type(e).__name__}: {e})")


def cmd_evaluate(args: argparse.Namespace) -> int:
    """Evaluates a served version on new data; exit 5 when it decayed."""
    from pipeline.errors import Decayed
    from pipeline.serving.evaluate import evaluate

    cfg, layout = _setup(args)
    e = evaluate(cfg, layout, args.data, version=args.version, label=args.label)
    pushed = f"pushed by run {e.push_run}" if e.push_run else "no push record in the store"
    used = e.rows - len(e.bad) - e.unlabelled
    print(f"Version {e.version} ({pushed}) on {used} of {e.rows} rows of {args.data} "
          f"(run {e.run_id})")
    if e.unlabelled:
        print(f"{e.unlabelled} rows left out: no label ({e.label_column} is empty or one of "
              f"data.na_values)", file=sys.stderr)
    if e.bad:
        print(f"{len(e.bad)} rows left out: a value the version cannot read:", file=sys.stderr)
        _report_bad(e.bad)
    _print_report(layout, e.run_id)
    if e.labelled:
        print("Metrics now (at push time):")
        print("\n".join(_metric_lines(e)))
        for c in e.checks:
            print(f"  {'CROSSED' if c.crossed else 'ok':<8}{c}")
        crossed = [str(c) for c in e.checks if c.crossed]
        if crossed:
            raise Decayed("monitoring thresholds crossed: " + "; ".join(crossed))
        return 0
    if not e.measured:
        print(f"No label column ({e.label_column}) and no drift thresholds configured "
              f"(drift_check.thresholds): nothing was compared. The data's statistics are "
              f"recorded in run {e.run_id}; add thresholds to compare them with the "
              f"statistics that trained version {e.version}.")
        return 0
    print(f"No label column ({e.label_column}): the data's statistics against those that "
          f"trained the version:")
    for d in e.measured:
        print(f"  {'MOVED' if d in e.drift else 'ok':<8}{d.feature}: {d.comparator} "
              f"{d.value:.4f} (threshold {d.threshold:g})")
    if e.drift:
        raise Decayed("the data moved from the data that trained the version: "
                      + ", ".join(d.feature for d in e.drift))
    return 0


def _serving_setup(args: argparse.Namespace) -> tuple[str, "RunLayout"]:
    """(model name, layout) for versions, promote and rollback: from --config, or, given
    --root alone, from the one model under ROOT/serving (never the default config's)."""
    from pipeline.layout import RunLayout
    from pipeline.lineage.store import check_sqlite

    if args.config or not args.root:
        cfg, layout = _setup(args)
        return cfg.serving.model_name, layout
    from components.atomic_pusher.served_state import model_names_under

    models = RunLayout.models_dir(args.root)
    names = model_names_under(models)
    if len(names) != 1:
        found = f"models {', '.join(names)}" if names else "no model"
        raise ConfigError(f"{models} holds {found}; name the pipeline with --config")
    layout = RunLayout.of_model(args.root, names[0])
    if args.command in STORE_COMMANDS:
        check_sqlite(layout.metadata)  # a damaged store is named before anything reads it
    return names[0], layout


def _served_note(v) -> str:
    if v.pending:
        return "not served (a push that died before its models.config; the next push " \
               "removes it)"
    if not v.served and not v.run_id:
        return "not served (no push recorded; retention may remove it)"
    return "" if v.served else "not served"


def cmd_versions(args: argparse.Namespace) -> int:
    """Lists the versions on disk, their labels, whether models.config serves them, run
    and metrics at push time; a damaged serving file is named (exit 1)."""
    from pipeline.errors import StateError, StoreError
    from pipeline.lineage.results import TABLE_METRICS, fmt_metric
    from pipeline.lineage.store import open_store_from
    from pipeline.serving.versions import list_versions

    _, layout = _serving_setup(args)
    try:
        store = open_store_from(layout.root)
    except StoreError:
        store = None
    found = list_versions(layout.serving, store)
    if not found.versions and not found.problems:
        print(f"No versions under {layout.serving}")
        return 0
    print(f"Versions under {layout.serving}:")
    for v in found.versions:
        metrics = "  ".join(f"{c.header} {fmt_metric(v.metrics.get(c.key), c.metric)}"
                            for c in TABLE_METRICS if c.key in v.metrics)
        note = _served_note(v) if found.config_readable else ""
        print("  ".join([f"  {v.version}", f"{','.join(v.labels) or '-':<14} run "
                         f"{v.run_id or '?'}"] + [part for part in (metrics, note) if part]))
    for label, version in sorted(found.dangling.items()):
        print(f"  {label} -> {version}: not on disk")
    if found.problems:
        for problem in found.problems[1:]:
            print(problem, file=sys.stderr)
        raise StateError(found.problems[0])
    return 0


def _print_repairs(repaired: list[str]) -> None:
    for line in repaired:
        print(f"repaired {line}", file=sys.stderr)


def cmd_promote(args: argparse.Namespace) -> int:
    from components.atomic_pusher.served_state import config_path
    from pipeline.serving.versions import promote

    model_name, layout = _serving_setup(args)
    if not args.version.isdigit():
        raise ConfigError(f"VERSION must be a number, got {args.version!r}")
    done = promote(model_name, layout.serving, int(args.version), args.label)
    _print_repairs(done.repaired)
    print(f"{args.label} -> {args.version}; labels now "
          + ", ".join(f"{k} {v}" for k, v in sorted(done.labels.items()))
          + f" ({config_path(layout.serving)})")
    return 0


def cmd_rollback(args: argparse.Namespace) -> int:
    from pipeline.serving.versions import rollback

    model_name, layout = _serving_setup(args)
    done = rollback(model_name, layout.serving)
    _print_repairs(done.repaired)
    print(f"stable rolled back from {done.before} to {done.after}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds predict, evaluate, versions, promote and rollback to `tfxp`."""
    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--config", help="pipeline config YAML (default: configs/taxi.yaml)")
        p.add_argument("--root", help="run root (default: ./runs/<pipeline name>)")

    def which(p: argparse.ArgumentParser) -> None:
        group = p.add_mutually_exclusive_group()
        group.add_argument("--version", help="a version number on disk")
        group.add_argument("--label", choices=("stable", "canary"),
                           help="the version with this label (default: stable)")

    p = subparsers.add_parser("predict", help="score a CSV with a served model version")
    p.add_argument("--data", required=True, help="CSV with the feature columns")
    p.add_argument("--output",
                   help="output CSV (default: <name>.predictions.csv beside <name>.csv)")
    common(p)
    which(p)
    p.set_defaults(func=cmd_predict)

    p = subparsers.add_parser(
        "evaluate", help="evaluate a served version on new data; exit 5 if it decayed")
    p.add_argument("--data", required=True,
                   help="CSV; with the label column TFMA metrics, without it TFDV drift")
    common(p)
    which(p)
    p.set_defaults(func=cmd_evaluate)

    p = subparsers.add_parser("versions", help="served versions, labels, push-time metrics")
    common(p)
    p.set_defaults(func=cmd_versions)

    p = subparsers.add_parser("promote", help="point the stable or canary label at a version")
    p.add_argument("version", metavar="VERSION")
    p.add_argument("--label", choices=("stable", "canary"), default="stable")
    common(p)
    p.set_defaults(func=cmd_promote)

    p = subparsers.add_parser("rollback", help="move stable back to the previous stable")
    common(p)
    p.set_defaults(func=cmd_rollback)
