"""The values a model was trained with: the Tuner's best trial applied to the
training configuration, and the record of it written beside the SavedModel.

Shared by the Trainer (`models.model`) and the Tuner (`models.tuning`), so
neither imports the other. Only pydantic and the standard library at module
level.
"""
from __future__ import annotations

import json
import os
from typing import Any, Mapping, Optional

from models.features import ModelInputs, TrainingConfig

# Beside the SavedModel, in the directory TF Serving ignores.
HYPERPARAMETERS_FILE = os.path.join("assets.extra", "hyperparameters.json")
# The key of a best-hyperparameters config (and of the record) that holds how
# each trial fared against the push gate (models.gate).
GATE_RECORD_KEY = "gate"


def units_name(units: list[int]) -> str:
    """A stack of layer sizes as one choice value ("100-70-50-25")."""
    return "-".join(str(u) for u in units)


def training_with(training: TrainingConfig, values: Mapping[str, Any]) -> TrainingConfig:
    """The training configuration with a trial's values in place of the configured ones."""
    update: dict[str, Any] = {}
    if "hidden_units" in values:
        units = values["hidden_units"]
        update["hidden_units"] = ([int(u) for u in units.split("-")] if isinstance(units, str)
                                  else list(units))
    if "learning_rate" in values:
        update["learning_rate"] = float(values["learning_rate"])
    if "batch_size" in values:
        update["batch_size"] = int(values["batch_size"])
    return TrainingConfig.model_validate({**training.model_dump(), **update})


def apply_hyperparameters(spec: ModelInputs, hyperparameters: Optional[Mapping[str, Any]]
                          ) -> ModelInputs:
    """The Trainer's inputs with the Tuner's best values (a KerasTuner config), if any."""
    if not hyperparameters:
        return spec
    values = hyperparameters.get("values", hyperparameters)
    return spec.model_copy(update={"training": training_with(spec.training, values)})


def record_hyperparameters(model_dir: str, training: TrainingConfig, tuned: bool,
                           gate: Optional[Mapping[str, Any]] = None) -> str:
    """Writes what the model was trained with (and, when tuned, how the trials fared
    against the gate) beside its SavedModel; returns the path."""
    from tfx.dsl.io import fileio
    path = os.path.join(model_dir, HYPERPARAMETERS_FILE)
    fileio.makedirs(os.path.dirname(path))
    record: dict[str, Any] = {"tuned": tuned, "values": training.model_dump(mode="json")}
    if gate:
        record[GATE_RECORD_KEY] = dict(gate)
    with fileio.open(path, "w") as f:
        f.write(json.dumps(record, sort_keys=True))
    return path
