"""What a TF Serving model base path serves: the one reader of served state.

"Served" means what `models.config` (TF Serving's `ModelServerConfig`, read
with `--model_config_file`) serves: the versions its version policy names
that are on disk, and its labels. A version directory the config does not
serve is on disk only: TF Serving never loads it. Everything that asks what
is served reads it here: the Pusher ("already serving"), both baselines
(locally and on Kubeflow), `tfxp versions | promote | rollback`, the unchanged
check and the bench.

Every file kept under the base path is read with its errors handled: a
`models.config` that does not parse, a label pointing at a version that is
not on disk, a damaged `stable-history.json` become `Problem`s, each one line
naming the file, the problem and how to repair it; nothing here raises a
parser's traceback.

A push stages `models.config` beside the version's staging directory before
it renames the version into place (`.staging-V.models.config`). A version
on disk whose staged config is still there belongs to a push that died
between the two renames: it is `pending`, not served, and the next push
moves it back to staging and sweeps it.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any, Optional

from google.protobuf import text_format
from tensorflow_serving.config import model_server_config_pb2 as msc

STABLE, CANARY = "stable", "canary"
LABELS = (STABLE, CANARY)
# No digits-only names, so TF Serving never mistakes them for versions.
CONFIG_FILE = "models.config"
HISTORY_FILE = "stable-history.json"
STAGING_PREFIX = ".staging-"
FINGERPRINT_FILE = "fingerprint.pb"
# Beside every version (TF Serving ignores assets.extra/): the statistics of
# the data that trained it, the drift baseline while it is served.
STATISTICS_DIR = os.path.join("assets.extra", "training_statistics")


class ServedStateError(ValueError):
    """A file under the serving base path that cannot be used: one line naming it,
    the problem and how to repair it."""


@dataclasses.dataclass(frozen=True)
class Problem:
    path: str
    problem: str
    repair: str
    dangling: bool = False  # a label pointing at a version not on disk (the file parses)

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}; {self.repair}"


def config_path(base_path: str) -> str:
    """<base>/models.config: what TF Serving's --model_config_file points at."""
    return os.path.join(base_path, CONFIG_FILE)


def history_path(base_path: str) -> str:
    """<base>/stable-history.json: every version that was `stable`, oldest first."""
    return os.path.join(base_path, HISTORY_FILE)


def staged_config_path(base_path: str, version: int) -> str:
    """The next models.config of the push that is publishing `version`."""
    return os.path.join(base_path, f"{STAGING_PREFIX}{int(version)}.{CONFIG_FILE}")


def staged_history_path(base_path: str, version: int) -> str:
    return os.path.join(base_path, f"{STAGING_PREFIX}{int(version)}.{HISTORY_FILE}")


def on_disk(base_path: str) -> list[int]:
    """Every version directory (all-digit name), oldest first."""
    try:
        names = os.listdir(base_path)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted(int(n) for n in names
                  if n.isdigit() and os.path.isdir(os.path.join(base_path, n)))


def fingerprint(saved_model_dir: str) -> Optional[str]:
    """A digest of a SavedModel's fingerprint.pb (or, lacking one, its graph and variables)."""
    names = [FINGERPRINT_FILE] if os.path.exists(
        os.path.join(saved_model_dir, FINGERPRINT_FILE)) else ["saved_model.pb", "variables"]
    digest = hashlib.sha256()
    found = False
    for name in names:
        path = os.path.join(saved_model_dir, name)
        files = ([path] if os.path.isfile(path) else
                 sorted(os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs))
        for file in files:
            found = True
            digest.update(os.path.relpath(file, saved_model_dir).encode())
            with open(file, "rb") as f:
                digest.update(f.read())
    return digest.hexdigest() if found else None


def _read_text(path: str) -> tuple[Optional[str], Optional[str]]:
    """(text, None), (None, None) when there is no file, or (None, why it cannot be read)."""
    try:
        with open(path, encoding="utf-8") as f:
            return f.read(), None
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as e:
        return None, f"cannot be read ({getattr(e, 'strerror', None) or e})"


def _served_by_policy(model: msc.ModelConfig, present: list[int]) -> set[int]:
    """The versions one model entry makes TF Serving load, as its file system source does."""
    policy = model.model_version_policy
    choice = policy.WhichOneof("policy_choice")
    if choice == "all":
        return set(present)
    if choice == "specific":
        return {int(v) for v in policy.specific.versions}
    count = policy.latest.num_versions if choice == "latest" else 1
    return set(present[-max(count, 1):]) if present else set()


@dataclasses.dataclass(frozen=True)
class ServedState:
    """One reading of a model base path."""

    base_path: str
    on_disk: tuple[int, ...]
    config_text: Optional[str]  # None: no models.config
    config: Optional[msc.ModelServerConfig]  # None: none, or it does not parse
    history: tuple[int, ...]
    pending: tuple[int, ...]  # renamed into place by a push that died before its config
    problems: tuple[Problem, ...]
    wanted: tuple[int, ...]  # what the config's policies name, on disk or not
    labels: dict[str, int]  # as the config says, dangling ones included

    @property
    def config_path(self) -> str:
        return config_path(self.base_path)

    @property
    def served(self) -> tuple[int, ...]:
        """The versions TF Serving loads: named by models.config and on disk."""
        present = set(self.on_disk)
        return tuple(sorted(v for v in self.wanted if v in present))

    def serves(self, version: int) -> bool:
        return int(version) in self.served

    @property
    def dangling(self) -> dict[str, int]:
        """Labels pointing at a version that is not on disk."""
        return {k: v for k, v in self.labels.items() if v not in self.on_disk}

    @property
    def live_labels(self) -> dict[str, int]:
        """The labels that point at a version on disk."""
        return {k: v for k, v in self.labels.items() if v in self.on_disk}

    def labels_of(self, version: int) -> list[str]:
        return [name for name, v in self.labels.items() if v == int(version)]

    def unreadable(self) -> list[Problem]:
        """Files that do not parse (a label's dangling is not among them)."""
        return [p for p in self.problems if not p.dangling]

    def require_readable(self) -> None:
        """Raises ServedStateError for the first file that does not parse."""
        bad = self.unreadable()
        if bad:
            raise ServedStateError(str(bad[0]))

    def version_path(self, version: int) -> str:
        return os.path.join(self.base_path, str(int(version)))

    def serving(self, model_path: str) -> Optional[int]:
        """The served version that is this very model (same SavedModel fingerprint)."""
        mine = fingerprint(model_path)
        if mine is None:
            return None
        for version in reversed(self.served):
            if fingerprint(self.version_path(version)) == mine:
                return version
        return None

    def baseline(self, candidate_dir: Optional[str] = None) -> Optional[int]:
        """The model now served: the newest served version that is not the candidate
        (same fingerprint); None when nothing else is served (a first run)."""
        mine = fingerprint(candidate_dir) if candidate_dir else None
        for version in reversed(self.served):
            if mine is None or fingerprint(self.version_path(version)) != mine:
                return version
        return None

    def key(self) -> dict[str, Any]:
        """What is served, for comparing two readings: the config as written, and each
        version directory's saved_model.pb (size, modification time)."""
        versions = {}
        for v in self.on_disk:
            try:
                st = os.stat(os.path.join(self.version_path(v), "saved_model.pb"))
                versions[str(v)] = [st.st_size, st.st_mtime_ns]
            except OSError:
                versions[str(v)] = None
        return {"models.config": self.config_text, "versions": versions,
                "pending": list(self.pending)}


def parse_config(text: str) -> msc.ModelServerConfig:
    """The text form of a ModelServerConfig (raises text_format.ParseError)."""
    return text_format.Parse(text, msc.ModelServerConfig())


def read(base_path: str) -> ServedState:
    """What `base_path` serves; damaged files are `problems`, never exceptions."""
    present = on_disk(base_path)
    problems: list[Problem] = []
    repair = ("`tfxp promote VERSION` rewrites it from the versions on disk "
              "(`tfxp versions` lists them)")

    path = config_path(base_path)
    text, unreadable = _read_text(path)
    config: Optional[msc.ModelServerConfig] = None
    if unreadable:
        problems.append(Problem(path, unreadable, repair))
    elif text is not None:
        try:
            config = parse_config(text)
        except text_format.ParseError as e:
            problems.append(Problem(path, f"does not parse as TF Serving's ModelServerConfig "
                                          f"({e})", repair))
    labels: dict[str, int] = {}
    wanted: set[int] = set()
    if config is not None:
        for model in config.model_config_list.config:
            labels.update({k: int(v) for k, v in model.version_labels.items()})
            wanted |= _served_by_policy(model, present)
        wanted |= set(labels.values())
        for name, version in sorted(labels.items()):
            if version not in present:
                problems.append(Problem(
                    path, f"label {name!r} points at version {version}, which is not on disk",
                    f"`tfxp promote VERSION --label {name}` points it at a version that is",
                    dangling=True))

    hpath = history_path(base_path)
    htext, unreadable = _read_text(hpath)
    history: list[int] = []
    if unreadable:
        problems.append(Problem(hpath, unreadable, "remove it; `tfxp promote VERSION` "
                                                   "starts the history again"))
    elif htext is not None:
        try:
            values = json.loads(htext)
            if not isinstance(values, list):
                raise ValueError("not a list")
            history = [int(v) for v in values]
        except (ValueError, TypeError) as e:
            problems.append(Problem(
                hpath, f"is not a JSON list of versions ({e})",
                "remove it; `tfxp promote VERSION` starts the history again"))

    pending = tuple(v for v in present
                    if v not in wanted and os.path.exists(staged_config_path(base_path, v)))
    return ServedState(base_path=base_path, on_disk=tuple(present), config_text=text,
                       config=config, history=tuple(history), pending=pending,
                       problems=tuple(problems), wanted=tuple(sorted(wanted)), labels=labels)


def model_names_under(directory: str) -> list[str]:
    """The model base paths directly under a directory (those holding a version or a
    models.config), by name."""
    try:
        names = sorted(os.listdir(directory))
    except (FileNotFoundError, NotADirectoryError):
        return []
    return [n for n in names if not n.startswith(".") and os.path.isdir(
        os.path.join(directory, n)) and (on_disk(os.path.join(directory, n)) or os.path.exists(
            config_path(os.path.join(directory, n))))]
