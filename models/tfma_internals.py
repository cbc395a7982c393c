"""Every private name of TFMA the project uses, checked when this module loads.

models/metrics.py and models/extractors.py reuse TFMA's calibration histogram
combiner, its confusion-matrix helpers and its unbatching, none of which TFMA
publishes. They reach them only through this module, so an upgrade of TFMA has
one place to read: on import, each name is looked up and its shape (a class and
its base, the parameters of a function, the attributes a combiner sets) is
compared with what TFMA `PINNED_VERSION` has; any difference raises
`TfmaChanged`, naming the name, the version installed and the one pinned,
instead of a metric quietly taking another path.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Optional

import apache_beam as beam
from tensorflow_model_analysis import version as tfma_version
from tensorflow_model_analysis.extractors import unbatch_extractor
from tensorflow_model_analysis.metrics import (
    binary_confusion_matrices,
    calibration_histogram,
    confusion_matrix_metrics,
    confusion_matrix_plot,
    metric_types,
)

# The TFMA these names were read from (requirements.lock pins it).
PINNED_VERSION = "0.47.1"

_MISSING = object()


class TfmaChanged(ImportError):
    """A private name of TFMA is gone or has another shape than the pinned TFMA's."""


def _changed(what: str) -> TfmaChanged:
    return TfmaChanged(
        f"TFMA {tfma_version.VERSION} installed: {what}; models/tfma_internals.py was written "
        f"against TFMA {PINNED_VERSION} (requirements.lock): re-read the names it lists")


def _get(module: Any, name: str) -> Any:
    if not hasattr(module, name):
        raise _changed(f"{module.__name__}.{name}: no such name")
    return getattr(module, name)


def _takes(function: Any, where: str, *parameters: str) -> Any:
    """The function, after checking it accepts these parameters by name."""
    if not callable(function):
        raise _changed(f"{where}: not callable")
    found = inspect.signature(function).parameters
    missing = [p for p in parameters if p not in found]
    if missing:
        raise _changed(f"{where}: no parameter {', '.join(missing)}")
    return function


# --- calibration_histogram ---------------------------------------------------

# The combiner TFMA builds for every calibration histogram.
CalibrationHistogramCombiner: type = _get(calibration_histogram, "_CalibrationHistogramCombiner")
if not (isinstance(CalibrationHistogramCombiner, type)
        and issubclass(CalibrationHistogramCombiner, beam.CombineFn)):
    raise _changed("calibration_histogram._CalibrationHistogramCombiner: not a beam.CombineFn")
_takes(CalibrationHistogramCombiner.__init__, "_CalibrationHistogramCombiner.__init__",
       "key", "eval_config", "aggregation_type", "class_weights", "example_weighted",
       "num_buckets", "left", "right", "prediction_based_bucketing", "fractional_labels")

# Attribute of the combiner -> (field of HistogramSettings, type it holds).
_SETTINGS = {
    "_key": ("key", metric_types.MetricKey),
    "_eval_config": ("eval_config", object),
    "_aggregation_type": ("aggregation_type", object),
    "_class_weights": ("class_weights", object),
    "_example_weighted": ("example_weighted", bool),
    "_num_buckets": ("num_buckets", int),
    "_left": ("left", float),
    "_range": ("range", float),
    "_prediction_based_bucketing": ("prediction_based_bucketing", bool),
    "_fractional_labels": ("fractional_labels", bool),
}


@dataclasses.dataclass(frozen=True)
class HistogramSettings:
    """What a TFMA histogram combiner was built with (its private attributes)."""

    key: metric_types.MetricKey
    eval_config: Any
    aggregation_type: Any
    class_weights: Optional[dict[int, float]]
    example_weighted: bool
    num_buckets: int
    left: float
    range: float  # right - left
    prediction_based_bucketing: bool
    fractional_labels: bool


def histogram_settings(combiner: Any) -> HistogramSettings:
    """The settings of a `CalibrationHistogramCombiner`."""
    return HistogramSettings(**{field: getattr(combiner, name)
                                for name, (field, _) in _SETTINGS.items()})


def bucket_index(combiner: Any) -> Callable[[float], int]:
    """The combiner's own bucket of a prediction (TFMA's truncation)."""
    return combiner._bucket_index


def _check_combiner_instance() -> None:
    """The attributes a combiner of TFMA's default histogram holds, as read above."""
    computations = calibration_histogram.calibration_histogram()
    combiner = computations[-1].combiner
    if type(combiner) is not CalibrationHistogramCombiner:
        raise _changed(f"calibration_histogram() builds a {type(combiner).__name__}, "
                       "not _CalibrationHistogramCombiner")
    for name, (_, kind) in _SETTINGS.items():
        value = getattr(combiner, name, _MISSING)
        if value is _MISSING:
            raise _changed(f"_CalibrationHistogramCombiner.{name}: no such attribute")
        if kind is float and isinstance(value, int):
            continue
        if not isinstance(value, kind):
            raise _changed(f"_CalibrationHistogramCombiner.{name}: a {type(value).__name__}, "
                           f"not a {kind.__name__}")
    _takes(getattr(combiner, "_bucket_index", None), "_CalibrationHistogramCombiner._bucket_index",
           "prediction")


_check_combiner_instance()


# --- binary_confusion_matrices -----------------------------------------------

# The margin TFMA puts around its thresholds when it rebins a histogram.
EPSILON: float = _get(binary_confusion_matrices, "_EPSILON")
if not isinstance(EPSILON, float):
    raise _changed("binary_confusion_matrices._EPSILON: not a float")

interpolated_thresholds: Callable[[int], list[float]] = _takes(
    _get(binary_confusion_matrices, "_interpolated_thresholds"),
    "binary_confusion_matrices._interpolated_thresholds", "num_thresholds")
"""TFMA's (and Keras's) thresholds for AUC: -EPSILON, the interpolated ones, 1 + EPSILON."""

histogram_to_binary_confusion_matrices: Callable[..., Any] = _takes(
    _get(binary_confusion_matrices, "_histogram_to_binary_confusion_matrices"),
    "binary_confusion_matrices._histogram_to_binary_confusion_matrices",
    "thresholds", "histogram")
"""TFMA's matrices from a rebinned histogram (the reference metrics.py is tested against)."""


# --- confusion_matrix_metrics ------------------------------------------------

_BASE = confusion_matrix_metrics.ConfusionMatrixMetricBase
# The method whose result a confusion-matrix metric computes: its __init__ hands
# `self._metric_computations` to TFMA, so a subclass that overrides it computes
# its own way.
_COMPUTATIONS = "_metric_computations"
COMPUTATIONS_PARAMETERS = (
    "thresholds", "num_thresholds", "top_k", "class_id", "name", "eval_config", "model_name",
    "output_name", "sub_key", "aggregation_type", "class_weights", "example_weighted",
    "preprocessors", "metric_key")
_takes(_get(_BASE, _COMPUTATIONS), "ConfusionMatrixMetricBase._metric_computations",
       *COMPUTATIONS_PARAMETERS)
_takes(_get(_BASE, "_metric_value"), "ConfusionMatrixMetricBase._metric_value", "key", "matrices")
_takes(_get(_BASE, "_default_threshold"), "ConfusionMatrixMetricBase._default_threshold")


def computes_as_base(cls: type) -> bool:
    """Whether a confusion-matrix metric class keeps the base class's computations."""
    return getattr(cls, _COMPUTATIONS) is getattr(_BASE, _COMPUTATIONS)


def base_computations(metric: Any, **kwargs: Any) -> metric_types.MetricComputations:
    """The base class's computations of a confusion-matrix metric."""
    return getattr(_BASE, _COMPUTATIONS)(metric, **kwargs)


def with_computations(name: str, bases: tuple[type, ...], namespace: dict[str, Any],
                      computations: Callable[..., metric_types.MetricComputations]) -> type:
    """A confusion-matrix metric class whose computations are `computations`."""
    return type(name, bases, {**namespace, _COMPUTATIONS: computations})


def default_threshold(metric: Any) -> Optional[float]:
    """The threshold a confusion-matrix metric uses when none is configured."""
    return metric._default_threshold()


def metric_value(metric: Any, key: metric_types.MetricKey,
                 matrices: binary_confusion_matrices.Matrices, **kwargs: Any) -> Any:
    """A confusion-matrix metric's value from its matrices."""
    return metric._metric_value(key=key, matrices=matrices, **kwargs)


# --- confusion_matrix_plot ---------------------------------------------------

# ConfusionMatrixPlot hands `self._confusion_matrix_plot` to TFMA in its __init__,
# so a subclass that overrides it computes its own way.
_PLOT_COMPUTATIONS = "_confusion_matrix_plot"
_takes(_get(confusion_matrix_plot.ConfusionMatrixPlot, _PLOT_COMPUTATIONS),
       "ConfusionMatrixPlot._confusion_matrix_plot", "num_thresholds", "name", "eval_config",
       "model_name", "output_name", "sub_key", "aggregation_type", "class_weights",
       "example_weighted", "preprocessors", "plot_key")


def plot_with(name: str, namespace: dict[str, Any],
              rewrite: Callable[[metric_types.MetricComputations],
                                metric_types.MetricComputations]) -> type:
    """A ConfusionMatrixPlot class whose computations are TFMA's, passed through
    `rewrite` (e.g. to replace the histogram combiner)."""
    base = confusion_matrix_plot.ConfusionMatrixPlot
    computations = getattr(base, _PLOT_COMPUTATIONS)

    # Named parameters, as TFMA's: its per-key wrapper passes a computation
    # function only the keys (model_name, output_name, ...) its signature names.
    def rewritten(self: Any, num_thresholds: int = confusion_matrix_plot.DEFAULT_NUM_THRESHOLDS,
                  name: str = confusion_matrix_plot.CONFUSION_MATRIX_PLOT_NAME,
                  eval_config: Any = None, model_name: str = "", output_name: str = "",
                  sub_key: Any = None, aggregation_type: Any = None, class_weights: Any = None,
                  example_weighted: bool = False, preprocessors: Any = None,
                  plot_key: Any = None) -> metric_types.MetricComputations:
        return rewrite(computations(
            self, num_thresholds=num_thresholds, name=name, eval_config=eval_config,
            model_name=model_name, output_name=output_name, sub_key=sub_key,
            aggregation_type=aggregation_type, class_weights=class_weights,
            example_weighted=example_weighted, preprocessors=preprocessors, plot_key=plot_key))

    return type(name, (base,), {**namespace, _PLOT_COMPUTATIONS: rewritten})


# --- unbatch_extractor -------------------------------------------------------

extract_unbatched_inputs: Callable[[dict], list[dict]] = _takes(
    _get(unbatch_extractor, "_extract_unbatched_inputs"),
    "unbatch_extractor._extract_unbatched_inputs", "mixed_legacy_batched_extract")
"""TFMA's split of a batched extract into one extract per example."""
