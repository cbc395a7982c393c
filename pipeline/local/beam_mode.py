"""Which Beam mode a local run uses, chosen from the data's size and the cores.

Beam's direct runner either runs every step in this process (in-memory) or
starts worker processes for each Beam step (multi-processing). Starting the
workers costs about 10-15 s per step on this project's data (measured with the
environment byte-compiled; 30 s before, when every worker compiled TensorFlow
from source), and a step gains at most the number of cores from them, so
multi-processing pays only where a step's work is large and there are cores
to share it. The run header prints the choice and its reason; `beam_args` in
the config overrides it.

Whatever the mode, `with_code_in_place` names the project's setup.py as the
workers' dependency, so that TFX does not package itself for them.
"""
from __future__ import annotations

import os
from typing import Optional

from pipeline.config import IN_MEMORY_BEAM_ARGS as IN_MEMORY

# Beam flags by which TFX's executors learn that the workers' code is provided
# (tfx.utils.dependency_utils.make_beam_dependency_flags).
DEPENDENCY_FLAGS = ("--extra_package", "--extra_packages", "--setup_file", "--requirements_file",
                    "--worker_harness_container_image", "--sdk_container_image")
SETUP_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "setup.py")

# CSV bytes from which multi-processing is chosen (with more than MIN_CORES cores).
MULTI_PROCESSING_BYTES = 1 << 30
MIN_CORES = 2


def _size(n: int) -> str:
    return f"{n / 2**20:,.0f} MiB" if n >= 2**20 else f"{n / 2**10:,.0f} KiB"


def data_bytes(files: list[str]) -> int:
    return sum(os.path.getsize(f) for f in files if os.path.isfile(f))


def choose(configured: Optional[list[str]], size: int,
           cores: Optional[int] = None) -> tuple[list[str], str]:
    """(Beam args, why) for a local run over `size` bytes of CSV."""
    if configured is not None:
        return list(configured), "beam_args in the config"
    cores = cores or os.cpu_count() or 1
    if cores <= MIN_CORES:
        return IN_MEMORY, (f"in-memory: {cores} cores, where worker start-up (about 10-15 s "
                           f"per Beam step) costs more than a second process gains")
    if size < MULTI_PROCESSING_BYTES:
        return IN_MEMORY, (f"in-memory: {_size(size)} of CSV is done in one process before "
                           f"worker processes would have started (multi-processing from "
                           f"{_size(MULTI_PROCESSING_BYTES)} on more than {MIN_CORES} cores)")
    return (["--direct_running_mode=multi_processing", f"--direct_num_workers={cores}"],
            f"multi-processing, {cores} workers: {_size(size)} of CSV on {cores} cores")


def with_code_in_place(args: list[str], setup_file: str = SETUP_FILE) -> list[str]:
    """`args` plus `--setup_file=<this project's setup.py>` when they name no dependency.

    Without one, every TFX Beam executor (StatisticsGen, SchemaGen, ExampleValidator,
    Transform, Evaluator) copies TFX's installed source (42 MB) to a new temporary
    directory, builds an sdist of it with a `setup.py` subprocess and leaves both
    behind: 4-5 s and 42 MB per component per run, for workers that the direct
    runner starts in this very environment, where the code already is. The flag is
    also what a remote Beam runner would need to ship this project's code.
    """
    given = any(a.split("=", 1)[0] in DEPENDENCY_FLAGS for a in args)
    if given or not os.path.isfile(setup_file):
        return list(args)
    return [*args, f"--setup_file={setup_file}"]


def local_args(configured: Optional[list[str]], chosen: Optional[list[str]] = None) -> list[str]:
    """The Beam args a local run gives TFX: those chosen for the run, else the
    config's, else in-memory; with the project's code named as in place."""
    return with_code_in_place(chosen if chosen is not None else configured or IN_MEMORY)
