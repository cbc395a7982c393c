"""A model card for every pushed version: `model_card.md` and `model_card.html`.

Written at push time into the version's `assets.extra/` (TF Serving ignores
that directory), so the card travels with the model it describes. Built from
the artifacts the Pusher is handed (the Evaluator's ModelEvaluation and
blessing, the statistics, the curated schema, the model) and from the
configuration facts the DAG passes it as one JSON execution property
(`pipeline.pipeline.version_facts`): the task and label, the data path, the training configuration
and the `model_card:` block (intended use, limitations, owners).
model-card-toolkit is unmaintained and pins an old TensorFlow; the HTML here
is one self-contained page like the run report (`pipeline.lineage.html`).
"""
from __future__ import annotations

import dataclasses
import datetime
import html
import json
import os
from typing import TYPE_CHECKING, Any, Optional

from pipeline.config import PACKAGE_PREFIX, resolve_path
from pipeline.lineage.html import bar_chart, page, table
from pipeline.lineage.provenance import data_digest, git_commit, project_version
from pipeline.lineage.results import (
    CHART_METRICS,
    Evaluation,
    SliceKey,
    fmt_metric,
    fmt_number,
    read_evaluation,
    slice_kinds,
    slice_label,
    sorted_slices,
    table_columns,
    thresholds,
)

if TYPE_CHECKING:
    from tfx import types

CARD_DIR = "assets.extra"  # inside a SavedModel version; TF Serving ignores it
MARKDOWN = "model_card.md"
HTML = "model_card.html"
# Written by the Trainer beside its SavedModel: the values it trained with.
HYPERPARAMETERS = "hyperparameters.json"


def card_paths(version_dir: str) -> tuple[str, str]:
    """(markdown, html) of the card of the model version in `version_dir`."""
    return (os.path.join(version_dir, CARD_DIR, MARKDOWN),
            os.path.join(version_dir, CARD_DIR, HTML))


@dataclasses.dataclass
class Section:
    """A heading, paragraphs and tables: rendered once as Markdown, once as HTML."""

    title: str
    paragraphs: list[str] = dataclasses.field(default_factory=list)
    tables: list[tuple[list[str], list[list[Any]]]] = dataclasses.field(default_factory=list)
    charts: list[str] = dataclasses.field(default_factory=list)  # inline SVG (HTML only)


@dataclasses.dataclass
class ThresholdCheck:
    """One configured bound on one slice, and whether the model met it."""

    metric: str
    slice: str
    bound: str
    value: Optional[float]
    passed: Optional[bool]  # None: not applied (a change bound without a baseline)


# --------------------------------------------------------------------------- reading


def _slice_key(proto: Any) -> SliceKey:
    """A TFMA SliceKey proto as the tuple `read_evaluation` keys metrics by."""
    out = []
    for s in proto.single_slice_keys:
        kind = s.WhichOneof("kind")
        value = getattr(s, kind) if kind else ""
        out.append((s.column, value.decode() if isinstance(value, bytes) else value))
    return tuple(out)


def _failed(evaluation_uri: str) -> set[tuple[str, SliceKey, bool]]:
    """(metric key, slice, is_diff) of every threshold TFMA found unmet."""
    import tensorflow_model_analysis as tfma
    validation = tfma.load_validation_result(evaluation_uri)
    if validation is None:
        return set()
    return {(f.metric_key.name, _slice_key(per.slice_key), f.metric_key.is_diff)
            for per in validation.metric_validations_per_slice for f in per.failures}


def _locations(evaluation_uri: str) -> tuple[Optional[str], Optional[str]]:
    """(candidate, baseline) model locations the Evaluator compared."""
    path = os.path.join(evaluation_uri, "eval_config.json")
    if not os.path.exists(path):
        return None, None
    with open(path) as f:
        written = json.load(f)
    specs = written.get("evalConfig", {}).get("modelSpecs", [])
    baseline_names = {s.get("name", "") for s in specs if s.get("isBaseline")}
    locations = written.get("modelLocations", {})
    baseline = next((v for k, v in locations.items() if k in baseline_names), None)
    candidate = next((v for k, v in locations.items() if k not in baseline_names), None)
    return candidate, baseline


def threshold_checks(evaluation: Evaluation, eval_config: Any, failed: set,
                     has_baseline: bool) -> list[ThresholdCheck]:
    """Every configured bound on every slice it applies to, met or not (TFMA's verdict)."""
    from tensorflow_model_analysis.slicer import slicer_lib

    from pipeline.config import metric_key
    from pipeline.dag.evaluation import configured_name
    checks = []
    ordered = [()] + [k for kind in slice_kinds(evaluation.metrics, eval_config)
                      for k in sorted_slices(evaluation.metrics, kind)]
    for spec in eval_config.metrics_specs:
        for metric in spec.metrics:
            name = configured_name(metric)
            key_name = metric_key(name)
            for pst in metric.per_slice_thresholds:
                keys = [k for k in ordered
                        if any(slicer_lib.SingleSliceSpec(spec=s).is_slice_applicable(k)
                               for s in pst.slicing_specs)]
                t = pst.threshold
                for key in keys:
                    value = evaluation.metrics.get(key, {}).get(key_name)
                    if t.HasField("value_threshold"):
                        v = t.value_threshold
                        bound = " and ".join(
                            ([f">= {v.lower_bound.value:g}"] if v.HasField("lower_bound")
                             else []) + ([f"<= {v.upper_bound.value:g}"]
                                         if v.HasField("upper_bound") else []))
                        checks.append(ThresholdCheck(
                            name, slice_label(key), bound, value,
                            (key_name, key, False) not in failed))
                    if t.HasField("change_threshold"):
                        change = t.change_threshold.absolute.value
                        word = "decrease" if change < 0 else "increase"
                        checks.append(ThresholdCheck(
                            name, slice_label(key),
                            f"{word} vs baseline <= {abs(change):g}", value,
                            (key_name, key, True) not in failed if has_baseline else None))
    return checks


def trained_with(model_uri: Optional[str]) -> Optional[dict[str, Any]]:
    """What a Trainer's Model artifact was trained with ({"tuned", "values"}), if recorded."""
    if not model_uri:
        return None
    from tfx.utils import path_utils
    return _hyperparameters(path_utils.serving_model_path(model_uri))


def _hyperparameters(model_dir: Optional[str]) -> Optional[dict[str, Any]]:
    if not model_dir:
        return None
    path = os.path.join(model_dir, CARD_DIR, HYPERPARAMETERS)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def _row_counts(statistics_uri: Optional[str], splits: list[str]) -> dict[str, int]:
    import tensorflow_data_validation as tfdv
    counts = {}
    for split in splits:
        path = os.path.join(statistics_uri or "", f"Split-{split}", "FeatureStats.pb")
        if statistics_uri and os.path.exists(path):
            counts[split] = int(tfdv.load_stats_binary(path).datasets[0].num_examples)
    return counts


def _schema_rows(schema_uri: Optional[str]) -> list[list[Any]]:
    """feature, type, required, domain, environments: one row per curated feature."""
    import tensorflow_data_validation as tfdv
    path = os.path.join(schema_uri or "", "schema.pbtxt")
    if not schema_uri or not os.path.exists(path):
        return []
    schema = tfdv.load_schema_text(path)
    domains = {d.name: d for d in schema.string_domain}
    rows = []
    for f in schema.feature:
        which = f.WhichOneof("domain_info")
        if which in ("int_domain", "float_domain"):
            d = getattr(f, which)
            domain = (f"{d.min:g}" if d.HasField("min") else "") + ".." + (
                f"{d.max:g}" if d.HasField("max") else "")
            domain = "" if domain == ".." else domain
        elif which in ("domain", "string_domain"):
            d = domains.get(f.domain) if which == "domain" else f.string_domain
            values = list(d.value) if d is not None else []
            domain = f"{len(values)} values: " + ", ".join(values[:6]) + (
                ", ..." if len(values) > 6 else "")
        else:
            domain = ""
        required = f.presence.min_fraction >= 1.0
        envs = "not at " + ", ".join(f.not_in_environment) if f.not_in_environment else ""
        rows.append([f.name, schema_type(f.type), "yes" if required else "no", domain, envs])
    return rows


def schema_type(kind: int) -> str:
    from tensorflow_metadata.proto.v0 import schema_pb2
    return schema_pb2.FeatureType.Name(kind)


# --------------------------------------------------------------------------- the card


def build_card(*, facts: dict[str, Any], version: str, model_dir: Optional[str],
               evaluation_uri: Optional[str], blessing_uri: Optional[str],
               statistics_uri: Optional[str], statistics_splits: list[str],
               schema_uri: Optional[str]) -> tuple[str, list[Section]]:
    """The card's title and sections, from the pushed version's artifacts and facts."""
    import tensorflow_model_analysis as tfma

    card = facts.get("model_card", {})
    name = facts.get("model_name", "model")
    title = f"Model card: {name}, version {version}"
    sections = []

    overview = Section("Model details", [
        f"Task: {facts.get('task', 'unknown')}.",
        f"Pipeline {facts.get('pipeline_name', '')}; pushed "
        f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}.",
    ])
    overview.tables.append((["kind", "features"], [
        [kind, ", ".join(keys)] for kind, keys in facts.get("features", {}).items() if keys]))
    overview.tables.append((["owner"], [[o] for o in card.get("owners", [])] or [["(none given)"]]))
    sections.append(overview)

    sections.append(Section("Intended use", [card.get("intended_use") or "(not stated)"]))
    limits = Section("Limitations")
    limits.tables.append((["limitation"], [[x] for x in card.get("limitations", [])]
                          or [["(none stated)"]]))
    sections.append(limits)

    path = facts.get("data_path", "")
    if path.startswith(PACKAGE_PREFIX):
        path = resolve_path(path)  # where the package is installed here
    digest = data_digest(path) if path else None
    data = Section("Data", [
        f"Path: {path or 'unknown'}.",
        f"Content digest: {digest or 'not computed (remote or too large)'}.",
    ])
    counts = _row_counts(statistics_uri, statistics_splits)
    data.tables.append((["split", "rows"], [[s, n] for s, n in counts.items()]
                        or [["(no statistics)", ""]]))
    schema_rows = _schema_rows(schema_uri)
    data.paragraphs.append(f"Curated schema: {len(schema_rows)} features.")
    data.tables.append((["feature", "type", "required", "domain", "environments"],
                        schema_rows or [["(no schema)", "", "", "", ""]]))
    sections.append(data)

    training = Section("Training")
    configured = facts.get("training", {})
    training.tables.append((["setting", "configured"],
                            [[k, json.dumps(v)] for k, v in sorted(configured.items())]))
    used = _hyperparameters(model_dir)
    if used:
        training.paragraphs.append(
            "Trained with " + ("the best trial of the tuner" if used.get("tuned")
                               else "the configured values") + ":")
        training.tables.append((["hyperparameter", "value"], [
            [k, json.dumps(v)] for k, v in sorted(used.get("values", {}).items())]))
    sections.append(training)

    evaluation = Section("Evaluation")
    fairness = Section("Fairness: error rates per slice")
    baseline_section = Section("Baseline")
    if not evaluation_uri or not os.path.exists(evaluation_uri):
        evaluation.paragraphs.append("No evaluation recorded.")
        sections += [evaluation, baseline_section]
    else:
        result = read_evaluation(evaluation_uri, blessing_uri)
        config = tfma.load_eval_result(evaluation_uri).config
        _, baseline = _locations(evaluation_uri)
        verdict = {True: "BLESSED: every threshold met.", False: "NOT BLESSED.",
                   None: "no blessing recorded."}[result.blessed]
        evaluation.paragraphs.append(f"Verdict: {verdict}")
        kinds = slice_kinds(result.metrics, config)
        keys = [()] + [k for kind in kinds for k in sorted_slices(result.metrics, kind)]
        columns = table_columns(result.metrics)  # the label's task decides which
        evaluation.tables.append((["slice"] + [c.header for c in columns], [
            [slice_label(k)] + [fmt_metric(result.metrics.get(k, {}).get(c.key), c.metric)
                                for c in columns] for k in keys]))
        checks = threshold_checks(result, config, _failed(evaluation_uri), baseline is not None)
        evaluation.paragraphs.append(
            f"Thresholds: {sum(c.passed is True for c in checks)} met, "
            f"{sum(c.passed is False for c in checks)} not met, "
            f"{sum(c.passed is None for c in checks)} not applied.")
        evaluation.tables.append((["metric", "slice", "bound", "value", "result"], [
            [c.metric, c.slice, c.bound, fmt_number(c.value),
             {True: "pass", False: "FAIL", None: "not applied (no baseline)"}[c.passed]]
            for c in checks]))

        fairness.paragraphs.append(
            "False positive rate (FPR) and false negative rate (FNR) on each slice of the "
            "eval split, with the upper bounds a slice must stay under.")
        for kind in kinds:
            rows, charts = [], []
            for k in sorted_slices(result.metrics, kind):
                row = [slice_label(k)]
                for metric, cls, _ in CHART_METRICS:
                    value = result.metrics[k].get(metric)
                    upper = thresholds(config, cls, k)[1]
                    row += [fmt_number(value), "-" if upper is None else f"{upper:g}",
                            "" if upper is None or value is None
                            else ("pass" if value <= upper else "FAIL")]
                rows.append(row)
            for metric, cls, title_ in CHART_METRICS:
                ks = sorted_slices(result.metrics, kind)
                charts.append(bar_chart(
                    [", ".join(str(v) for _, v in k) for k in ks],
                    [result.metrics[k].get(metric) for k in ks],
                    title=f"{title_} by {'/'.join(kind)}",
                    marks=[thresholds(config, cls, k)[1] for k in ks], maximum=1.0))
            fairness.tables.append((["slice", "FPR", "FPR bound", "", "FNR", "FNR bound", ""],
                                    rows))
            fairness.charts += charts
        baseline_section.paragraphs.append(
            f"Compared with the model at {baseline} (the latest blessed model)."
            if baseline else "None: the first blessed model, no comparison was made.")
        sections += [evaluation, fairness, baseline_section]

    code = Section("Code version", [
        f"git {git_commit() or 'unknown'}; project {project_version()}; "
        f"TFX {_tfx_version()}."])
    sections.append(code)
    return title, sections


def _tfx_version() -> str:
    from tfx import version
    return version.__version__


def _cell(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")


def to_markdown(title: str, sections: list[Section]) -> str:
    out = [f"# {title}", ""]
    for s in sections:
        out += [f"## {s.title}", ""]
        for p in s.paragraphs:
            out += [p, ""]
        for header, rows in s.tables:
            out.append("| " + " | ".join(_cell(h) for h in header) + " |")
            out.append("|" + "---|" * len(header))
            out += ["| " + " | ".join(_cell(v) for v in r) + " |" for r in rows]
            out.append("")
    return "\n".join(out)


def to_html(title: str, sections: list[Section]) -> str:
    e = html.escape
    body = [f"<h1>{e(title)}</h1>"]
    for s in sections:
        body.append(f"<h2>{e(s.title)}</h2>")
        body += [f"<p>{e(p)}</p>" for p in s.paragraphs]
        body += [table(header, rows) for header, rows in s.tables]
        if s.charts:
            body.append('<div class="charts">' + "".join(
                f'<div class="chart">{c}</div>' for c in s.charts) + "</div>")
    return page(title, body)


def write_model_card(version_dir: str, *, facts: dict[str, Any], version: str,
                     evaluation_uri: Optional[str], blessing_uri: Optional[str],
                     statistics_uri: Optional[str], statistics_splits: list[str],
                     schema_uri: Optional[str]) -> tuple[str, str]:
    """Writes the card into `version_dir`/assets.extra/ (the SavedModel about to be
    published); returns the (markdown, html) paths."""
    title, sections = build_card(
        facts=facts, version=version, model_dir=version_dir, evaluation_uri=evaluation_uri,
        blessing_uri=blessing_uri, statistics_uri=statistics_uri,
        statistics_splits=statistics_splits, schema_uri=schema_uri)
    md_path, html_path = card_paths(version_dir)
    os.makedirs(os.path.dirname(md_path), exist_ok=True)
    with open(md_path, "w", encoding="utf-8") as f:
        f.write(to_markdown(title, sections))
    with open(html_path, "w", encoding="utf-8") as f:
        f.write(to_html(title, sections))
    return md_path, html_path


def stage(staging_dir: str, version: str, input_dict: dict[str, list["types.Artifact"]],
          facts: dict[str, Any]) -> None:
    """The Pusher's stage_fn: the card of the version about to be published."""
    def uri(key: str) -> Optional[str]:
        found = input_dict.get(key) or []
        return found[0].uri if found else None

    statistics = input_dict.get("statistics") or []
    splits = []
    if statistics:
        from tfx.types import artifact_utils
        splits = artifact_utils.decode_split_names(statistics[0].split_names)
    write_model_card(staging_dir, facts=facts, version=version,
                     evaluation_uri=uri("evaluation"), blessing_uri=uri("model_blessing"),
                     statistics_uri=uri("statistics"), statistics_splits=splits,
                     schema_uri=uri("schema"))
