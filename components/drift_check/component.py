"""DriftCheck: has the data moved away from what trained the served model?

ExampleValidator checks this run's data against the schema; it cannot see a
slow shift that stays inside the schema (fares doubling, one payment type
taking over). This compares the run's statistics with the statistics of the
data that trained the currently blessed model (the baseline, resolved from ML
Metadata by `baseline.TrainingStatisticsStrategy`) using TFDV's drift
comparators: L-infinity distance for categorical (string) features and
Jensen-Shannon divergence for numeric ones, with a threshold per feature.

It writes a drift report (an ExampleAnomalies artifact: TFDV's Anomalies
proto for the split, and drift.json with every distance), and
with `action="stop"` fails its execution with DataDriftError so nothing is
trained or pushed, exactly as DataGate does for schema anomalies. With no
baseline (a first run) it records that and passes.
"""
import json
import os
from typing import Dict, List, NamedTuple, Optional, Tuple

from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types import artifact, artifact_utils
from tfx.types.standard_artifacts import ExampleAnomalies, ExampleStatistics, Schema

STATS_FILE = "FeatureStats.pb"
REPORT_FILE = "drift.json"
# TFDV reports drift as Anomalies (drift_skew_info), so the report is an
# ExampleAnomalies artifact laid out as ExampleValidator writes one: a
# standard type every orchestrator and TFDV's tooling know.
ANOMALIES_FILE = "SchemaDiff.pb"
ACTIONS = ("warn", "stop")
L_INFINITY = "L-infinity"
JENSEN_SHANNON = "Jensen-Shannon divergence"
_MEASUREMENT = {anomalies_pb2.DriftSkewInfo.Measurement.L_INFTY: L_INFINITY,
                anomalies_pb2.DriftSkewInfo.Measurement.JENSEN_SHANNON_DIVERGENCE: JENSEN_SHANNON}


class Drift(NamedTuple):
    feature: str
    comparator: str
    value: float
    threshold: float

    def __str__(self) -> str:
        return f"{self.feature}: {self.comparator} {self.value:.4f} > {self.threshold:g}"


class DataDriftError(RuntimeError):
    """The data drifted past a threshold; `drifts` names each feature."""

    def __init__(self, drifts: List[Drift]):
        self.drifts = drifts
        super().__init__("data drifted from the data that trained the served model:\n"
                         + "\n".join(f"  {d}" for d in drifts))


def read_statistics(stats: artifact.Artifact, split: str
                    ) -> statistics_pb2.DatasetFeatureStatisticsList:
    """One split's statistics from a StatisticsGen output."""
    path = os.path.join(artifact_utils.get_split_uri([stats], split), STATS_FILE)
    with fileio.open(path, "rb") as f:
        return statistics_pb2.DatasetFeatureStatisticsList.FromString(f.read())


def read_schema(schema: artifact.Artifact) -> schema_pb2.Schema:
    import tensorflow_data_validation as tfdv
    return tfdv.load_schema_text(os.path.join(schema.uri, "schema.pbtxt"))


def with_comparators(schema: schema_pb2.Schema, thresholds: Dict[str, float]
                     ) -> schema_pb2.Schema:
    """A copy of the schema with a drift comparator on each configured feature:
    L-infinity for string features, Jensen-Shannon divergence for numbers."""
    import tensorflow_data_validation as tfdv
    out = schema_pb2.Schema()
    out.CopyFrom(schema)
    for feature in out.feature:
        feature.ClearField("drift_comparator")
    for name, threshold in thresholds.items():
        try:
            feature = tfdv.get_feature(out, name)
        except ValueError:
            raise ValueError(
                f"drift threshold for {name!r}: no such feature in the schema") from None
        if feature.type == schema_pb2.BYTES:
            feature.drift_comparator.infinity_norm.threshold = threshold
        else:
            feature.drift_comparator.jensen_shannon_divergence.threshold = threshold
    return out


def compare(current: statistics_pb2.DatasetFeatureStatisticsList,
            baseline: statistics_pb2.DatasetFeatureStatisticsList,
            schema: schema_pb2.Schema, thresholds: Dict[str, float]
            ) -> Tuple[List[Drift], List[Drift], anomalies_pb2.Anomalies]:
    """(every measurement as a Drift, the ones over threshold, TFDV's Anomalies)."""
    import tensorflow_data_validation as tfdv
    anomalies = tfdv.validate_statistics(
        statistics=current, schema=with_comparators(schema, thresholds),
        previous_statistics=baseline)
    measured = []
    for info in anomalies.drift_skew_info:
        name = ".".join(info.path.step)
        for m in info.drift_measurements:
            if m.type in _MEASUREMENT:
                measured.append(Drift(name, _MEASUREMENT[m.type], m.value, m.threshold))
    drifted = [d for d in measured if d.value > d.threshold]
    return measured, drifted, anomalies


def write_report(report: artifact.Artifact, content: dict, split: str,
                 anomalies: Optional[anomalies_pb2.Anomalies] = None) -> None:
    fileio.makedirs(report.uri)
    with fileio.open(os.path.join(report.uri, REPORT_FILE), "w") as f:
        f.write(json.dumps(content, indent=2, sort_keys=True))
    report.split_names = artifact_utils.encode_split_names([split] if anomalies else [])
    if anomalies is not None:
        fileio.makedirs(os.path.join(report.uri, f"Split-{split}"))
        with fileio.open(os.path.join(report.uri, f"Split-{split}", ANOMALIES_FILE), "wb") as f:
            f.write(anomalies.SerializeToString())


def read_report(report_uri: str) -> dict:
    with fileio.open(os.path.join(report_uri, REPORT_FILE), "r") as f:
        return json.loads(f.read())


@component
def DriftCheck(
    statistics: InputArtifact[ExampleStatistics],
    schema: InputArtifact[Schema],
    drift_report: OutputArtifact[ExampleAnomalies],
    baseline_statistics: InputArtifact[ExampleStatistics] = None,
    thresholds: Parameter[str] = "{}",
    action: Parameter[str] = "stop",
    split: Parameter[str] = "train",
) -> None:
    """Compares `statistics` with `baseline_statistics` (if any) per feature.

    thresholds: JSON object, feature name -> threshold on its distance.
    action: "warn" records drift and passes; "stop" fails the execution.
    """
    if action not in ACTIONS:
        raise ValueError(f"action must be one of {ACTIONS}, got {action!r}")
    limits = {k: float(v) for k, v in json.loads(thresholds).items()}
    content = {"split": split, "action": action, "thresholds": limits,
               "statistics": statistics.uri,
               "baseline": baseline_statistics.uri if baseline_statistics else None}
    if baseline_statistics is None:
        content.update(features={}, drifting=[],
                       note="no blessed model yet: nothing to compare with")
        write_report(drift_report, content, split)
        drift_report.set_int_custom_property("baseline_found", 0)
        drift_report.set_int_custom_property("drift_found", 0)
        return
    measured, drifted, anomalies = compare(
        read_statistics(statistics, split), read_statistics(baseline_statistics, split),
        read_schema(schema), limits)
    content.update(
        features={d.feature: {"comparator": d.comparator, "value": d.value,
                              "threshold": d.threshold, "drifted": d in drifted}
                  for d in measured},
        drifting=[d.feature for d in drifted])
    write_report(drift_report, content, split, anomalies)
    drift_report.set_int_custom_property("baseline_found", 1)
    drift_report.set_int_custom_property("drift_found", int(bool(drifted)))
    drift_report.set_string_custom_property("drifting_features",
                                            ",".join(d.feature for d in drifted))
    if drifted and action == "stop":
        raise DataDriftError(drifted)
