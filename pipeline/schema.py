"""What defines the data a pipeline accepts: schema environments and schema diffs.

The curated schema (schemas/<dataset>/schema.pbtxt) has TRAINING and SERVING
environments: the label is not expected at serving time.  `schema_diff` says,
feature by feature, how a schema drafted from data differs from the curated
one (`tfxp schema`, `tfxp diff`, the run report).
"""
from __future__ import annotations

from typing import TYPE_CHECKING

from tensorflow_metadata.proto.v0 import schema_pb2

if TYPE_CHECKING:
    from pipeline.config import PipelineConfig

TRAINING = "TRAINING"
SERVING = "SERVING"


def add_environments(schema: schema_pb2.Schema, cfg: "PipelineConfig") -> schema_pb2.Schema:
    """TRAINING and SERVING environments; label columns absent at serving."""
    del schema.default_environment[:]
    schema.default_environment.extend([TRAINING, SERVING])
    label_only = [cfg.label.column]
    if cfg.label.relative_to and cfg.label.relative_to not in cfg.features.all_keys():
        label_only.append(cfg.label.relative_to)
    import tensorflow_data_validation as tfdv  # heavy: only where a schema is drafted

    for name in label_only:
        feature = tfdv.get_feature(schema, name)
        if SERVING not in feature.not_in_environment:
            feature.not_in_environment.append(SERVING)
    return schema


def _domain(schema: schema_pb2.Schema, feature: schema_pb2.Feature) -> set[str]:
    if feature.HasField("domain"):
        for d in schema.string_domain:
            if d.name == feature.domain:
                return set(d.value)
    if feature.HasField("string_domain"):
        return set(feature.string_domain.value)
    return set()


def schema_diff(curated: schema_pb2.Schema, draft: schema_pb2.Schema) -> list[str]:
    """What the draft says differently from the curated schema, feature by feature."""
    old = {f.name: f for f in curated.feature}
    new = {f.name: f for f in draft.feature}
    lines = []
    for name in sorted(set(old) | set(new)):
        if name not in new:
            lines.append(f"- {name}: in the curated schema, not in the data")
            continue
        if name not in old:
            lines.append(f"+ {name}: new column ({schema_pb2.FeatureType.Name(new[name].type)})")
            continue
        a, b = old[name], new[name]
        if a.type != b.type:
            lines.append(f"~ {name}: type {schema_pb2.FeatureType.Name(a.type)} -> "
                         f"{schema_pb2.FeatureType.Name(b.type)}")
        if a.presence.min_fraction != b.presence.min_fraction:
            lines.append(f"~ {name}: presence {a.presence.min_fraction:g} -> "
                         f"{b.presence.min_fraction:g}")
        if a.HasField("shape") != b.HasField("shape"):
            lines.append(f"~ {name}: {'fixed shape' if a.HasField('shape') else 'variable'} -> "
                         f"{'fixed shape' if b.HasField('shape') else 'variable'}")
        added = sorted(_domain(draft, b) - _domain(curated, a))
        removed = sorted(_domain(curated, a) - _domain(draft, b))
        if added:
            lines.append(f"~ {name}: new values {added[:10]}{' ...' if len(added) > 10 else ''}")
        if removed:
            lines.append(f"~ {name}: values not seen {removed[:10]}"
                         f"{' ...' if len(removed) > 10 else ''}")
    return lines
