"""The request edge, chosen by measurement: worker classes side by side.

    python -m perf.bench_workers [--rounds 3] [--duration 5] [--out FILE]

Every configuration serves ``perf/reference/floor.py`` (constant bytes, no
middleware, no database) under gunicorn's master with 2 workers: what each
edge itself costs per request, the ceiling of any app on it. All are up at
once and runs alternate round by round (A B C … then … C B A), so a
neighbour's load falls on all of them alike; each is judged by its median
requests/s and by its workers' CPU per request (the steadier figure on a
shared machine). Connection balance is the busiest worker's part of the
workers' CPU time in a run: 50% is an even spread over 2 workers, 100%
means one worker took every keep-alive connection.

| configuration | what |
|---|---|
| gthread 2x4 | gunicorn's threaded worker, WSGI (the service's edge before) |
| asgi (python parser) | gunicorn 27's own asyncio worker, ``falcon.asgi``, its Python HTTP parser |
| asgi (gunicorn_h1c) | the same with the optional C parser (when ``gunicorn_h1c`` is installed) |
| uvicorn | uvicorn's gunicorn worker: uvloop and the httptools C parser |
| usermgmt edge | :class:`app.edge.Worker`: uvicorn's worker plus the service's deadlines, limits and single-write responses |
| gevent | gunicorn's gevent worker, WSGI (when gevent is installed) |

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
from dataclasses import dataclass
from pathlib import Path

import psutil

from perf.report import environment
from perf.servers import ServerProcess, _venv_script, free_port
from perf.wrk_runner import WrkResult, run_wrk

WORKERS = 2


def _gunicorn(port: int, *options: str, app: str = "perf.reference.floor:get_asgi_app()") -> list[str]:
    script = _venv_script("gunicorn")
    assert script is not None, "gunicorn is not installed beside this Python"
    return [str(script), "-w", str(WORKERS), "--bind", f"127.0.0.1:{port}", "--timeout", "30",
            *options, app]


def configurations() -> list[tuple[str, list[str]]]:
    wsgi = "perf.reference.floor:get_app()"
    chosen = [
        ("gthread 2x4", ["-k", "gthread", "--threads", "4"], wsgi),
        ("asgi (python parser)", ["-k", "asgi", "--http-parser", "python"], None),
    ]
    if importlib.util.find_spec("gunicorn_h1c") is not None:
        chosen.append(("asgi (gunicorn_h1c)", ["-k", "asgi", "--http-parser", "fast"], None))
    chosen += [
        ("uvicorn", ["-k", "uvicorn_worker.UvicornWorker"], None),
        ("usermgmt edge", ["-c", "python:app.gunicorn_conf"], None),
    ]
    if importlib.util.find_spec("gevent") is not None:
        chosen.append(("gevent", ["-k", "gevent"], wsgi))
    return [(name, options + ([app] if app else [])) for name, options, app in chosen]


@contextlib.contextmanager
def _all_running(servers: Sequence[ServerProcess]) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for server in servers:
            stack.enter_context(server)
        for server in servers:
            server.wait_ready()
        yield


@dataclass(frozen=True)
class Run:
    result: WrkResult
    cpu_us: float  # the workers' CPU time per request
    # The busiest worker's part of the workers' CPU time: 1/WORKERS when
    # the connections are spread evenly, 1.0 when one worker got them all.
    busiest: float


def _cpu_by_worker(server: ServerProcess) -> dict[int, float]:
    seconds = {}
    for pid in server.worker_pids():
        with contextlib.suppress(psutil.Error):
            times = psutil.Process(pid).cpu_times()
            seconds[pid] = times.user + times.system
    return seconds


def _run(server: ServerProcess, duration: float) -> Run:
    before = _cpu_by_worker(server)
    result = run_wrk(server.url, "get_cached", duration, 32, 2,
                     {"PERF_USERS": "1000", "PERF_RUN_PREFIX": secrets.token_hex(4)})
    spent = [seconds - before.get(pid, 0.0) for pid, seconds in _cpu_by_worker(server).items()]
    total = sum(spent)
    return Run(result, total / max(result.requests, 1) * 1e6,
               max(spent) / total if total > 0 else 1.0)


def _alternate(servers: Sequence[ServerProcess], rounds: int,
               duration: float) -> dict[str, list[Run]]:
    for server in servers:
        _run(server, 2.0)  # warm-up
    results: dict[str, list[Run]] = {server.name: [] for server in servers}
    for n in range(rounds):
        for server in servers if n % 2 == 0 else servers[::-1]:
            run = _run(server, duration)
            results[server.name].append(run)
            print(f"  {server.name:<24} {run.result.rps:7.0f} rps  {run.cpu_us:5.0f} µs CPU/req  "
                  f"busiest worker {run.busiest:.0%}", flush=True)
    return results


def _rows(results: dict[str, list[Run]]) -> list[str]:
    lines = ["| configuration | median rps | median worker CPU µs/request | median p99 ms "
             "| busiest worker's CPU share, median / max | runs (rps) |",
             "|---|---|---|---|---|---|"]
    for name, runs in results.items():
        lines.append(f"| {name} | {statistics.median(r.result.rps for r in runs):.0f} | "
                     f"{statistics.median(r.cpu_us for r in runs):.0f} | "
                     f"{statistics.median(r.result.p99_ms for r in runs):.1f} | "
                     f"{statistics.median(r.busiest for r in runs):.0%} / "
                     f"{max(r.busiest for r in runs):.0%} | "
                     + ", ".join(f"{r.result.rps:.0f}" for r in runs) + " |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="um-workers-"))
    servers: list[ServerProcess] = []
    for name, options in configurations():
        port = free_port()
        servers.append(ServerProcess(name, _gunicorn(port, *options), {}, port,
                                     workdir / f"{len(servers)}.log", WORKERS))
    with _all_running(servers):
        results = _alternate(servers, args.rounds, args.duration)
    command = f"python -m perf.bench_workers --rounds {args.rounds} --duration {args.duration:g}" + (
        f" --out {args.out}" if args.out else "")
    report = "\n".join([
        "# The request edge: worker classes side by side",
        "",
        f"Command: `{command}`",
        "",
        f"Constant bytes (`perf/reference/floor.py`) under gunicorn with {WORKERS} workers; "
        f"{os.cpu_count()} cores shared by wrk (32 connections, 2 threads) and the servers; "
        f"{args.rounds} alternating rounds of {args.duration:g} s per configuration.",
        "",
        *_rows(results),
        "",
        "## Environment",
        "",
        *[f"- {key}: {value}" for key, value in environment({}).items()],
    ]) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report)


if __name__ == "__main__":
    main()
