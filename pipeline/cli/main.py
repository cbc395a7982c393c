"""`tfxp`: one command line for running and inspecting the pipeline.

Each command group is a module of this package with `register(subparsers)`;
they import cheaply (heavy imports live inside the command functions), so
`tfxp --help` is instant.  Every expected failure is a `TfxpError`: `main`
prints its words and message and returns its exit status, never a traceback;
any other failure is one line too. `-v` (before or after the command) adds
the libraries' logs and the traceback behind a failure.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import logging
import os
import sys
import traceback
import warnings
from typing import Iterator, Optional

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TF loads)
from pipeline.cli import kubeflow, lineage, new_component, run, serving
from pipeline.errors import REASON_CHARS, ExitCode, TfxpError, one_line

# The command groups, in the order `tfxp --help` lists them.
COMMAND_GROUPS = (run, kubeflow, lineage, serving, new_component)
VERBOSE_HELP = "show TFX, Beam and TensorFlow logs, and a failure's details"


@contextlib.contextmanager
def _quiet(verbose: bool) -> Iterator[None]:
    """Library logs (absl, TFX, Beam, TensorFlow) on stderr with -v; none without.

    Without -v the terminal holds only `tfxp`'s own words: a failure is one
    line on stderr, its library details a `-v` away. What logging allowed
    before is restored after the command (for a caller in the same process).
    """
    before = logging.root.manager.disable
    absl = logging.getLogger("absl")  # TFX logs through it; TF and Beam may lower it
    absl_level = absl.level
    if verbose:
        logging.disable(logging.NOTSET)
        logging.basicConfig(level=logging.INFO)
        logging.getLogger().setLevel(logging.INFO)
        absl.setLevel(logging.INFO)
    else:
        # Also for the Beam worker processes a large run starts (their Python
        # logs reach this process through Beam's logging service, disabled below).
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        os.environ.setdefault("PYTHONWARNINGS", "ignore")
        warnings.filterwarnings("ignore")
        logging.basicConfig(level=logging.ERROR)
        # Every record of every logger, whatever level a library sets its own to
        # (TFX logs `Execution N failed.` at ERROR, Beam its stage failures).
        logging.disable(logging.CRITICAL)
    try:
        yield
    finally:
        logging.disable(before)
        absl.setLevel(absl_level)


@contextlib.contextmanager
def _argv_of_our_own() -> Iterator[None]:
    """sys.argv without our arguments while a command runs.

    TFX's Beam executors parse `sys.argv + beam_args` with absl's flags
    (base_beam_executor.py), where `-v run` reads as `--verbosity=run`. Our
    arguments are argparse's alone; absl sees the program name and Beam's.
    """
    saved = sys.argv
    sys.argv = saved[:1]
    try:
        yield
    finally:
        sys.argv = saved


def build_parser() -> argparse.ArgumentParser:
    """The `tfxp` parser with every command group's subcommands."""
    parser = argparse.ArgumentParser(prog="tfxp", description=__doc__.split("\n", 1)[0])
    parser.add_argument("-v", "--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True)
    for group in COMMAND_GROUPS:
        group.register(sub)
    for command in sub.choices.values():
        # `tfxp COMMAND -v` as well as `tfxp -v COMMAND`; SUPPRESS keeps a
        # subcommand without it from resetting the flag given before it.
        command.add_argument("-v", "--verbose", action="store_true",
                             default=argparse.SUPPRESS, help=VERBOSE_HELP)
    return parser


def error_message(command: str, error: TfxpError) -> str:
    """`tfxp COMMAND: WHAT: message`, the message on its own lines when it has several."""
    text = str(error)
    head = f"tfxp {command}: {error.what}" if error.what else f"tfxp {command}"
    return f"{head}:\n{text}" if "\n" in text else f"{head}: {text}"


def main(argv: Optional[list[str]] = None) -> int:
    """Runs one `tfxp` command; returns its exit status (pipeline.errors.ExitCode)."""
    args = build_parser().parse_args(argv)
    try:
        with _quiet(args.verbose), _argv_of_our_own():
            return int(args.func(args))
    except TfxpError as e:
        if args.verbose and e.__cause__ is not None:
            # What lies behind an expected failure (a component's exception).
            traceback.print_exception(e.__cause__, file=sys.stderr)
        print(error_message(args.command, e), file=sys.stderr)
        return int(e.exit_code)
    except OSError as e:
        # A file or directory the command needs (missing, unreadable, the wrong
        # kind, a full disk): its words, not a traceback (-v shows one).
        if args.verbose:
            raise
        where = f": {e.filename}" if e.filename else ""
        text = f"{e.strerror or e}{where}"
        print(f"tfxp {args.command}: {text[:REASON_CHARS]}", file=sys.stderr)
        return int(ExitCode.ERROR)
    except KeyboardInterrupt:
        print(f"tfxp {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # not foreseen: still one line of ours, the traceback with -v
        if args.verbose:
            raise
        print(f"tfxp {args.command}: unexpected error: {one_line(e)} "
              f"(tfxp {args.command} -v shows the traceback)", file=sys.stderr)
        return int(ExitCode.ERROR)


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
