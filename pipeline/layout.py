"""Where everything a run writes lives: the one owner of the paths under a run root.

    ROOT/                      default ./runs/<pipeline name>
      pipeline/                pipeline root: every artifact
      metadata.sqlite          ML Metadata
      run.lock                 held by the one run at a time (pid, run id, start)
      last-run.json            the last completed run's key and outcome (pipeline.local.unchanged)
      serving/<model name>/    TF Serving model base path (unless serving.base_path)
      reports/run-<id>.html    one report per run
      schema-draft/            `tfxp schema`: its own pipeline root and store
      jobs/<run id>/           `tfxp predict` / `tfxp evaluate`: the rows they read
      rehearsal/               `tfxp rehearse`: launcher/, tasks/<task>/, volumes/<pvc>/,
                                 metadata.sqlite (KFP's layout)

Nothing else joins path pieces under a run root; a module that needs a path
asks a `RunLayout` (or a `RehearsalLayout`) for it.
"""
from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from pipeline.config import PipelineConfig

RUNS_DIR = "runs"  # under the working directory
BUILD_DIR = "build"  # compiled specs, under the working directory


def default_root(cfg: "PipelineConfig") -> str:
    """./runs/<pipeline name>: the run root when none is given."""
    return os.path.join(os.getcwd(), RUNS_DIR, cfg.pipeline_name)


def spec_path(cfg: "PipelineConfig") -> str:
    """./build/<pipeline name>.kfp.yaml: where `tfxp compile` writes by default."""
    return os.path.join(os.getcwd(), BUILD_DIR, f"{cfg.pipeline_name}.kfp.yaml")


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


@dataclasses.dataclass(frozen=True)
class RunLayout:
    """Every path under one run root (absolute)."""

    root: str
    # The TF Serving model base path; None where no config says which model.
    serving: Optional[str] = None

    @classmethod
    def under(cls, root: Optional[str], cfg: "PipelineConfig") -> "RunLayout":
        """The layout of a run of `cfg` under `root` (default ./runs/<pipeline name>)."""
        root = os.path.abspath(root or default_root(cfg))
        serving = (cfg.resolve(cfg.serving.base_path) if cfg.serving.base_path
                   else os.path.join(root, "serving", cfg.serving.model_name))
        return cls(root=root, serving=serving)

    @staticmethod
    def models_dir(root: str) -> str:
        """ROOT/serving: where each model's default TF Serving base path lives."""
        return os.path.join(os.path.abspath(root), "serving")

    @classmethod
    def of_model(cls, root: str, model_name: str) -> "RunLayout":
        """The layout of an existing root for the model under ROOT/serving/<model name>."""
        return cls(root=os.path.abspath(root),
                   serving=os.path.join(cls.models_dir(root), model_name))

    @classmethod
    def at(cls, root: str) -> "RunLayout":
        """The layout of an existing root, for reading its store and writing reports."""
        return cls(root=os.path.abspath(root))

    def require_directory(self) -> None:
        """A root that exists must be a directory (ConfigError naming it otherwise)."""
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            from pipeline.errors import ConfigError
            raise ConfigError(f"run root {self.root} is a file; give a directory (--root)")

    @property
    def pipeline_root(self) -> str:
        return os.path.join(self.root, "pipeline")

    @property
    def metadata(self) -> str:
        return os.path.join(self.root, "metadata.sqlite")

    @property
    def lock(self) -> str:
        return os.path.join(self.root, "run.lock")

    @property
    def last_run(self) -> str:
        return os.path.join(self.root, "last-run.json")

    @property
    def reports(self) -> str:
        return os.path.join(self.root, "reports")

    def report(self, run_id: str) -> str:
        """ROOT/reports/run-<id>.html, the run id made safe as a file name."""
        return os.path.join(self.reports, f"run-{_safe(run_id)}.html")

    def job(self, run_id: str) -> str:
        """ROOT/jobs/<run id>: what a `tfxp predict` or `tfxp evaluate` run reads."""
        return os.path.join(self.root, "jobs", _safe(run_id))

    @property
    def schema_draft(self) -> "RunLayout":
        """The data stage's own run for `tfxp schema`, apart from the pipeline's store."""
        return RunLayout(root=os.path.join(self.root, "schema-draft"))

    @property
    def rehearsal(self) -> "RehearsalLayout":
        return RehearsalLayout(os.path.join(self.root, "rehearsal"))


@dataclasses.dataclass(frozen=True)
class RehearsalLayout:
    """A rehearsal's stand-ins for what the cluster provides, under one directory."""

    root: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", os.path.abspath(self.root))

    @property
    def launcher(self) -> str:
        """Stands in for the launcher's /minio, /s3 and /gcs mounts."""
        return os.path.join(self.root, "launcher")

    def task(self, name: str) -> str:
        """A task's working directory: its ExecutorOutput and its log."""
        return os.path.join(self.root, "tasks", name)

    def task_log(self, name: str) -> str:
        return os.path.join(self.task(name), "log.txt")

    def executor_output(self, name: str) -> str:
        return os.path.join(self.task(name), "executor_output.json")

    @property
    def metadata(self) -> str:
        """ML Metadata as KFP's launcher records it (SQLite standing in for the cluster's)."""
        return os.path.join(self.root, "metadata.sqlite")

    @property
    def uri_map(self) -> str:
        """Object-store prefixes -> the local directories standing in for them (JSON),
        so readers of the store find the artifacts its URIs name."""
        return os.path.join(self.root, "uri_map.json")

    def task_error(self, name: str) -> str:
        """The exception a failed task raised, as the rehearsal's fork server saved it."""
        return os.path.join(self.task(name), "error.pickle")

    def volume(self, claim: str) -> str:
        """A persistent volume claim's contents."""
        return os.path.join(self.root, "volumes", claim)
