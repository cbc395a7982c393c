"""What the pipeline image runs in a Kubeflow pod: the TFX task entrypoint and the baseline.

Imports nothing from `pipeline.cli` or `pipeline.local`: only TFX, the model
code and the standard library, so a task starts without the laptop side.
"""
