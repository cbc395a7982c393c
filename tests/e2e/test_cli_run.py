"""`tfxp run` as an operator types it, on one root: the README's `tfxp -v run`,
then a Trainer setting, then an evaluation setting (each re-running only what
reads it), then rejected data. Without -v, stderr holds one line of ours or
nothing."""
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.config import DEFAULT_CONFIG
from pipeline.lineage.store import CACHED, EXECUTED, open_store_from
from tests.datasets import taxi_sample, text_in_numeric_column

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
RESOLVERS = {"served_model_resolver", "drift_baseline_resolver"}


def write_config(path: Path, data: str, **changes) -> str:
    """The shipped config with `changes` ({section: {key: value}}), its curated schema
    a copy beside it (made once) that a test may edit."""
    raw = yaml.safe_load(DEFAULT_CONFIG.read_text())
    schema = path.parent / "schema.pbtxt"
    if not schema.exists():
        schema.write_text((DEFAULT_CONFIG.parent / raw["schema"]).read_text())
    raw["schema"] = str(schema)
    raw["data"]["path"] = data
    raw["serving_check"]["repeats"] = 3
    # Bounds any trained model meets: each run here is blessed, so its exit status is 0.
    raw["evaluation"]["thresholds"] = [{"metric": "AUC", "lower": 0.5},
                                       {"metric": "BinaryAccuracy", "lower": 0.5}]
    for section, values in changes.items():
        raw[section] = {**raw.get(section, {}), **values}
    path.write_text(yaml.safe_dump(raw))
    return str(path)


def tfxp(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    return subprocess.run([sys.executable, "-m", "pipeline", *args], cwd=str(ROOT), env=env,
                          capture_output=True, text=True, timeout=3600)


def last_states(root: str) -> dict[str, str]:
    run = open_store_from(root).runs()[-1]
    return {n.node_id: n.state for n in run.nodes if n.node_id not in RESOLVERS}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    sample = taxi_sample(str(tmp / "data"), every=3)
    bad = taxi_sample(str(tmp / "bad"), every=3, change=text_in_numeric_column("fare"))
    root = str(tmp / "root")
    steps = {}
    first = write_config(tmp / "first.yaml", sample)
    # The README: "Add `-v` before the command".
    steps["verbose"] = tfxp("-v", "run", "--config", first, "--root", root), last_states(root)
    trainer = write_config(tmp / "trainer.yaml", sample, training={"train_steps": 499})
    steps["training"] = tfxp("run", "--config", trainer, "--root", root), last_states(root)
    thresholds = yaml.safe_load(Path(trainer).read_text())["evaluation"]["thresholds"]
    thresholds[1]["lower"] = 0.49  # BinaryAccuracy
    evaluation = write_config(tmp / "evaluation.yaml", sample,
                              training={"train_steps": 499},
                              evaluation={"thresholds": thresholds})
    steps["evaluation"] = tfxp("run", "--config", evaluation, "--root", root), last_states(root)
    schema = tmp / "schema.pbtxt"
    schema.write_text(schema.read_text() + "\n# curated further\n")
    steps["schema"] = tfxp("run", "--config", evaluation, "--root", root), last_states(root)
    steps["rejected"] = tfxp("run", "--config", evaluation, "--root", root, "--data", bad), None
    return steps


def test_the_readme_invocation_runs_and_shows_the_logs(runs):
    done, states = runs["verbose"]
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BLESSED and pushed" in done.stdout, done.stdout
    assert "IllegalFlagValueError" not in done.stdout + done.stderr
    assert "INFO:absl:" in done.stderr  # TFX's logs, as -v promises
    assert set(states.values()) == {EXECUTED}


def test_a_trainer_setting_leaves_the_data_and_transform_cached(runs):
    done, states = runs["training"]
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""  # no library log line without -v
    executed = {n for n, s in states.items() if s == EXECUTED}
    assert executed == {"Trainer", "Evaluator", "ServingCheck", "Pusher"}, states
    assert {s for n, s in states.items() if n not in executed} == {CACHED}


def test_an_evaluation_setting_reruns_the_evaluator_and_what_follows(runs):
    done, states = runs["evaluation"]
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""
    executed = {n for n, s in states.items() if s == EXECUTED}
    assert executed == {"Evaluator", "Pusher"}, states


def test_an_edited_schema_is_imported_again_and_read(runs):
    # TFX keys ImportSchemaGen by the schema's path alone; a local run adds its bytes.
    done, states = runs["schema"]
    assert done.returncode == 0, done.stdout + done.stderr
    executed = {n for n, s in states.items() if s == EXECUTED}
    assert {"ImportSchemaGen", "ExampleValidator", "Transform", "Trainer"} <= executed
    assert {"CsvExampleGen", "StatisticsGen"}.isdisjoint(executed)


def test_rejected_data_is_one_line_on_stderr_with_the_na_values_hint(runs):
    done, _ = runs["rejected"]
    assert done.returncode == 3, done.stdout + done.stderr
    [line] = done.stderr.splitlines()  # not `ERROR:absl:Execution N failed.`
    assert line.startswith("tfxp run: data rejected: ") and "fare" in line
    assert len(line) <= 240
    assert "If 'n/a' mark missing values" in done.stdout and "data.na_values" in done.stdout
