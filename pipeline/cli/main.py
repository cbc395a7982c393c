"""`tfxp`: one command line for running and inspecting the pipeline."""
from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from typing import Optional

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TF loads)


def _quiet(verbose: bool) -> None:
    if verbose:
        logging.basicConfig(level=logging.INFO)
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore")
    logging.basicConfig(level=logging.ERROR)
    logging.getLogger().setLevel(logging.ERROR)
    from absl import logging as absl_logging
    absl_logging.set_verbosity(absl_logging.ERROR)
    # tf.get_logger() is this logger; naming it spares commands that never load TF.
    logging.getLogger("tensorflow").setLevel(logging.ERROR)


def _config(args):
    from pipeline.config import load_config
    return load_config(args.config)


def cmd_run(args) -> int:
    from pipeline.config import default_root
    from pipeline.local_run import run_pipeline
    from pipeline.summary import progress_line, summary

    cfg = _config(args)
    root = args.root or default_root(cfg)
    print(f"Running {cfg.pipeline_name} locally (Beam {' '.join(cfg.beam_args)}) under {root}",
          flush=True)
    outcome = run_pipeline(
        cfg, root, data_path=args.data,
        listener=lambda event, node: event == "end" and print(progress_line(event, node),
                                                              flush=True))
    print(summary(outcome, cfg), flush=True)
    _print_report(outcome.paths.root, outcome.run.run_id)
    return outcome.exit_code


def _print_report(root: str, run_id: str) -> None:
    """Writes the run's HTML report; a report problem never fails the run."""
    from pipeline.lineage import open_store_from
    from pipeline.report import write_report
    try:
        print(f"Report: {write_report(open_store_from(root), run_id, root=root)}", flush=True)
    except Exception as e:  # the run's outcome stands; say why there is no report
        print(f"No report written ({type(e).__name__}: {e}); try `tfxp report --root {root}`",
              flush=True)


def cmd_schema(args) -> int:
    import tensorflow_data_validation as tfdv
    from pipeline.config import ConfigError
    from pipeline.schema_draft import draft_schema, schema_diff

    cfg = _config(args)
    curated_path = cfg.schema_path
    output = os.path.abspath(args.output) if args.output else None
    if output and os.path.exists(output):
        raise ConfigError(f"{output} exists; the draft never overwrites a schema "
                          f"(remove it or choose another --output)")
    from pipeline.config import default_root
    workdir = os.path.join(args.root or default_root(cfg), "schema-draft")
    draft = draft_schema(cfg, workdir, args.data)
    if output:
        os.makedirs(os.path.dirname(output), exist_ok=True)
        tfdv.write_schema_text(draft, output)
        print(f"Draft schema written to {output}")
    if os.path.exists(curated_path):
        diff = schema_diff(tfdv.load_schema_text(curated_path), draft)
        print(f"Draft vs curated {curated_path}:")
        print("\n".join(f"  {line}" for line in diff) if diff else "  no differences")
    else:
        print(f"No curated schema at {curated_path} yet.")
    return 0


# Modules that contribute subcommands, each with `register(subparsers)`.
# They must import cheaply: heavy imports belong inside the command function.
COMMAND_MODULES: list[str] = ["pipeline.kubeflow_cli", "pipeline.lineage_cli",
                              "pipeline.scaffold"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tfxp", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show TFX, Beam and TensorFlow logs")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the whole pipeline locally with Beam")
    run.add_argument("--config", help="pipeline config YAML (default: configs/taxi.yaml)")
    run.add_argument("--root", help="where the run writes (default: ./runs/<pipeline name>)")
    run.add_argument("--data", help="CSV file or directory, overriding the config's data.path")
    run.set_defaults(func=cmd_run)

    schema = sub.add_parser(
        "schema", help="draft a schema from the data and diff it with the curated one")
    schema.add_argument("--config")
    schema.add_argument("--data")
    schema.add_argument("--root", help="run root; the draft's own run goes in ROOT/schema-draft")
    schema.add_argument("--output", help="write the draft here (never over an existing file)")
    schema.set_defaults(func=cmd_schema)

    import importlib
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet(args.verbose)
    from pipeline.config import ConfigError
    try:
        return args.func(args)
    except ConfigError as e:
        print(f"tfxp: configuration error:\n{e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
