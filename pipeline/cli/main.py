"""`tfxp`: one command line for running and inspecting the pipeline.

Each command group is a module of this package with `register(subparsers)`;
they import cheaply (heavy imports live inside the command functions), so
`tfxp --help` is instant.  Every expected failure is a `TfxpError`: `main`
prints its words and message and returns its exit status, never a traceback.
"""
from __future__ import annotations

import argparse
import gc
import logging
import os
import sys
import warnings
from typing import Optional

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TF loads)
from pipeline.cli import kubeflow, lineage, new_component, run, serving
from pipeline.errors import ExitCode, TfxpError

# The command groups, in the order `tfxp --help` lists them.
COMMAND_GROUPS = (run, kubeflow, lineage, serving, new_component)


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


def build_parser() -> argparse.ArgumentParser:
    """The `tfxp` parser with every command group's subcommands."""
    parser = argparse.ArgumentParser(prog="tfxp", description=__doc__.split("\n", 1)[0])
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="show TFX, Beam and TensorFlow logs")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(sub)
    return parser


def error_message(command: str, error: TfxpError) -> str:
    """`tfxp COMMAND: WHAT: message`, the message on its own lines when it has several."""
    text = str(error)
    head = f"tfxp {command}: {error.what}" if error.what else f"tfxp {command}"
    return f"{head}:\n{text}" if "\n" in text else f"{head}: {text}"


def main(argv: Optional[list[str]] = None) -> int:
    """Runs one `tfxp` command; returns its exit status (pipeline.errors.ExitCode)."""
    args = build_parser().parse_args(argv)
    _quiet(args.verbose)
    try:
        return int(args.func(args))
    except TfxpError as e:
        print(error_message(args.command, e), file=sys.stderr)
        return int(e.exit_code)
    except OSError as e:
        # A file or directory the command needs (missing, unreadable, the wrong
        # kind, a full disk): its words, not a traceback (-v shows one).
        if args.verbose:
            raise
        where = f": {e.filename}" if e.filename else ""
        print(f"tfxp {args.command}: {e.strerror or e}{where}", file=sys.stderr)
        return int(ExitCode.ERROR)
    except KeyboardInterrupt:
        print(f"tfxp {args.command}: interrupted", file=sys.stderr)
        return 130


def tfxp() -> None:
    """The `tfxp` program: main(), then an exit that skips the collector's last passes.

    A run leaves millions of objects (TensorFlow, Beam, TFX) that the cyclic
    garbage collector walks again while the interpreter shuts down: 4 s of
    every run's wall time. Nothing left needs collecting, so they are frozen
    out of its reach; objects are still released, files closed and exit
    handlers run as before.
    """
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    tfxp()
