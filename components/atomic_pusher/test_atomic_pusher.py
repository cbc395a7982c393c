"""Versions appear whole, in one rename, and never replace an earlier one."""
import json
import os

import pytest
from tfx.types import standard_artifacts

from components.atomic_pusher import executor as pusher


def fake_saved_model(path):
    os.makedirs(os.path.join(path, "variables"))
    for name, data in (("saved_model.pb", b"graph"), ("variables/variables.index", b"i"),
                       ("variables/variables.data-00000-of-00001", b"d" * 1000)):
        with open(os.path.join(path, name), "wb") as f:
            f.write(data)


def test_no_version_is_visible_until_complete(tmp_path, monkeypatch):
    model, base = str(tmp_path / "model"), str(tmp_path / "serving")
    fake_saved_model(model)
    seen_during_copy = []
    real_copy = pusher.io_utils.copy_dir

    def watching_copy(src, dst, *a, **k):
        real_copy(src, dst, *a, **k)
        # What a TF Serving poll would find now, before the rename.
        seen_during_copy.extend(n for n in os.listdir(base) if n.isdigit())

    monkeypatch.setattr(pusher.io_utils, "copy_dir", watching_copy)
    version = pusher.publish_atomically(model, base)
    assert seen_during_copy == []
    assert os.listdir(base) == [version]
    assert open(os.path.join(base, version, "saved_model.pb"), "rb").read() == b"graph"
    assert os.path.getsize(os.path.join(base, version, "variables",
                                        "variables.data-00000-of-00001")) == 1000


def test_versions_increase_and_never_overwrite(tmp_path):
    model, base = str(tmp_path / "model"), str(tmp_path / "serving")
    fake_saved_model(model)
    first = pusher.publish_atomically(model, base)
    second = pusher.publish_atomically(model, base)
    assert int(second) > int(first)
    assert sorted(os.listdir(base)) == sorted([first, second])


def executor_inputs(tmp_path, blessed: bool):
    model = standard_artifacts.Model()
    model.uri = str(tmp_path / "trainer")
    fake_saved_model(os.path.join(model.uri, "Format-Serving"))
    blessing = standard_artifacts.ModelBlessing()
    blessing.uri = str(tmp_path / "blessing")
    blessing.set_int_custom_property("blessed", int(blessed))
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / "pushed")
    destination = json.dumps({"filesystem": {"baseDirectory": str(tmp_path / "serving")}})
    return ({"model": [model], "model_blessing": [blessing]}, {"pushed_model": [pushed]},
            {"push_destination": destination})


@pytest.mark.parametrize("blessed", [True, False])
def test_executor_pushes_only_blessed_models(tmp_path, blessed):
    inputs, outputs, props = executor_inputs(tmp_path, blessed)
    pusher.Executor().Do(inputs, outputs, props)
    pushed = outputs["pushed_model"][0]
    assert pushed.get_int_custom_property("pushed") == int(blessed)
    serving = tmp_path / "serving"
    if blessed:
        [version] = os.listdir(serving)
        assert pushed.get_string_custom_property("pushed_version") == version
        assert (serving / version / "saved_model.pb").exists()
    else:
        assert not serving.exists() or os.listdir(serving) == []
