"""What metrics and request logging cost, and how fast /metrics answers.

    python -m perf.bench_observability [--rounds 4] [--duration 5] [--out FILE]

Two ``usermgmt serve`` of the same build on the same data: one as shipped
(metrics and access log on), one with ``USERMGMT_METRICS_ENABLED=0`` and
``USERMGMT_ACCESS_LOG=0``. wrk drives cached ``GET /api/users/{id}``
against them alternately; the cost is the throughput lost with both on.
Then a 4-worker server is scraped 50 times and the scrape latency reported.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import tempfile
import time
import urllib.request
from pathlib import Path

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
    parser.add_argument("--rounds", type=int, default=4)
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
        results: dict[str, list[float]] = {"observed": [], "dark": []}
        with on, off:
            on.wait_ready()
            off.wait_ready()
            token = log_in(on.url, password)
            for server in (on, off):
                _wrk(server, token, 2)
            for _ in range(args.rounds):
                for server in (on, off):
                    results[server.name].append(_wrk(server, token, args.duration).rps)
        four = _server("four", url, workdir, 4, 4)
        with four:
            four.wait_ready()
            token4 = log_in(four.url, password)
            _wrk(four, token4, 2)  # every worker has series to aggregate
            scrapes = sorted(scrape_latencies(four.url, token4))
    observed, dark = statistics.median(results["observed"]), statistics.median(results["dark"])
    cost = 1 - observed / dark
    report = "\n".join([
        "# Observability cost and scrape latency",
        "",
        f"command: `python -m perf.bench_observability --rounds {args.rounds} --duration {args.duration:g}`",
        "",
        "Cached GET /api/users/{id}, 2 workers x 4 threads, wrk 32 connections, runs alternating:",
        "",
        "| server | median rps | runs |",
        "|---|---|---|",
        f"| metrics + access log on | {observed:.0f} | {', '.join(f'{r:.0f}' for r in results['observed'])} |",
        f"| both off | {dark:.0f} | {', '.join(f'{r:.0f}' for r in results['dark'])} |",
        "",
        f"**Throughput cost of metrics and request logging: {cost:.1%}** (objective: under 10%).",
        "",
        f"GET /metrics on a 4-worker server, 50 scrapes: p50 {scrapes[len(scrapes) // 2]:.1f} ms, "
        f"p99 {scrapes[int(0.99 * (len(scrapes) - 1))]:.1f} ms, max {scrapes[-1]:.1f} ms (objective: under 50 ms).",
    ]) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report)


if __name__ == "__main__":
    main()
