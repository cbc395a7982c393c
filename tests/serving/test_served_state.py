"""One meaning of "served" (what models.config serves) and one baseline: the local
resolvers (ML Metadata) and the Kubeflow container tasks (the serving volume)
resolve the same version on the same root, and "no baseline" on a first run."""
from __future__ import annotations

import json
import os
import shutil

from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import statistics_pb2

from components.atomic_pusher import executor as pusher
from components.atomic_pusher import model_config, served_state
from components.atomic_pusher.test_atomic_pusher import fake_saved_model
from components.atomic_pusher.test_served import Store
from pipeline.kubeflow.container import baseline, drift_baseline, entrypoint
from pipeline.serving import versions


class Root:
    """A run root: a store recording pushes, and the serving base path they published to."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.base = str(tmp_path / "root" / "serving" / "taxi")
        self.store = Store()
        self.version_of: dict[int, str] = {}  # model artifact id -> version
        self.trained_count = 0

    def train(self):
        """A model (a SavedModel of its own) and the statistics of its data."""
        model, stats = self.store.trained()
        self.trained_count += 1
        model.uri = str(self.tmp / f"model-{model.id}")
        fake_saved_model(os.path.join(model.uri, baseline.SERVING_SUBDIR),
                         weights=bytes([64 + self.trained_count]) * 100)
        stats.uri = str(self.tmp / f"stats-{stats.id}")
        os.makedirs(os.path.join(stats.uri, "Split-train"))
        with open(os.path.join(stats.uri, "Split-train", "FeatureStats.pb"), "wb") as f:
            f.write(statistics_pb2.DatasetFeatureStatisticsList(datasets=[
                statistics_pb2.DatasetFeatureStatistics(name=str(stats.id))]
            ).SerializeToString())
        return model, stats

    def push(self, model, stats) -> str:
        """What the Pusher does: the version (with its statistics) and its record."""
        version, published = pusher.publish_atomically(
            os.path.join(model.uri, baseline.SERVING_SUBDIR), self.base,
            stage=lambda staging: shutil.copytree(
                stats.uri, os.path.join(staging, served_state.STATISTICS_DIR)))
        assert published
        self.store.push(model, stats, pushed=True,
                        destination=os.path.join(self.base, version))
        self.version_of[model.id] = version
        return version

    def local(self, candidate, current) -> tuple:
        """(baseline version, baseline statistics id) as the local resolvers find them."""
        models = self.store.baseline_model(candidate)
        stats = self.store.baseline_statistics(current)
        return (self.version_of[models[0]] if models else None, stats[0] if stats else None)

    def container(self, candidate, current) -> tuple:
        """The same, as the container tasks on Kubeflow find them (None: no baseline)."""
        out = self.tmp / "out"
        shutil.rmtree(out, ignore_errors=True)
        model = baseline.resolve_baseline(candidate.uri, self.base, str(out / "model"))
        stats = drift_baseline.resolve_baseline(current.uri, self.base, str(out / "stats"))
        model_version = None if model.get(entrypoint.NO_ARTIFACT) else model["baseline_version"]
        stats_id = None
        if not stats.get(entrypoint.NO_ARTIFACT):
            with open(out / "stats" / "Split-train" / "FeatureStats.pb", "rb") as f:
                stats_id = int(statistics_pb2.DatasetFeatureStatisticsList.FromString(
                    f.read()).datasets[0].name)
        return model_version, stats_id

    def both(self, candidate, current) -> tuple:
        local, container = self.local(candidate, current), self.container(candidate, current)
        assert local == container
        return local


def test_local_and_container_baselines_agree_on_one_root(tmp_path):
    root = Root(tmp_path)
    m1, s1 = root.train()
    assert root.both(m1, s1) == (None, None)  # a first run: no baseline either way
    v1 = root.push(m1, s1)
    assert root.both(m1, s1) == (None, None)  # an unchanged re-run: nothing to compare
    m2, s2 = root.train()
    assert root.both(m2, s2) == (v1, s1.id)
    v2 = root.push(m2, s2)
    m3, s3 = root.train()
    assert root.both(m3, s3) == (v2, s2.id)
    # The canary label moved back to v1: v2 stays on disk but is served no more.
    versions.promote("taxi", root.base, int(v1), "canary")
    assert not served_state.read(root.base).serves(int(v2))
    assert root.both(m3, s3) == (v1, s1.id)


def test_no_baseline_never_reaches_the_consuming_component(tmp_path):
    """The container tasks' "no baseline" artifact is left out of the Evaluator's and
    DriftCheck's inputs, so TFX sees the optional input not given, as locally."""
    candidate = tmp_path / "candidate"
    fake_saved_model(str(candidate / baseline.SERVING_SUBDIR))
    metadata = baseline.resolve_baseline(str(candidate), str(tmp_path / "serving"),
                                         str(tmp_path / "out"))
    assert metadata[entrypoint.NO_ARTIFACT] == 1
    model = {"uri": "minio://bucket/candidate", "metadata": {}}
    executor_input = {"inputs": {"artifacts": {
        "model": {"artifacts": [model]},
        # as KFP's launcher hands the metadata on: a number is a float there
        "baseline_model": {"artifacts": [{"uri": "minio://bucket/baseline",
                                          "metadata": {**metadata,
                                                       entrypoint.NO_ARTIFACT: 1.0}}]}}},
        "outputs": {"artifacts": {}, "outputFile": str(tmp_path / "output.json")}}
    argv = entrypoint.localize_invocation(
        [entrypoint.INVOCATION_FLAG, json.dumps(executor_input)])
    given = json.loads(argv[1])["inputs"]["artifacts"]
    assert given["baseline_model"]["artifacts"] == []
    [kept] = given["model"]["artifacts"]
    assert kept["uri"].endswith(os.path.join("minio", "bucket", "candidate"))


def test_served_is_what_the_version_policy_names_on_disk(tmp_path):
    base = str(tmp_path / "serving")
    for v in (1, 2, 3):
        os.makedirs(os.path.join(base, str(v)))
    assert served_state.read(base).served == ()  # no models.config: nothing served
    config = model_config.build("taxi", base, {"stable": 1, "canary": 9})
    with open(served_state.config_path(base), "w") as f:
        f.write(text_format.MessageToString(config))
    state = served_state.read(base)
    assert state.served == (1,) and state.dangling == {"canary": 9}
    assert [p.problem for p in state.problems] == [
        "label 'canary' points at version 9, which is not on disk"]
    state.require_readable()  # a dangling label does not stop a reader of the rest
    with open(served_state.config_path(base), "w") as f:
        f.write('model_config_list { config { name: "taxi" base_path: "%s" '
                'model_version_policy { latest { num_versions: 2 } } } }' % base)
    assert served_state.read(base).served == (2, 3)


def test_a_damaged_file_is_a_problem_not_an_exception(tmp_path):
    base = str(tmp_path / "serving")
    os.makedirs(os.path.join(base, "1"))
    with open(served_state.config_path(base), "wb") as f:
        f.write(b"\xff\xfe not text")
    with open(served_state.history_path(base), "w") as f:
        f.write('{"stable": 1}')
    state = served_state.read(base)
    assert [(p.path, p.problem.split(" (")[0]) for p in state.problems] == [
        (served_state.config_path(base), "cannot be read"),
        (served_state.history_path(base), "is not a JSON list of versions")]
    assert state.served == () and state.history == ()


def test_a_run_stops_before_it_starts_when_models_config_does_not_parse(tmp_path, capsys):
    """The Pusher could not label the new version: one line naming the file and its
    repair, before anything runs (not a component's failure after training)."""
    from pipeline.cli.main import main
    from pipeline.config import load_config

    root = tmp_path / "root"
    base = root / "serving" / load_config().serving.model_name
    os.makedirs(base / "1")
    (base / served_state.CONFIG_FILE).write_text("garbage {{{\n")
    assert main(["run", "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("\n") == 1
    assert err.startswith(f"tfxp run: cannot do that: {base / served_state.CONFIG_FILE}: "
                          f"does not parse")
    assert "tfxp promote VERSION" in err
    assert not (root / "pipeline").exists()  # nothing ran
