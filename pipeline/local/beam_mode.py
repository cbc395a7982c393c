"""Which Beam mode each step of a local run uses, chosen from the data's size and the cores.

Beam's direct runner either runs a step in this process (in-memory) or
starts worker processes for it (multi-processing). Each worker imports
TensorFlow and the step's libraries (about 0.8 GiB and several seconds each),
and a step gains at most the number of cores from them, and only if its input
is in several files: the file is the unit of work the runner hands out, which
is why CsvIngest writes large data in shards. Since the steps that read every
example (StatisticsGen, Transform, Evaluator) read it a batch at a time
(components/batched_read), one process does them as fast as two workers up to
100x the taxi data, in half the memory (SCAN_BYTES says the sizes); above that
size they get workers. The run header prints each choice and its reason;
`beam_args` in the config overrides them all.

Whatever the mode, `local_args` names the project's setup.py as the workers'
dependency, so that TFX does not package itself for them, and has Beam pickle
with cloudpickle.
"""
from __future__ import annotations

import os
from typing import NamedTuple, Optional

from pipeline.config import IN_MEMORY_BEAM_ARGS as IN_MEMORY
from pipeline.config import PipelineConfig

# Beam flags by which TFX's executors learn that the workers' code is provided
# (tfx.utils.dependency_utils.make_beam_dependency_flags).
DEPENDENCY_FLAGS = ("--extra_package", "--extra_packages", "--setup_file", "--requirements_file",
                    "--worker_harness_container_image", "--sdk_container_image")
SETUP_FILE = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "setup.py")

# CSV bytes from which a step that reads every example gets worker processes.
# At 100x the taxi data (184 MB, 2 cores, batched reading) one process did
# each of the three as fast as two workers, at less than half the run's peak
# memory (`make bench`). Up to 1000x (1.85 GB) one process is what the bench
# measures; above 4 GiB a step's scan takes minutes, and workers pay for
# their start-up there.
SCAN_BYTES = {"Evaluator": 4 << 30, "StatisticsGen": 4 << 30, "Transform": 4 << 30}
MULTI_PROCESSING = "--direct_running_mode=multi_processing"


class Mode(NamedTuple):
    """The run's Beam args; args added for some steps (by node id); and why."""
    args: list[str]
    step_args: dict[str, list[str]]
    why: str


def _size(n: int) -> str:
    if n >= 2**30:
        return f"{n / 2**30:,.1f} GiB".replace(".0 GiB", " GiB")
    return f"{n / 2**20:,.0f} MiB" if n >= 2**20 else f"{n / 2**10:,.0f} KiB"


def data_bytes(files: list[str]) -> int:
    return sum(os.path.getsize(f) for f in files if os.path.isfile(f))


def choose(configured: Optional[list[str]], size: int, cores: Optional[int] = None) -> Mode:
    """The Beam mode of a local run over `size` bytes of CSV.

    Every step is in-memory except those of SCAN_BYTES once the data reaches
    their size: CsvExampleGen streams each input file in one process, and
    SchemaGen, ExampleValidator and the checks read statistics, not examples.
    """
    if configured is not None:
        return Mode(list(configured), {}, "beam_args in the config")
    cores = cores or os.cpu_count() or 1
    if cores < 2:
        return Mode(IN_MEMORY, {}, "in-memory: 1 core")
    workers = [MULTI_PROCESSING, f"--direct_num_workers={cores}"]
    steps = {step: workers for step, bound in SCAN_BYTES.items() if size >= bound}
    if not steps:
        first = min(SCAN_BYTES, key=SCAN_BYTES.__getitem__)
        return Mode(IN_MEMORY, {}, (
            f"in-memory: {_size(size)} of CSV is read in one process as fast as by "
            f"worker processes, in less memory; {first} gets {cores} from "
            f"{_size(SCAN_BYTES[first])}"))
    return Mode(IN_MEMORY, steps, (
        f"{' and '.join(steps)} on {cores} worker processes, the rest in-memory: "
        f"{_size(size)} of CSV, written in shards that the workers share"))


def choose_for(cfg: PipelineConfig, files: Optional[list[str]]) -> Mode:
    """`choose` for a run of `cfg` over `files` (None: not listable, e.g. gs://)."""
    return choose(cfg.beam_args, data_bytes(files or []))


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


# Beam's pickler for the DoFns of a local run, unless the args name one.
PICKLE_LIBRARY = "--pickle_library=cloudpickle"


def with_cloudpickle(args: list[str]) -> list[str]:
    """`args` plus `--pickle_library=cloudpickle` when they name no pickler.

    Beam pickles every DoFn as it builds a step's pipeline and unpickles it to
    run it, thousands of times a run. Its default, dill, is the slower of the
    two here (and around each call it sets its logger's level, which walks
    every logger of the process): a run of the taxi data went from 71.6 / 75.9 s
    to 65.6 / 70.5 s with cloudpickle (runs alternated), every metric the same.
    """
    if any(a.split("=", 1)[0] == "--pickle_library" for a in args):
        return list(args)
    return [*args, PICKLE_LIBRARY]


def local_args(configured: Optional[list[str]], chosen: Optional[list[str]] = None) -> list[str]:
    """The Beam args a local run gives TFX: those chosen for the run, else the
    config's, else in-memory; with the project's code named as in place, and
    cloudpickle unless the args name a pickler."""
    return with_cloudpickle(with_code_in_place(
        chosen if chosen is not None else configured or IN_MEMORY))
