"""The local Beam mode follows the config when it says, else the data's size and cores."""
import os

import pytest

from pipeline.local.beam_mode import (
    IN_MEMORY,
    PICKLE_LIBRARY,
    SCAN_BYTES,
    SETUP_FILE,
    Mode,
    choose,
    local_args,
    with_code_in_place,
)


def test_configured_args_are_kept():
    mode = choose(["--direct_running_mode=multi_processing"], 10 * 2**30, cores=2)
    assert mode == Mode(["--direct_running_mode=multi_processing"], {},
                        "beam_args in the config")


def test_small_data_stays_in_memory():
    mode = choose(None, 2 * 2**20, cores=16)
    assert mode.args == IN_MEMORY and mode.step_args == {}
    assert "2 MiB" in mode.why and "in-memory" in mode.why


def test_100x_the_taxi_data_stays_in_one_process():
    # 184 MB of CSV: one process read it as fast as two workers, in half the memory.
    mode = choose(None, 184_000_000, cores=2)
    assert mode.args == IN_MEMORY and mode.step_args == {}
    assert mode.why.startswith("in-memory: 175 MiB of CSV") and "from 4 GiB" in mode.why


def test_one_core_stays_in_memory_whatever_the_size():
    assert choose(None, 10 * 2**30, cores=1) == Mode(IN_MEMORY, {}, "in-memory: 1 core")


def test_each_scanning_step_gets_workers_from_its_own_size():
    workers = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    just_under = min(SCAN_BYTES.values()) - 1
    assert choose(None, just_under, cores=2).step_args == {}
    mode = choose(None, SCAN_BYTES["Evaluator"], cores=2)
    assert mode.args == IN_MEMORY
    assert mode.step_args == {step: workers for step, bound in SCAN_BYTES.items()
                              if bound <= SCAN_BYTES["Evaluator"]}
    assert "Evaluator" in mode.why and "on 2 worker processes" in mode.why
    everything = choose(None, max(SCAN_BYTES.values()), cores=8).step_args
    assert set(everything) == {"StatisticsGen", "Transform", "Evaluator"}
    assert everything["Transform"][-1] == "--direct_num_workers=8"


def test_a_step_s_args_come_after_the_run_s_in_its_executor():
    # Beam reads the last of a repeated flag: the step's mode wins over the run's.
    from pipeline.config import load_config
    from pipeline.pipeline import create_pipeline

    workers = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    nodes = {c.id: c for c in create_pipeline(
        load_config(), pipeline_root="/nonexistent/root", serving_dir="/nonexistent/serving",
        beam_args=local_args(None), step_beam_args={"Evaluator": workers}).components}
    assert nodes["Evaluator"].executor_spec.beam_pipeline_args == [
        *local_args(None), *workers]
    assert nodes["Transform"].executor_spec.beam_pipeline_args == local_args(None)


def test_local_args_name_the_project_as_the_workers_code_and_cloudpickle():
    assert os.path.isfile(SETUP_FILE)
    assert local_args(None) == [*IN_MEMORY, f"--setup_file={SETUP_FILE}", PICKLE_LIBRARY]
    assert local_args(["--direct_num_workers=1"], chosen=["--x=1"]) == [
        "--x=1", f"--setup_file={SETUP_FILE}", PICKLE_LIBRARY]


def test_a_pickler_the_user_gave_is_kept():
    given = ["--direct_num_workers=1", "--pickle_library=dill"]
    assert [a for a in local_args(given) if a.startswith("--pickle_library")] == [
        "--pickle_library=dill"]


def test_a_dependency_the_user_gave_is_kept(tmp_path):
    given = ["--direct_num_workers=1", "--extra_package=/tmp/mine.tar.gz"]
    assert with_code_in_place(given) == given
    assert with_code_in_place(["--a=1"], setup_file=str(tmp_path / "none.py")) == ["--a=1"]


def test_tfx_does_not_package_itself_for_a_local_run(monkeypatch):
    # TFX's own decision: with the flag it returns the args as they are, without
    # it it would build an sdist of its installed source (made to fail here).
    from tfx.utils import dependency_utils

    def build():
        raise AssertionError("TFX built its ephemeral package")
    monkeypatch.setattr(dependency_utils, "build_ephemeral_package", build)
    args = local_args(None)
    assert dependency_utils.make_beam_dependency_flags(args) == args
    with pytest.raises(AssertionError, match="ephemeral"):
        dependency_utils.make_beam_dependency_flags(IN_MEMORY)


def test_the_schema_draft_gives_statisticsgen_its_step_args():
    from pipeline.config import load_config
    from pipeline.pipeline import create_schema_draft_pipeline

    workers = ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]
    nodes = {c.id: c for c in create_schema_draft_pipeline(
        load_config(), pipeline_root="/nonexistent/root", beam_args=local_args(None),
        step_beam_args={"StatisticsGen": workers, "Evaluator": workers}).components}
    assert nodes["StatisticsGen"].executor_spec.beam_pipeline_args == [
        *local_args(None), *workers]
    assert nodes["CsvExampleGen"].executor_spec.beam_pipeline_args == local_args(None)
