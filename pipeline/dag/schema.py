"""What defines the data a pipeline accepts: schema environments and schema diffs.

The curated schema (schemas/<dataset>/schema.pbtxt) has TRAINING and SERVING
environments: the label is not expected at serving time.  `schema_diff` says,
feature by feature, how a schema drafted from data differs from the curated
one (`tfxp schema`, `tfxp diff`, the run report).  `check_config_against_schema`
says, before anything runs, where the configuration asks of a column what
the schema says it is not.
"""
from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING, Optional

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


# --------------------------------------------------------------------------- config vs schema

_NUMBER = {schema_pb2.INT, schema_pb2.FLOAT}


def read_schema(path: str) -> schema_pb2.Schema:
    """A schema.pbtxt parsed without TFDV (which takes seconds to import)."""
    from google.protobuf import text_format
    with open(path) as f:
        return text_format.Parse(f.read(), schema_pb2.Schema())


def label_classes(schema: schema_pb2.Schema, column: str) -> list[str]:
    """The classes the schema's string domain gives a label column ([] if none)."""
    for feature in schema.feature:
        if feature.name == column:
            return sorted(_domain(schema, feature))
    return []


def num_label_classes(cfg: "PipelineConfig", schema_path: str) -> Optional[int]:
    """How many classes a multi-class label has, if the curated schema says."""
    if cfg.label.task != "multiclass" or "://" in schema_path \
            or not os.path.exists(schema_path):
        return None
    return len(label_classes(read_schema(schema_path), cfg.label.column)) or None


def _sample_values(cfg: "PipelineConfig", column: str, limit: int = 4,
                   rows: int = 2000) -> list[str]:
    """A few values of a column from the configured CSV, read by the one CSV reader,
    non-numeric ones first."""
    from components.csv_ingest import arrow_csv

    files = cfg.data_files() or []
    seen: dict[str, bool] = {}  # value -> a number literal, in the order first seen
    for name in files[:1]:
        try:
            names = arrow_csv.read_header(name)
            if column not in names:
                return []
            for batch in arrow_csv.read_batches(name, names):
                values = batch.column(names.index(column)).slice(0, rows)
                for value in values.to_pylist():
                    value = value.strip(arrow_csv.WHITESPACE)
                    if value and value not in seen:
                        seen[value] = re.match(arrow_csv.FLOAT_LITERAL, value) is not None
                break  # the first block holds the rows looked at
        except (OSError, UnicodeDecodeError, arrow_csv.CsvFormatError):
            return []
    order = list(seen)
    return sorted(order, key=lambda v: (seen[v], order.index(v)))[:limit]


def check_config_against_schema(cfg: "PipelineConfig", schema_path: Optional[str] = None
                                ) -> None:
    """Each configured column exists in the curated schema with a type its use needs.

    A numeric feature the schema types as a string (a column with "NA" in
    it), a categorical id that is a float, a label missing from the schema:
    a ConfigError naming the column, its schema type and a few of its values,
    before any component runs.  No schema file yet: nothing to check.
    """
    from pipeline.errors import ConfigError

    path = schema_path or cfg.schema_path
    if "://" in path or not os.path.exists(path):
        return
    from google.protobuf import text_format
    try:
        schema = read_schema(path)
    except (text_format.ParseError, UnicodeDecodeError, OSError) as e:  # not a schema
        raise ConfigError(f"{path}: not a schema in text format ({type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''})") from None
    types = {f.name: f.type for f in schema.feature}
    features = cfg.features
    label = cfg.label
    needs: list[tuple[str, str, Optional[set[int]], str]] = []  # (key, column, types, what)
    for key in features.numeric:
        needs.append(("features.numeric", key, _NUMBER, "a number"))
    for key in (features.bucketized.keys if features.bucketized else []):
        needs.append(("features.bucketized", key, _NUMBER, "a number"))
    for key in features.vocabulary.keys if features.vocabulary else []:
        needs.append(("features.vocabulary", key, None, "any value"))
    for key in features.categorical:
        needs.append(("features.categorical", key, {schema_pb2.INT}, "an integer id"))
    if label.task == "regression" or (label.task == "binary" and not label.from_class):
        needs.append(("label.column", label.column, _NUMBER, "a number"))
    elif label.task == "multiclass":
        needs.append(("label.column", label.column, {schema_pb2.INT, schema_pb2.BYTES},
                      "a class (string or integer)"))
    else:
        needs.append(("label.column", label.column, None, "any value"))
    if label.relative_to:
        needs.append(("label.relative_to", label.relative_to, _NUMBER, "a number"))

    problems = _slice_problems(cfg, schema, path)
    for key, column, allowed, what in needs:
        if column not in types:
            problems.append(f"{key}: column {column!r} is not in the schema {path} "
                            f"(its columns: {', '.join(sorted(types)[:12])})")
            continue
        if allowed is not None and types[column] not in allowed:
            kind = schema_pb2.FeatureType.Name(types[column])
            values = _sample_values(cfg, column)
            shown = f", values such as {', '.join(repr(v) for v in values)}" if values else ""
            hint = ""
            if types[column] == schema_pb2.BYTES and allowed == _NUMBER:
                hint = ("; if a token such as 'NA' marks missing values, list it in "
                        "data.na_values and draft the schema again (tfxp schema)")
            elif types[column] == schema_pb2.FLOAT and key == "label.column":
                hint = "; a float label is a regression (label.task: regression)"
            problems.append(f"{key}: column {column!r} must be {what}, but the schema "
                            f"{path} types it {kind}{shown}{hint}")
    if problems:
        raise ConfigError("\n".join(problems))


def _slice_problems(cfg: "PipelineConfig", schema: schema_pb2.Schema, path: str) -> list[str]:
    """Every slice column is a column of the schema, and a slice's value one of its
    domain's values: otherwise the Evaluator computes nothing for that slice and
    the run fails after training, naming another slice."""
    import difflib

    features = {f.name: f for f in schema.feature}

    def unknown(column: str) -> str:
        close = difflib.get_close_matches(column, sorted(features), n=3, cutoff=0.6)
        return (f"column {column!r} is not in the schema {path}"
                + (f" (similar: {', '.join(close)})" if close else ""))

    problems = []
    for i, kind in enumerate(cfg.evaluation.slices):
        problems += [f"evaluation.slices[{i}]: {unknown(c)}" for c in kind if c not in features]
    # A threshold's slice is one of those kinds (PipelineConfig checks): its
    # columns are named above; a single slice's value must be in the domain.
    for section, thresholds in (("evaluation", cfg.evaluation.thresholds),
                                ("monitoring", cfg.monitoring.thresholds)):
        for i, t in enumerate(thresholds):
            for column, value in (t.slice.items() if isinstance(t.slice, dict) else ()):
                domain = _domain(schema, features[column]) if column in features else set()
                if domain and str(value) not in domain:
                    problems.append(
                        f"{section}.thresholds[{i}].slice: {column}={value!r} is not a value "
                        f"of {column} in the schema {path} (its values: "
                        f"{', '.join(sorted(domain)[:12])})")
    return problems
