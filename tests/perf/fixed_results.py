"""A fixed benchmark result set: what the report and chart tests draw from."""

from __future__ import annotations

from perf.constant_rate import ConstantRateResult
from perf.report import (
    FASTAPI,
    REFERENCE,
    SERVICE,
    CacheLookups,
    ConstantRateRow,
    SideResult,
    WorkloadRow,
)
from perf.wrk_runner import WrkResult

WORKLOADS = ("get_cached", "get_uncached", "list")
SERVERS = (SERVICE, FASTAPI, REFERENCE)


def wrk_result(rps: float) -> WrkResult:
    return WrkResult(requests=int(rps * 5), seconds=5.0, rps=rps, p50_ms=2.0, p99_ms=9.0,
                     p999_ms=20.0, max_ms=31.0, s2xx=int(rps * 5), s3xx=0, s4xx=0, s5xx=0,
                     socket_errors=0)


def side(rps: float) -> SideResult:
    results = [wrk_result(rps * 0.9), wrk_result(rps), wrk_result(rps * 1.1)]
    return SideResult(results, results[1], 80 << 20, 81 << 20, 0, [0.0, 0.0, 0.0],
                      [250.0, 240.0, 260.0])


def constant_rate(rate: float, p99_ms: float) -> ConstantRateResult:
    return ConstantRateResult(target_rps=rate, achieved_rps=rate, sent=int(rate * 5), dropped=0,
                              p50_ms=1.5, p90_ms=4.0, p99_ms=p99_ms, p999_ms=p99_ms * 2,
                              max_ms=p99_ms * 3, s2xx=int(rate * 5), s3xx=0, s4xx=0, s5xx=0,
                              socket_errors=0, client_cpu_cores=0.1)


def workload_rows() -> list[WorkloadRow]:
    """Every server on every workload; the service's cache hits on the GETs."""
    rates = {SERVICE: 3000.0, FASTAPI: 2000.0, REFERENCE: 1000.0}
    rows = [WorkloadRow(name, f"the {name} workload",
                        {role: side(rates[role]) for role in SERVERS})
            for name in WORKLOADS]
    rows[0].cache = CacheLookups([5000, 5000, 5000], [0, 0, 0])
    rows[1].cache = CacheLookups([100, 300, 500], [900, 700, 500])
    return rows


def open_loop_rows() -> list[ConstantRateRow]:
    return [
        ConstantRateRow("get_cached open loop @ 50% of own peak",
                        {SERVICE: constant_rate(1500, 8.0), FASTAPI: constant_rate(1000, 12.0),
                         REFERENCE: constant_rate(500, 30.0)}),
        ConstantRateRow("get_cached_ceiling open loop @ 50% of own peak",
                        {SERVICE: constant_rate(2000, 60.0)}),
    ]
