"""The drift baseline follows the latest blessed model's lineage back to the
StatisticsGen output over the Examples it was trained from."""
from ml_metadata import metadata_store
from ml_metadata.proto import metadata_store_pb2 as pb
from tfx.types import standard_artifacts

from components.drift_check.baseline import TrainingStatisticsStrategy


class Lineage:
    """A small ML Metadata store with executions linking artifacts by key."""

    def __init__(self):
        config = pb.ConnectionConfig()
        config.fake_database.SetInParent()
        self.store = metadata_store.MetadataStore(config)
        self.exec_type = self.store.put_execution_type(pb.ExecutionType(name="Step"))
        self.types = {}

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

    def step(self, inputs: dict, outputs: dict):
        [execution_id] = self.store.put_executions([pb.Execution(type_id=self.exec_type)])
        events = []
        for kind, keyed in ((pb.Event.INPUT, inputs), (pb.Event.OUTPUT, outputs)):
            for key, artifact in keyed.items():
                events.append(pb.Event(
                    artifact_id=artifact.id, execution_id=execution_id, type=kind,
                    path=pb.Event.Path(steps=[pb.Event.Path.Step(key=key)])))
        self.store.put_events(events)

    def run(self, blessed: bool) -> dict:
        """One pipeline run: ExampleGen, StatisticsGen, Transform, Trainer, Evaluator."""
        a = {"examples": self.artifact(standard_artifacts.Examples)}
        self.step({}, {"examples": a["examples"]})
        a["statistics"] = self.artifact(standard_artifacts.ExampleStatistics)
        self.step({"examples": a["examples"]}, {"statistics": a["statistics"]})
        a["transformed"] = self.artifact(standard_artifacts.Examples)
        a["pre_transform_stats"] = self.artifact(standard_artifacts.ExampleStatistics)
        self.step({"examples": a["examples"]}, {"transformed_examples": a["transformed"],
                                                "pre_transform_stats": a["pre_transform_stats"]})
        a["model"] = self.artifact(standard_artifacts.Model)
        self.step({"examples": a["transformed"]}, {"model": a["model"]})
        a["blessing"] = self.artifact(standard_artifacts.ModelBlessing, blessed=int(blessed),
                                      current_model_id=a["model"].id)
        self.step({"model": a["model"]}, {"blessing": a["blessing"]})
        return a


def resolve(lineage: Lineage, runs: list) -> dict:
    inputs = {"model": [r["model"] for r in runs],
              "model_blessing": [r["blessing"] for r in runs],
              "statistics": [s for r in runs for s in (r["statistics"], r["pre_transform_stats"])]}
    return TrainingStatisticsStrategy().resolve_artifacts(lineage.store, inputs)


def test_statistics_of_the_data_that_trained_the_latest_blessed_model():
    lineage = Lineage()
    first, second, third = lineage.run(True), lineage.run(True), lineage.run(False)
    result = resolve(lineage, [first, second, third])
    assert [m.id for m in result["model"]] == [second["model"].id]
    # Not the newest statistics (third run, unblessed), not Transform's.
    assert [s.id for s in result["statistics"]] == [second["statistics"].id]


def test_no_blessed_model_means_no_baseline():
    lineage = Lineage()
    run = lineage.run(False)
    result = resolve(lineage, [run])
    assert result["model"] == [] and result["statistics"] == []
