"""Resident memory of a whole process tree, sampled while it runs.

`ru_maxrss` names only the largest single process; a pipeline run is a tree
(Beam's multi-process workers, TFX's children), and a machine runs out of
memory on the tree's sum.  So a thread samples the sum of VmRSS over the
child and all its descendants, with wall-clock timestamps that line up with
the execution times ML Metadata records, and each component is then given
the peak of the samples taken while it ran.
"""
from __future__ import annotations

import os
import threading
import time
from typing import Optional

Sample = tuple[float, float]  # (epoch seconds, MiB)
Window = tuple[float, float]  # (start, end) in epoch seconds


def _children_files(pid: int) -> Optional[list[int]]:
    """Direct children from /proc/PID/task/*/children; None when the kernel lacks it."""
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    found: list[int] = []
    for tid in tasks:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                found += [int(c) for c in f.read().split()]
        except FileNotFoundError:
            if not os.path.exists(f"/proc/{pid}/task/{tid}"):
                continue  # the thread ended meanwhile
            return None
        except OSError:
            continue
    return found


def _parents() -> dict[int, list[int]]:
    """ppid -> pids, from every /proc/PID/stat (for kernels without `children`)."""
    out: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: fields follow the last ')'.
        ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        out.setdefault(ppid, []).append(int(name))
    return out


def tree_pids(root: int) -> list[int]:
    """`root` and every live descendant of it."""
    pids, todo, parents = [], [root], None
    while todo:
        pid = todo.pop()
        pids.append(pid)
        children = _children_files(pid) if parents is None else None
        if children is None:
            parents = parents if parents is not None else _parents()
            children = parents.get(pid, [])
        todo += children
    return pids


def rss_kib(pid: int) -> int:
    """VmRSS of one process in KiB; 0 when it has gone (or is a zombie)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def tree_rss_mib(root: int) -> float:
    return sum(rss_kib(p) for p in tree_pids(root)) / 1024


class TreeSampler:
    """Samples a process tree's RSS on a thread until stopped (use as a context)."""

    def __init__(self, pid: int, interval: float = 0.25):
        self.pid, self.interval = pid, interval
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while True:
            self.samples.append((time.time(), tree_rss_mib(self.pid)))
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> "TreeSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    @property
    def peak_mib(self) -> float:
        return max((m for _, m in self.samples), default=0.0)


def peaks_by_window(samples: list[Sample], windows: dict[str, Window]) -> dict[str, float]:
    """Each window's peak MiB: the largest sample taken inside it or, for a window
    shorter than the sampling interval, the sample nearest to it.  Components that
    ran at the same time share their samples (the tree's sum is all one sees)."""
    out: dict[str, float] = {}
    if not samples:
        return out
    for name, (start, end) in windows.items():
        inside = [m for t, m in samples if start <= t <= end]
        if inside:
            out[name] = max(inside)
        else:
            middle = (start + end) / 2
            out[name] = min(samples, key=lambda s: abs(s[0] - middle))[1]
    return out


def outside_windows(samples: list[Sample], windows: dict[str, Window], span: Window
                    ) -> dict[str, float]:
    """Seconds of `span` no window covers, and the peak MiB of the samples taken then."""
    covered, reach = 0.0, span[0]
    for start, end in sorted(windows.values()):
        start, end = max(start, reach), min(end, span[1])
        if end > start:
            covered += end - start
            reach = end
    outside = [m for t, m in samples
               if not any(start <= t <= end for start, end in windows.values())]
    return {"seconds": max(span[1] - span[0] - covered, 0.0),
            "peak_mib": max(outside, default=0.0)}
