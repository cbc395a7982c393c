"""The model now served, as ML Metadata records it: the baselines of a run.

Both baselines a run compares against come from the newest push that
published a version (a PushedModel with `pushed` = 1) that `models.config`
still serves (`served_state`: a version a rollback or promote took out of
service is no longer the model now served; on Kubeflow,
`pipeline.kubeflow.container.baseline` reads the same state):

- the Evaluator's baseline model: the model that push published, unless it is
  the candidate itself (a re-run of an unchanged model then has the same
  inputs as the run that pushed it, so it is served from cache);
- the DriftCheck's baseline statistics: the StatisticsGen output the Pusher
  took as its `statistics` input, i.e. the data that trained the served model.

A baseline that exists but cannot be traced fails the resolver with its
reason: a check never passes silently for want of a baseline.
"""
from __future__ import annotations

import os
from typing import Optional

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2
from tfx import types
from tfx.dsl.components.common import resolver

from components.atomic_pusher import served_state

PUSHED_MODEL_KEY = "pushed_model"
MODEL_KEY = "model"
CANDIDATE_KEY = "candidate"
STATISTICS_KEY = "statistics"
CURRENT_KEY = "current"
# The Pusher's input keys for the model and its training statistics.
PUSHER_MODEL_INPUT = "model"
PUSHER_STATISTICS_INPUT = "statistics"

_INPUTS = (metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.DECLARED_INPUT)
_OUTPUTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)


class BaselineNotTraced(RuntimeError):
    """A model is served but ML Metadata does not say what it was made from."""


def _is_pushed(artifact: types.Artifact) -> bool:
    return (artifact.has_custom_property("pushed")
            and artifact.get_int_custom_property("pushed") == 1)


def _served(pushed_models: list[types.Artifact]) -> list[types.Artifact]:
    """The pushes whose version models.config serves, read once per base path. A push
    that recorded no destination (older records) is taken as served."""
    states: dict[str, served_state.ServedState] = {}
    out = []
    for artifact in pushed_models:
        destination = (artifact.get_string_custom_property("pushed_destination")
                       if artifact.has_custom_property("pushed_destination") else "")
        version = (artifact.get_string_custom_property("pushed_version")
                   if artifact.has_custom_property("pushed_version") else "")
        if not destination or not version.isdigit():
            out.append(artifact)
            continue
        base = os.path.dirname(os.path.normpath(destination))
        if base not in states:
            states[base] = served_state.read(base)
            states[base].require_readable()
        if states[base].serves(int(version)):
            out.append(artifact)
    return out


def pushes(store: mlmd.MetadataStore, pushed_models: list[types.Artifact]
           ) -> list[tuple[types.Artifact, dict[str, list[int]]]]:
    """(PushedModel, the inputs of the push that made it by key), newest push first,
    for the pushes whose version is served now."""
    published = sorted(_served([a for a in pushed_models if _is_pushed(a)]),
                       key=lambda a: a.id, reverse=True)
    if not published:
        return []
    producer = {e.artifact_id: e.execution_id
                for e in store.get_events_by_artifact_ids([a.id for a in published])
                if e.type in _OUTPUTS}
    inputs: dict[int, dict[str, list[int]]] = {}
    executions = sorted(set(producer.values()))
    for e in store.get_events_by_execution_ids(executions) if executions else []:
        if e.type in _INPUTS and e.path.steps:
            inputs.setdefault(e.execution_id, {}).setdefault(
                e.path.steps[0].key, []).append(e.artifact_id)
    return [(a, inputs.get(producer.get(a.id, -1), {})) for a in published]


def served_model_id(store: mlmd.MetadataStore, pushed_models: list[types.Artifact],
                    exclude: set[int]) -> Optional[int]:
    """The model of the newest push that is not one of `exclude`."""
    for pushed, keyed in pushes(store, pushed_models):
        models = keyed.get(PUSHER_MODEL_INPUT, [])
        if not models:
            raise BaselineNotTraced(
                f"pushed model {pushed.id} ({pushed.uri}): its push has no input model")
        if models[0] not in exclude:
            return models[0]
    return None


def _pick(artifacts: list[types.Artifact], artifact_id: int, what: str) -> types.Artifact:
    found = [a for a in artifacts if a.id == artifact_id]
    if not found:
        raise BaselineNotTraced(f"{what} {artifact_id} is not among this pipeline's artifacts")
    return found[0]


class ServedModelStrategy(resolver.ResolverStrategy):
    """Resolves `model`: the model now served, or nothing on a first run.

    Declare the Resolver with `pushed_model=Channel(PushedModel)`,
    `model=Channel(Model)` and `candidate=trainer.outputs["model"]`.
    """

    def resolve_artifacts(self, store: mlmd.MetadataStore,
                          input_dict: dict[str, list[types.Artifact]]
                          ) -> Optional[dict[str, list[types.Artifact]]]:
        candidates = {a.id for a in input_dict.get(CANDIDATE_KEY, [])}
        models = list(input_dict.get(MODEL_KEY, []))
        model_id = served_model_id(store, list(input_dict.get(PUSHED_MODEL_KEY, [])),
                                   candidates)
        chosen = [] if model_id is None else [_pick(models, model_id, "served model")]
        return {MODEL_KEY: chosen, PUSHED_MODEL_KEY: [], CANDIDATE_KEY: []}


class ServedStatisticsStrategy(resolver.ResolverStrategy):
    """Resolves `statistics`: those that trained the model now served (none on a first run).

    Declare the Resolver with `pushed_model=Channel(PushedModel)`,
    `statistics=Channel(ExampleStatistics)` and `current=` this run's
    statistics: when those trained the served model, there is nothing to
    compare (and the check's inputs stay those of the run that pushed it).
    """

    def resolve_artifacts(self, store: mlmd.MetadataStore,
                          input_dict: dict[str, list[types.Artifact]]
                          ) -> Optional[dict[str, list[types.Artifact]]]:
        published = pushes(store, list(input_dict.get(PUSHED_MODEL_KEY, [])))
        chosen: list[types.Artifact] = []
        if published:
            pushed, keyed = published[0]
            stats = keyed.get(PUSHER_STATISTICS_INPUT, [])
            if not stats:
                raise BaselineNotTraced(
                    f"the served model (pushed as {pushed.uri}) has no training statistics "
                    f"recorded with its push; push once with this version of the pipeline "
                    f"(drift_check.action: warn) or switch the drift check off")
            current = {a.id for a in input_dict.get(CURRENT_KEY, [])}
            if stats[0] not in current:
                chosen = [_pick(list(input_dict.get(STATISTICS_KEY, [])), stats[0],
                                "training statistics")]
        return {STATISTICS_KEY: chosen, PUSHED_MODEL_KEY: [], CURRENT_KEY: []}
