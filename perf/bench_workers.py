"""Which gunicorn worker class and thread count: measured, side by side.

    python -m perf.bench_workers [--rounds 3] [--duration 5] [--out FILE]

Two parts, each with every configuration up at once and runs alternating
round by round (so a neighbour's load falls on all of them alike):

1. **gunicorn alone**: ``perf/reference/floor.py`` (constant bytes, no
   middleware, no database) under each worker class and thread count —
   what gunicorn itself costs per request, the ceiling of any app. gevent
   is included when it is importable (it is not a dependency).
2. **the service**: ``usermgmt serve`` with 2 workers and 2, 4 or 8
   threads, cached and uncached ``GET /api/users/{id}``.

wrk: 32 connections, 2 threads, keep-alive, like ``perf/bench.py``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import secrets
import statistics
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

from perf.servers import (
    ServerProcess,
    _venv_script,
    benchmark_databases,
    create_admin,
    free_port,
    log_in,
    seed_users,
    service_command,
)
from perf.wrk_runner import WrkResult, run_wrk

USERS = 100_000
FLOOR_CONFIGS = [("gthread", 2, 4), ("gthread", 2, 2), ("gthread", 2, 1), ("gthread", 4, 2),
                 ("sync", 2, 1)]
SERVICE_THREADS = (2, 4, 8)


def _gunicorn(worker_class: str, workers: int, threads: int, port: int) -> list[str]:
    script = _venv_script("gunicorn")
    assert script is not None, "gunicorn is not installed beside this Python"
    return [str(script), "-k", worker_class, "-w", str(workers), "--threads", str(threads),
            "--bind", f"127.0.0.1:{port}", "--timeout", "30", "perf.reference.floor:get_app()"]


@contextlib.contextmanager
def _all_running(servers: Sequence[ServerProcess]) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for server in servers:
            stack.enter_context(server)
        for server in servers:
            server.wait_ready()
        yield


def _alternate(servers: Sequence[ServerProcess], rounds: int, run: object) -> dict[str, list[WrkResult]]:
    assert callable(run)
    for server in servers:
        run(server, 2.0)  # warm-up
    results: dict[str, list[WrkResult]] = {server.name: [] for server in servers}
    for n in range(rounds):
        for server in servers if n % 2 == 0 else servers[::-1]:
            results[server.name].append(run(server, None))
            print(f"  {server.name:<28} {results[server.name][-1].rps:7.0f} rps", flush=True)
    return results


def _rows(results: dict[str, list[WrkResult]]) -> list[str]:
    lines = ["| configuration | median rps | median p99 ms | runs (rps) |", "|---|---|---|---|"]
    for name, runs in results.items():
        lines.append(f"| {name} | {statistics.median(r.rps for r in runs):.0f} | "
                     f"{statistics.median(r.p99_ms for r in runs):.1f} | "
                     + ", ".join(f"{r.rps:.0f}" for r in runs) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="um-workers-"))

    configs = list(FLOOR_CONFIGS)
    if importlib.util.find_spec("gevent") is not None:
        configs.append(("gevent", 2, 1))
    floors = []
    for worker_class, workers, threads in configs:
        port = free_port()
        name = f"{worker_class} {workers}x{threads}" if worker_class == "gthread" else f"{worker_class} {workers}"
        floors.append(ServerProcess(name, _gunicorn(worker_class, workers, threads, port), {}, port,
                                    workdir / f"floor-{len(floors)}.log", workers))
    print("gunicorn alone (perf/reference/floor.py):", flush=True)
    with _all_running(floors):
        floor_results = _alternate(floors, args.rounds, lambda server, duration: run_wrk(
            server.url, "get_cached", duration or args.duration, 32, 2,
            {"PERF_USERS": "1000", "PERF_RUN_PREFIX": secrets.token_hex(4)}))

    service_results: dict[str, dict[str, list[WrkResult]]] = {}
    with benchmark_databases(workdir, None) as dbs:
        seed_users(dbs.service_url, USERS)
        password = secrets.token_urlsafe(18)
        create_admin(dbs.service_url, password)
        services = []
        for threads in SERVICE_THREADS:
            port = free_port()
            env = {"DATABASE_URL": dbs.service_url, "USERMGMT_MIGRATE_ON_START": "0",
                   "USERMGMT_DATA_DIR": str(workdir / f"service-{threads}")}
            services.append(ServerProcess(f"usermgmt serve 2x{threads}", service_command(port, 2, threads),
                                          env, port, workdir / f"service-{threads}.log", 2))
        with _all_running(services):
            token = log_in(services[0].url, password)
            for script in ("get_cached", "get_uncached"):
                print(f"the service, {script}:", flush=True)
                service_results[script] = _alternate(
                    services, args.rounds, lambda server, duration, script=script: run_wrk(
                        server.url, script, duration or args.duration, 32, 2,
                        {"PERF_USERS": str(USERS), "PERF_RUN_PREFIX": secrets.token_hex(4),
                         "PERF_TOKEN": token}))

    command = f"python -m perf.bench_workers --rounds {args.rounds} --duration {args.duration:g}" + (
        f" --out {args.out}" if args.out else "")
    report = "\n".join([
        "# gunicorn worker class and thread count",
        "",
        f"command: `{command}`",
        "",
        f"{os.cpu_count()} cores shared by wrk (32 connections, 2 threads), the servers and PostgreSQL; "
        f"{args.rounds} alternating rounds of {args.duration:g} s per configuration.",
        "",
        "## gunicorn alone: constant bytes (perf/reference/floor.py)",
        "",
        *_rows(floor_results),
        "",
        "## usermgmt serve, 2 workers",
        "",
        "### cached GET /api/users/{id}",
        "",
        *_rows(service_results["get_cached"]),
        "",
        "### uncached GET /api/users/{id}",
        "",
        *_rows(service_results["get_uncached"]),
    ]) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report)


if __name__ == "__main__":
    main()
