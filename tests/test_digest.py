"""A node's code digest changes exactly when code it runs changes."""
import shutil
from pathlib import Path

import pytest

from pipeline.config import load_config
from pipeline.dag import digest
from pipeline.pipeline import code_entries, create_pipeline
from tests.test_cache_keys import FROM_DATA, compiled, rerun_between

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def entries():
    tfx_pipeline = create_pipeline(load_config(), pipeline_root="/nonexistent/root",
                                   serving_dir="/nonexistent/serving")
    return code_entries(tfx_pipeline)


@pytest.fixture
def checkout(tmp_path, monkeypatch):
    """A copy of the project's code whose digests the test can change by editing it."""
    for package in digest.PROJECT_PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(digest, "_top_dir", lambda package: tmp_path / package)
    return tmp_path


def digests(entries):
    return {node: digest.code_digest(*found) for node, found in entries.items()}


def edit(path: Path, old: str, new: str):
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def test_entries_follow_the_dag(entries):
    assert entries["Transform"] == ["components.batched_read", "models.preprocessing"]
    assert "models.model" in entries["Trainer"]
    for node in ("Evaluator", "ServingCheck", "Pusher"):
        assert set(entries["Trainer"]) <= set(entries[node])
    assert entries["DataGate"] == ["components.data_gate"]
    assert entries["CsvExampleGen"] == ["components.csv_ingest"]
    # TFX's executor, reading in batches: the reader is the node's own code.
    assert entries["StatisticsGen"] == ["components.batched_read"]
    assert "SchemaGen" not in entries


def test_editing_the_model_changes_the_trainer_and_after_not_the_transform(entries, checkout):
    before = digests(entries)
    edit(checkout / "models" / "model.py", "relu", "tanh")
    after = digests(entries)
    changed = {n for n in before if before[n] != after[n]}
    assert changed == {"Trainer", "Evaluator", "ServingCheck", "Pusher"} & set(before)


def test_editing_shared_feature_code_changes_the_transform_too(entries, checkout):
    before = digests(entries)
    (checkout / "models" / "features.py").write_text(
        (checkout / "models" / "features.py").read_text() + "\n# edited\n")
    after = digests(entries)
    assert before["Transform"] != after["Transform"]
    assert before["Trainer"] != after["Trainer"]
    assert before["DataGate"] == after["DataGate"]


# A custom component's package, its node, and what re-runs when its code is edited:
# the node and the nodes that read its artifacts (the README's "editing a component
# re-runs that component").
COMPONENTS = [
    ("csv_ingest", "CsvExampleGen", FROM_DATA),
    ("data_gate", "DataGate", {"DataGate"}),
    ("drift_check", "DriftCheck", {"DriftCheck"}),
    ("serving_check", "ServingCheck", {"ServingCheck", "Pusher"}),
    ("atomic_pusher", "Pusher", {"Pusher"}),
]


@pytest.mark.parametrize("package, node, following", COMPONENTS, ids=[c[0] for c in COMPONENTS])
def test_a_component_edit_changes_only_that_component(entries, checkout, package, node,
                                                      following):
    cfg = load_config()
    before, compiled_before = digests(entries), compiled(cfg)
    code = checkout / "components" / package / "component.py"
    code.write_text(code.read_text() + "\n# edited\n")
    after = digests(entries)
    assert {n for n in before if before[n] != after[n]} == {node}
    assert rerun_between(compiled_before, compiled(cfg)) == following


def test_what_two_components_share_changes_both(entries, checkout):
    # DataRejectedError, raised by ingestion and the data gate, lives apart from both.
    before = digests(entries)
    shared = checkout / "components" / "rejected.py"
    shared.write_text(shared.read_text() + "\n# edited\n")
    after = digests(entries)
    assert {n for n in before if before[n] != after[n]} == {"CsvExampleGen", "DataGate"}


def test_tests_are_not_code_a_node_runs(entries, checkout):
    before = digests(entries)
    test = checkout / "components" / "data_gate" / "test_data_gate.py"
    test.write_text(test.read_text() + "\n# edited\n")
    assert digests(entries) == before


def test_editing_the_metrics_changes_the_evaluator_and_after_only(entries, checkout):
    # TFMA imports the Evaluator's metric classes by module path (models/metrics.py).
    assert "models.metrics" in entries["Evaluator"]
    before = digests(entries)
    edit(checkout / "models" / "metrics.py", "_EDGE = 1e-9", "_EDGE = 1e-8")
    after = digests(entries)
    # ServingCheck calls the model beside the Evaluator, not after it.
    assert {n for n in before if before[n] != after[n]} == {"Evaluator", "Pusher"}


def test_editing_the_extractors_changes_the_evaluator_and_after_only(entries, checkout):
    # The Evaluator's module_path: TFX imports its custom_extractors by name.
    assert "models.extractors" in entries["Evaluator"]
    before = digests(entries)
    edit(checkout / "models" / "extractors.py", 'PROJECT_STAGE = "KeepSlicedFeatures"',
         'PROJECT_STAGE = "KeepSliced"')
    after = digests(entries)
    assert {n for n in before if before[n] != after[n]} == {"Evaluator", "Pusher"}


def test_editing_the_batched_reader_changes_the_steps_that_read_with_it(entries, checkout):
    before = digests(entries)
    edit(checkout / "components" / "batched_read" / "tfxio.py", "DEFAULT_BATCH_SIZE = ",
         "DEFAULT_BATCH_SIZE = 2 * ")
    after = digests(entries)
    assert {n for n in before if before[n] != after[n]} == {"StatisticsGen", "Transform",
                                                            "Evaluator"}
