"""Container entrypoint for TFX tasks on open-source Kubeflow Pipelines v2.

The KFP v2 launcher downloads every input artifact to a local path and
uploads every output artifact from one (`minio://b/p` <-> `/minio/b/p`,
`s3://` <-> `/s3/`, `gs://` <-> `/gcs/`), exactly as KFP's own Python
components expect.  TFX's executor entrypoint instead opens the remote URI
itself, which breaks on open-source clusters three ways: TensorFlow cannot
open `minio://` at all, TF's GCS filesystem leaves zero-byte directory
markers that the launcher then downloads as files (kubeflow/pipelines#13476:
"mkdir .../model: not a directory" in the next task), and the Format-Serving
sub-directory of a model trips over those markers.

This wrapper points TFX at the launcher's local copies instead, then runs
TFX's own entrypoint (executor or ExampleGen driver) in process, unpatched,
and maps the URIs in the ExecutorOutput back.  Nothing in TFX is modified.

ExampleGen's container also records the run's provenance (`pipeline.facts`:
the image's project version and git commit, the config as compiled, a digest
of the data it read) as metadata of its `examples` output, which KFP's
launcher keeps in ML Metadata as the artifact's custom properties.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Callable, Optional

import pipeline  # noqa: F401  (sets TF_USE_LEGACY_KERAS before TF loads)

# The launcher's mount points for each object-store scheme.
SCHEME_DIRS = {"minio://": "minio", "s3://": "s3", "gs://": "gcs"}
# Overridable so a local rehearsal can stand in for the launcher's mounts.
ROOT_ENV = "TFXP_LAUNCHER_ROOT"
INVOCATION_FLAG = "--json_serialized_invocation_args"
MODULE = f"{__package__}.entrypoint"  # what `python -m` runs, also when run that way
# The config as compiled (JSON), set by the compiler on ExampleGen's container.
CONFIG_ENV = "TFXP_CONFIG"
# Metadata of an input artifact that stands for "none" (a baseline task on a
# first run): left out of the inputs, so TFX sees an optional input not given.
NO_ARTIFACT = "tfxp_no_artifact"


def local_path(uri: str, root: Optional[str] = None) -> str:
    """The launcher's local path for a remote artifact URI (unchanged if local)."""
    root = root if root is not None else os.environ.get(ROOT_ENV, "/")
    for scheme, directory in SCHEME_DIRS.items():
        if uri.startswith(scheme):
            return os.path.join(root, directory, uri[len(scheme):])
    return uri


def remote_uri(path: str, root: Optional[str] = None) -> str:
    """Inverse of `local_path`: the object-store URI of a launcher path."""
    root = root if root is not None else os.environ.get(ROOT_ENV, "/")
    for scheme, directory in SCHEME_DIRS.items():
        prefix = os.path.join(root, directory) + "/"
        if path.startswith(prefix):
            return scheme + path[len(prefix):]
    return path


def _map_artifacts(executor_input: dict, fn: Callable[[str], str], *sections: str) -> dict:
    for section in sections:
        for artifact_list in executor_input.get(section, {}).get("artifacts", {}).values():
            for artifact in artifact_list.get("artifacts", []):
                if artifact.get("uri"):
                    artifact["uri"] = fn(artifact["uri"])
    return executor_input


def localize_invocation(argv: list[str]) -> list[str]:
    """argv with the ExecutorInput's artifact URIs replaced by launcher paths, and the
    input artifacts that stand for none (`NO_ARTIFACT`) left out."""
    argv = list(argv)
    i = argv.index(INVOCATION_FLAG) + 1
    executor_input = _map_artifacts(json.loads(argv[i]), local_path, "inputs", "outputs")
    for listed in executor_input.get("inputs", {}).get("artifacts", {}).values():
        listed["artifacts"] = [a for a in listed.get("artifacts", [])
                               if not (a.get("metadata") or {}).get(NO_ARTIFACT)]
    argv[i] = json.dumps(executor_input)
    return argv


def restore_output_uris(output_file: str) -> None:
    """Rewrites the ExecutorOutput's local paths back to remote URIs."""
    if not os.path.exists(output_file):
        return
    with open(output_file) as f:
        executor_output = json.load(f)
    for artifact_list in executor_output.get("artifacts", {}).values():
        for artifact in artifact_list.get("artifacts", []):
            if artifact.get("uri"):
                artifact["uri"] = remote_uri(artifact["uri"])
            # e.g. the blessing's current_model / baseline_model URIs
            for key, value in (artifact.get("metadata") or {}).items():
                if isinstance(value, str):
                    artifact["metadata"][key] = remote_uri(value)
    with open(output_file, "w") as f:
        json.dump(executor_output, f)


def data_location(executor_input: dict) -> str:
    """The file ExampleGen read (input_base/pattern), or its directory for a glob."""
    params = executor_input["inputs"].get("parameterValues", {})
    base = params.get("input_base", "")
    splits = json.loads(params.get("input_config") or "{}").get("splits", [])
    pattern = splits[0].get("pattern", "") if len(splits) == 1 else ""
    candidate = os.path.join(base, pattern) if pattern else base
    return candidate if os.path.isfile(candidate) else base


def provenance(executor_input: dict) -> dict[str, str]:
    """What KFP records nowhere: the code, config and data of this run (`pipeline.facts`)."""
    from pipeline.facts import as_properties, gather

    data = data_location(executor_input)
    return as_properties(gather(os.environ.get(CONFIG_ENV, ""), data, remote_uri(data)))


def add_provenance(output_file: str, executor_input: dict, key: str = "examples") -> None:
    """Adds the run's provenance to the metadata of output `key` in the ExecutorOutput."""
    with open(output_file) as f:
        executor_output = json.load(f)
    for artifact in executor_output.get("artifacts", {}).get(key, {}).get("artifacts", []):
        artifact["metadata"] = {**(artifact.get("metadata") or {}), **provenance(executor_input)}
    with open(output_file, "w") as f:
        json.dump(executor_output, f)


def keep_driver_output(output_file: str, driver_output: dict) -> None:
    """What the driver resolved (span, version, input fingerprint) survives the
    executor's ExecutorOutput, as KFP keeps a pre-cache-check's outputs: as output
    parameters, and as metadata of the artifacts it described."""
    with open(output_file) as f:
        executor_output = json.load(f)
    executor_output["parameterValues"] = {**driver_output.get("parameterValues", {}),
                                          **executor_output.get("parameterValues", {})}
    for key, listed in driver_output.get("artifacts", {}).items():
        resolved = [a.get("metadata") or {} for a in listed.get("artifacts", [])]
        for artifact, metadata in zip(
                executor_output.get("artifacts", {}).get(key, {}).get("artifacts", []), resolved):
            artifact["metadata"] = {**metadata, **(artifact.get("metadata") or {})}
    with open(output_file, "w") as f:
        json.dump(executor_output, f)


def _run_driver(args: list[str]) -> None:
    from tfx.orchestration.kubeflow.v2.file_based_example_gen import driver

    from pipeline.kubeflow.tfx_internals import parse_driver_flags
    driver.main(parse_driver_flags(args))


def _run_executor(args: list[str]) -> None:
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor as executor

    from pipeline.kubeflow.tfx_internals import parse_executor_flags
    executor.main(parse_executor_flags(args))


def main(argv: Optional[list[str]] = None) -> int:
    """`python -m pipeline.kubeflow.container.entrypoint ROLE <TFX entrypoint args>`.

    ROLE is `executor` (TFX's executor entrypoint), `driver` (the file-based
    ExampleGen driver alone) or `example_gen`: the driver, then the executor
    in the same container.  Open-source KFP ignores a container's
    `lifecycle.preCacheCheck`, so without this ExampleGen would run without
    span, version and fingerprint (and a `{SPAN}` pattern would never match).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    roles = {"executor": [_run_executor], "driver": [_run_driver],
             "example_gen": [_run_driver, _run_executor]}
    if not argv or argv[0] not in roles:
        print(f"usage: python -m {MODULE} {{{'|'.join(roles)}}} ARGS...",
              file=sys.stderr)
        return 2
    args = localize_invocation(argv[1:])
    executor_input = json.loads(args[args.index(INVOCATION_FLAG) + 1])
    output_file = executor_input["outputs"]["outputFile"]
    driver_output: dict = {}
    for step in roles[argv[0]]:
        step(args)
        if step is _run_driver and os.path.exists(output_file):
            with open(output_file) as f:
                driver_output = json.load(f)
    if driver_output:
        keep_driver_output(output_file, driver_output)
    if argv[0] == "example_gen" and os.path.exists(output_file):
        add_provenance(output_file, executor_input)
    restore_output_uris(output_file)
    return 0


if __name__ == "__main__":
    sys.exit(main())
