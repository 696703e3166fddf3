"""Chaos run: each fault scenario against a real server, one table.

    python -m perf.chaos_report [--out perf/results/chaos.md] [--overload-seconds 30]

For each scenario it prints requests, successes, 503s, other errors,
p50/p99 latency, restarts, recovery seconds and lost writes. The scenarios
are the ones tests/chaos asserts on (shared code in perf/chaos_scenarios.py),
plus the overload scenario: 10x more concurrent clients than DbWorkers for
30 s, reporting worker RSS before and after.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import psutil
import psycopg
import requests

from app.chaos import kill_db_connections
from app.embedded_db import EmbeddedPostgres
from app.migrations import apply_migrations
from perf.chaos_scenarios import (
    Recorder,
    ScenarioResult,
    db_worker_kills,
    lost_writes,
    run_clients,
    seed_users,
)
from perf.harness import Server
from perf.servers import open_to_the_database


def _server(url: str, workdir: Path, name: str, **env: str) -> Server:
    settings = {"DATABASE_URL": url, "USERMGMT_CHAOS": "1", "USERMGMT_LOG_LEVEL": "WARNING",
                "USERMGMT_DATA_DIR": str(workdir / name), **env}
    return Server(settings, workdir / f"{name}.log", workers=2).start()


def kills(url: str, workdir: Path) -> list[ScenarioResult]:
    server = _server(url, workdir, "kills", USERMGMT_CACHE_ENABLED="0", USERMGMT_DB_WORKERS="4")
    try:
        reads = db_worker_kills(server, duration=10.0, every=0.1)
        jepsen = db_worker_kills(server, duration=10.0, every=0.1, readers=1, writers=5)
        with psycopg.connect(url) as conn:
            rows: dict[int, int] = dict(conn.execute("SELECT id, version FROM users").fetchall())
        writes = ScenarioResult("Jepsen set check under the same kills")
        writes.summarise(jepsen.notes["writes"], lambda c: c.status in (200, 201, 204))
        writes.restarts = jepsen.restarts
        writes.lost_writes = len(lost_writes(jepsen.notes["history"], rows))
        return [reads, writes]
    finally:
        server.stop()


def connections_killed(url: str, workdir: Path) -> ScenarioResult:
    server = _server(url, workdir, "conns")
    result = ScenarioResult("every database connection terminated")
    try:
        seed_users(server, 2)
        pids = server.worker_pids()
        recorder = Recorder()
        kill_db_connections(url)
        started = time.monotonic()
        n = 0
        while time.monotonic() - started < 10:
            n += 1
            response = recorder.call(server.http, "write", "POST", server.url + "/api/users",
                                     json={"name": "c", "email": f"conn{n}-{os.getpid()}@example.com"})
            if response is not None and response.status_code == 201:
                result.recovery_seconds = time.monotonic() - started
                break
            time.sleep(0.01)
        result.summarise(recorder.calls, lambda c: c.status == 201)
        result.notes["same worker pids"] = server.worker_pids() == pids
        return result
    finally:
        server.stop()


def outage(workdir: Path) -> ScenarioResult:
    database = EmbeddedPostgres(workdir / "outage-db")
    url = database.start()
    result = ScenarioResult("PostgreSQL stopped for 10 s")
    try:
        apply_migrations(url)
        server = _server(url, workdir, "outage")
        try:
            user_id = seed_users(server, 1)[0]
            time.sleep(0.3)
            for _ in range(10):
                server.http.get(f"{server.url}/api/users/{user_id}", timeout=5)
            recorder = Recorder()
            database.stop_server()
            down = time.monotonic()
            while time.monotonic() - down < 10:
                recorder.call(server.http, "write", "POST", server.url + "/api/users",
                              json={"name": "x", "email": "x@example.com"})
                recorder.call(server.http, "read", "GET", f"{server.url}/api/users/{user_id}")
                time.sleep(0.1)
            database.start_server()
            back = time.monotonic()
            while time.monotonic() - back < 15:
                response = recorder.call(server.http, "write", "POST", server.url + "/api/users",
                                         json={"name": "y", "email": f"y{time.time()}@example.com"})
                if response is not None and response.status_code == 201:
                    result.recovery_seconds = time.monotonic() - back
                    break
                time.sleep(0.05)
            result.summarise(recorder.calls, lambda c: c.status in (200, 201))
            reads = recorder.of("read")
            result.notes["cached reads served while down"] = (
                f"{sum(1 for c in reads if c.status == 200)}/{len(reads)}")
        finally:
            server.stop()
    finally:
        database.stop()
    return result


def overload(url: str, workdir: Path, seconds: float) -> ScenarioResult:
    """10x more concurrent clients than DbWorkers, uncached reads and writes."""
    server = _server(url, workdir, "overload", USERMGMT_CACHE_ENABLED="0", USERMGMT_DB_WORKERS="2")
    result = ScenarioResult(f"overload: 40 clients on 4 DbWorkers for {seconds:g} s")
    try:
        ids = seed_users(server, 50)

        def rss() -> list[int]:
            return sorted(psutil.Process(pid).memory_info().rss // 2**20 for pid in server.worker_pids())

        before = rss()
        recorder = Recorder()
        lock = threading.Lock()
        counter = [0]

        def client(i: int, session: requests.Session, stop: threading.Event) -> None:
            while not stop.is_set():
                with lock:
                    counter[0] += 1
                    n = counter[0]
                if n % 10 == 0:
                    recorder.call(session, "write", "POST", server.url + "/api/users",
                                  json={"name": "o", "email": f"over{n}@example.com"}, timeout=15)
                else:
                    recorder.call(session, "read", "GET", f"{server.url}/api/users/{ids[n % len(ids)]}",
                                  timeout=15)

        run_clients(40, seconds, client, server.new_session)
        after = rss()
        ok = [c for c in recorder.calls if c.status in (200, 201)]
        result.summarise(recorder.calls, lambda c: c.status in (200, 201))
        latencies = sorted(c.seconds * 1000 for c in ok)
        result.notes["p99 of successes ms"] = round(latencies[int(0.99 * (len(latencies) - 1))], 1) if latencies else None
        result.notes["worker RSS MiB before → after"] = f"{before} → {after}"
        return result
    finally:
        server.stop()


def render(results: list[ScenarioResult], command: str) -> str:
    lines = [
        "# Chaos run",
        "",
        f"command: `{command}`  ",
        f"machine: {os.cpu_count()} cores; date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}",
        "",
        "| scenario | requests | successes | 503s | other errors | p50 ms | p99 ms | restarts "
        "| recovery s | lost writes | notes |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        recovery = f"{r.recovery_seconds:.2f}" if r.recovery_seconds is not None else "–"
        notes = "; ".join(f"{k}: {v}" for k, v in r.notes.items()
                          if k not in ("history", "writes", "reads", "restarts_before"))
        lines.append(
            f"| {r.name} | {r.requests} | {r.successes} | {r.unavailable} | {r.other_errors} "
            f"| {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.restarts} | {recovery} | {r.lost_writes} | {notes} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path)
    parser.add_argument("--overload-seconds", type=float, default=30.0)
    args = parser.parse_args()
    workdir = open_to_the_database(Path(tempfile.mkdtemp(prefix="um-chaos-")))
    database = EmbeddedPostgres(workdir / "db")
    url = database.start()
    results: list[Any] = []
    try:
        apply_migrations(url)
        results += kills(url, workdir)
        results.append(connections_killed(url, workdir))
        results.append(overload(url, workdir, args.overload_seconds))
    finally:
        database.stop()
    results.append(outage(workdir))
    report = render(results, "python -m perf.chaos_report"
                    + (f" --overload-seconds {args.overload_seconds:g}" if args.overload_seconds != 30 else ""))
    print(report)
    if args.out:
        args.out.write_text(report)


if __name__ == "__main__":
    main()
