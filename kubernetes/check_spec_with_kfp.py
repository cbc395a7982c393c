"""Loads a compiled spec with the kfp SDK and kfp-kubernetes installed beside it,
as a cluster's SDK would, and fails on any field those versions deprecate.

Run with the Python of an environment that has the versions to check (not the
project's: its lock pins an older kfp), e.g.

    python3.10 -m venv /tmp/kfp-check
    /tmp/kfp-check/bin/pip install kfp==2.17.3 kfp-kubernetes==2.17.3
    /tmp/kfp-check/bin/python kubernetes/check_spec_with_kfp.py build/chicago-taxi.kfp.yaml

Exit status 0 when the spec loads without a warning and sets no deprecated
field; 1 otherwise, each problem on its own line.
"""
from __future__ import annotations

import sys
import warnings
from importlib import metadata

import yaml
from google.protobuf import json_format
from google.protobuf.message import Message


def deprecated_fields(message: Message, where: str) -> list[str]:
    """Every field set in `message` (at any depth) that its proto marks deprecated."""
    found = []
    for field, value in message.ListFields():
        name = f"{where}.{field.name}"
        if field.GetOptions().deprecated:
            found.append(name)
        if field.message_type is None:
            continue
        repeated = (field.is_repeated if hasattr(field, "is_repeated")
                    else field.label == field.LABEL_REPEATED)
        if field.message_type.GetOptions().map_entry:
            items = list(value.values())
        else:
            items = list(value) if repeated else [value]
        for i, item in enumerate(items):
            if isinstance(item, Message):
                found += deprecated_fields(item, f"{name}[{i}]" if repeated else name)
    return found


def check(path: str) -> list[str]:
    from kfp import components
    from kfp.kubernetes import kubernetes_executor_config_pb2 as k8s
    from kfp.pipeline_spec import pipeline_spec_pb2 as pb

    problems = []
    with open(path) as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    spec = json_format.ParseDict(docs[0], pb.PipelineSpec())  # strict: no unknown field
    problems += deprecated_fields(spec, "pipelineSpec")
    platform = docs[1] if len(docs) > 1 else {}
    json_format.ParseDict(platform, pb.PlatformSpec())
    executors = (platform.get("platforms", {}).get("kubernetes", {})
                 .get("deploymentSpec", {}).get("executors", {}))
    for label, config in sorted(executors.items()):
        parsed = json_format.ParseDict(config, k8s.KubernetesExecutorConfig())
        problems += deprecated_fields(parsed, f"platforms.kubernetes.{label}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        components.load_component_from_file(path)
    problems += [f"warning: {w.category.__name__}: {w.message}" for w in caught]
    return problems


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    versions = ", ".join(f"{p} {metadata.version(p)}" for p in ("kfp", "kfp-kubernetes"))
    problems = check(argv[0])
    for problem in problems:
        print(problem)
    print(f"{argv[0]}: {'OK' if not problems else f'{len(problems)} problems'} ({versions})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
