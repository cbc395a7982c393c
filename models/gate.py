"""A tuner's trial judged by the push gate, before the Evaluator ever sees it.

The Evaluator blesses a model only if every configured bound holds, overall and
on every slice it names. A search that optimises one number overall can pick a
model the gate then refuses (a better AUC, a false positive rate on one payment
type far above its bound). So each trial's predictions on the validation data
are checked here against the same bounds: the value bounds (`lower`, `upper`)
of the metrics this module computes, on the slices the validation data has.
Bounds against the served model (`max_decrease`, `max_increase`) need that
model and are left to the Evaluator; they are listed as not judged.

Values follow TFMA's definitions and its validator's semantics
(tensorflow_model_analysis/evaluators/metrics_validator.py): a bound holds when
`lower <= value <= upper`, so a metric TFMA returns as NaN (a rate whose
denominator is empty, precision with no predicted positive) fails every bound,
and AUC on a slice with one class present is 0.0, as TFMA's sum of NaN-free
terms makes it. Numpy only: the configuration's thresholds arrive as plain
dicts in the Tuner's custom_config (`GATE_KEY`).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Optional, Sequence, Union

import numpy as np

# The key of the Tuner's custom_config that holds `evaluation.thresholds`.
GATE_KEY = "gate_thresholds"
# TFMA's default decision threshold for the binary metrics at a threshold.
DECISION_THRESHOLD = 0.5

SliceSpec = Union[list[str], dict[str, str]]


@dataclasses.dataclass(frozen=True)
class Bound:
    """One value bound of the gate: a metric, where it applies, and its limits."""

    metric: str
    slice: Any  # [] overall; [feature, ...] each slice of that kind; {feature: value} one
    lower: Optional[float]
    upper: Optional[float]

    def limits(self) -> str:
        parts = ([f">= {self.lower:g}"] if self.lower is not None else []) + (
            [f"<= {self.upper:g}"] if self.upper is not None else [])
        return " and ".join(parts)

    def describe(self) -> str:
        if isinstance(self.slice, dict):
            where = ", ".join(f"{k}={v}" for k, v in self.slice.items())
        elif self.slice:
            where = "each " + "/".join(self.slice)
        else:
            where = "overall"
        return f"{self.metric} {self.limits()} ({where})"

    def holds(self, value: float) -> bool:
        """TFMA's check: NaN fails whichever side is bounded."""
        low = -math.inf if self.lower is None else self.lower
        high = math.inf if self.upper is None else self.upper
        return bool(value >= low and value <= high)


def _binary_counts(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float, float, float]:
    predicted = scores > DECISION_THRESHOLD
    positive = labels > 0.5
    tp = float(np.sum(predicted & positive))
    fp = float(np.sum(predicted & ~positive))
    fn = float(np.sum(~predicted & positive))
    tn = float(np.sum(~predicted & ~positive))
    return tp, fp, fn, tn


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else math.nan


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (ties counted half); 0.0 with one class, as TFMA has it."""
    positive = labels > 0.5
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return 0.0
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores), dtype="float64")
    sorted_scores = scores[order]
    # Average ranks over ties (Mann-Whitney U).
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    average = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(average, counts)
    u = ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def _binary(name: str, labels: np.ndarray, scores: np.ndarray) -> Optional[float]:
    if name == "AUC":
        return roc_auc(labels, scores)
    if name == "Calibration":
        return _ratio(float(scores.sum()), float(labels.sum()))
    tp, fp, fn, tn = _binary_counts(labels, scores)
    return {"BinaryAccuracy": _ratio(tp + tn, tp + fp + fn + tn),
            "FallOut": _ratio(fp, fp + tn), "MissRate": _ratio(fn, fn + tp),
            "Precision": _ratio(tp, tp + fp), "Recall": _ratio(tp, tp + fn)}.get(name)


def metric_value(name: str, task: str, labels: np.ndarray, scores: np.ndarray
                 ) -> Optional[float]:
    """The metric TFMA would report for these rows, or None if not computed here."""
    if name == "ExampleCount":
        return float(len(labels))
    if len(labels) == 0:
        return math.nan
    if task == "binary":
        return _binary(name, labels.astype("float64").ravel(), scores.astype("float64").ravel())
    if task == "multiclass" and name == "SparseCategoricalAccuracy":
        return float(np.mean(np.argmax(scores, axis=-1) == labels.ravel()))
    if task == "regression":
        y, p = labels.astype("float64").ravel(), scores.astype("float64").ravel()
        return {"MeanSquaredError": float(np.mean((y - p) ** 2)),
                "MeanAbsoluteError": float(np.mean(np.abs(y - p))),
                "MeanLabel": float(np.mean(y)), "MeanPrediction": float(np.mean(p))}.get(name)
    return None


def computable(name: str, task: str) -> bool:
    probe = np.zeros(2), (np.zeros((2, 2)) if task == "multiclass" else np.zeros(2))
    return metric_value(name, task, *probe) is not None


def gate_bounds(thresholds: Sequence[Mapping[str, Any]], task: str
                ) -> tuple[list[Bound], list[str]]:
    """(the bounds a trial is judged by, the configured ones it cannot be, each said why)."""
    judged, skipped = [], []
    for t in thresholds:
        where = t.get("slice") or []
        if t.get("lower") is not None or t.get("upper") is not None:
            bound = Bound(t["metric"], where, t.get("lower"), t.get("upper"))
            if computable(t["metric"], task):
                judged.append(bound)
            else:
                skipped.append(f"{bound.describe()}: not computed on trials")
        for change in ("max_decrease", "max_increase"):
            if t.get(change) is not None:
                skipped.append(f"{t['metric']} {change} {t[change]:g}: needs the served model")
    return judged, skipped


def slice_features(bounds: Sequence[Bound]) -> list[str]:
    """The raw columns the bounds slice on."""
    names: list[str] = []
    for b in bounds:
        for name in (b.slice if isinstance(b.slice, list) else list(b.slice)):
            if name not in names:
                names.append(name)
    return names


def _slices(bound: Bound, columns: Mapping[str, Sequence[Optional[str]]], n: int
            ) -> list[tuple[str, np.ndarray]]:
    """(label, row mask) of each slice the bound applies to that has rows here."""
    if not bound.slice:
        return [("overall", np.ones(n, dtype=bool))]
    if isinstance(bound.slice, dict):
        mask = np.ones(n, dtype=bool)
        for name, value in bound.slice.items():
            mask &= np.array([v == str(value) for v in columns[name]], dtype=bool)
        label = ", ".join(f"{k}={v}" for k, v in bound.slice.items())
        return [(label, mask)] if mask.any() else []
    keys = list(zip(*(columns[name] for name in bound.slice)))
    out = []
    for key in sorted({k for k in keys if None not in k}, key=str):
        mask = np.array([k == key for k in keys], dtype=bool)
        out.append((", ".join(f"{f}={v}" for f, v in zip(bound.slice, key)), mask))
    return out


def judge(bounds: Sequence[Bound], task: str, labels: np.ndarray, scores: np.ndarray,
          columns: Mapping[str, Sequence[Optional[str]]]) -> list[str]:
    """One line per bound a trial's predictions miss, on each slice it misses it."""
    failures = []
    for bound in bounds:
        for where, mask in _slices(bound, columns, len(labels)):
            value = metric_value(bound.metric, task, labels[mask], scores[mask])
            if value is None or bound.holds(value):
                continue
            shown = "undefined" if math.isnan(value) else f"{value:.3f}"
            failures.append(f"{bound.metric} on {where}: {shown} (bound {bound.limits()})")
    return failures
