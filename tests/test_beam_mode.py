"""The local Beam mode follows the config when it says, else the data's size and cores."""
from pipeline.local.beam_mode import IN_MEMORY, MULTI_PROCESSING_BYTES, choose


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
