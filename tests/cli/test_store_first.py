"""Every command that needs the run root's ML Metadata store checks it first: a
store SQLite cannot read is one line naming the file, exit 1, before any
component runs or any answer is given without it."""
import os

import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2 as mlmd

from pipeline.cli.main import main
from pipeline.config import DEFAULT_CONFIG
from pipeline.errors import StoreError
from pipeline.lineage.store import check_sqlite, sqlite_connection


def write_store(path: str, artifacts: int = 2000) -> None:
    """A real ML Metadata store, large enough to span many SQLite pages."""
    store = metadata_store.MetadataStore(sqlite_connection(path))
    type_id = store.put_artifact_type(mlmd.ArtifactType(name="Examples"))
    found = []
    for i in range(artifacts):
        artifact = mlmd.Artifact(type_id=type_id, uri=f"/pipeline/Examples/{i}" * 4)
        artifact.custom_properties["note"].string_value = "x" * 60
        found.append(artifact)
    store.put_artifacts(found)


@pytest.fixture
def root(tmp_path):
    """A run root whose metadata.sqlite was cut in half (as a full disk leaves it)."""
    root = tmp_path / "root"
    root.mkdir()
    path = root / "metadata.sqlite"
    write_store(str(path))
    with open(path, "r+b") as f:
        f.truncate(os.path.getsize(path) // 2)
    (tmp_path / "rows.csv").write_text("fare,trip_miles\n1.0,2.0\n")
    return root


def test_a_whole_store_passes_and_a_missing_one_is_no_store_yet(tmp_path):
    path = tmp_path / "metadata.sqlite"
    check_sqlite(str(path))
    write_store(str(path), artifacts=10)
    check_sqlite(str(path))


def test_a_truncated_store_is_named(root):
    with pytest.raises(StoreError) as e:
        check_sqlite(str(root / "metadata.sqlite"))
    assert str(root / "metadata.sqlite") in str(e.value)
    assert "malformed" in str(e.value)


@pytest.mark.parametrize("argv", [
    "run --root {root} --no-wait",
    "runs --root {root}",
    "lineage --root {root}",
    "versions --root {root} --config {config}",
    "predict --data {root}/../rows.csv --root {root}",
    "evaluate --data {root}/../rows.csv --root {root}",
], ids=lambda a: a.split()[0])
def test_every_command_that_needs_the_store_names_it_first(root, capsys, argv):
    code = main(argv.format(root=root, config=DEFAULT_CONFIG).split())
    out, err = capsys.readouterr()
    assert code == 1, out + err
    [line] = err.strip().splitlines()
    assert f"{root / 'metadata.sqlite'}: the ML Metadata store cannot be read" in line
    # Nothing ran: no component started, no artifact written.
    assert not (root / "pipeline").exists()
    assert "CsvExampleGen" not in out
