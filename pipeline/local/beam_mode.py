"""Which Beam mode a local run uses, chosen from the data's size and the cores.

Beam's direct runner either runs every step in this process (in-memory) or
starts worker processes for each Beam step (multi-processing). Starting the
workers costs about 30 s per step on this project's data, and a step gains at
most the number of cores from them, so multi-processing pays only where a
step's work is large and there are cores to share it. The run header prints
the choice and its reason; `beam_args` in the config overrides it.
"""
from __future__ import annotations

import os
from typing import Optional

from pipeline.config import IN_MEMORY_BEAM_ARGS as IN_MEMORY

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
        return IN_MEMORY, (f"in-memory: {cores} cores, where worker start-up (about 30 s "
                           f"per Beam step) costs more than a second process gains")
    if size < MULTI_PROCESSING_BYTES:
        return IN_MEMORY, (f"in-memory: {_size(size)} of CSV is done in one process before "
                           f"worker processes would have started (multi-processing from "
                           f"{_size(MULTI_PROCESSING_BYTES)} on more than {MIN_CORES} cores)")
    return (["--direct_running_mode=multi_processing", f"--direct_num_workers={cores}"],
            f"multi-processing, {cores} workers: {_size(size)} of CSV on {cores} cores")
