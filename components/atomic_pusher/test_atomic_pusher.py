"""Versions appear whole, in one rename, never replace an earlier one, and are
published with their labels in models.config or not at all."""
import concurrent.futures
import json
import os
import shutil
import signal
import subprocess
import sys

import pytest
from tfx.types import standard_artifacts

from components.atomic_pusher import executor as pusher
from components.atomic_pusher import model_config, served_state


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


# --- a push is one transaction with its labels ------------------------------

def _pushed_once(tmp_path):
    """A base path with one version published, and a second, different model."""
    first, second = str(tmp_path / "m1"), str(tmp_path / "m2")
    fake_saved_model(first)
    fake_saved_model(second, weights=b"e" * 1000)
    base = str(tmp_path / "serving")
    version, _ = pusher.publish_atomically(first, base)
    return base, second, version


def _config_text(base):
    with open(served_state.config_path(base)) as f:
        return f.read()


def _staging(base):
    return [n for n in os.listdir(base) if n.startswith(pusher.STAGING_PREFIX)]


def test_models_config_is_staged_before_the_version_is_renamed_into_place(
        tmp_path, monkeypatch):
    base, second, first = _pushed_once(tmp_path)
    seen = {}
    real_rename = os.rename

    def watching(src, dst):
        if os.path.basename(dst).isdigit():
            staged = served_state.staged_config_path(base, int(os.path.basename(dst)))
            with open(staged) as f:
                seen["staged"] = served_state.parse_config(f.read())
            seen["config"] = _config_text(base)
        real_rename(src, dst)

    monkeypatch.setattr(pusher.os, "rename", watching)
    version, published = pusher.publish_atomically(second, base)
    [model] = seen["staged"].model_config_list.config
    assert dict(model.version_labels) == {"stable": int(first), "canary": int(version)}
    assert "canary" not in seen["config"]  # the live config moved only after the rename
    assert served_state.read(base).labels == {"stable": int(first), "canary": int(version)}
    assert _staging(base) == []


def test_a_models_config_that_does_not_parse_refuses_the_push_before_anything_appears(
        tmp_path):
    base, second, first = _pushed_once(tmp_path)
    with open(served_state.config_path(base), "w") as f:
        f.write("garbage {{{\n")
    with pytest.raises(served_state.ServedStateError,
                       match=f"^{served_state.config_path(base)}: does not parse"):
        pusher.publish_atomically(second, base)
    assert served(base) == [first] and _staging(base) == []


def test_a_failed_rename_publishes_nothing(tmp_path, monkeypatch):
    base, second, first = _pushed_once(tmp_path)
    before = _config_text(base)
    real_rename = os.rename

    def failing(src, dst):
        if os.path.basename(dst).isdigit():
            raise OSError(28, "No space left on device")
        real_rename(src, dst)

    monkeypatch.setattr(pusher.os, "rename", failing)
    with pytest.raises(pusher.PushFailed, match="could not rename the version directory"):
        pusher.publish_atomically(second, base)
    assert served(base) == [first] and _staging(base) == []
    assert _config_text(base) == before


def test_a_failed_config_write_moves_the_version_back_and_names_the_file(
        tmp_path, monkeypatch):
    base, second, first = _pushed_once(tmp_path)
    before = _config_text(base)
    real_replace = model_config.os.replace

    def failing(src, dst):
        if dst == served_state.config_path(base) and pusher.STAGING_PREFIX in src:
            raise OSError(5, "Input/output error")
        real_replace(src, dst)

    monkeypatch.setattr(model_config.os, "replace", failing)
    with pytest.raises(pusher.PushFailed,
                       match=f"^{served_state.config_path(base)}: could not be replaced"):
        pusher.publish_atomically(second, base)
    assert served(base) == [first] and _staging(base) == []
    assert _config_text(base) == before


KILLED_PUSH = """
import os, signal, sys
from components.atomic_pusher import executor, model_config
model_config.Staged.commit = lambda self: os.kill(os.getpid(), signal.SIGKILL)
executor.publish_atomically(sys.argv[1], sys.argv[2])
"""


def test_a_push_killed_between_the_rename_and_the_config_is_undone_by_the_next(tmp_path):
    from pipeline.serving import versions as listing

    base, second, first = _pushed_once(tmp_path)
    before = _config_text(base)
    project = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    killed = subprocess.run([sys.executable, "-c", KILLED_PUSH, second, base], cwd=project,
                            capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    [orphan] = [v for v in served(base) if v != first]
    state = served_state.read(base)
    assert state.pending == (int(orphan),) and not state.serves(int(orphan))
    assert _config_text(base) == before
    shown = {v.version: v for v in listing.list_versions(base).versions}
    assert not shown[int(orphan)].served and shown[int(orphan)].pending
    # The same model again: not "already serving" (nothing serves it); the orphan goes
    # (its number may be claimed again: nothing ever served it).
    version, published = pusher.publish_atomically(second, base)
    assert published
    assert served(base) == [first, version] and _staging(base) == []
    assert served_state.read(base).labels == {"stable": int(first), "canary": int(version)}


def test_already_serving_means_what_models_config_serves(tmp_path):
    """A version directory models.config does not serve (a push that failed before the
    config was transactional) is not "already serving" the model it holds."""
    base, second, first = _pushed_once(tmp_path)
    shutil.copytree(second, os.path.join(base, str(int(first) + 1)))
    version, published = pusher.publish_atomically(second, base)
    assert published and int(version) > int(first) + 1
    assert served_state.read(base).serves(int(version))
    again, published_again = pusher.publish_atomically(second, base)
    assert (again, published_again) == (version, False)


def test_once_models_config_is_in_place_the_push_has_happened(tmp_path, monkeypatch):
    """The config is the commit point: a stable history that cannot follow stays
    staged, and the next push puts it in place."""
    model, base = str(tmp_path / "m1"), str(tmp_path / "serving")
    fake_saved_model(model)
    real_replace = model_config.os.replace

    def failing(src, dst):
        if dst == served_state.history_path(base) and pusher.STAGING_PREFIX in src:
            raise OSError(28, "No space left on device")
        real_replace(src, dst)

    monkeypatch.setattr(model_config.os, "replace", failing)
    version, published = pusher.publish_atomically(model, base)
    assert published and served_state.read(base).labels == {"stable": int(version)}
    assert served_state.read(base).history == ()
    monkeypatch.setattr(model_config.os, "replace", real_replace)
    second = str(tmp_path / "m2")
    fake_saved_model(second, weights=b"e" * 1000)
    pusher.publish_atomically(second, base)
    assert served_state.read(base).history == (int(version),) and _staging(base) == []
