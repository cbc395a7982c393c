""".github/workflows/: actionlint passes, and each workflow does what the README says.

actionlint type-checks the workflow syntax, expressions, the inputs of known
actions and job outputs; the assertions below pin what each trigger runs.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO_ROOT / ".github" / "workflows"


def _actionlint() -> str | None:
    beside = Path(sys.executable).parent / "actionlint"
    return str(beside) if beside.exists() else shutil.which("actionlint")


ACTIONLINT = _actionlint()
needs_actionlint = pytest.mark.skipif(
    ACTIONLINT is None,
    reason="actionlint binary not found beside the interpreter or on PATH "
           "(installed from requirements.lock by `make setup`)")


def workflow(name: str) -> dict:
    return yaml.safe_load((WORKFLOWS / name).read_text())


def run_lines(wf: dict) -> list[str]:
    return [step["run"] for job in wf["jobs"].values() for step in job["steps"] if "run" in step]


def uses(wf: dict) -> list[str]:
    return [step["uses"] for job in wf["jobs"].values() for step in job["steps"]
            if "uses" in step]


@needs_actionlint
def test_actionlint_passes():
    files = sorted(str(p) for p in WORKFLOWS.glob("*.yml"))
    assert len(files) == 3, files
    result = subprocess.run([ACTIONLINT, "-no-color", *files], cwd=REPO_ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_actionlint
def test_actionlint_is_really_checking(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\n"
        "jobs:\n"
        "  a:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - uses: actions/upload-artifact@v6\n"  # required input `path` missing
        "      - run: echo ${{ steps.nope.outputs.x }}\n")  # no such step
    result = subprocess.run([ACTIONLINT, "-no-color", str(bad)], capture_output=True, text=True)
    assert result.returncode == 1, result.stdout + result.stderr
    assert 'missing input "path"' in result.stdout
    assert "steps.nope" in result.stdout


def test_pull_request_runs_lint_and_fast_tests_only():
    wf = workflow("pull-request.yml")
    assert set(wf[True]) == {"pull_request"}  # PyYAML reads the key `on` as True
    runs = run_lines(wf)
    assert "make lint" in runs
    assert any(r.startswith("make test-fast") for r in runs), runs
    assert not any(r.startswith("make test ") or r == "make test" for r in runs), runs


def test_main_runs_every_test_then_compiles_and_keeps_the_spec():
    wf = workflow("main.yml")
    assert wf[True] == {"push": {"branches": ["main"]}}
    runs = run_lines(wf)
    full = next(i for i, r in enumerate(runs) if r.startswith("make test ")
                and "not e2e" not in r)
    compile_at = next(i for i, r in enumerate(runs) if "tfxp compile" in r)
    assert full < compile_at
    [upload] = [s for j in wf["jobs"].values() for s in j["steps"]
                if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["with"]["path"] in runs[compile_at]  # the file compile wrote


def test_release_pushes_versioned_images_and_submits_with_secrets():
    wf = workflow("release.yml")
    assert list(wf[True]) == ["push"] and list(wf[True]["push"]) == ["tags"]
    steps_text = yaml.safe_dump(wf["jobs"])  # comments dropped
    assert "latest" not in steps_text.replace("ubuntu-latest", "")
    image_job, submit_job = wf["jobs"]["image"], wf["jobs"]["submit"]
    [build] = [s for s in image_job["steps"]
               if s.get("uses", "").startswith("docker/build-push-action@")]
    assert build["with"]["push"] is True
    assert build["with"]["file"] == "kubernetes/Dockerfile"
    assert (REPO_ROOT / build["with"]["file"]).exists()
    # Two tags: the version and the code digest.
    tag_step = next(s for s in image_job["steps"] if s.get("id") == "tags")
    assert "$REPOSITORY:$VERSION,$REPOSITORY:$code" in tag_step["run"]
    assert "rev-parse 'HEAD^{tree}'" in tag_step["run"]
    # The spec is compiled against the image just pushed, by digest.
    assert submit_job["needs"] == "image"
    compile_step = next(s for s in submit_job["steps"] if "tfxp compile" in s.get("run", ""))
    assert compile_step["env"]["IMAGE"] == "${{ needs.image.outputs.image }}"
    assert '--image "$IMAGE"' in compile_step["run"]
    assert "@$DIGEST" in next(s["run"] for s in image_job["steps"] if s.get("id") == "ref")
    # Credentials only from secrets, into the variable `tfxp submit` reads.
    submit_step = next(s for s in submit_job["steps"] if "tfxp submit" in s.get("run", ""))
    assert submit_step["env"]["KFP_BEARER_TOKEN"] == "${{ secrets.KFP_BEARER_TOKEN }}"
    from pipeline.kubeflow.submit import TOKEN_ENV
    assert TOKEN_ENV == "KFP_BEARER_TOKEN"
    assert "KFP_BEARER_TOKEN" not in submit_step["run"]  # never on the command line


def test_actions_are_pinned_to_a_version():
    for name in ("pull-request.yml", "main.yml", "release.yml"):
        for ref in uses(workflow(name)):
            action, _, version = ref.partition("@")
            assert version.startswith("v") and version[1:].split(".")[0].isdigit(), ref
