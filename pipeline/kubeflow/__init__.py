"""The pipeline on Kubeflow Pipelines v2: compile, submit, and rehearse a spec here.

This side runs where the spec is made; what runs inside the pipeline image is
`pipeline.kubeflow.container`: the compile side names its modules in the spec,
and the container imports nothing from this side, `pipeline.local` or `pipeline.cli`.
One more module runs in a pod: `report_task`, the last task, which reads the
run back through `pipeline.lineage` and publishes it in KFP's artifact types
(tests/test_architecture.py checks what each task loads by name).
"""
