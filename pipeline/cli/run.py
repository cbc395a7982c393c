"""`tfxp run` and `tfxp schema`: the pipeline, or its data stage, on this machine."""
from __future__ import annotations

import argparse
import os
import sys
from typing import TYPE_CHECKING, Optional

from pipeline.errors import StateError

if TYPE_CHECKING:
    from pipeline.config import PipelineConfig
    from pipeline.layout import RunLayout
    from pipeline.local.beam_mode import Mode


def data_argument(value: str) -> str:
    """A --data path as the shell gives it: relative to the current directory (a
    config's own data.path is relative to the config file); URIs and package: as is."""
    if "://" in value or value.startswith("package:"):
        return value
    return os.path.abspath(value)


def _config(args: argparse.Namespace) -> "PipelineConfig":
    from pipeline.config import load_config
    return load_config(args.config)


def cmd_run(args: argparse.Namespace) -> int:
    """Runs the whole pipeline; exit status 0 pushed, 3 data rejected, 4 not blessed."""
    import datetime

    from pipeline.dag.schema import check_config_against_schema
    from pipeline.layout import RunLayout
    from pipeline.lineage.store import check_sqlite
    from pipeline.local import beam_mode, unchanged
    from pipeline.local.lock import run_lock
    from pipeline.local.writable import require_run_writable

    cfg = _config(args)
    check_config_against_schema(cfg)  # in a second, before TFX is even imported
    layout = RunLayout.under(args.root, cfg)
    layout.require_directory()
    require_run_writable(cfg, layout)
    os.makedirs(layout.root, exist_ok=True)
    run_id = datetime.datetime.now().isoformat()
    files = cfg.data_files(args.data)
    inputs = unchanged.inputs_key(cfg, files)
    with run_lock(layout.lock, run_id, wait=not args.no_wait,
                  on_wait=lambda holder: print(
                      f"Waiting: {layout.root} is in use by {holder} "
                      f"(one run per root; --no-wait exits instead)", flush=True)):
        check_sqlite(layout.metadata)  # a damaged store is named before anything runs
        previous = None if args.recheck else unchanged.lookup(layout, inputs)
        if previous is not None:
            return _print_unchanged(previous)
        unchanged.forget(layout)
        beam = beam_mode.choose_for(cfg, files)
        return _run(args, cfg, layout, run_id, inputs, beam)


def _print_unchanged(previous) -> int:
    print(f"UNCHANGED: nothing that decides the result changed since run {previous.run_id} "
          f"(configuration, schema, data files, code, libraries, served versions), so "
          f"TFX would take every node from cache. Its outcome stands; nothing was run or "
          f"recorded (--recheck goes through TFX).", flush=True)
    print(previous.summary, flush=True)
    if previous.report:
        print(f"Report: {previous.report}", flush=True)
    if previous.exit_code:
        print(f"tfxp run: unchanged since run {previous.run_id}, whose outcome stands: "
              f"{previous.status.replace('_', ' ')} (see its summary above)",
              file=sys.stderr, flush=True)
    return previous.exit_code


def _run(args: argparse.Namespace, cfg: "PipelineConfig", layout: "RunLayout", run_id: str,
         inputs: Optional[str], beam: "Mode") -> int:
    """The run itself, under the root's lock; a completed run records its key."""
    from pipeline.local import unchanged
    from pipeline.local.run import run_pipeline
    from pipeline.local.summary import progress_line, summary

    steps = "".join(f"; {step}: {' '.join(args)}" for step, args in beam.step_args.items())
    print(f"Running {cfg.pipeline_name} locally under {layout.root}\n"
          f"Beam {' '.join(beam.args)}{steps} ({beam.why})", flush=True)
    outcome = run_pipeline(
        cfg, layout.root, data_path=args.data, run_id=run_id, lock_held=True,
        beam_args=beam.args, step_beam_args=beam.step_args,
        listener=lambda event, node: event == "end" and print(progress_line(event, node),
                                                              flush=True))
    text = summary(outcome, cfg)
    print(text, flush=True)
    report = _print_report(layout, outcome.run.run_id)
    unchanged.record(layout, inputs, unchanged.Previous(
        run_id=outcome.run.run_id, status=outcome.status, exit_code=int(outcome.exit_code),
        summary=text, report=report))
    failure = outcome.failure()
    if failure is not None:
        raise failure  # its one line goes to stderr, after the summary on stdout
    return outcome.exit_code


def _print_report(layout: "RunLayout", run_id: str) -> Optional[str]:
    """Writes the run's HTML report; a report problem never fails the run."""
    from pipeline.lineage.report import write_report
    from pipeline.lineage.store import open_store_from
    try:
        path = write_report(open_store_from(layout.root), run_id, root=layout.root)
    except Exception as e:  # the run's outcome stands; say why there is no report
        print(f"No report written ({type(e).__name__}: {e}); try "
              f"`tfxp report --root {layout.root}`", flush=True)
        return None
    print(f"Report: {path}", flush=True)
    return path


def cmd_schema(args: argparse.Namespace) -> int:
    """Drafts a schema from the data and prints its difference to the curated one."""
    import tensorflow_data_validation as tfdv

    from pipeline.dag.schema import schema_diff
    from pipeline.layout import RunLayout
    from pipeline.local.schema_draft import draft_schema, token_notes

    cfg = _config(args)
    curated_path = cfg.schema_path
    output = os.path.abspath(args.output) if args.output else None
    if output and os.path.exists(output):
        raise StateError(f"{output} exists; the draft never overwrites a schema "
                         f"(remove it or choose another --output)")
    if output:
        from pipeline.local.writable import require_writable
        require_writable([("--output", output, False)])
    # Read before the draft is written: --output may be the very path the config
    # names, and the draft must not be compared with itself.
    curated = tfdv.load_schema_text(curated_path) if os.path.isfile(curated_path) else None
    draft = draft_schema(cfg, RunLayout.under(args.root, cfg).schema_draft, args.data)
    for line in token_notes(cfg, draft, args.data):
        print(line)
    if output:
        os.makedirs(os.path.dirname(output), exist_ok=True)
        tfdv.write_schema_text(draft, output)
        print(f"Draft schema written to {output}")
    if curated is not None:
        diff = schema_diff(curated, draft)
        print(f"Draft vs curated {curated_path}:")
        print("\n".join(f"  {line}" for line in diff) if diff else "  no differences")
    elif output == os.path.abspath(curated_path):
        print(f"No curated schema was at {curated_path} (the config's `schema`): nothing to "
              f"compare with. The draft is there now; curate it before a run.")
    else:
        print(f"No curated schema at {curated_path} (the config's `schema`): nothing to "
              f"compare with.")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds run and schema to `tfxp`."""
    run = subparsers.add_parser("run", help="run the whole pipeline locally with Beam")
    run.add_argument("--config", help="pipeline config YAML (default: configs/taxi.yaml)")
    run.add_argument("--root", help="where the run writes (default: ./runs/<pipeline name>)")
    run.add_argument("--data", type=data_argument,
                     help="CSV file or directory, overriding the config's data.path")
    run.add_argument("--no-wait", action="store_true",
                     help="exit (status 1) instead of waiting when another run holds the root")
    run.add_argument("--recheck", action="store_true",
                     help="go through TFX even when nothing changed since the last run "
                          "(every node then comes from cache)")
    run.set_defaults(func=cmd_run)

    schema = subparsers.add_parser(
        "schema", help="draft a schema from the data and diff it with the curated one")
    schema.add_argument("--config")
    schema.add_argument("--data", type=data_argument,
                        help="CSV file or directory, overriding the config's data.path")
    schema.add_argument("--root", help="run root; the draft's own run goes in ROOT/schema-draft")
    schema.add_argument("--output", help="write the draft here (never over an existing file)")
    schema.set_defaults(func=cmd_schema)
