"""The local Beam mode follows the config when it says, else the data's size and cores."""
import os

import pytest

from pipeline.local.beam_mode import (
    IN_MEMORY,
    MULTI_PROCESSING_BYTES,
    SETUP_FILE,
    choose,
    local_args,
    with_code_in_place,
)


def test_configured_args_are_kept():
    args, why = choose(["--direct_running_mode=multi_processing"], 10, cores=2)
    assert args == ["--direct_running_mode=multi_processing"] and "config" in why


def test_two_cores_stay_in_memory_whatever_the_size():
    args, why = choose(None, 10 * MULTI_PROCESSING_BYTES, cores=2)
    assert args == IN_MEMORY and "2 cores" in why


def test_small_data_stays_in_memory_on_many_cores():
    args, why = choose(None, 185 * 2**20, cores=16)
    assert args == IN_MEMORY and "185 MiB" in why


def test_large_data_on_many_cores_uses_every_core():
    args, why = choose(None, 2 * MULTI_PROCESSING_BYTES, cores=8)
    assert args == ["--direct_running_mode=multi_processing", "--direct_num_workers=8"]
    assert "8 workers" in why


def test_local_args_name_the_project_as_the_workers_code():
    assert os.path.isfile(SETUP_FILE)
    assert local_args(None) == [*IN_MEMORY, f"--setup_file={SETUP_FILE}"]
    assert local_args(["--direct_num_workers=1"], chosen=["--x=1"]) == [
        "--x=1", f"--setup_file={SETUP_FILE}"]


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
