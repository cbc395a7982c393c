"""The TFX-on-Kubeflow reference pipeline, installable into the pipeline image.

Dependencies are pinned in requirements.lock and installed from it; this file
only names the packages the project imports so that `pip check` can verify.
"""
from setuptools import find_packages, setup

setup(
    name="tfx-kfp-reference",
    version="0.1.0",
    description="End-to-end TFX pipeline: CSV to a validated, fairness-checked "
                "model served by TF Serving, on Beam locally and on Kubeflow.",
    python_requires=">=3.10,<3.11",
    packages=find_packages(include=["pipeline", "pipeline.*", "models", "models.*",
                                    "components", "components.*"]),
    package_data={"": ["*.yaml", "*.pbtxt"]},
    install_requires=[
        "tfx[kfp]==1.16.0",
        "apache-beam[gcp]==2.59.0",
        "dill==0.3.1.1",
        "tf-keras==2.16.0",
        "pydantic>=2,<3",
        "pyyaml",
    ],
    entry_points={"console_scripts": ["tfxp=pipeline.cli.main:tfxp"]},
)
