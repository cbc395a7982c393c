"""DataGate: fails its execution, naming each anomaly, when the data is not clean.

ExampleValidator only records anomalies; it never stops a run. Placing this
gate between it and Transform turns anomalies into a stop, locally and on
Kubeflow alike (a failed task ends the run there too), so no model is trained
or pushed from data that broke the schema. It fails closed: a split with no
examples (an empty or header-only CSV) is rejected, and a split whose
anomalies file is missing stops the run, since nothing says it is clean.
A minimum size per split belongs in the curated schema
(`dataset_constraints { min_examples_count: N }`), which TFDV checks.
"""

import json
import os
import re
from typing import List, Tuple

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.types.standard_artifacts import ExampleAnomalies, ExampleStatistics

from components.data_gate.label_classes import read_label_problems
from components.rejected import DataRejectedError

ANOMALIES_FILE = "SchemaDiff.pb"
STATS_FILE = "FeatureStats.pb"
# TFDV's words for a column the schema types as numbers that came as strings.
_NUMBERS_GOT_STRINGS = re.compile(r"Expected data of type: (INT|FLOAT) but got (STRING|BYTES)")


class AnomaliesMissing(RuntimeError):
    """The validator's output cannot be read: the data is not known to be clean."""


def read_anomalies(anomalies: ExampleAnomalies) -> List[Tuple[str, str, str]]:
    """(split, feature, description) for every anomaly in the artifact."""
    problems = []
    splits = artifact_utils.decode_split_names(anomalies.split_names)
    if not splits:
        raise AnomaliesMissing(f"{anomalies.uri}: the anomalies artifact names no split")
    for split in splits:
        path = os.path.join(anomalies.uri, f"Split-{split}", ANOMALIES_FILE)
        if not fileio.exists(path):
            raise AnomaliesMissing(
                f"{path}: missing, so split {split!r} is not known to be clean; "
                f"re-run ExampleValidator (or the whole run)")
        with fileio.open(path, "rb") as f:
            parsed = anomalies_pb2.Anomalies.FromString(f.read())
        for feature, info in sorted(parsed.anomaly_info.items()):
            text = "; ".join(r.description for r in info.reason) or info.description
            problems.append((split, feature, text))
        if parsed.HasField("dataset_anomaly_info"):
            info = parsed.dataset_anomaly_info
            problems.append((split, "(dataset)",
                             "; ".join(r.description for r in info.reason)))
    return problems


def empty_splits(statistics: ExampleStatistics) -> List[Tuple[str, str, str]]:
    """A problem for each split with no examples at all."""
    from tensorflow_metadata.proto.v0 import statistics_pb2
    problems = []
    for split in artifact_utils.decode_split_names(statistics.split_names):
        path = os.path.join(statistics.uri, f"Split-{split}", STATS_FILE)
        if not fileio.exists(path):
            raise AnomaliesMissing(f"{path}: missing; the size of split {split!r} is unknown")
        with fileio.open(path, "rb") as f:
            stats = statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())
        if sum(d.num_examples for d in stats.datasets) == 0:
            problems.append((split, "(dataset)",
                             "no examples: the data is empty or has a header only"))
    return problems


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _split_features(statistics: ExampleStatistics, split: str) -> dict:
    """Feature name -> its statistics in one split ({} when they cannot be read)."""
    from tensorflow_metadata.proto.v0 import statistics_pb2
    path = os.path.join(statistics.uri, f"Split-{split}", STATS_FILE)
    if not fileio.exists(path):
        return {}
    with fileio.open(path, "rb") as f:
        stats = statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())
    return {(f.path.step[-1] if f.path.step else f.name): f
            for d in stats.datasets for f in d.features}


def with_na_hint(problems: List[Tuple[str, str, str]], statistics: ExampleStatistics
                 ) -> List[Tuple[str, str, str]]:
    """A numeric column that came as strings names its non-numeric values and
    `data.na_values`, as `tfxp schema` does for a draft: one "?" or "NA"
    among numbers makes the whole column a string.

    The values are those the statistics keep (the most frequent); a rare one
    may be missing from them, so the hint is given whenever the schema wanted
    numbers and got strings.
    """
    by_split: dict = {}
    out = []
    for split, feature, text in problems:
        if not _NUMBERS_GOT_STRINGS.search(text):
            out.append((split, feature, text))
            continue
        if split not in by_split:
            by_split[split] = _split_features(statistics, split)
        found = by_split[split].get(feature)
        tokens = [] if found is None else [
            v.value for v in found.string_stats.top_values if not _is_number(v.value)]
        shown = ", ".join(repr(t) for t in tokens[:5]) or "the values that are not numbers"
        out.append((split, feature,
                    f"{text.rstrip('. ')}. If {shown} mark missing values, list them in the "
                    f"config's data.na_values (e.g. data.na_values: {tokens[:5] or ['?']!r})"))
    return out


@component
def DataGate(anomalies: InputArtifact[ExampleAnomalies],
             statistics: InputArtifact[ExampleStatistics] = None,
             label: Parameter[str] = "") -> None:
    found = read_anomalies(anomalies)
    if statistics is not None:
        found = empty_splits(statistics) + with_na_hint(found, statistics)
        if label:  # a label needs its classes (label_classes.py)
            found += read_label_problems(statistics, json.loads(label))
    if found:
        raise DataRejectedError(found)
