"""Finds the statistics of the data that trained the latest blessed model.

A ResolverStrategy (the TFX way to choose inputs from ML Metadata): it takes
the latest blessed model, as TFX's LatestBlessedModelStrategy does, walks its
lineage upstream to the Examples it was trained from, and returns the
StatisticsGen output computed over those Examples. On a first run there is no
blessed model and the `statistics` output is empty.
"""
from typing import Dict, List, Optional, Set

import ml_metadata as mlmd
from ml_metadata.proto import metadata_store_pb2
from tfx import types
from tfx.dsl.components.common import resolver
from tfx.dsl.input_resolution.strategies.latest_blessed_model_strategy import (
    LatestBlessedModelStrategy,
)

MODEL_KEY = "model"
BLESSING_KEY = "model_blessing"
STATISTICS_KEY = "statistics"
# StatisticsGen's output key: Transform's pre/post-transform statistics are
# ExampleStatistics too, but computed differently and over one split only.
STATISTICS_GEN_OUTPUT = "statistics"
MAX_DEPTH = 8

_INPUTS = (metadata_store_pb2.Event.INPUT, metadata_store_pb2.Event.DECLARED_INPUT)
_OUTPUTS = (metadata_store_pb2.Event.OUTPUT, metadata_store_pb2.Event.DECLARED_OUTPUT)


def upstream_artifact_ids(store: mlmd.MetadataStore, artifact_id: int,
                          max_depth: int = MAX_DEPTH) -> Set[int]:
    """Ids of every artifact the given one was derived from (itself included)."""
    seen, frontier = {artifact_id}, {artifact_id}
    for _ in range(max_depth):
        producers = {e.execution_id
                     for e in store.get_events_by_artifact_ids(list(frontier))
                     if e.type in _OUTPUTS}
        if not producers:
            break
        parents = {e.artifact_id for e in store.get_events_by_execution_ids(list(producers))
                   if e.type in _INPUTS}
        frontier = parents - seen
        if not frontier:
            break
        seen |= frontier
    return seen


def training_statistics(store: mlmd.MetadataStore, model_id: int,
                        candidates: List[types.Artifact]) -> List[types.Artifact]:
    """The latest StatisticsGen output, among `candidates`, over the model's data."""
    ancestors = upstream_artifact_ids(store, model_id)
    by_id = {a.id: a for a in candidates}
    if not by_id:
        return []
    produced_by: Dict[int, int] = {}
    for e in store.get_events_by_artifact_ids(list(by_id)):
        if (e.type in _OUTPUTS and e.path.steps
                and e.path.steps[0].key == STATISTICS_GEN_OUTPUT):
            produced_by[e.artifact_id] = e.execution_id
    inputs_of: Dict[int, Set[int]] = {}
    for e in store.get_events_by_execution_ids(list(set(produced_by.values()))):
        if e.type in _INPUTS:
            inputs_of.setdefault(e.execution_id, set()).add(e.artifact_id)
    matching = [by_id[a] for a, execution in produced_by.items()
                if inputs_of.get(execution, set()) & ancestors]
    return sorted(matching, key=lambda a: a.id)[-1:]


class TrainingStatisticsStrategy(resolver.ResolverStrategy):
    """Resolves {model, model_blessing, statistics} of the latest blessed model.

    Declare the Resolver with `model=Channel(Model)`,
    `model_blessing=Channel(ModelBlessing)` and
    `statistics=Channel(ExampleStatistics)`; the `statistics` output is the
    baseline for drift detection (empty on a first run).
    """

    def resolve_artifacts(
        self, store: mlmd.MetadataStore,
        input_dict: Dict[str, List[types.Artifact]]
    ) -> Optional[Dict[str, List[types.Artifact]]]:
        result = LatestBlessedModelStrategy().resolve_artifacts(
            store, {MODEL_KEY: list(input_dict.get(MODEL_KEY, [])),
                    BLESSING_KEY: list(input_dict.get(BLESSING_KEY, []))})
        result = dict(result or {MODEL_KEY: [], BLESSING_KEY: []})
        models = result.get(MODEL_KEY) or []
        result[STATISTICS_KEY] = (
            training_statistics(store, models[0].id, list(input_dict.get(STATISTICS_KEY, [])))
            if models else [])
        return result
