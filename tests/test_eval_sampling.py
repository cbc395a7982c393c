"""The Evaluator reads every eval example unless the config asks for a sample."""
from pipeline.config import load_config
from pipeline.dag.evaluation import SAMPLE_WEIGHT, eval_config
from pipeline.pipeline import create_pipeline


def build(cfg):
    nodes = {c.id: c for c in create_pipeline(
        cfg, pipeline_root="/nonexistent/root", serving_dir="/nonexistent/serving").components}
    evaluator = nodes["Evaluator"]
    return nodes, evaluator.inputs["examples"].producer_component_id


def test_by_default_every_eval_example_is_evaluated_unweighted():
    cfg = load_config()
    assert cfg.evaluation.sample_above is None
    nodes, source = build(cfg)
    assert "EvalSample" not in nodes and source == "CsvExampleGen"
    spec = eval_config(cfg.evaluation, cfg.model_inputs()).model_specs[0]
    assert not spec.example_weight_key


def test_a_sample_bound_puts_eval_sample_before_the_evaluator_and_weights_metrics():
    base = load_config()
    cfg = base.model_copy(update={"evaluation": base.evaluation.model_copy(
        update={"sample_above": 100_000})})
    nodes, source = build(cfg)
    assert source == "EvalSample"
    assert nodes["EvalSample"].exec_properties["above"] == 100_000
    spec = eval_config(cfg.evaluation, cfg.model_inputs()).model_specs[0]
    assert spec.example_weight_key == SAMPLE_WEIGHT
