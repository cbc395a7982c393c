"""The model card of every pushed version, written at push time into the
version's assets.extra/, checked against what ML Metadata recorded for the run
that pushed it (the session's real runs, tests/lineage_runs.py)."""
from __future__ import annotations

import os
import re

import pytest

from pipeline.lineage.model_card import card_paths
from pipeline.lineage.results import evaluation, slice_label, statistics
from pipeline.lineage.runs import run_record
from pipeline.lineage.store import custom, open_store_from


def pushed(lineage_runs):
    """(record, version directory) of each run that pushed a version itself."""
    store = open_store_from(lineage_runs.root)
    out = []
    for run_id in lineage_runs.run_ids:
        record = run_record(store, run_id)
        if record.info.pushed_version and record.info.pushed_in_this_run:
            out.append((record, custom(record.first("PushedModel"), "pushed_destination")))
    assert out, "no run pushed a version"
    return out


def table_rows(markdown: str, header: str) -> list[list[str]]:
    """The rows of every Markdown table whose header line starts with `header`."""
    lines = markdown.splitlines()
    rows = []
    for start in [i for i, line in enumerate(lines) if line.startswith(header)]:
        for line in lines[start + 2:]:
            if not line.startswith("|"):
                break
            rows.append([c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]])
    return rows


@pytest.mark.e2e
def test_every_pushed_version_has_its_card(lineage_runs):
    for record, version_dir in pushed(lineage_runs):
        md, html = card_paths(version_dir)
        assert os.path.isfile(md) and os.path.isfile(html), version_dir
        assert f"version {record.info.pushed_version}" in open(md).read()
        # Beside the model, where TF Serving does not look for a version.
        assert os.path.basename(version_dir) == record.info.pushed_version
        assert os.path.dirname(md) == os.path.join(version_dir, "assets.extra")


@pytest.mark.e2e
def test_card_names_every_evaluated_slice_and_every_threshold(lineage_runs):
    cfg = lineage_runs.cfg
    for record, version_dir in pushed(lineage_runs):
        text = open(card_paths(version_dir)[0]).read()
        result, _ = evaluation(record)
        metrics = table_rows(text, "| slice | n |")
        assert [r[0] for r in metrics] == ["overall"] + [
            r[0] for r in metrics[1:]]  # overall first
        assert {r[0] for r in metrics} == {slice_label(k) for k in result.metrics}
        overall = next(r for r in metrics if r[0] == "overall")
        assert float(overall[2]) == pytest.approx(result.metrics[()]["auc"], abs=5e-4)

        checks = table_rows(text, "| metric | slice | bound |")
        for t in cfg.evaluation.thresholds:
            if t.max_decrease is not None:
                continue  # a change bound: see the baseline test
            bound = " and ".join(([f">= {t.lower:g}"] if t.lower is not None else [])
                                 + ([f"<= {t.upper:g}"] if t.upper is not None else []))
            rows = [r for r in checks if r[0] == t.metric and r[2] == bound]
            if isinstance(t.slice, dict):
                rows = [r for r in rows if r[1] == slice_label(tuple(t.slice.items()))]
                assert len(rows) == 1, (t, checks)
            elif t.slice:
                kind = [k for k in result.metrics if [f for f, _ in k] == t.slice]
                assert {r[1] for r in rows} == {slice_label(k) for k in kind}
            else:
                assert [r[1] for r in rows] == ["overall"]
        # A pushed model was blessed: TFMA found every bound met.
        assert {r[4] for r in checks} <= {"pass", "not applied (no baseline)"}

        fairness = table_rows(text, "| slice | FPR | FPR bound |")
        hours = [r for r in fairness if r[0].startswith("trip_start_hour=")]
        evaluated = [k for k in result.metrics if k and k[0][0] == "trip_start_hour"]
        assert evaluated and len(hours) == len(evaluated)
        assert all(r[2] == "0.15" and r[3] == "pass" for r in hours), hours


@pytest.mark.e2e
def test_card_data_and_code_match_the_runs_provenance(lineage_runs):
    for record, version_dir in pushed(lineage_runs):
        text = open(card_paths(version_dir)[0]).read()
        facts = record.info.provenance
        assert os.path.isabs(facts["data_path"])
        assert f"Path: {facts['data_path']}." in text
        assert facts["data_digest"].startswith("sha256:")
        assert f"Content digest: {facts['data_digest']}." in text
        assert facts["git_commit"] in text
        rows = dict((r[0], int(r[1])) for r in table_rows(text, "| split | rows |"))
        assert rows == {split: ds.num_examples for split, ds in statistics(record).items()}
        schema = table_rows(text, "| feature | type | required |")
        assert "tips" in {r[0] for r in schema}
        assert next(r for r in schema if r[0] == "tips")[4] == "not at SERVING"


@pytest.mark.e2e
def test_card_states_use_limitations_owners_and_training(lineage_runs):
    card = lineage_runs.cfg.model_card
    training = lineage_runs.cfg.training
    for _, version_dir in pushed(lineage_runs):
        text = open(card_paths(version_dir)[0]).read()
        assert card.intended_use in text
        assert all(x in text for x in card.limitations + card.owners)
        used = {r[0]: r[1:] for r in table_rows(text, "| setting | value | configured |")}
        assert used["learning_rate"] == [str(training.learning_rate), "same"]
        assert used["hidden_units"] == [str(training.hidden_units), "same"]
        assert "Trained with the configured values" in text
        # One table of training values: none repeated in a second one.
        assert text.count("| learning_rate |") == 1


@pytest.mark.e2e
def test_card_names_the_baseline_it_was_compared_with(lineage_runs):
    versions = pushed(lineage_runs)
    first_record, first_dir = versions[0]
    assert "None: the first blessed model" in open(card_paths(first_dir)[0]).read()
    # The fixture asserts the second run was blessed and pushed: it has a card.
    assert len(versions) == 2, [r.info.run_id for r, _ in versions]
    record, version_dir = versions[1]
    text = open(card_paths(version_dir)[0]).read()
    first_model = first_record.first("Model", "model").uri
    assert f"Compared with the model at {first_model}" in text
    change = [r for r in table_rows(text, "| metric | slice | bound |")
              if r[2].startswith("decrease vs baseline")]
    assert change == [["AUC", "overall", "decrease vs baseline <= 0.01", change[0][3], "pass"]]


@pytest.mark.e2e
def test_html_card_reads_offline(lineage_runs):
    for _, version_dir in pushed(lineage_runs):
        page = open(card_paths(version_dir)[1]).read()
        assert page.startswith("<!DOCTYPE html>")
        assert not re.search(r"<script|<link|<img|src=|https?://", page)
        assert "<svg" in page  # the fairness charts, inline
        assert "Intended use" in page and "Fairness" in page


@pytest.mark.e2e
def test_report_links_the_card(lineage_runs):
    match = re.search(r"^Report: (.+\.html)$", lineage_runs.first_output, re.M)
    record, version_dir = pushed(lineage_runs)[0]
    assert record.info.run_id == lineage_runs.run_ids[0]  # the first run pushed
    report = open(match.group(1)).read()
    assert card_paths(version_dir)[1] in report


def test_version_facts_carry_the_config_and_no_path_of_this_machine():
    import json

    from pipeline.config import load_config
    from pipeline.pipeline import version_facts
    cfg = load_config()
    facts = json.loads(version_facts(cfg))
    assert facts["data_path"] == cfg.data.path  # as written: resolved where the card is made
    assert facts["model_card"] == cfg.model_card.model_dump(mode="json")
    assert facts["training"] == cfg.training.model_dump(mode="json")
    assert facts["task"] == "binary classification: positive when tips > 0.2 x fare"
    assert cfg.base_dir not in json.dumps(facts)
    assert json.loads(version_facts(cfg, "/data/x.csv"))["data_path"] == "/data/x.csv"


def test_a_local_run_gives_the_card_an_absolute_data_path_and_its_digest():
    import json

    from pipeline.config import load_config
    from pipeline.facts import data_digest
    from pipeline.facts.model_card import data_location
    from pipeline.local.inputs import local_sources
    from pipeline.pipeline import version_facts
    cfg = load_config()
    facts = json.loads(version_facts(cfg, local_sources(cfg).given_data_path))
    path, digest = data_location(facts["data_path"])
    assert os.path.isabs(path) and os.path.isfile(path)
    assert path == cfg.resolve(cfg.data.path)
    # Computed as lineage computes it (the run's provenance), never skipped locally.
    assert digest == data_digest(path) and digest.startswith("sha256:")
    assert data_location("gs://bucket/data.csv") == ("gs://bucket/data.csv",
                                                     "not computed (remote data)")
