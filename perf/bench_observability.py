"""What metrics and request logging cost, and how fast /metrics answers.

    python -m perf.bench_observability [--rounds 4] [--duration 5] [--out FILE]

Two ``usermgmt serve`` of the same build on the same data: one as shipped
(metrics and access log on), one with ``USERMGMT_METRICS_ENABLED=0`` and
``USERMGMT_ACCESS_LOG=0``. wrk drives cached ``GET /api/users/{id}``
against them, alternating and paired as :mod:`perf.paired` describes; the
cost is the worker CPU per request that observation adds (throughput's
cost is reported beside it). Then a 4-worker server is scraped 50 times,
one after another with no other load, and the scrape latency reported.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

from perf.paired import Side, alternate, cpu_costs, pair_costs
from perf.servers import (
    ServerProcess,
    benchmark_databases,
    create_admin,
    free_port,
    log_in,
    seed_users,
    service_command,
)
from perf.wrk_runner import WrkResult, run_wrk

USERS = 1000
HOT_COUNT = 100


def _server(name: str, url: str, workdir: Path, workers: int, threads: int, **env: str) -> ServerProcess:
    port = free_port()
    settings = {"DATABASE_URL": url, "USERMGMT_MIGRATE_ON_START": "0",
                "USERMGMT_DATA_DIR": str(workdir / name), **env}
    return ServerProcess(name, service_command(port, workers, threads), settings, port,
                         workdir / f"{name}.log", workers)


def _wrk(server: ServerProcess, token: str, duration: float) -> WrkResult:
    env = {"PERF_USERS": str(USERS), "PERF_HOT_COUNT": str(HOT_COUNT),
           "PERF_RUN_PREFIX": secrets.token_hex(4), "PERF_TOKEN": token}
    return run_wrk(server.url, "get_cached", duration, 32, 2, env)


def scrape_latencies(url: str, token: str, count: int = 50) -> list[float]:
    latencies = []
    for _ in range(count):
        request = urllib.request.Request(url + "/metrics", headers={"Authorization": f"Bearer {token}"})
        started = time.perf_counter()
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6,
                        help="runs with both off, each between two runs with both on")
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="um-obs-"))
    with benchmark_databases(workdir, None) as dbs:
        url = dbs.service_url
        seed_users(url, USERS)
        password = secrets.token_urlsafe(18)
        create_admin(url, password)
        on = _server("observed", url, workdir, 2, 4)
        off = _server("dark", url, workdir, 2, 4, USERMGMT_METRICS_ENABLED="0", USERMGMT_ACCESS_LOG="0")
        observed, dark = Side("observed"), Side("dark")
        with on, off:
            on.wait_ready()
            off.wait_ready()
            token = log_in(on.url, password)
            for server in (on, off):
                _wrk(server, token, 2)

            def report(side: Side, n: int, result: WrkResult, cpu: float) -> None:
                print(f"  {side.name:<9} run {n + 1}: {result.rps:6.0f} rps  {cpu:6.1f} µs CPU/request",
                      flush=True)

            alternate((observed, on), (dark, off), args.rounds,
                      lambda server: _wrk(server, token, args.duration), report)
        four = _server("four", url, workdir, 4, 4)
        with four:
            four.wait_ready()
            token4 = log_in(four.url, password)
            _wrk(four, token4, 2)  # every worker has series to aggregate
            scrapes = sorted(scrape_latencies(four.url, token4))
    cpu_cost = statistics.median(cpu_costs(observed, dark))
    rps_cost = statistics.median(pair_costs(observed, dark))
    verdict = "within" if cpu_cost < 0.10 else "OVER"

    def runs(side: Side) -> str:
        return ", ".join(f"{r.rps:.0f}" for r in side.rounds)

    markdown = "\n".join([
        "# Observability cost and scrape latency",
        "",
        f"command: `python -m perf.bench_observability --rounds {args.rounds} --duration {args.duration:g}"
        + (f" --out {args.out}`" if args.out else "`"),
        "",
        f"Cached GET /api/users/{{id}}, 2 workers x 4 threads, wrk 32 connections, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f} at the end; runs alternating A B A ... A "
        "(see perf/paired.py):",
        "",
        "| server | median µs CPU/request | median rps | runs (rps) |",
        "|---|---|---|---|",
        f"| metrics + access log on | {statistics.median(observed.cpu_us):.1f} | {observed.median.rps:.0f} "
        f"| {runs(observed)} |",
        f"| both off | {statistics.median(dark.cpu_us):.1f} | {dark.median.rps:.0f} | {runs(dark)} |",
        "",
        f"**Cost of metrics and request logging: {cpu_cost:.1%} of worker CPU per request** "
        f"({verdict} the 10% objective); in throughput, {rps_cost:.1%} "
        "(median of paired runs; throughput moves with whatever else the machine runs).",
        "",
        f"GET /metrics on a 4-worker server, 50 scrapes: p50 {scrapes[len(scrapes) // 2]:.1f} ms, "
        f"p99 {scrapes[int(0.99 * (len(scrapes) - 1))]:.1f} ms, max {scrapes[-1]:.1f} ms (objective: under 50 ms).",
    ]) + "\n"
    print(markdown)
    if args.out:
        args.out.write_text(markdown)


if __name__ == "__main__":
    main()
