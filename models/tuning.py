"""Hyperparameter search: the `tuning:` block and the `tuner_fn` of TFX's Tuner.

The Tuner loads `tuner_fn` by dotted path (`models.tuning.tuner_fn`) and runs a
KerasTuner search (random or bayesian) over the training keys the search
space names: the stack of hidden units, the learning rate (log-uniform) and the
batch size. Each trial builds the model of `models.model` with the trial's
values; the Trainer then trains with the best trial's values
(`apply_hyperparameters`) and records what it used beside the SavedModel
(`record_hyperparameters`), where the model card reads it.

Only pydantic at module level: the configuration imports the classes here
without loading TensorFlow.
"""
from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Literal, Mapping, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.features import ModelInputs, TrainingConfig

if TYPE_CHECKING:
    import keras_tuner
    from tfx.components.trainer.fn_args_utils import FnArgs
    from tfx.components.tuner.component import TunerFnResult

# What the search maximises: AUC on the eval split (models.model compiles it as "auc").
OBJECTIVE = "val_auc"
# The key of the Tuner's custom_config that holds the `tuning:` block.
TUNING_KEY = "tuning"
# Beside the SavedModel, in the directory TF Serving ignores.
HYPERPARAMETERS_FILE = os.path.join("assets.extra", "hyperparameters.json")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


class SearchSpace(_Strict):
    """The values the tuner may try for each training key."""

    # Each choice is one whole stack of hidden layer sizes.
    hidden_units: list[list[int]] = Field(default_factory=lambda: [[100, 70, 50, 25]],
                                          min_length=1)
    # Sampled log-uniformly between the two bounds.
    learning_rate: tuple[float, float] = (0.001, 0.01)
    batch_size: list[int] = Field(default_factory=lambda: [128], min_length=1)

    @model_validator(mode="after")
    def _sane(self) -> "SearchSpace":
        low, high = self.learning_rate
        if not 0 < low <= high:
            raise ValueError(f"learning_rate: expected [low, high] with 0 < low <= high, "
                             f"got {list(self.learning_rate)}")
        if any(not units or min(units) < 1 for units in self.hidden_units):
            raise ValueError("hidden_units: each choice is a non-empty list of positive sizes")
        if min(self.batch_size) < 1:
            raise ValueError("batch_size: sizes must be positive")
        return self


class TuningConfig(_Strict):
    """TFX's Tuner (KerasTuner) between Transform and Trainer; off by default."""

    enabled: bool = False
    algorithm: Literal["random", "bayesian"] = "random"
    max_trials: int = Field(10, ge=1)
    # Steps of each trial (the Trainer then trains with training.train_steps).
    train_steps: int = Field(200, ge=1)
    eval_steps: int = Field(20, ge=1)
    search_space: SearchSpace = Field(default_factory=SearchSpace)


def trials(tuner_results_uri: str) -> list[dict[str, Any]]:
    """The completed trials TFX's Tuner recorded ({"trial_id", "score", **values}), best first."""
    from tfx.dsl.io import fileio
    path = os.path.join(tuner_results_uri, "tuner_results.json")
    if not fileio.exists(path):
        return []
    with fileio.open(path) as f:
        found = json.loads(f.read())
    return sorted(found, key=lambda t: -(t.get("score") or float("-inf")))


def units_name(units: list[int]) -> str:
    """A stack of layer sizes as one choice value ("100-70-50-25")."""
    return "-".join(str(u) for u in units)


def declare(hp: "keras_tuner.HyperParameters", space: SearchSpace) -> dict[str, Any]:
    """Registers the search space with KerasTuner; the trial's values by training key."""
    low, high = space.learning_rate
    return {
        "hidden_units": hp.Choice("hidden_units", [units_name(u) for u in space.hidden_units]),
        "learning_rate": (hp.Float("learning_rate", low, high, sampling="log")
                          if high > low else hp.Fixed("learning_rate", low)),
        "batch_size": hp.Choice("batch_size", list(space.batch_size)),
    }


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


def record_hyperparameters(model_dir: str, training: TrainingConfig, tuned: bool) -> str:
    """Writes what the model was trained with beside its SavedModel; returns the path."""
    from tfx.dsl.io import fileio
    path = os.path.join(model_dir, HYPERPARAMETERS_FILE)
    fileio.makedirs(os.path.dirname(path))
    with fileio.open(path, "w") as f:
        f.write(json.dumps({"tuned": tuned, "values": training.model_dump(mode="json")},
                           sort_keys=True))
    return path


def _searcher(spec: ModelInputs, space: SearchSpace, fn_args: "FnArgs", oracle: Any):
    """A KerasTuner BaseTuner whose trials train the model of models.model.

    KerasTuner's own `Tuner` checks the built model against Keras 3, which it
    always imports, so it rejects the tf.keras 2 models TFX 1.16 needs
    (keras-team/keras-tuner#1039). A BaseTuner only asks each trial for its
    score, with the same oracles (random, bayesian) behind it.
    """
    import tensorflow as tf
    import tensorflow_transform as tft
    from keras_tuner.engine import base_tuner

    from models.model import build_keras_model, input_fn

    tft_output = tft.TFTransformOutput(fn_args.transform_graph_path)

    class Search(base_tuner.BaseTuner):
        def run_trial(self, trial, *args, **kwargs):
            trial_spec = spec.model_copy(update={
                "training": training_with(spec.training, trial.hyperparameters.values)})
            tf.keras.utils.set_random_seed(spec.training.seed)
            batch = trial_spec.training.batch_size
            model = build_keras_model(trial_spec)
            history = model.fit(
                input_fn(fn_args.train_files, fn_args.data_accessor, tft_output, trial_spec,
                         batch),
                validation_data=input_fn(fn_args.eval_files, fn_args.data_accessor,
                                         tft_output, trial_spec, batch),
                steps_per_epoch=fn_args.train_steps, validation_steps=fn_args.eval_steps,
                epochs=1, verbose=0)
            return {OBJECTIVE: float(history.history[OBJECTIVE][-1])}

    return Search(oracle=oracle, directory=fn_args.working_dir, project_name="search",
                  overwrite=True)


def tuner_fn(fn_args: "FnArgs") -> "TunerFnResult":
    """TFX Tuner entry point: a KerasTuner search maximising validation AUC."""
    import keras_tuner
    from tfx.components.tuner.component import TunerFnResult

    config = dict(fn_args.custom_config)
    tuning = TuningConfig.model_validate(config.pop(TUNING_KEY, {}))
    spec = ModelInputs.from_custom_config(config)
    hp = keras_tuner.HyperParameters()
    declare(hp, tuning.search_space)
    oracle_class = {"random": keras_tuner.oracles.RandomSearchOracle,
                    "bayesian": keras_tuner.oracles.BayesianOptimizationOracle}[tuning.algorithm]
    oracle = oracle_class(objective=keras_tuner.Objective(OBJECTIVE, direction="max"),
                          max_trials=tuning.max_trials, seed=spec.training.seed,
                          hyperparameters=hp, tune_new_entries=False)
    return TunerFnResult(tuner=_searcher(spec, tuning.search_space, fn_args, oracle),
                         fit_kwargs={})
