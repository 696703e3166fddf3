"""Side-by-side runs of two servers: alternating, paired, judged by CPU per request.

Both benchmarks that price a feature (authentication, observability) run
the server with it and the server without it strictly alternating,
A B A B ... A (never one server twice in a row: a server's second run in a
row was seen to start slow). Each B run is compared with the mean of the A
runs just before and after it, which cancels a linear drift, and the cost
is the median of those ratios: a neighbour loading the machine for a while
slows a run and its neighbours alike, which a ratio of two medians would
not cancel.

The figure to trust on a shared machine is the CPU time the worker
processes spend per request (``psutil``, before and after each run): it
is what throughput is made of when the workers are the bottleneck, and a
neighbour moves it much less than throughput.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil

from perf.servers import ServerProcess
from perf.wrk_runner import WrkResult, median_result

__all__ = ["Side", "alternate", "cpu_costs", "pair_costs", "workers_cpu_seconds"]


@dataclass(frozen=True)
class Side:
    """One server's runs."""

    name: str
    rounds: list[WrkResult] = field(default_factory=list)
    # CPU time (user + system) the worker processes spent per request, µs, per run.
    cpu_us: list[float] = field(default_factory=list)

    @property
    def median(self) -> WrkResult:
        return median_result(self.rounds)


def workers_cpu_seconds(server: ServerProcess) -> float:
    """User + system CPU time of the server's worker processes so far."""
    total = 0.0
    for pid in server.worker_pids():
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            total += times.user + times.system
    return total


def alternate(with_feature: tuple[Side, ServerProcess], without: tuple[Side, ServerProcess],
              rounds: int, run: Callable[[ServerProcess], WrkResult],
              after_each: Callable[[Side, int, WrkResult, float], None] | None = None) -> None:
    """``rounds`` runs of ``without``, each between two runs of ``with_feature``."""
    schedule = [with_feature, without] * rounds + [with_feature]
    for n, (side, server) in enumerate(schedule):
        cpu_before = workers_cpu_seconds(server)
        result = run(server)
        cpu = (workers_cpu_seconds(server) - cpu_before) / max(result.requests, 1) * 1e6
        side.rounds.append(result)
        side.cpu_us.append(cpu)
        if after_each is not None:
            after_each(side, n, result, cpu)


def cpu_costs(with_feature: Side, without: Side) -> list[float]:
    """1 - CPU per request without / with, each ``without`` run against its two neighbours."""
    return [1 - p / ((before + after) / 2)
            for before, p, after in zip(with_feature.cpu_us, without.cpu_us, with_feature.cpu_us[1:],
                                        strict=False)
            if before and after]


def pair_costs(with_feature: Side, without: Side) -> list[float]:
    """1 - throughput with / without, each ``without`` run against its two neighbours."""
    return [1 - (before.rps + after.rps) / 2 / p.rps
            for before, p, after in zip(with_feature.rounds, without.rounds, with_feature.rounds[1:],
                                        strict=False)
            if p.rps]
