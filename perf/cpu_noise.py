"""How much CPU other processes took while the benchmark measured.

On a small shared machine another job (a test run, a pip install) can
take a core in the middle of a run and silently halve a result. This
measures it instead of guessing: the machine's user + system CPU time,
minus the CPU time of the benchmark's own processes (this process and its
descendants — wrk, the servers, their workers — plus the embedded
PostgreSQL's postmaster and its backends), over the wall time. The result
is "cores used by others", reported next to each workload.

Interrupt and softirq time (loopback networking) is left out of both
sides: the kernel does not attribute it to a process.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass

import psutil

__all__ = ["CpuNoise", "CpuSnapshot"]


@dataclass(frozen=True)
class CpuSnapshot:
    wall: float
    machine: float  # user + nice + system seconds, all CPUs
    ours: float  # user + system seconds of the benchmark's processes


def _machine_cpu_seconds() -> float:
    times = psutil.cpu_times()
    return float(times.user + times.nice + times.system)


def _tree(root: psutil.Process) -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        return [root, *root.children(recursive=True)]
    return []


def _process_cpu_seconds(process: psutil.Process) -> float:
    """Own CPU plus that of children it has already reaped (finished wrk runs, old workers)."""
    with contextlib.suppress(psutil.Error):
        t = process.cpu_times()
        return float(t.user + t.system + t.children_user + t.children_system)
    return 0.0


class CpuNoise:
    """Cores used by processes outside the benchmark between two snapshots.

    Args:
        postmaster_pid: the embedded PostgreSQL's postmaster, whose
            backends are the benchmark's too; None when the database is
            external (its CPU then counts as "others").
    """

    def __init__(self, postmaster_pid: int | None = None) -> None:
        self._roots = [psutil.Process(os.getpid())]
        if postmaster_pid is not None:
            with contextlib.suppress(psutil.Error):
                self._roots.append(psutil.Process(postmaster_pid))

    def snapshot(self) -> CpuSnapshot:
        ours = sum(_process_cpu_seconds(p) for root in self._roots for p in _tree(root))
        return CpuSnapshot(time.monotonic(), _machine_cpu_seconds(), ours)

    def wait_until_quiet(self, threshold: float, max_wait: float, window: float = 2.0) -> float:
        """Wait (at most ``max_wait`` s) for a ``window`` in which others use < ``threshold`` cores.

        Call it between runs, while the benchmark itself is idle. Returns
        the seconds waited; a machine that never quiets down is measured
        anyway, and the report flags what the noise touched.
        """
        started = time.monotonic()
        while True:
            before = self.snapshot()
            time.sleep(window)
            if self.other_cores(before, self.snapshot()) < threshold:
                break
            if time.monotonic() - started >= max_wait:
                break
        return time.monotonic() - started

    @staticmethod
    def other_cores(before: CpuSnapshot, after: CpuSnapshot) -> float:
        """Average number of cores busy with other processes between the snapshots."""
        wall = after.wall - before.wall
        if wall <= 0:
            return 0.0
        others = (after.machine - before.machine) - (after.ours - before.ours)
        return max(0.0, others / wall)
