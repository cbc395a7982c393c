"""What `create_pipeline` (pipeline/pipeline.py) gives the DAG's nodes beside
the configuration: each node's code digest (`digest`), the Evaluator's TFMA
EvalConfig (`evaluation`), and what is read from the curated schema
(`schema`: environments, label classes, the config checked against it)."""
