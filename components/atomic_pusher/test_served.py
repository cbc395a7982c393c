"""The baselines of a run come from the newest push that published a version
models.config still serves."""
import os

import pytest
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2 as pb
from tfx.types import standard_artifacts

from components.atomic_pusher import model_config
from components.atomic_pusher.served import (
    BaselineNotTraced,
    ServedModelStrategy,
    ServedStatisticsStrategy,
)


class Store:
    """A small ML Metadata store with Pusher executions linking artifacts by key."""

    def __init__(self):
        config = pb.ConnectionConfig()
        config.fake_database.SetInParent()
        self.store = metadata_store.MetadataStore(config)
        self.exec_type = self.store.put_execution_type(pb.ExecutionType(name="Pusher"))
        self.types = {}
        self.all = {"model": [], "statistics": [], "pushed_model": []}

    def artifact(self, cls, **int_props):
        if cls.TYPE_NAME not in self.types:
            self.types[cls.TYPE_NAME] = self.store.put_artifact_type(
                pb.ArtifactType(name=cls.TYPE_NAME))
        [artifact_id] = self.store.put_artifacts([pb.Artifact(type_id=self.types[cls.TYPE_NAME])])
        artifact = cls()
        artifact.id = artifact_id
        for name, value in int_props.items():
            artifact.set_int_custom_property(name, value)
        return artifact

    def trained(self):
        model = self.artifact(standard_artifacts.Model)
        stats = self.artifact(standard_artifacts.ExampleStatistics)
        self.all["model"].append(model)
        self.all["statistics"].append(stats)
        return model, stats

    def push(self, model, stats, pushed: bool, destination: str = ""):
        """A Pusher execution; `destination` is the version directory it published."""
        out = self.artifact(standard_artifacts.PushedModel, pushed=int(pushed))
        if destination:
            out.set_string_custom_property("pushed_destination", destination)
            out.set_string_custom_property("pushed_version", os.path.basename(destination))
        self.all["pushed_model"].append(out)
        [execution_id] = self.store.put_executions([pb.Execution(type_id=self.exec_type)])
        keyed = [(pb.Event.INPUT, "model", model), (pb.Event.OUTPUT, "pushed_model", out)]
        if stats is not None:
            keyed.append((pb.Event.INPUT, "statistics", stats))
        self.store.put_events([pb.Event(
            artifact_id=a.id, execution_id=execution_id, type=kind,
            path=pb.Event.Path(steps=[pb.Event.Path.Step(key=key)])) for kind, key, a in keyed])

    def baseline_model(self, candidate):
        result = ServedModelStrategy().resolve_artifacts(self.store, {
            "pushed_model": self.all["pushed_model"], "model": self.all["model"],
            "candidate": [candidate]})
        return [m.id for m in result["model"]]

    def baseline_statistics(self, current):
        result = ServedStatisticsStrategy().resolve_artifacts(self.store, {
            "pushed_model": self.all["pushed_model"], "statistics": self.all["statistics"],
            "current": [current]})
        return [s.id for s in result["statistics"]]


def test_first_run_has_no_baseline():
    store = Store()
    model, stats = store.trained()
    assert store.baseline_model(model) == []
    assert store.baseline_statistics(stats) == []


def test_the_served_model_is_the_baseline_unless_it_is_the_candidate():
    store = Store()
    m1, s1 = store.trained()
    store.push(m1, s1, pushed=True)
    # An unchanged re-run: the candidate is the served model; nothing to compare.
    assert store.baseline_model(m1) == []
    assert store.baseline_statistics(s1) == []
    m2, s2 = store.trained()
    assert store.baseline_model(m2) == [m1.id]
    assert store.baseline_statistics(s2) == [s1.id]
    store.push(m2, s2, pushed=True)
    # Re-running the second model compares it with the first, as when it was pushed.
    assert store.baseline_model(m2) == [m1.id]
    m3, s3 = store.trained()
    assert store.baseline_model(m3) == [m2.id]
    assert store.baseline_statistics(s3) == [s2.id]


def test_pushes_that_published_nothing_are_not_served():
    store = Store()
    m1, s1 = store.trained()
    store.push(m1, s1, pushed=True)
    m2, s2 = store.trained()
    store.push(m2, s2, pushed=False)
    m3, s3 = store.trained()
    assert store.baseline_model(m3) == [m1.id]
    assert store.baseline_statistics(s3) == [s1.id]


def test_a_served_model_without_training_statistics_fails_closed():
    store = Store()
    m1, _ = store.trained()
    store.push(m1, None, pushed=True)
    _, s2 = store.trained()
    with pytest.raises(BaselineNotTraced, match="no training statistics"):
        store.baseline_statistics(s2)


def test_a_push_models_config_no_longer_serves_is_not_the_baseline(tmp_path):
    base = str(tmp_path / "serving")
    store = Store()
    pushed = []
    for version in (100, 200):
        model, stats = store.trained()
        os.makedirs(os.path.join(base, str(version)))
        model_config.after_push("taxi", base, version)
        store.push(model, stats, pushed=True, destination=os.path.join(base, str(version)))
        pushed.append((model, stats))
    m3, s3 = store.trained()
    assert store.baseline_model(m3) == [pushed[1][0].id]
    # The canary label moved back to 100: 200 is on disk but no longer served.
    model_config.write("taxi", base, {"stable": 100, "canary": 100}, [100])
    assert store.baseline_model(m3) == [pushed[0][0].id]
    assert store.baseline_statistics(s3) == [pushed[0][1].id]
