"""Versions appear whole, in one rename, and never replace an earlier one."""
import concurrent.futures
import json
import os

import pytest
from tfx.types import standard_artifacts

from components.atomic_pusher import executor as pusher


def fake_saved_model(path, weights: bytes = b"d" * 1000):
    os.makedirs(os.path.join(path, "variables"))
    for name, data in (("saved_model.pb", b"graph"), ("variables/variables.index", b"i"),
                       ("variables/variables.data-00000-of-00001", weights)):
        with open(os.path.join(path, name), "wb") as f:
            f.write(data)


def served(base):
    """The versions (models.config and its history are written beside them)."""
    return sorted(n for n in os.listdir(base) if n.isdigit())


def test_no_version_is_visible_until_complete(tmp_path, monkeypatch):
    model, base = str(tmp_path / "model"), str(tmp_path / "serving")
    fake_saved_model(model)
    seen_during_copy = []
    real_copy = pusher.shutil.copytree

    def watching_copy(src, dst, *a, **k):
        real_copy(src, dst, *a, **k)
        # What a TF Serving poll would find now, before the rename.
        seen_during_copy.extend(n for n in os.listdir(base) if n.isdigit())

    monkeypatch.setattr(pusher.shutil, "copytree", watching_copy)
    version, published = pusher.publish_atomically(model, base)
    assert published and seen_during_copy == []
    assert served(base) == [version]
    assert open(os.path.join(base, version, "saved_model.pb"), "rb").read() == b"graph"
    assert os.path.getsize(os.path.join(base, version, "variables",
                                        "variables.data-00000-of-00001")) == 1000


def test_versions_increase_and_never_overwrite(tmp_path):
    first_model, second_model = str(tmp_path / "m1"), str(tmp_path / "m2")
    fake_saved_model(first_model)
    fake_saved_model(second_model, weights=b"e" * 1000)
    base = str(tmp_path / "serving")
    first, _ = pusher.publish_atomically(first_model, base)
    second, _ = pusher.publish_atomically(second_model, base)
    assert int(second) > int(first)
    assert served(base) == sorted([first, second])


def test_the_model_already_served_is_not_published_again(tmp_path):
    model, base = str(tmp_path / "model"), str(tmp_path / "serving")
    fake_saved_model(model)
    first, published = pusher.publish_atomically(model, base)
    again, published_again = pusher.publish_atomically(model, base)
    assert published and not published_again
    assert again == first and served(base) == [first]


def test_pushes_in_the_same_second_never_share_a_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(pusher.time, "time", lambda: 1_700_000_000.0)
    base = str(tmp_path / "serving")
    models = []
    for i in range(6):
        models.append(str(tmp_path / f"m{i}"))
        fake_saved_model(models[-1], weights=bytes([65 + i]) * 5000)
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(lambda m: pusher.publish_atomically(m, base), models))
    versions = [v for v, published in results if published]
    assert len(set(versions)) == 6
    assert served(base) == sorted(versions)
    # Each version holds the model that claimed it, whole.
    for model, (version, _) in zip(models, results):
        with open(os.path.join(base, version, "variables",
                               "variables.data-00000-of-00001"), "rb") as f:
            assert f.read() == open(os.path.join(model, "variables",
                                                 "variables.data-00000-of-00001"), "rb").read()


def test_staging_left_by_a_killed_push_is_swept(tmp_path):
    model, base = str(tmp_path / "model"), str(tmp_path / "serving")
    fake_saved_model(model)
    os.makedirs(os.path.join(base, ".staging-123", "variables"))
    version, _ = pusher.publish_atomically(model, base)
    assert ".staging-123" not in os.listdir(base)
    assert served(base) == [version]


@pytest.mark.parametrize("base", ["gs://bucket/models/taxi", "s3://bucket/taxi"])
def test_object_store_base_paths_are_refused(tmp_path, base):
    model = str(tmp_path / "model")
    fake_saved_model(model)
    with pytest.raises(pusher.PushRefused, match="rename"):
        pusher.publish_atomically(model, base)


def executor_inputs(tmp_path, blessed: bool):
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "trainer")
    fake_saved_model(os.path.join(model.uri, "Format-Serving"))
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    blessing.set_int_custom_property("blessed", int(blessed))
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed")
    statistics = standard_artifacts.ExampleStatistics()
    statistics.uri = str(tmp_path / "statistics")
    os.makedirs(os.path.join(statistics.uri, "Split-train"))
    with open(os.path.join(statistics.uri, "Split-train", "FeatureStats.pb"), "wb") as f:
        f.write(b"stats")
    destination = json.dumps({"filesystem": {"baseDirectory": str(tmp_path / "serving")}})
    return ({"model": [model], "model_blessing": [blessing], "statistics": [statistics]},
            {"pushed_model": [pushed]},
            {"push_destination": destination})


@pytest.mark.parametrize("blessed", [True, False])
def test_executor_pushes_only_blessed_models(tmp_path, blessed):
    inputs, outputs, props = executor_inputs(tmp_path, blessed)
    pusher.Executor().Do(inputs, outputs, props)
    pushed = outputs["pushed_model"][0]
    assert pushed.get_int_custom_property("pushed") == int(blessed)
    serving = tmp_path / "serving"
    if blessed:
        [version] = served(serving)
        assert pushed.get_string_custom_property("pushed_version") == version
        assert (serving / version / "saved_model.pb").exists()
        stats = serving / version / pusher.STATISTICS_DIR / "Split-train" / "FeatureStats.pb"
        assert stats.read_bytes() == b"stats"
    else:
        assert not serving.exists() or served(serving) == []
