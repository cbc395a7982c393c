"""DataGate: fails its execution, naming each anomaly, when the data is not clean.

ExampleValidator only records anomalies; it never stops a run. Placing this
gate between it and Transform turns anomalies into a stop, locally and on
Kubeflow alike (a failed task ends the run there too), so no model is trained
or pushed from data that broke the schema.
"""

import os
from typing import List, Tuple

from tensorflow_metadata.proto.v0 import anomalies_pb2
from tfx.dsl.component.experimental.annotations import InputArtifact
from tfx.dsl.component.experimental.decorators import component
from tfx.dsl.io import fileio
from tfx.types import artifact_utils
from tfx.types.standard_artifacts import ExampleAnomalies

ANOMALIES_FILE = "SchemaDiff.pb"


class DataRejectedError(RuntimeError):
    """The data broke the schema; `problems` lists (split, feature, description)."""

    def __init__(self, problems: List[Tuple[str, str, str]]):
        self.problems = problems
        lines = [f"  [{split}] {feature}: {text}" for split, feature, text in problems]
        super().__init__("data rejected, anomalies found:\n" + "\n".join(lines))


def read_anomalies(anomalies: ExampleAnomalies) -> List[Tuple[str, str, str]]:
    """(split, feature, description) for every anomaly in the artifact."""
    problems = []
    for split in artifact_utils.decode_split_names(anomalies.split_names):
        path = os.path.join(anomalies.uri, f"Split-{split}", ANOMALIES_FILE)
        if not fileio.exists(path):
            continue
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


@component
def DataGate(anomalies: InputArtifact[ExampleAnomalies]) -> None:
    problems = read_anomalies(anomalies)
    if problems:
        raise DataRejectedError(problems)
