"""The pipeline on Kubeflow Pipelines v2: compile, submit, and rehearse a spec here.

This side runs where the spec is made; what runs inside the pipeline image is
`pipeline.kubeflow.container`: the compile side names its modules in the spec,
and the container imports nothing from this side, `pipeline.local` or `pipeline.cli`.
"""
