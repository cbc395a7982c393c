"""What a run records about itself beyond what TFX records: code and config.

TFX stores each component's inputs, outputs and execution properties, but not
which version of this project ran, nor the whole configuration file, nor a
content digest of the input data (ExampleGen's fingerprint is sizes and
modification times).  These go on the run's `pipeline_run` context as custom
properties, written after the nodes ran: caching keys on a node's inputs and
properties, never on the run context, so a re-run with nothing changed is
still served from cache.

On Kubeflow nothing writes to the run's context but KFP itself; there the
same facts travel as metadata of ExampleGen's `examples` artifact (KFP's
launcher keeps an artifact's metadata as its custom properties, under the
same `tfxp_` names): the git commit and project version of the image (baked
in at build time), the config as compiled, and a digest of the data as the
task read it.  `run_facts` reads either.
"""
from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Optional

from ml_metadata.proto import metadata_store_pb2

import pipeline.facts
from pipeline.facts import PREFIX

if TYPE_CHECKING:
    from pipeline.config import PipelineConfig
    from pipeline.lineage.store import Store

def run_provenance(cfg: "PipelineConfig", data_path: Optional[str] = None) -> dict[str, Any]:
    """The run's facts (`pipeline.facts.gather`) and the config file's directory."""
    data = cfg.resolve(data_path or cfg.data.path)
    config_json = json.dumps(cfg.model_dump(mode="json", by_alias=True), sort_keys=True)
    return {**pipeline.facts.gather(config_json, data), "config_dir": cfg.base_dir}


def record_run(store: "Store", run_id: str, facts: dict[str, Any]) -> bool:
    """Adds the facts to the run's pipeline_run context; False when no node ran."""
    context = store.run_context(run_id)
    if context is None:
        return False
    for key, value in facts.items():
        context.custom_properties[PREFIX + key].string_value = str(value)
    store.store.put_contexts([context])
    return True


def read_run(context: metadata_store_pb2.Context) -> dict[str, str]:
    """The recorded facts of a pipeline_run context ({} for runs recorded elsewhere)."""
    return read_properties(context)


def read_properties(item: Any) -> dict[str, str]:
    """The `tfxp_` custom properties of a context or an artifact, without the prefix."""
    return {k[len(PREFIX):]: v.string_value for k, v in item.custom_properties.items()
            if k.startswith(PREFIX)}


def run_facts(store: "Store", context: metadata_store_pb2.Context) -> dict[str, str]:
    """A run's facts: on its context (`tfxp run`), else on the Examples it made (KFP)."""
    facts = read_run(context)
    if facts:
        return facts
    for execution in store.store.get_executions_by_context(context.id):
        for key, artifacts in store.output_artifacts(execution.id).items():
            for artifact in artifacts:
                if store.type_name(artifact.type_id) == "Examples":
                    found = read_properties(artifact)
                    if found:
                        return found
    return {}
