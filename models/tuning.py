"""Hyperparameter search: the `tuning:` block and the `tuner_fn` of TFX's Tuner.

The Tuner loads `tuner_fn` by dotted path (`models.tuning.tuner_fn`) and runs a
KerasTuner search (random or bayesian) over the training keys the search
space names: the stack of hidden units, the learning rate (log-uniform) and the
batch size. Each trial builds the model of `models.model` with the trial's
values and is then judged by the push gate on the validation data
(`models.gate`): the chosen trial is the best objective among the trials that
meet every bound the gate can judge there, or the best overall when none
does. The Trainer trains with the chosen trial's values
(`models.hyperparameters`) and records them beside the SavedModel, with how
every trial fared, where the model card reads them.

Only pydantic at module level: the configuration imports the classes here
without loading TensorFlow.
"""
from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, model_validator

from models.features import ModelInputs, TrainingConfig
from models.gate import GATE_KEY, gate_bounds, judge, slice_features
from models.hyperparameters import GATE_RECORD_KEY, training_with, units_name

if TYPE_CHECKING:
    import keras_tuner
    from tfx.components.trainer.fn_args_utils import FnArgs
    from tfx.components.tuner.component import TunerFnResult

# What a search optimises per task: (Keras history key, direction), from the
# metrics models.model compiles for that task.
TUNING_OBJECTIVE = {"binary": ("val_auc", "max"),
                    "multiclass": ("val_sparse_categorical_accuracy", "max"),
                    "regression": ("val_loss", "min")}
# The key of the Tuner's custom_config that holds the `tuning:` block.
TUNING_KEY = "tuning"
# A trial's count of missed bounds, beside its objective in KerasTuner's metrics.
GATE_METRIC = "gate_failures"
BEST_HYPERPARAMETERS_FILE = "best_hyperparameters.txt"


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
    # Rows of the eval split each trial is judged on by the push gate (the
    # first ones read; the Evaluator later reads them all).
    gate_rows: int = Field(100_000, ge=1)


def trials(tuner_results_uri: str) -> list[dict[str, Any]]:
    """The completed trials TFX's Tuner recorded ({"trial_id", "score", **values}), the
    chosen one first: TFX writes them in the oracle's order, which puts the trials
    that met the gate first (`_gated_oracle`)."""
    from tfx.dsl.io import fileio
    path = os.path.join(tuner_results_uri, "tuner_results.json")
    if not fileio.exists(path):
        return []
    with fileio.open(path) as f:
        return list(json.loads(f.read()))


def gate_record(best_hyperparameters_uri: Optional[str]) -> Optional[dict[str, Any]]:
    """How the trials fared against the gate, as the Tuner wrote it with the chosen
    values: {"objective", "trials": [{"trial_id", "score", "failures", "values"}],
    "chosen", "judged", "not_judged"}; None when not recorded."""
    if not best_hyperparameters_uri:
        return None
    from tfx.dsl.io import fileio
    path = os.path.join(best_hyperparameters_uri, BEST_HYPERPARAMETERS_FILE)
    if not fileio.exists(path):
        return None
    with fileio.open(path) as f:
        return json.loads(f.read()).get(GATE_RECORD_KEY)


def best_overall(record: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The trial with the best objective, whether or not it met the gate."""
    found = record.get("trials") or []
    if not found:
        return None
    sign = -1.0 if record.get("direction", "max") == "max" else 1.0
    return min(found, key=lambda t: sign * t["score"])


def declare(hp: "keras_tuner.HyperParameters", space: SearchSpace) -> dict[str, Any]:
    """Registers the search space with KerasTuner; the trial's values by training key."""
    low, high = space.learning_rate
    return {
        "hidden_units": hp.Choice("hidden_units", [units_name(u) for u in space.hidden_units]),
        "learning_rate": (hp.Float("learning_rate", low, high, sampling="log")
                          if high > low else hp.Fixed("learning_rate", low)),
        "batch_size": hp.Choice("batch_size", list(space.batch_size)),
    }


def _validation_rows(fn_args: "FnArgs", tft_output: Any, spec: ModelInputs,
                     columns: list[str], limit: int) -> tuple[dict, Any, dict]:
    """(transformed features, labels, raw slice columns) of the first `limit` eval rows,
    read once and judged by every trial."""
    import numpy as np
    import tensorflow as tf
    from tfx_bsl.tfxio import dataset_options

    transform = tft_output.transform_features_layer()
    raw = fn_args.data_accessor.tf_dataset_factory(
        fn_args.eval_files,
        dataset_options.TensorFlowDatasetOptions(batch_size=1024, shuffle=False, num_epochs=1),
        tft_output.raw_metadata.schema)
    features: dict[str, list] = {}
    labels: list = []
    sliced: dict[str, list] = {name: [] for name in columns}
    seen = 0
    for batch in raw:
        out = transform(batch)
        labels.append(out.pop(spec.label_key).numpy())
        for name, value in out.items():
            features.setdefault(name, []).append(value.numpy())
        for name in columns:
            sliced[name] += _column_values(batch[name], tf)
        seen += len(labels[-1])
        if seen >= limit:
            break
    joined = {k: np.concatenate(v)[:limit] for k, v in features.items()}
    return joined, np.concatenate(labels)[:limit], {k: v[:limit] for k, v in sliced.items()}


def _column_values(tensor: Any, tf: Any) -> list[Optional[str]]:
    """One raw column as text per row (None where the row has no value): slice values."""
    if isinstance(tensor, tf.SparseTensor):
        rows: list[Optional[str]] = [None] * int(tensor.dense_shape[0])
        for (row, _), value in zip(tensor.indices.numpy(), tensor.values.numpy()):
            rows[row] = _text(value)
        return rows
    return [_text(v) for v in tensor.numpy().reshape(len(tensor), -1)[:, 0]]


def _text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if float(value).is_integer():
        return str(int(value))
    return str(value)


def _predict(model: Any, features: dict, batch: int = 4096) -> Any:
    """The model's outputs on every row, called eagerly (predict() would AutoGraph it)."""
    import numpy as np
    n = len(next(iter(features.values())))
    parts = [model({k: v[i:i + batch] for k, v in features.items()}, training=False).numpy()
             for i in range(0, n, batch)]
    out = np.concatenate(parts)
    return out.ravel() if out.ndim == 2 and out.shape[1] == 1 else out


def configured_values(training: TrainingConfig, space: SearchSpace) -> Optional[dict[str, Any]]:
    """The configured training values as a trial, if the search space holds them."""
    low, high = space.learning_rate
    if (training.hidden_units in space.hidden_units and training.batch_size in space.batch_size
            and low <= training.learning_rate <= high):
        return {"hidden_units": units_name(training.hidden_units),
                "learning_rate": training.learning_rate, "batch_size": training.batch_size}
    return None


def _gated_oracle(oracle_class: type, direction: str, first: Optional[dict[str, Any]]) -> type:
    """The oracle whose best trials are those that met the gate, then by objective.

    Its first trial is `first` (the configured values), so a search never ends
    with a model the gate refuses where the untuned one would have passed.
    """
    sign = -1.0 if direction == "max" else 1.0

    class GatedOracle(oracle_class):
        def populate_space(self, trial_id):
            from keras_tuner.engine import trial as trial_module
            if first is not None and not any(t.hyperparameters.values == first
                                             for t in self.trials.values()):
                return {"status": trial_module.TrialStatus.RUNNING, "values": dict(first)}
            return super().populate_space(trial_id)

        def get_best_trials(self, num_trials=1):
            from keras_tuner.engine import trial as trial_module
            done = [t for t in self.trials.values()
                    if t.status == trial_module.TrialStatus.COMPLETED]

            def order(t):
                missed = (t.metrics.get_last_value(GATE_METRIC)
                          if t.metrics.exists(GATE_METRIC) else 0.0)
                return (missed > 0, sign * (t.score if t.score is not None else -sign * 1e300))
            ranked = sorted(done, key=order)
            if len(ranked) < num_trials:
                ranked += [t for t in self.trials.values() if t not in ranked]
            return ranked[:num_trials]

    GatedOracle.__name__ = f"Gated{oracle_class.__name__}"
    return GatedOracle


def _searcher(spec: ModelInputs, tuning: TuningConfig, thresholds: list[dict],
              fn_args: "FnArgs", oracle: Any):
    """A KerasTuner BaseTuner whose trials train the model of models.model and are
    judged by the gate on the validation data.

    KerasTuner's own `Tuner` checks the built model against Keras 3, which it
    always imports, so it rejects the tf.keras 2 models TFX 1.16 needs
    (keras-team/keras-tuner#1039). A BaseTuner only asks each trial for its
    score, with the same oracles (random, bayesian) behind it.
    """
    import keras_tuner
    import tensorflow as tf
    import tensorflow_transform as tft
    from keras_tuner.engine import base_tuner

    from models.model import build_keras_model, head_shape, input_fn

    tft_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    task = spec.label.task
    key, direction = TUNING_OBJECTIVE[task]
    bounds, not_judged = gate_bounds(thresholds, task)
    rows = _validation_rows(fn_args, tft_output, spec, slice_features(bounds),
                            tuning.gate_rows)
    failures: dict[str, list[str]] = {}

    class Recorded(keras_tuner.HyperParameters):
        """The chosen values, written by TFX with the record of every trial."""

        record: dict = {}

        def get_config(self):
            return {**super().get_config(), GATE_RECORD_KEY: self.record}

    class Search(base_tuner.BaseTuner):
        def run_trial(self, trial, *args, **kwargs):
            trial_spec = spec.model_copy(update={
                "training": training_with(spec.training, trial.hyperparameters.values)})
            tf.keras.utils.set_random_seed(spec.training.seed)
            batch = trial_spec.training.batch_size
            train = input_fn(fn_args.train_files, fn_args.data_accessor, tft_output,
                             trial_spec, batch)
            model = build_keras_model(trial_spec, *head_shape(trial_spec, tft_output, train))
            history = model.fit(
                train,
                validation_data=input_fn(fn_args.eval_files, fn_args.data_accessor,
                                         tft_output, trial_spec, batch),
                steps_per_epoch=fn_args.train_steps, validation_steps=fn_args.eval_steps,
                epochs=1, verbose=0)
            features, labels, columns = rows
            missed = judge(bounds, task, labels, _predict(model, features), columns)
            failures[trial.trial_id] = missed
            return {key: float(history.history[key][-1]), GATE_METRIC: float(len(missed))}

        def get_best_hyperparameters(self, num_trials=1):
            best = super().get_best_hyperparameters(num_trials)
            out = []
            for hp in best:
                recorded = Recorded.from_config(hp.get_config())
                recorded.record = self.gate_record()
                out.append(recorded)
            return out

        def gate_record(self) -> dict:
            ranked = self.oracle.get_best_trials(self.oracle.max_trials)
            done = [t for t in ranked if t.trial_id in failures and t.score is not None]
            return {"objective": key, "direction": direction,
                    "judged": [b.describe() for b in bounds], "not_judged": not_judged,
                    "rows": int(len(rows[1])),
                    "chosen": done[0].trial_id if done else None,
                    "trials": [{"trial_id": t.trial_id, "score": float(t.score),
                                "failures": failures[t.trial_id],
                                "values": dict(t.hyperparameters.values)} for t in done]}

    return Search(oracle=oracle, directory=fn_args.working_dir, project_name="search",
                  overwrite=True)


def tuner_fn(fn_args: "FnArgs") -> "TunerFnResult":
    """TFX Tuner entry point: a KerasTuner search on the task's validation objective
    (binary: AUC; multi-class: accuracy; regression: loss, minimised), the trials
    that meet the push gate first."""
    import keras_tuner
    from tfx.components.tuner.component import TunerFnResult

    config = dict(fn_args.custom_config)
    tuning = TuningConfig.model_validate(config.pop(TUNING_KEY, {}))
    thresholds = list(config.pop(GATE_KEY, []))
    spec = ModelInputs.from_custom_config(config)
    hp = keras_tuner.HyperParameters()
    declare(hp, tuning.search_space)
    oracle_class = {"random": keras_tuner.oracles.RandomSearchOracle,
                    "bayesian": keras_tuner.oracles.BayesianOptimizationOracle}[tuning.algorithm]
    key, direction = TUNING_OBJECTIVE[spec.label.task]
    first = configured_values(spec.training, tuning.search_space)
    oracle = _gated_oracle(oracle_class, direction, first)(
        objective=keras_tuner.Objective(key, direction=direction),
        max_trials=tuning.max_trials, seed=spec.training.seed,
        hyperparameters=hp, tune_new_entries=False)
    return TunerFnResult(tuner=_searcher(spec, tuning, thresholds, fn_args, oracle),
                         fit_kwargs={})
