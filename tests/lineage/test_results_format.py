"""pipeline/lineage/results.py: undefined metrics read as undefined, a multi-class
label's worst class named, and a search's verdict at the gate in words."""
from __future__ import annotations

import math

from pipeline.facts.evaluation import _slice_values
from pipeline.lineage.results import (
    Evaluation,
    fmt_metric,
    metric_cells,
    per_class_rows,
    table_columns,
    tuning_lines,
    worst_classes_line,
)


def tfma_slice(values: dict[str, float], sub_key: str = "") -> dict:
    """One slice's metrics as tfma.load_eval_result gives them."""
    return {"": {sub_key: {k: {"doubleValue": v} for k, v in values.items()}}}


def test_auc_of_a_one_class_slice_is_undefined_not_zero():
    # TFMA computes AUC 0.0 on a slice without positives; its miss rate is NaN.
    values, _ = _slice_values(tfma_slice({"auc": 0.0, "miss_rate": math.nan,
                                          "fall_out": 0.0, "example_count": 20.0}))
    assert math.isnan(values["auc"])
    assert fmt_metric(values["auc"], "AUC") == "-"
    assert fmt_metric(values["example_count"], "ExampleCount") == "20"
    both, _ = _slice_values(tfma_slice({"auc": 0.0, "miss_rate": 0.5, "fall_out": 0.1}))
    assert both["auc"] == 0.0  # both classes present: a real zero stays zero


def _multiclass() -> Evaluation:
    by_output = {"": {}}
    for i, (p, r) in enumerate([(0.9, 0.8), (math.nan, 0.238), (0.7, 1.0)]):
        by_output[""][f"classId:{i}"] = {"precision": {"doubleValue": p},
                                         "recall": {"doubleValue": r},
                                         "miss_rate": {"doubleValue": 1 - r}}
    by_output[""][""] = {"example_count": {"doubleValue": 30.0}}
    values, worst = _slice_values(by_output)
    return Evaluation(metrics={(): values}, blessed=True, failures=[],
                      classes={0: "Bad", 1: "Good", 2: "Fair"}, worst_class={(): worst},
                      class_counts={(): {0: 10.0, 1: 12.0, 2: 8.0}})


def test_the_worst_class_is_named():
    e = _multiclass()
    line = worst_classes_line(e)
    assert "min recall 0.238 (Good)" in line
    assert "min precision 0.700 (Fair)" in line  # the undefined class is not the worst
    assert "max FNR 0.762 (Good)" in line
    cells = metric_cells(e, (), table_columns(e.metrics))
    assert "0.238 (Good)" in cells


def test_per_class_rows_show_n_and_undefined_as_dash():
    rows = per_class_rows(_multiclass())
    assert [r[0] for r in rows] == ["Bad", "Good", "Fair"]
    assert rows[1] == ["Good", "12", "-", "0.238", "0.762"]
    assert per_class_rows(Evaluation(metrics={(): {"auc": 0.9}}, blessed=None,
                                     failures=[])) == []


RECORD = {"objective": "val_auc", "direction": "max", "rows": 4966, "chosen": "0",
          "not_judged": ["AUC max_decrease 0.01: needs the served model"],
          "trials": [
              {"trial_id": "0", "score": 0.939, "failures": [],
               "values": {"batch_size": 128, "learning_rate": 0.002}},
              {"trial_id": "2", "score": 0.945,
               "failures": ["FallOut on payment_type=Credit Card: 0.578 (bound <= 0.3)"],
               "values": {"batch_size": 128, "learning_rate": 0.0072}}]}


def test_tuning_lines_show_passed_chosen_and_the_better_trial_that_failed():
    text = "\n".join(tuning_lines(RECORD))
    assert "Tuner: 2 trials, 1 met the gate on the validation data (4,966 eval rows)." in text
    assert "chosen: trial 0, val auc 0.9390" in text
    assert "best overall: trial 2, val auc 0.9450" in text
    assert "FallOut on payment_type=Credit Card: 0.578 (bound <= 0.3)" in text
    assert "not judged on trials: AUC max_decrease" in text


def test_tuning_lines_when_no_trial_passes_name_what_the_used_one_missed():
    record = {**RECORD, "chosen": "2",
              "trials": [RECORD["trials"][1],
                         {**RECORD["trials"][0], "failures": ["AUC on overall: 0.8"]}]}
    text = "\n".join(tuning_lines(record))
    assert "none met the gate" in text
    assert "the Trainer used the best: trial 2" in text
    assert "FallOut on payment_type=Credit Card: 0.578" in text
    assert "best overall" not in text


def test_a_tie_for_worst_names_no_class():
    by_output = {"": {f"classId:{i}": {"recall": {"doubleValue": 1.0}} for i in range(3)}}
    values, worst = _slice_values(by_output)
    assert values["recall@worst"] == 1.0 and worst == {}
    e = Evaluation(metrics={(): values}, blessed=True, failures=[], worst_class={(): worst})
    assert worst_classes_line(e) is None
