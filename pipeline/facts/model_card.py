"""Writes a model card for every pushed version: `model_card.md` and `model_card.html`.

Written at push time into the version's `assets.extra/` (TF Serving ignores
that directory), so the card travels with the model it describes. The
Pusher loads `stage` by dotted path, locally and in the Kubeflow pod, so this
module reads files only (TFMA's, TFDV's, the model's), never ML Metadata, and
imports nothing of the readers in `pipeline.lineage`. Built from the
artifacts the Pusher is handed (the Evaluator's ModelEvaluation and blessing,
the statistics, the curated schema, the model) and from the configuration
facts the DAG passes it as one JSON execution property
(`pipeline.pipeline.version_facts`): the task and label, the data path, the
training configuration and the `model_card:` block (intended use,
limitations, owners). model-card-toolkit is unmaintained and pins an old
TensorFlow; the HTML here is one self-contained page like the run report.
"""
from __future__ import annotations

import dataclasses
import datetime
import html
import json
import os
from typing import TYPE_CHECKING, Any, Optional

from pipeline.config import PACKAGE_PREFIX, resolve_path
from pipeline.facts import MAX_DIGEST_BYTES, data_digest, git_commit, project_version
from pipeline.facts.evaluation import (
    CHART_METRICS,
    PER_CLASS_HEADER,
    Evaluation,
    ThresholdCheck,
    fmt_number,
    metric_cells,
    per_class_rows,
    read_evaluation,
    slice_kinds,
    slice_label,
    sorted_slices,
    table_columns,
    threshold_checks,
    thresholds,
    tuning_lines,
)
from pipeline.facts.html import bar_chart, page, table

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


# --------------------------------------------------------------------------- reading


def recorded_training(model_dir: Optional[str]) -> Optional[dict[str, Any]]:
    """What the model in `model_dir` was trained with (written by the Trainer beside it)."""
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
    title = f"Model card: {facts.get('model_name', 'model')}, version {version}"
    sections = _about_sections(facts)
    sections.append(_data_section(facts, statistics_uri, statistics_splits, schema_uri))
    sections.append(_training_section(facts, model_dir))
    sections += _evaluation_sections(evaluation_uri, blessing_uri)
    sections.append(Section("Code version", [
        f"git {git_commit() or 'unknown'}; project {project_version()}; "
        f"TFX {_tfx_version()}."]))
    return title, sections


def _about_sections(facts: dict[str, Any]) -> list[Section]:
    """Model details, intended use and limitations: what the configuration states."""
    card = facts.get("model_card", {})
    overview = Section("Model details", [
        f"Task: {facts.get('task', 'unknown')}.",
        f"Pipeline {facts.get('pipeline_name', '')}; pushed "
        f"{datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}.",
    ])
    overview.tables.append((["kind", "features"], [
        [kind, ", ".join(keys)] for kind, keys in facts.get("features", {}).items() if keys]))
    overview.tables.append((["owner"], [[o] for o in card.get("owners", [])] or [["(none given)"]]))
    limits = Section("Limitations")
    limits.tables.append((["limitation"], [[x] for x in card.get("limitations", [])]
                          or [["(none stated)"]]))
    return [overview, Section("Intended use", [card.get("intended_use") or "(not stated)"]),
            limits]


def data_location(path: str) -> tuple[str, str]:
    """(the data path as an absolute path or URI, its content digest or why there is none),
    the digest computed as lineage computes it (`pipeline.facts.data_digest`)."""
    if path.startswith(PACKAGE_PREFIX):
        path = resolve_path(path)  # where the package is installed here
    if not path:
        return "unknown", "not computed (no data path recorded)"
    if "://" in path:
        return path, "not computed (remote data)"
    path = os.path.abspath(path)
    if not os.path.exists(path):
        return path, "not computed (not found where the card was written)"
    digest = data_digest(path)
    return path, digest or f"not computed (over {MAX_DIGEST_BYTES // 2**20} MiB)"


def _data_section(facts: dict[str, Any], statistics_uri: Optional[str],
                  statistics_splits: list[str], schema_uri: Optional[str]) -> Section:
    path, digest = data_location(facts.get("data_path", ""))
    data = Section("Data", [f"Path: {path}.", f"Content digest: {digest}."])
    counts = _row_counts(statistics_uri, statistics_splits)
    data.tables.append((["split", "rows"], [[s, n] for s, n in counts.items()]
                        or [["(no statistics)", ""]]))
    schema_rows = _schema_rows(schema_uri)
    data.paragraphs.append(f"Curated schema: {len(schema_rows)} features.")
    data.tables.append((["feature", "type", "required", "domain", "environments"],
                        schema_rows or [["(no schema)", "", "", "", ""]]))
    return data


def _training_section(facts: dict[str, Any], model_dir: Optional[str]) -> Section:
    """One table: each training setting as configured and as the model was trained."""
    training = Section("Training")
    configured = facts.get("training", {})
    used = recorded_training(model_dir)
    if not used:
        training.tables.append((["setting", "configured"],
                                [[k, json.dumps(v)] for k, v in sorted(configured.items())]))
        return training
    values = used.get("values", {})
    training.paragraphs.append(
        "Trained with " + ("the chosen trial of the tuner" if used.get("tuned")
                           else "the configured values") + ".")
    training.tables.append((["setting", "value", "configured"], [
        [k, json.dumps(values.get(k)), "same" if values.get(k) == configured.get(k)
         else json.dumps(configured.get(k))] for k in sorted(set(configured) | set(values))]))
    if used.get("gate"):
        training.paragraphs += tuning_lines(used["gate"])
    return training


def _evaluation_sections(evaluation_uri: Optional[str], blessing_uri: Optional[str]
                         ) -> list[Section]:
    """The verdict and metrics, fairness per slice, and the baseline compared with."""
    import tensorflow_model_analysis as tfma

    evaluation = Section("Evaluation")
    baseline_section = Section("Baseline")
    if not evaluation_uri or not os.path.exists(evaluation_uri):
        evaluation.paragraphs.append("No evaluation recorded.")
        return [evaluation, baseline_section]
    result = read_evaluation(evaluation_uri, blessing_uri)
    config = tfma.load_eval_result(evaluation_uri).config
    verdict = {True: "BLESSED: every threshold met.", False: "NOT BLESSED.",
               None: "no blessing recorded."}[result.blessed]
    evaluation.paragraphs.append(f"Verdict: {verdict} A '-' is a metric undefined on that "
                                 "slice (AUC with one class present, a rate with nothing to "
                                 "divide by).")
    keys = [()] + [k for kind in slice_kinds(result.metrics, config)
                   for k in sorted_slices(result.metrics, kind)]
    columns = table_columns(result.metrics)  # the label's task decides which
    evaluation.tables.append((["slice"] + [c.header for c in columns],
                              [[slice_label(k)] + metric_cells(result, k, columns)
                               for k in keys]))
    per_class = per_class_rows(result)
    if per_class:
        evaluation.tables.append((PER_CLASS_HEADER, per_class))
    checks = threshold_checks(result, config)
    evaluation.paragraphs.append(
        f"Thresholds: {sum(c.passed is True for c in checks)} met, "
        f"{sum(c.passed is False for c in checks)} not met, "
        f"{sum(c.passed is None for c in checks)} not applied.")
    evaluation.tables.append((["metric", "slice", "bound", "value", "result"],
                              [_check_row(c) for c in checks]))
    baseline_section.paragraphs.append(
        f"Compared with the model at {result.baseline} (the model then served)."
        if result.baseline else "None: the first blessed model, no comparison was made.")
    return [evaluation, _fairness_section(result, config), baseline_section]


def _check_row(c: ThresholdCheck) -> list[str]:
    return [c.metric, c.slice, c.bound, fmt_number(c.value),
            {True: "pass", False: "FAIL", None: "not applied (no baseline)"}[c.passed]]


def _fairness_section(result: Evaluation, config: Any) -> Section:
    """FPR and FNR per slice against their upper bounds, as tables and charts."""
    fairness = Section("Fairness: error rates per slice", [
        "False positive rate (FPR) and false negative rate (FNR) on each slice of the "
        "eval split, with the upper bounds a slice must stay under."])
    for kind in slice_kinds(result.metrics, config):
        keys = sorted_slices(result.metrics, kind)
        rows = []
        for k in keys:
            row = [slice_label(k)]
            for metric, cls, _ in CHART_METRICS:
                value = result.metrics[k].get(metric)
                upper = thresholds(config, cls, k)[1]
                row += [fmt_number(value), "-" if upper is None else f"{upper:g}",
                        "" if upper is None or value is None
                        else ("pass" if value <= upper else "FAIL")]
            rows.append(row)
        fairness.tables.append((["slice", "FPR", "FPR bound", "", "FNR", "FNR bound", ""],
                                rows))
        for metric, cls, title_ in CHART_METRICS:
            fairness.charts.append(bar_chart(
                [", ".join(str(v) for _, v in k) for k in keys],
                [result.metrics[k].get(metric) for k in keys],
                title=f"{title_} by {'/'.join(kind)}",
                marks=[thresholds(config, cls, k)[1] for k in keys], maximum=1.0))
    return fairness


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
