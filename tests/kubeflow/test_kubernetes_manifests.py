"""kubernetes/: the pipeline image and the manifests beside KFP, checked offline.

No Docker engine or cluster runs here: the Dockerfile is linted (hadolint)
and read for what it installs; every manifest is validated against the
Kubernetes OpenAPI schemas (kubernetes-validate, strict) and checked for
resources, non-root security contexts and the paths the pipeline uses.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from components.atomic_pusher.model_config import config_path
from pipeline.config import load_config
from pipeline.kubeflow.compiler import REPO_ROOT, serving_dir

K8S = REPO_ROOT / "kubernetes"
DOCKERFILE = K8S / "Dockerfile"
KUBERNETES_VERSION = "1.29.0"  # what KFP 2.3 supports; see kubernetes/README.md
HADOLINT = str(Path(sys.executable).parent / "hadolint")


def manifests() -> list[tuple[str, dict]]:
    """Every resource in kubernetes/*.yaml (patches/ holds partial documents)."""
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc:
                docs.append((f"{path.name}:{doc['kind']}/{doc['metadata']['name']}", doc))
    return docs


def lock_pins() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "requirements.lock").read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\[\]-]+)==([^\s;]+)", line)
        if m:
            pins[re.sub(r"\[.*\]", "", m.group(1)).lower().replace("_", "-")] = m.group(2)
    return pins


def run_instructions() -> list[str]:
    """RUN instructions of the Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    return [line[4:] for line in text.splitlines() if line.startswith("RUN ")]


def test_hadolint_passes():
    result = subprocess.run([HADOLINT, str(DOCKERFILE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_is_really_checking(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM tensorflow/tfx\nRUN pip install requests\n")
    result = subprocess.run([HADOLINT, str(bad)], capture_output=True, text=True)
    assert result.returncode != 0 and "DL3006" in result.stdout  # untagged base image


def test_image_is_tfx_of_the_lock_and_installs_exactly_the_lock():
    pins = lock_pins()
    text = DOCKERFILE.read_text()
    [base] = re.findall(r"^FROM\s+(\S+)", text, re.M)
    assert base == f"tensorflow/tfx:{pins['tfx']}" == "tensorflow/tfx:1.16.0"
    assert re.search(r"^COPY requirements\.lock ", text, re.M)
    installs = [r for r in run_instructions() if "pip install" in r]
    assert len(installs) == 2, installs
    lock_install, project_install = installs
    # The lock, without the resolver adding or changing anything...
    assert re.search(r"pip install .*--no-deps.* -r requirements\.lock", lock_install)
    # ...then this project, also without dependencies, and a consistency check.
    assert re.search(r"pip install .*--no-deps.* \.(\s|$)", project_install)
    assert "pip check" in project_install
    # Nothing else is pip-installed by name.
    for run in installs:
        words = run.split("pip install", 1)[1].split("&&")[0].split()
        assert [w for w in words if not w.startswith("-")] in (["requirements.lock"], ["."])


def test_every_requirement_of_the_project_is_pinned_in_the_lock():
    pins = lock_pins()
    import ast
    tree = ast.parse((REPO_ROOT / "setup.py").read_text())
    [listed] = [kw.value for node in ast.walk(tree) if isinstance(node, ast.Call)
                for kw in node.keywords if kw.arg == "install_requires"]
    required = [re.match(r"([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?(.*)", ast.literal_eval(e)).groups()
                for e in listed.elts]
    assert len(required) >= 5
    for name, spec in required:
        key = name.lower().replace("_", "-")
        assert key in pins, f"{name} is not in requirements.lock"
        if spec and spec.startswith("=="):
            assert pins[key] == spec[2:], f"{name}: setup.py {spec}, lock {pins[key]}"


def test_image_layout_matches_the_kubeflow_config():
    kf = load_config().kubeflow
    text = DOCKERFILE.read_text()
    venv = re.search(r"VIRTUAL_ENV=(\S+)", text).group(1)
    assert kf.site_packages == f"{venv}/lib/python3.10/site-packages"
    assert re.search(rf"^WORKDIR {re.escape(kf.project_dir)}$", text, re.M)
    for package in ("pipeline", "models", "components", "schemas"):
        assert re.search(rf"^COPY {package}/ {package}/$", text, re.M), package
        assert (REPO_ROOT / package).is_dir()
    user = re.findall(r"^USER (\S+)", text, re.M)
    assert user and user[-1].split(":")[0] not in ("root", "0")
    # The launcher stages artifacts at its scheme directories as this user.
    from pipeline.kubeflow.container.entrypoint import SCHEME_DIRS
    [chown] = [r for r in run_instructions() if "chown" in r]
    for directory in SCHEME_DIRS.values():
        assert f"/{directory}" in chown.split("chown", 1)[1], directory
    assert user[-1] in chown
    ignored = (REPO_ROOT / ".dockerignore").read_text().split()
    assert ".venv" in ignored and "runs" in ignored


@pytest.mark.parametrize("name, doc", manifests(), ids=[n for n, _ in manifests()])
def test_manifest_validates_against_kubernetes_schema(name, doc):
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_validation_rejects_a_broken_manifest():
    _, deployment = next((n, d) for n, d in manifests() if d["kind"] == "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["imagePullPolice"] = "Always"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_workloads_have_resources_and_run_as_non_root():
    workloads = [d for _, d in manifests() if d["kind"] in ("Deployment", "StatefulSet", "Job")]
    assert workloads
    for doc in workloads:
        pod = doc["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] != 0
        for container in pod["containers"]:
            res = container["resources"]
            assert {"cpu", "memory"} <= set(res["requests"]) and \
                {"cpu", "memory"} <= set(res["limits"]), container["name"]
            assert container["securityContext"]["allowPrivilegeEscalation"] is False


def test_tf_serving_reads_the_model_base_path_the_pusher_writes():
    cfg = load_config()
    kf = cfg.kubeflow
    docs = dict(manifests())
    [deployment] = [d for n, d in docs.items() if n.startswith("tf-serving.yaml:Deployment")]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    # The labelled versions of models.config, which the Pusher writes in the base path.
    assert f"--model_config_file={config_path(serving_dir(cfg))}" in container["args"]
    assert any(a.startswith("--model_config_file_poll_wait_seconds=") for a in container["args"])
    assert f"/v1/models/{cfg.serving.model_name}" in str(container["readinessProbe"])
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == kf.serving_mount]
    [volume] = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["persistentVolumeClaim"]["claimName"] == kf.serving_pvc
    assert mount["readOnly"] is True  # only the Pusher writes
    claims = {d["metadata"]["name"]: d for d in docs.values()
              if d["kind"] == "PersistentVolumeClaim"}
    assert "ReadWriteMany" in claims[kf.serving_pvc]["spec"]["accessModes"]
    [service] = [d for n, d in docs.items() if n.startswith("tf-serving.yaml:Service")]
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert {p["port"] for p in service["spec"]["ports"]} == {8500, 8501}


def test_the_image_bakes_in_its_git_commit(monkeypatch):
    """Provenance on the cluster: the image has no .git; the commit it was built from
    is a build argument kept in its environment, which every run records."""
    from pipeline.facts import git_commit
    text = DOCKERFILE.read_text()
    assert "ARG GIT_COMMIT" in text and "ENV GIT_COMMIT=${GIT_COMMIT}" in text
    assert text.index("ENV GIT_COMMIT") < text.index("pip install --no-cache-dir --no-deps .")
    monkeypatch.setenv("GIT_COMMIT", "0123abc")
    assert git_commit("/nonexistent") == "0123abc"
