"""Which raw columns the model uses and how, as typed objects.

The pipeline configuration embeds these models, and Transform and Trainer get
them back through `custom_config`, so the feature lists live in configuration
and never in code.  Kept free of TensorFlow imports so configuration can be
validated without loading TF.
"""
from __future__ import annotations

from typing import Any, Literal, Mapping, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, model_validator

TRANSFORMED_SUFFIX = "_xf"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


class BucketizedFeatures(_Strict):
    """Numeric columns cut into quantile buckets, each bucket one-hot encoded."""

    keys: list[str] = Field(min_length=1)
    buckets: int = Field(10, ge=2)


class VocabularyFeatures(_Strict):
    """String (or integer id) columns mapped through a learned vocabulary."""

    keys: list[str] = Field(min_length=1)
    top_k: int = Field(1000, ge=1)
    oov_buckets: int = Field(10, ge=1)


class FeaturesConfig(_Strict):
    """Raw columns by the way the model consumes them."""

    numeric: list[str] = Field(default_factory=list)
    bucketized: Optional[BucketizedFeatures] = None
    vocabulary: Optional[VocabularyFeatures] = None
    # Integer columns used as ids directly: column -> number of ids (0..n-1).
    # Values outside that range share one extra id.
    categorical: dict[str, int] = Field(default_factory=dict)
    # Numeric and bucketized columns: a missing value becomes the column's
    # training mean (scaled and bucketed by the statistics of the present
    # values); with this on, a 0/1 `<column>_missing` feature also tells the
    # model it was missing.
    missing_indicators: bool = False

    @model_validator(mode="after")
    def _each_column_once(self) -> "FeaturesConfig":
        seen: dict[str, str] = {}
        for kind, keys in self.by_kind().items():
            for key in keys:
                if key in seen:
                    raise ValueError(
                        f"column {key!r} is listed both as {seen[key]} and as {kind}")
                seen[key] = kind
        if not seen:
            raise ValueError("no features: list at least one column under a kind")
        for key, n in self.categorical.items():
            if n < 1:
                raise ValueError(f"categorical.{key} must be a positive number of ids")
        return self

    def by_kind(self) -> dict[str, list[str]]:
        return {
            "numeric": list(self.numeric),
            "bucketized": list(self.bucketized.keys) if self.bucketized else [],
            "vocabulary": list(self.vocabulary.keys) if self.vocabulary else [],
            "categorical": list(self.categorical),
        }

    def all_keys(self) -> list[str]:
        return [k for keys in self.by_kind().values() for k in keys]


TASKS = ("binary", "multiclass", "regression")
# The vocabulary file of a multi-class label: class index -> class name.
LABEL_VOCABULARY = "label_classes"


class LabelConfig(_Strict):
    """What the model predicts, by task.

    binary (the default): positive when `column > threshold` (times
    `relative_to`), or when the column equals the class value `positive`;
    multiclass: one class per distinct value of `column` (a vocabulary
    learned from the training data, strings or integers); regression: the
    value of `column`.  Rows without a label are dropped at ingestion and
    counted (`missing: drop`) or make the run fail as rejected data
    (`missing: reject`).
    """

    column: str
    task: Literal["binary", "multiclass", "regression"] = "binary"
    threshold: Optional[float] = None
    relative_to: Optional[str] = None
    positive: Optional[Union[str, int]] = None
    missing: Literal["drop", "reject"] = "drop"

    @model_validator(mode="after")
    def _fits_the_task(self) -> "LabelConfig":
        if self.task != "binary":
            for key in ("threshold", "relative_to", "positive"):
                if getattr(self, key) is not None:
                    raise ValueError(f"{key}: only for task: binary (task is {self.task})")
        if self.positive is not None and (self.threshold is not None
                                          or self.relative_to is not None):
            raise ValueError("positive: a class value or a threshold, not both "
                             "(drop threshold/relative_to or positive)")
        return self

    @property
    def cut(self) -> float:
        """The binary threshold (0.5 unless set)."""
        return 0.5 if self.threshold is None else self.threshold

    def describe(self) -> str:
        """The task in words, e.g. for a model card."""
        if self.task == "multiclass":
            return f"multi-class classification of {self.column}"
        if self.task == "regression":
            return f"regression of {self.column}"
        if self.from_class:
            return f"binary classification: positive when {self.column} == {self.positive!r}"
        rule = f"{self.column} > {self.cut:g}" + (
            f" x {self.relative_to}" if self.relative_to else "")
        return f"binary classification: positive when {rule}"

    @property
    def from_class(self) -> bool:
        """Binary label from a class value of the column (`positive`)."""
        return self.task == "binary" and self.positive is not None


class TrainingConfig(_Strict):
    """Trainer hyperparameters."""

    train_steps: int = Field(1000, ge=1)
    eval_steps: int = Field(150, ge=1)
    batch_size: int = Field(40, ge=1)
    hidden_units: list[int] = Field(default_factory=lambda: [100, 70, 50, 25])
    learning_rate: float = Field(0.001, gt=0)
    # Seeds weights and shuffling, so a re-run on the same data trains the
    # same model (and thresholds near a metric do not flip between runs).
    seed: int = 42


class ModelInputs(_Strict):
    """What Transform and Trainer receive as `custom_config`."""

    features: FeaturesConfig
    label: LabelConfig
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    # The cells that mean "missing" (data.na_values): part of each version's input
    # contract, so scoring reads a cell as training did.
    na_values: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _label_is_not_a_feature(self) -> "ModelInputs":
        if self.label.column in self.features.all_keys():
            raise ValueError(
                f"label column {self.label.column!r} is also listed as a feature")
        return self

    @classmethod
    def from_custom_config(cls, custom_config: Mapping[str, Any]) -> "ModelInputs":
        return cls.model_validate(dict(custom_config))

    def to_custom_config(self) -> dict[str, Any]:
        return self.model_dump(mode="json")

    @property
    def label_key(self) -> str:
        return transformed_name(self.label.column)

    def raw_columns(self) -> list[str]:
        """Columns the transform reads: features, label and label reference."""
        cols = self.features.all_keys() + [self.label.column]
        if self.label.relative_to and self.label.relative_to not in cols:
            cols.append(self.label.relative_to)
        return cols

    def serving_columns(self) -> list[str]:
        """Columns a serving request carries: the features only."""
        return self.features.all_keys()


def transformed_name(key: str) -> str:
    return key + TRANSFORMED_SUFFIX


def indicator_name(key: str) -> str:
    """The transformed 0/1 feature saying `key` was missing."""
    return transformed_name(key + "_missing")
