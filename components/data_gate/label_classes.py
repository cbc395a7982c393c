"""A label needs its classes: each split's statistics say which it has.

A binary label with one class in a split trains a constant model, and its AUC
is undefined (TFMA reports 0); a threshold on accuracy alone then blesses and
pushes it. A multi-class label missing some of the classes its schema declares
cannot learn them. Both are rejected data, found from StatisticsGen's output
before Transform runs:

- a class value (`positive`) or a multi-class label: the value counts of the
  column (its rank histogram);
- `column > threshold` (times `relative_to`): the column's range, and the
  other column's, settle when every row falls on one side. That is exact for
  a fixed threshold and a sufficient test with `relative_to`: a label whose
  rows fall on both sides only jointly is not flagged.

`rule` is the label as configured (`label_rule`): the gate is a TFX component
and gets it as a JSON execution parameter.
"""
from __future__ import annotations

import json
from typing import Any, List, Optional, Tuple

from tensorflow_metadata.proto.v0 import statistics_pb2

Problem = Tuple[str, str, str]  # (split, feature, description)


def label_rule(column: str, task: str, threshold: Optional[float] = None,
               relative_to: Optional[str] = None, positive: Any = None,
               num_classes: Optional[int] = None) -> str:
    """What the gate needs to know of a label, as its JSON parameter; `num_classes`:
    how many classes a multi-class label declares (the curated schema's domain)."""
    return json.dumps({"column": column, "task": task, "threshold": threshold,
                       "relative_to": relative_to, "positive": positive,
                       "num_classes": num_classes}, sort_keys=True)


def _feature(stats: statistics_pb2.DatasetFeatureStatistics, name: str
             ) -> Optional[statistics_pb2.FeatureNameStatistics]:
    for feature in stats.features:
        if feature.name == name or list(feature.path.step) == [name]:
            return feature
    return None


def _common(feature: statistics_pb2.FeatureNameStatistics) -> statistics_pb2.CommonStatistics:
    kind = feature.WhichOneof("stats")
    return getattr(feature, kind).common_stats if kind else statistics_pb2.CommonStatistics()


def value_counts(feature: statistics_pb2.FeatureNameStatistics) -> dict[str, int]:
    """A string column's count per value (its rank histogram, else its top values)."""
    if not feature.HasField("string_stats"):
        return {}
    stats = feature.string_stats
    buckets = stats.rank_histogram.buckets
    if buckets:
        return {b.label: int(b.sample_count) for b in buckets}
    return {v.value: int(v.frequency) for v in stats.top_values}


def _shown(counts: dict[str, int]) -> str:
    return ", ".join(f"{value!r}: {n}" for value, n in sorted(counts.items())[:12])


def _binary_counts(rule: dict, stats: statistics_pb2.DatasetFeatureStatistics,
                   feature: statistics_pb2.FeatureNameStatistics, total: int
                   ) -> Optional[Tuple[int, int, str]]:
    """(positives, negatives, why) when every row is of one class, else None."""
    column = rule["column"]
    if rule.get("positive") is not None:
        positive = str(rule["positive"])
        if feature.HasField("string_stats"):
            counts = value_counts(feature)
            if len(counts) < feature.string_stats.unique:
                return None  # a histogram that does not hold every value
            hits = counts.get(positive, 0)
            if 0 < hits < total:
                return None
            return hits, total - hits, f"its values: {_shown(counts)}"
        low, high = feature.num_stats.min, feature.num_stats.max
        if low == high:
            hits = total if f"{low:g}" == positive else 0
            return hits, total - hits, f"every {column} is {low:g}"
        if not low <= float(positive) <= high:
            return 0, total, f"{column} ranges over [{low:g}, {high:g}]"
        return None
    if not feature.HasField("num_stats"):
        return None
    cut = 0.5 if rule.get("threshold") is None else float(rule["threshold"])
    low, high = feature.num_stats.min, feature.num_stats.max
    bounds, what = (cut, cut), f"{cut:g}"
    if rule.get("relative_to"):
        other = _feature(stats, rule["relative_to"])
        if other is None or not other.HasField("num_stats"):
            return None
        values = [other.num_stats.min, other.num_stats.max]
        if _common(other).num_missing:
            values.append(0.0)  # a missing value counts as 0 (models.preprocessing)
        scaled = [cut * v for v in values]
        bounds = (min(scaled), max(scaled))
        what = (f"{cut:g} x {rule['relative_to']} ({rule['relative_to']} in "
                f"[{other.num_stats.min:g}, {other.num_stats.max:g}])")
    if high <= bounds[0]:
        return 0, total, f"{column} is at most {high:g}, never above {what}"
    if low > bounds[1]:
        return total, 0, f"{column} is at least {low:g}, always above {what}"
    return None


def label_class_problems(split: str, stats: statistics_pb2.DatasetFeatureStatistics,
                         rule: dict) -> List[Problem]:
    """The problem with the label's classes in one split's statistics, if any."""
    column, task = rule["column"], rule["task"]
    feature = _feature(stats, column)
    total = int(stats.num_examples)
    if feature is None or total == 0 or task == "regression":
        return []  # a missing column or an empty split is reported on its own
    total -= int(_common(feature).num_missing)
    if task == "multiclass":
        declared = rule.get("num_classes")
        counts = value_counts(feature)
        present = sum(1 for n in counts.values() if n > 0)
        if not declared or not counts or present >= declared:
            return []
        return [(split, column, f"{present} of the {declared} classes the schema declares "
                                f"(counts: {_shown(counts)}); each class needs examples in "
                                f"every split")]
    found = _binary_counts(rule, stats, feature, total)
    if found is None:
        return []
    positives, negatives, why = found
    return [(split, column, f"a binary label with one class: {positives} positive, "
                            f"{negatives} negative of {total} examples: {why}; both classes "
                            f"need examples in every split")]


def read_label_problems(statistics: Any, rule: dict) -> List[Problem]:
    """`label_class_problems` for every split of an ExampleStatistics artifact."""
    import os

    from tfx.dsl.io import fileio
    from tfx.types import artifact_utils

    problems: List[Problem] = []
    for split in artifact_utils.decode_split_names(statistics.split_names):
        path = os.path.join(statistics.uri, f"Split-{split}", "FeatureStats.pb")
        if not fileio.exists(path):
            continue  # the gate's size check fails closed on it
        with fileio.open(path, "rb") as f:
            parsed = statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())
        for stats in parsed.datasets:
            problems += label_class_problems(split, stats, rule)
    return problems
