"""One run per root: an exclusive lock on ROOT/run.lock, held for the whole run.

`flock` locks belong to the open file: the kernel releases them when the
holder exits, however it dies, so a lock left by a killed run is simply free
and the next run takes it over. The file's content says who holds it (pid, run
id, start time), for the message a second run prints while it waits.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime
import fcntl
import json
import os
import time
from typing import Callable, Iterator, Optional

from pipeline.errors import RootBusy

POLL_SECONDS = 1.0


@dataclasses.dataclass(frozen=True)
class Holder:
    pid: int
    run_id: str
    started: str

    def __str__(self) -> str:
        return f"pid {self.pid}, run {self.run_id}, started {self.started}"


def _read(handle) -> Optional[Holder]:
    handle.seek(0)
    try:
        return Holder(**json.loads(handle.read() or "{}"))
    except (TypeError, ValueError):
        return None


def holder(lock_path: str) -> Optional[Holder]:
    """Who holds the lock now, or None when no live process does."""
    if not os.path.exists(lock_path):
        return None
    with open(lock_path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(handle) or Holder(0, "?", "?")
        fcntl.flock(handle, fcntl.LOCK_UN)
        return None


@contextlib.contextmanager
def run_lock(lock_path: str, run_id: str, wait: bool = True,
             on_wait: Optional[Callable[[Holder], None]] = None) -> Iterator[None]:
    """Holds the root's lock for a run; waits for (or, without `wait`, refuses) a holder."""
    os.makedirs(os.path.dirname(lock_path), exist_ok=True)
    with open(lock_path, "a+") as handle:
        told = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                current = _read(handle) or Holder(0, "?", "?")
                if not wait:
                    raise RootBusy(f"{os.path.dirname(lock_path)} is in use by {current}; "
                                   f"wait for it, or drop --no-wait to queue behind it") from None
                if not told and on_wait is not None:
                    on_wait(current)
                    told = True
                time.sleep(POLL_SECONDS)
        try:
            handle.seek(0)
            handle.truncate()
            handle.write(json.dumps(dataclasses.asdict(Holder(
                os.getpid(), run_id,
                datetime.datetime.now().isoformat(timespec="seconds")))))
            handle.flush()
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)
