"""The one error hierarchy of `tfxp`, and the exit status of each outcome.

Every expected failure is a `TfxpError` subclass carrying its exit status and
the words `tfxp` prints before the message ("configuration error", "cannot
reach the cluster"), so `pipeline.cli.main` prints one clear message and
never a traceback.  A run's own outcomes (pushed, data rejected, not blessed)
share the same numbers, so a script reads `tfxp run`, `tfxp rehearse` and
`tfxp submit --wait` alike.
"""
from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Exit status of every `tfxp` command."""

    PUSHED = 0  # also: any other command that did what it was asked
    ERROR = 1  # (2 is argparse's, for a command line it cannot parse)
    DATA_REJECTED = 3
    NOT_BLESSED = 4
    DECAYED = 5  # tfxp evaluate: a served version crossed a monitoring threshold
    CANCELED = 6  # `tfxp submit --wait`: the run was canceled on the cluster
    TIMED_OUT = 7  # `tfxp submit --wait`: still running when the wait ended


class TfxpError(Exception):
    """An expected failure: a message for a person and an exit status."""

    exit_code: ExitCode = ExitCode.ERROR
    what: str = "error"  # printed before the message ("" when the message says it)


class ConfigError(TfxpError, ValueError):
    """A configuration file or a command-line value that cannot be used, named."""

    what = "configuration error"


class StateError(TfxpError):
    """What is on disk or in the store does not allow the request: no such version,
    no earlier stable version, a damaged serving file. Not the configuration's fault."""

    what = "cannot do that"


class DataError(TfxpError):
    """A data file given to a command that cannot be used as it is: unreadable, or
    without a column the version it is scored with reads."""

    what = "cannot use the data"


class DataRejected(TfxpError):
    """The data does not match the schema, or drifted: nothing was trained."""

    exit_code = ExitCode.DATA_REJECTED
    what = "data rejected"


class NotBlessed(TfxpError):
    """The model failed a threshold or the serving check: nothing was pushed."""

    exit_code = ExitCode.NOT_BLESSED
    what = "not blessed"


class Decayed(TfxpError):
    """A served version crossed a `monitoring:` threshold on new data."""

    exit_code = ExitCode.DECAYED
    what = "decayed"


class RootBusy(TfxpError):
    """Another run holds the run root (one run per root at a time)."""

    what = "run root in use"


class StoreError(TfxpError):
    """No usable ML Metadata store, or nothing in it matching what was asked for."""

    what = ""  # its messages name the store


class CompileError(TfxpError):
    """The pipeline cannot be compiled into a spec that would run on the cluster."""

    what = "cannot compile for Kubeflow"


class RehearsalError(TfxpError):
    """A task of a compiled spec that would fail on the cluster, named."""

    what = "rehearsal failed"


class SubmitError(TfxpError):
    """The cluster could not be reached, refused the credentials, or rejected the run."""

    what = "Kubeflow Pipelines"


class WaitTimedOut(TfxpError):
    """`tfxp submit --wait` stopped waiting; the run goes on on the cluster."""

    exit_code = ExitCode.TIMED_OUT
    what = "timed out"


class ScaffoldError(TfxpError):
    """A component scaffold that cannot be written (bad name, existing folder)."""

    what = "cannot scaffold"


# A failure's reason on the terminal: one line of at most this many characters.
REASON_CHARS = 200


def one_line(error: BaseException, limit: int = REASON_CHARS) -> str:
    """An exception as one line: its type and the line of its message that says what.

    Beam and TFX put whole tracebacks into their messages (60 lines for a full
    disk during Transform); the line that names the error is then the last
    unindented one. The rest is for `-v`.
    """
    lines = [line.rstrip() for line in str(error).splitlines() if line.strip()]
    if any(line.startswith("Traceback (most recent call last)") for line in lines):
        lines = [line for line in lines if not line[:1].isspace()
                 and not line.startswith(("Traceback", "During handling", "The above"))][-1:]
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."
