"""Pipeline configuration: one YAML file per dataset, validated at load.

Every error names the file and the dotted key that is wrong, so a typo in a
config never surfaces as a stack trace from deep inside TFX.
"""
from __future__ import annotations

import ast
import difflib
import functools
import glob
import importlib.util
import os
import re
from pathlib import Path
from typing import Any, Literal, Optional, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from models.features import FeaturesConfig, LabelConfig, ModelInputs, TrainingConfig
from models.tuning import TuningConfig
from pipeline.errors import ConfigError

PACKAGE_PREFIX = "package:"
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "configs" / "taxi.yaml"

# TFMA metric classes thresholds and reports may name, with the key TFMA
# stores each one's value under.
KNOWN_METRICS = {
    "ExampleCount": "example_count", "AUC": "auc",
    "AUCPrecisionRecall": "auc_precision_recall", "BinaryAccuracy": "binary_accuracy",
    "Calibration": "calibration", "FallOut": "fall_out", "MissRate": "miss_rate",
    "Precision": "precision", "Recall": "recall", "MeanLabel": "mean_label",
    "MeanPrediction": "mean_prediction", "FalsePositives": "false_positives",
    "FalseNegatives": "false_negatives", "TruePositives": "true_positives",
    "TrueNegatives": "true_negatives",
}
# Beam's direct runner in this process: the local default (pipeline/local/beam_mode.py).
IN_MEMORY_BEAM_ARGS = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]

# What `evaluation.metrics` is when omitted, by the label's task.
DEFAULT_METRICS = {
    "binary": ["ExampleCount", "AUC", "BinaryAccuracy", "Calibration", "FallOut", "MissRate"],
    # Precision and Recall per class (TFMA binarizes the classes); the
    # confusion matrix is a plot, kept with the evaluation.
    "multiclass": ["ExampleCount", "SparseCategoricalAccuracy", "Precision", "Recall",
                   "MultiClassConfusionMatrixPlot"],
    # Mean prediction against mean label: calibration for a value.
    "regression": ["ExampleCount", "MeanSquaredError", "MeanAbsoluteError", "MeanLabel",
                   "MeanPrediction"],
}


def metric_key(name: str) -> str:
    """The key TFMA stores a metric class's value under (its default name)."""
    if name in KNOWN_METRICS:
        return KNOWN_METRICS[name]
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2",
                  re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)).lower()


def _exported_classes(package: str, rel: str) -> set[str]:
    """Class names a package's module re-exports, read from its source (importing
    TFMA to ask it takes tens of seconds; a config must load in a few)."""
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        return set()
    path = Path(list(found.submodule_search_locations)[0]) / rel
    if not path.exists():
        return set()
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names.update(a.asname or a.name for a in node.names)
    helpers = ("Key", "Preprocessor", "Computation", "Computations", "Dict", "Wrapper",
               "Metric", "Inputs", "Method")
    return {n for n in names if n[:1].isupper() and not n.endswith(helpers)}


@functools.lru_cache(maxsize=1)
def metric_names() -> frozenset[str]:
    """Every metric class TFMA accepts by name: its own and Keras's."""
    return frozenset(set(KNOWN_METRICS)
                     | _exported_classes("tensorflow_model_analysis", "metrics/__init__.py")
                     | _exported_classes("tf_keras", "metrics/__init__.py"))


# Metrics whose value lies in [0, 1] (areas, accuracies, rates) and metrics that
# are never negative (counts, errors, calibration): a bound outside can never
# be met, or always is, and is a typo either way.
UNIT_METRICS = frozenset({
    "AUC", "AUCPrecisionRecall", "Accuracy", "BalancedAccuracy", "BinaryAccuracy",
    "CategoricalAccuracy", "SparseCategoricalAccuracy", "TopKCategoricalAccuracy",
    "SparseTopKCategoricalAccuracy", "FallOut", "MissRate", "FPR", "FNR", "TPR", "TNR",
    "Precision", "Recall", "PPV", "NPV", "NegativePredictiveValue", "Specificity",
    "FalseDiscoveryRate", "FalseOmissionRate", "Prevalence", "ThreatScore", "F1Score",
    "FBetaScore", "FowlkesMallowsIndex", "MaxRecall", "PrecisionAtRecall",
    "RecallAtPrecision", "SensitivityAtSpecificity", "SpecificityAtSensitivity",
    "SquaredPearsonCorrelation", "NegToNegFlipRate", "NegToPosFlipRate",
    "PosToNegFlipRate", "PosToPosFlipRate", "SymmetricFlipRate"})
NON_NEGATIVE_METRICS = frozenset({
    "ExampleCount", "WeightedExampleCount", "Calibration", "FalsePositives",
    "FalseNegatives", "TruePositives", "TrueNegatives", "FP", "FN", "TP", "TN",
    "MeanSquaredError", "MeanAbsoluteError", "RootMeanSquaredError", "MSE", "MAE",
    "MeanAbsolutePercentageError", "MAPE", "MeanSquaredLogarithmicError", "MSLE",
    "BinaryCrossentropy", "BinaryCrossEntropy", "CategoricalCrossentropy",
    "CategoricalCrossEntropy", "SparseCategoricalCrossentropy", "Hinge", "SquaredHinge",
    "CategoricalHinge", "LogCoshError", "Poisson", "KLDivergence", "KLD",
    "DiagnosticOddsRatio", "PositiveLikelihoodRatio", "NegativeLikelihoodRatio"})


def _check_bounds(metric: str, lower: Optional[float], upper: Optional[float]) -> None:
    """A lower or upper bound some value of the metric could meet, lower below upper."""
    for key, bound in (("lower", lower), ("upper", upper)):
        if bound is None:
            continue
        if metric in UNIT_METRICS and not 0 <= bound <= 1:
            never = (key == "lower") == (bound > 1)
            raise ValueError(f"{key}: {metric} lies in [0, 1], so a bound of {bound:g} "
                             f"{'can never be met' if never else 'always holds'}")
        if metric in NON_NEGATIVE_METRICS and bound < 0:
            raise ValueError(f"{key}: {metric} is never negative, so a bound of {bound:g} "
                             f"{'always holds' if key == 'lower' else 'can never be met'}")
    if lower is not None and upper is not None and not lower < upper:
        raise ValueError(f"lower: {lower:g} must be below upper ({upper:g}); "
                         f"no value of {metric} meets both")


def _check_metric(name: str) -> None:
    names = metric_names()
    if name not in names:
        close = difflib.get_close_matches(name, sorted(names), n=4, cutoff=0.6)
        raise ValueError(f"unknown metric {name!r}: not a TFMA or Keras metric class"
                         + (f" (similar: {', '.join(close)})" if close else ""))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, protected_namespaces=())


class DataConfig(_Strict):
    """Where the CSV is and how ExampleGen splits it."""

    # A CSV file, a directory of CSVs, or `package:<module>/<path>` for a file
    # shipped inside an installed Python package (found at run time).
    path: str
    # Optional glob below a directory path; may hold {SPAN} (and {VERSION}) so
    # ExampleGen picks the newest span.
    pattern: Optional[str] = None
    # Hash buckets per output split; Trainer and Evaluator need train and eval.
    split: dict[str, int] = Field(default_factory=lambda: {"train": 2, "eval": 1})
    # Cell values that mean "missing" (e.g. NA, ?): made empty at ingestion,
    # so a numeric column with them stays numeric.  Empty cells always are.
    na_values: list[str] = Field(default_factory=list)

    @field_validator("split")
    @classmethod
    def _train_and_eval(cls, v: dict[str, int]) -> dict[str, int]:
        missing = {"train", "eval"} - set(v)
        if missing:
            raise ValueError(f"needs a bucket count for {sorted(missing)}")
        if any(n < 1 for n in v.values()):
            raise ValueError("bucket counts must be positive")
        return v


class Threshold(_Strict):
    """A bound a model must meet to be blessed, overall or on every slice of a kind."""

    metric: str
    # [] = overall; [feature, ...] = every slice of that kind;
    # {feature: value} = that one slice only.
    slice: Union[list[str], dict[str, str]] = Field(default_factory=list)
    lower: Optional[float] = None
    upper: Optional[float] = None
    # Against the baseline (the model now served); ignored on a first run.
    max_decrease: Optional[float] = Field(None, ge=0)
    max_increase: Optional[float] = Field(None, ge=0)

    @model_validator(mode="after")
    def _has_a_bound(self) -> "Threshold":
        _check_metric(self.metric)
        if isinstance(self.slice, dict) and not self.slice:
            raise ValueError("slice: an empty mapping; use [] for overall")
        if all(v is None for v in (self.lower, self.upper, self.max_decrease, self.max_increase)):
            raise ValueError("set at least one of lower, upper, max_decrease, max_increase")
        if self.max_decrease is not None and self.max_increase is not None:
            raise ValueError("max_decrease and max_increase cannot both be set")
        _check_bounds(self.metric, self.lower, self.upper)
        return self


class EvaluationConfig(_Strict):
    """TFMA: the slices to report and the thresholds that gate the push."""

    slices: list[list[str]] = Field(default_factory=list)
    # Any TFMA or Keras metric class; omitted: the defaults of the label's task
    # (DEFAULT_METRICS).  A metric a threshold names is always computed.
    metrics: Optional[list[str]] = None
    thresholds: list[Threshold] = Field(default_factory=list)
    # Slices larger than this are sampled for the Evaluator, the rest kept whole,
    # and metrics weighted to stand for the whole split (components/eval_sample).
    # Off (null) by default: sampled metrics are estimates, off by about
    # sqrt(r(1-r)/n) for a rate r from n examples of its class.
    # The run summary says when it sampled.
    sample_above: Optional[int] = Field(default=None, ge=100)

    @model_validator(mode="after")
    def _consistent(self) -> "EvaluationConfig":
        if not self.thresholds:
            # TFX's Evaluator writes no blessing without thresholds, so the
            # Pusher could never push.
            raise ValueError("thresholds: list at least one; without thresholds the "
                             "Evaluator blesses nothing and nothing is pushed")
        for i, name in enumerate(self.metrics or []):
            try:
                _check_metric(name)
            except ValueError as e:
                raise ValueError(f"metrics[{i}]: {e}") from None
        for i, t in enumerate(self.thresholds):
            kind = sorted(t.slice) if isinstance(t.slice, dict) else t.slice
            if kind and kind not in [sorted(s) for s in self.slices]:
                raise ValueError(
                    f"thresholds[{i}].slice: {t.slice} is not one of the slices {self.slices}")
        return self


class ServingConfig(_Strict):
    model_name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    # TF Serving's model base path; default <root>/serving/<model_name>.
    base_path: Optional[str] = None
    # Versions kept on disk after a push; labelled (stable, canary) ones are never removed.
    keep_versions: int = Field(5, ge=1)


class MonitoringConfig(_Strict):
    """`tfxp evaluate`: when a served version has decayed on new labelled data.

    Each threshold is checked on the new data's metrics; max_decrease and
    max_increase compare them with the version's metrics at push time.
    Without labels, the new data's statistics are compared with those that
    trained the version, feature by feature, with drift_check.thresholds.
    """

    thresholds: list[Threshold] = Field(default_factory=list)


class ServingCheckConfig(_Strict):
    """ServingCheck: the model must answer a TF Serving request before a push."""

    enabled: bool = True
    batch_size: int = Field(64, ge=1)  # the larger batch; requests come from the eval split
    repeats: int = Field(20, ge=1)  # timed calls per batch size (p50 is reported)
    max_p50_ms_single: float = Field(100.0, gt=0)
    max_p50_ms_batch: float = Field(1000.0, gt=0)


class DriftCheckConfig(_Strict):
    """DriftCheck: this run's data against the data that trained the served model."""

    enabled: bool = True
    action: Literal["warn", "stop"] = "stop"
    split: str = "train"
    # Feature -> threshold: L-infinity distance for string features, Jensen-
    # Shannon divergence for numeric ones. Unlisted features are not compared.
    thresholds: dict[str, float] = Field(default_factory=dict)

    @field_validator("thresholds")
    @classmethod
    def _positive(cls, v: dict[str, float]) -> dict[str, float]:
        for name, t in v.items():
            if not 0 < t <= 1:
                raise ValueError(f"{name}: a drift threshold lies in (0, 1], got {t}")
        return v


class ModelCardConfig(_Strict):
    """What a model card states that no artifact knows (pipeline.lineage.model_card)."""

    intended_use: str = ""
    limitations: list[str] = Field(default_factory=list)
    owners: list[str] = Field(default_factory=list)


class KubeflowConfig(_Strict):
    """Where and how the pipeline runs on Kubeflow Pipelines v2.

    Paths here are paths inside the pipeline image or the cluster, never on
    the machine that compiles: the compiled spec must run there unchanged.
    """

    # The pipeline image (kubernetes/Dockerfile), pinned by tag or digest.
    image: str = "tfx-kfp-reference:0.1.0"
    host: Optional[str] = None  # KFP API endpoint; None = in-cluster or kube context
    # Profile namespace on multi-user Kubeflow; empty for standalone KFP.
    namespace: Optional[str] = None
    experiment: str = "chicago-taxi"
    # KFP v2 needs an object store root (minio://, s3://, gs://).
    pipeline_root: str = "minio://mlpipeline/v2/artifacts"
    # Beam options for the cluster (e.g. Flink/Spark/Dataflow runner flags).
    beam_args: list[str] = Field(default_factory=lambda: [
        "--direct_running_mode=multi_processing", "--direct_num_workers=0"])
    # Where the image keeps installed packages (`package:` paths resolve
    # here) and this project (the curated schema resolves here).
    site_packages: str = "/opt/venv/lib/python3.10/site-packages"
    project_dir: str = "/opt/pipeline"
    # CSV directory or object-store URI on the cluster; default: data.path
    # resolved inside the image (only `package:` or in-project paths).
    data_path: Optional[str] = None
    # PVC shared by the Pusher and TF Serving, mounted at serving_mount; the
    # model base path is <serving_mount>/<serving.model_name>.
    serving_pvc: str = "tfx-serving-models"
    serving_mount: str = "/serving"
    # Per-task resources: CPUs and memory in GB, set on every container task.
    cpu_request: float = Field(1.0, gt=0)
    cpu_limit: float = Field(2.0, gt=0)
    memory_request_gb: float = Field(2.0, gt=0)
    memory_limit_gb: float = Field(6.0, gt=0)
    service_account: Optional[str] = None
    # Dotted config keys that take another value when compiling for the
    # cluster, e.g. {drift_check.enabled: false} for a feature KFP cannot run.
    overrides: dict[str, Any] = Field(default_factory=dict)

    @field_validator("pipeline_root")
    @classmethod
    def _object_store(cls, v: str) -> str:
        if not v.startswith(("minio://", "s3://", "gs://")):
            raise ValueError("must be an object-store URI (minio://, s3:// or gs://); "
                             "KFP v2 launchers cannot use a local path")
        return v


class PipelineConfig(_Strict):
    pipeline_name: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    data: DataConfig
    schema_file: str = Field(alias="schema")
    features: FeaturesConfig
    label: LabelConfig
    training: TrainingConfig = Field(default_factory=TrainingConfig)
    # Required: without thresholds nothing is ever blessed (see EvaluationConfig).
    evaluation: EvaluationConfig
    serving: ServingConfig
    serving_check: ServingCheckConfig = Field(default_factory=ServingCheckConfig)
    drift_check: DriftCheckConfig = Field(default_factory=DriftCheckConfig)
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig)
    tuning: TuningConfig = Field(default_factory=TuningConfig)
    model_card: ModelCardConfig = Field(default_factory=ModelCardConfig)
    # Local Beam options for every step; null: chosen per step from the data's
    # size and the cores (pipeline/local/beam_mode.py), printed in the run header.
    beam_args: Optional[list[str]] = None
    enable_cache: bool = True
    kubeflow: KubeflowConfig = Field(default_factory=KubeflowConfig)
    # Directory relative paths in the file are resolved against.
    base_dir: str = Field("", exclude=True)

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True,
                              protected_namespaces=())

    @model_validator(mode="after")
    def _slices_and_label(self) -> "PipelineConfig":
        self.model_inputs()  # label not a feature
        unknown = sorted(set(self.drift_check.thresholds) - set(self.features.all_keys()))
        if unknown:
            raise ValueError(f"drift_check.thresholds: {unknown} are not features")
        kinds = [sorted(k) for k in self.evaluation.slices]
        for i, t in enumerate(self.monitoring.thresholds):
            kind = sorted(t.slice) if isinstance(t.slice, dict) else t.slice
            if kind and kind not in kinds:
                raise ValueError(f"monitoring.thresholds[{i}].slice: {t.slice} is not one of "
                                 f"the evaluation slices {self.evaluation.slices}")
        return self

    def metric_names(self) -> list[str]:
        """The metrics to compute: as configured, or the task's defaults."""
        if self.evaluation.metrics is not None:
            return list(self.evaluation.metrics)
        return list(DEFAULT_METRICS[self.label.task])

    def model_inputs(self) -> ModelInputs:
        return ModelInputs(features=self.features, label=self.label, training=self.training,
                           na_values=self.data.na_values)

    def resolve(self, path: str) -> str:
        """A config path made absolute: package data, relative to the file, or as is."""
        return resolve_path(path, self.base_dir)

    @property
    def schema_path(self) -> str:
        return self.resolve(self.schema_file)

    def data_files(self, data_path: Optional[str] = None) -> Optional[list[str]]:
        """The local CSV files a run may read: the file, or the directory's files matching
        `data.pattern` (every span's, where it names {SPAN} or {VERSION}). None for an
        object-store URI, which is not listed from here."""
        path = self.resolve(data_path or self.data.path)
        if "://" in path:
            return None
        if not os.path.isdir(path):
            return [path]
        pattern = re.sub(r"\{(SPAN|VERSION)[^}]*\}", "*", self.data.pattern or "*")
        return sorted(glob.glob(os.path.join(path, pattern)))


def resolve_path(path: str, base_dir: str = "") -> str:
    if path.startswith(PACKAGE_PREFIX):
        return _package_file(path[len(PACKAGE_PREFIX):])
    if "://" in path or os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(base_dir or os.getcwd(), path))


def _package_file(spec: str) -> str:
    package, _, rel = spec.partition("/")
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise ConfigError(f"package {package!r} (from '{PACKAGE_PREFIX}{spec}') is not installed")
    return os.path.join(list(found.submodule_search_locations)[0], rel)


_SUBKEY = re.compile(r"^([A-Za-z_][\w.]*(?:\[\d+\])?(?:\.[A-Za-z_]\w*)?): ")


def _loc(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def read_text(path: str | os.PathLike, kind: str, missing: str) -> str:
    """A UTF-8 text file a command was given, or a ConfigError saying why it cannot be."""
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: {missing}") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: a directory, not a {kind}") from None
    except PermissionError:
        raise ConfigError(f"{path}: not readable (permission denied)") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not a text file in UTF-8 (byte {e.start}); "
                          f"a {kind} is YAML text") from None


def load_config(path: str | os.PathLike | None = None,
                overrides: Optional[dict[str, Any]] = None) -> PipelineConfig:
    """Reads and validates a config file; raises ConfigError naming file and key."""
    path = Path(path or DEFAULT_CONFIG)
    text = read_text(path, "config file", missing="config file not found")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML: {e}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys at the top level")
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, leaf = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    if "base_dir" in raw:
        raise ConfigError(f"{path}: base_dir: not a configuration key")
    raw["base_dir"] = str(path.resolve().parent)
    try:
        return PipelineConfig.model_validate(raw)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            msg = err["msg"].removeprefix("Value error, ")
            where = _loc(err["loc"])
            # Validators of a whole section name the sub-key they object to.
            sub = _SUBKEY.match(msg)
            if sub and err["type"] == "value_error":
                where, msg = f"{where}.{sub.group(1)}", msg[sub.end():]
            problems.append(f"{path}: {where}: {msg}")
        raise ConfigError("\n".join(problems)) from None


