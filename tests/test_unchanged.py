"""An unchanged root is recognised without TFX, and any change that decides a run's
result (config, data, schema, code key, served versions, the store) is noticed."""
import os

import pytest
from ml_metadata.proto import metadata_store_pb2 as mlmd

from pipeline.config import load_config
from pipeline.layout import RunLayout
from pipeline.lineage.store import RUN_CONTEXT_TYPE, open_store, sqlite_connection
from pipeline.local import unchanged

RUN_ID = "2026-11-28T10:00:00"


def inputs_of(cfg, data):
    return unchanged.inputs_key(cfg, cfg.data_files(str(data)))


@pytest.fixture
def setup(tmp_path):
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    schema = tmp_path / "schema.pbtxt"
    schema.write_text('feature { name: "a" type: INT }\n')
    cfg = load_config(overrides={"schema": str(schema)})
    layout = RunLayout.under(str(tmp_path / "root"), cfg)
    os.makedirs(layout.serving)
    store = open_store(sqlite_connection(layout.metadata))
    type_id = store.put_context_type(mlmd.ContextType(name=RUN_CONTEXT_TYPE))
    store.put_contexts([mlmd.Context(type_id=type_id, name=RUN_ID)])
    inputs = inputs_of(cfg, data)
    unchanged.record(layout, inputs, unchanged.Previous(
        run_id=RUN_ID, status="pushed", exit_code=0, summary="the summary", report=None))
    return cfg, layout, data, schema


def test_the_recorded_run_is_found_while_nothing_changed(setup):
    cfg, layout, data, _ = setup
    found = unchanged.lookup(layout, inputs_of(cfg, data))
    assert found is not None and found.run_id == RUN_ID and found.summary == "the summary"


def test_a_changed_data_file_schema_or_config_is_noticed(setup):
    cfg, layout, data, schema = setup
    os.utime(data, ns=(0, os.stat(data).st_mtime_ns + 1))
    assert unchanged.lookup(layout, inputs_of(cfg, data)) is None
    key = inputs_of(cfg, data)
    unchanged.record(layout, key, unchanged.Previous(RUN_ID, "pushed", 0, "s", None))
    assert unchanged.lookup(layout, key) is not None
    schema.write_text('feature { name: "a" type: FLOAT }\n')
    assert unchanged.lookup(layout, inputs_of(cfg, data)) is None
    schema.write_text('feature { name: "a" type: INT }\n')
    edited = load_config(overrides={"schema": str(schema), "training.train_steps": 7})
    assert unchanged.lookup(layout, inputs_of(edited, data)) is None
    assert unchanged.lookup(layout, inputs_of(cfg, data)) is not None


def test_a_push_or_rollback_since_is_noticed(setup):
    cfg, layout, data, _ = setup
    key = inputs_of(cfg, data)
    os.makedirs(os.path.join(layout.serving, "3"))
    open(os.path.join(layout.serving, "3", "saved_model.pb"), "wb").close()
    assert unchanged.lookup(layout, key) is None


def test_a_replaced_store_or_a_forgotten_record_is_noticed(setup):
    cfg, layout, data, _ = setup
    key = inputs_of(cfg, data)
    unchanged.forget(layout)
    assert unchanged.lookup(layout, key) is None
    unchanged.record(layout, key, unchanged.Previous(RUN_ID, "pushed", 0, "s", None))
    os.remove(layout.metadata)
    open_store(sqlite_connection(layout.metadata))  # a new, empty store
    assert unchanged.lookup(layout, key) is None


def test_failed_runs_are_not_recorded(setup):
    cfg, layout, data, _ = setup
    unchanged.forget(layout)
    key = inputs_of(cfg, data)
    for status in ("data_rejected", "data_drift", "error"):
        unchanged.record(layout, key, unchanged.Previous(RUN_ID, status, 3, "s", None))
        assert not os.path.exists(layout.last_run)


def test_object_store_data_is_never_taken_as_unchanged(setup):
    cfg, layout, _, _ = setup
    remote = cfg.data_files("gs://bucket/taxi/")
    assert remote is None and unchanged.inputs_key(cfg, remote) is None
    assert unchanged.lookup(layout, None) is None


def test_a_new_span_changes_the_key(tmp_path, setup):
    cfg, _, _, schema = setup
    (tmp_path / "spans").mkdir()
    (tmp_path / "spans" / "span-1.csv").write_text("a,b\n1,2\n")
    spans = load_config(overrides={"schema": str(schema), "data.path": str(tmp_path / "spans"),
                                    "data.pattern": "span-{SPAN}.csv"})
    before = unchanged.inputs_key(spans, spans.data_files())
    (tmp_path / "spans" / "span-2.csv").write_text("a,b\n3,4\n")
    assert len(spans.data_files()) == 2
    assert unchanged.inputs_key(spans, spans.data_files()) != before


def test_a_label_moved_or_a_damaged_models_config_is_noticed(setup):
    """What is served is read by the one reader of served state (models.config)."""
    from components.atomic_pusher import model_config

    cfg, layout, data, _ = setup
    key = inputs_of(cfg, data)
    for v in (1, 2):
        os.makedirs(os.path.join(layout.serving, str(v)))
        model_config.after_push(cfg.serving.model_name, layout.serving, v)
    unchanged.record(layout, key, unchanged.Previous(RUN_ID, "pushed", 0, "s", None))
    assert unchanged.lookup(layout, key) is not None
    model_config.write(cfg.serving.model_name, layout.serving, {"stable": 2}, [1, 2])
    assert unchanged.lookup(layout, key) is None
    unchanged.record(layout, key, unchanged.Previous(RUN_ID, "pushed", 0, "s", None))
    with open(model_config.config_path(layout.serving), "a") as f:
        f.write("garbage {{{\n")
    assert unchanged.lookup(layout, key) is None
