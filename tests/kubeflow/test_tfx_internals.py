"""pipeline/kubeflow/tfx_internals.py: TFX's private names, each checked, and a
change of one stops with the name and the pinned TFX."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from tfx import version
from tfx.dsl.components.common import resolver
from tfx.dsl.input_resolution.strategies.latest_artifact_strategy import LatestArtifactStrategy
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy,
)
from tfx.types import channel, standard_artifacts

from pipeline.errors import TfxpError
from pipeline.kubeflow import tfx_internals

ROOT = Path(__file__).resolve().parents[2]


def load_fence_copy():
    """A fresh copy of the module, run against TFX as it is now."""
    spec = importlib.util.spec_from_file_location("tfx_internals_copy", tfx_internals.__file__)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    finally:
        del sys.modules[spec.name]
    return module


def test_the_pinned_tfx_is_the_one_the_fence_was_read_from():
    lock = (ROOT / "requirements.lock").read_text()
    assert f"\ntfx=={tfx_internals.PINNED_VERSION}\n" in lock
    assert version.__version__ == tfx_internals.PINNED_VERSION


def test_a_resolver_reports_the_strategy_set_through_the_fence():
    node = resolver.Resolver(strategy_class=LatestBlessedModelStrategy,
                             model=channel.Channel(type=standard_artifacts.Model))
    tfx_internals.set_resolver_strategy(node, LatestArtifactStrategy)
    assert node.exec_properties[resolver.RESOLVER_STRATEGY_CLASS] is LatestArtifactStrategy


def test_a_resolver_that_keeps_its_strategy_elsewhere_fails_the_import(monkeypatch):
    init = resolver.Resolver.__init__

    def elsewhere(self, *args, strategy_class=None, **kwargs):
        init(self, *args, strategy_class=strategy_class, **kwargs)
        self.strategy = self.__dict__.pop("_strategy_class")
        self._strategy_class = None

    monkeypatch.setattr(resolver.Resolver, "__init__", elsewhere)
    with pytest.raises(TfxpError, match=r"Resolver\._strategy_class: .*TFX 1\.16\.0"):
        load_fence_copy()


def test_the_entrypoint_parsers_read_tfxs_flags():
    args = tfx_internals.parse_driver_flags(
        ["--json_serialized_invocation_args", "{}", "--beam_flag=1"])
    assert args.json_serialized_invocation_args == "{}"
    args, beam = tfx_internals.parse_executor_flags(
        ["--executor_class_path", "a.B", "--json_serialized_invocation_args", "{}",
         "--runner=DirectRunner"])
    assert args.executor_class_path == "a.B" and beam == ["--runner=DirectRunner"]


def test_a_renamed_parser_stops_with_its_name(monkeypatch):
    from tfx.orchestration.kubeflow.v2.file_based_example_gen import driver

    monkeypatch.delattr(driver, "_parse_flags")
    with pytest.raises(tfx_internals.TfxChanged,
                       match=r"driver\._parse_flags: no such function; .*TFX 1\.16\.0"):
        tfx_internals.parse_driver_flags(["--json_serialized_invocation_args", "{}"])


def test_a_launchers_artifact_parses_as_tfxs_entrypoint_parses_it():
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    runtime = json_format.ParseDict(
        {"name": "42", "uri": "/gcs/b/examples", "type": {"schemaTitle": "tfx.Examples"},
         "metadata": {"split_names": '["train", "eval"]', "span": 0.0}},
        pipeline_spec_pb2.RuntimeArtifact())
    examples = tfx_internals.parse_raw_artifact(runtime, {})
    assert isinstance(examples, standard_artifacts.Examples)
    assert examples.uri == "/gcs/b/examples" and examples.split_names == '["train", "eval"]'
