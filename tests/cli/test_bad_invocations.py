"""Every bad invocation gets one message naming the problem and an exit code,
never a traceback. Each row: the command line (paths under a scratch
directory), the exit status, and words the message must contain."""
import os
import random

import pytest

from pipeline.cli.main import main
from pipeline.local.lock import run_lock


@pytest.fixture
def scratch(tmp_path):
    (tmp_path / "a_file").write_text("not a directory\n")
    (tmp_path / "not_utf8.yaml").write_bytes(b"pipeline_name: x\n\xff\xfe\n")
    rng = random.Random(7)
    (tmp_path / "binary.bin").write_bytes(bytes(rng.randrange(256) for _ in range(300)))
    (tmp_path / "a_dir").mkdir()
    (tmp_path / "header_only.csv").write_text("a,b\n")
    return tmp_path


CASES = [
    # (argv with {s} for the scratch dir, exit status, words in the message)
    ("run --root {s}/a_file", 1, "is a file"),
    ("run --config {s}/not_utf8.yaml", 1, "not a text file in UTF-8"),
    ("run --config {s}/binary.bin", 1, "UTF-8"),
    ("run --config {s}/a_dir", 1, "a directory, not a config file"),
    ("run --config {s}/missing.yaml", 1, "config file not found"),
    ("run --root {s}/r --data {s}/missing.csv", 1, "data path not found"),
    ("schema --output {s}/a_file --root {s}/r", 1, "never overwrites"),
    # What is on disk refuses it, not the configuration.
    ("schema --output {s}/a_file --root {s}/r", 1, "tfxp schema: cannot do that: "),
    ("submit {s}/missing.yaml", 1, "no such spec"),
    ("submit {s}/a_dir", 1, "a directory, not a compiled spec"),
    ("submit {s}/binary.bin", 1, "not a text file in UTF-8"),
    ("rehearse {s}/missing.yaml --workdir {s}/w", 1, "no such spec"),
    ("runs --root {s}/nothing_ran", 1, "nothing has run there yet"),
    ("runs --root {s}/a_file", 1, "is a file"),
    ("runs --metadata-sqlite {s}/a_dir", 1, "is a directory"),
    ("runs --metadata-sqlite {s}/binary.bin", 1, "not an SQLite database"),
    ("runs --metadata-grpc 127.0.0.1:1", 1, "cannot open the ML Metadata store"),
    ("runs --metadata-grpc nonsense", 1, "HOST:PORT"),
    ("lineage --root {s}/nothing_ran", 1, "nothing has run there yet"),
    ("report --root {s}/nothing_ran", 1, "nothing has run there yet"),
    ("diff --root {s}/nothing_ran", 1, "nothing has run there yet"),
    ("compile --output {s}/a_file/spec.yaml", 1, "a_file"),
]


@pytest.mark.parametrize("argv, code, words", CASES, ids=[c[0].split(" {")[0] + ":" + c[2]
                                                          for c in CASES])
def test_bad_invocation_is_named(scratch, capsys, argv, code, words):
    status = main(argv.format(s=scratch).split())
    out, err = capsys.readouterr()
    assert status == code, out + err
    assert words in err, err
    assert "Traceback" not in out + err
    assert len(err.strip().splitlines()) <= 3, err


def test_a_held_root_with_no_wait_is_named(scratch, capsys):
    root = scratch / "busy"
    with run_lock(os.path.join(root, "run.lock"), "the other run"):
        status = main(["run", "--root", str(root), "--no-wait"])
    err = capsys.readouterr().err
    assert status == 1
    assert "in use by pid" in err and "the other run" in err


def test_a_relative_data_path_is_read_from_the_current_directory(scratch, capsys, monkeypatch):
    # --data is a shell argument: relative to where the command runs, not to the
    # config file (whose own data.path is relative to it).
    monkeypatch.chdir(scratch)
    status = main(["run", "--root", str(scratch / "r"), "--data", "here.csv"])
    _, err = capsys.readouterr()
    assert status == 1
    assert f"data path not found: {scratch / 'here.csv'}" in err, err
