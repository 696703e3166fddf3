"""Read-your-writes, measured: on one host (0 stale reads) and across two (the NOTIFY delay).

    python -m perf.bench_read_your_writes [--pairs 10000] [--workers 2]
                                          [--out perf/results/read-your-writes-<date>.md]

One embedded PostgreSQL, then:

1. **One host** (``usermgmt serve``, ``--workers`` processes), under a
   background load of cached GETs of the same users on a kept-alive
   connection: ``--pairs`` write→read pairs of each kind, every request on a
   new connection so that it lands on whichever worker accepts it, and each
   user read on new connections first so that the workers have it cached:
   *update* (PATCH, then GET: the version must be the new one), *delete*
   (DELETE, then GET: 404), *logout* (DELETE /api/sessions/current, then the
   token: 401; the sessions are opened with SQL, as many as pairs, since a
   login costs ~0.2 s of Argon2). Counted: reads that saw the old state.
2. **Two hosts** (two ``usermgmt serve`` on the same database): a PATCH
   through A, then reads through B on new connections until B serves the
   new version: the delay from A's answer, ``--pairs`` times (B's workers
   hold the user cached before each write).
3. **What the stamps cost a cached GET**: the app in this process (one
   runtime, the real middleware and authentication), cached GETs through
   it with the stamp check and with it taken out, in alternating batches,
   by CPU time per request.

Every server is stopped at the end, also on SIGTERM; traffic is loopback only.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import hashlib
import secrets
import shlex
import signal
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import requests

from perf.constant_rate import percentile
from perf.harness import running
from perf.report import environment
from perf.servers import (
    BENCH_ADMIN_EMAIL,
    ServerProcess,
    benchmark_databases,
    create_admin,
    exit_on_sigterm,
    free_port,
    log_in,
    service_command,
)

HOT_USERS = 50
WARM_READS = 4


@dataclass
class SameHost:
    pairs: dict[str, int] = field(default_factory=dict)
    stale: dict[str, int] = field(default_factory=dict)
    background_reads: int = 0
    seconds: float = 0.0


def fresh(method: str, url: str, token: str | None, **kwargs: Any) -> requests.Response:
    """One request on a connection of its own."""
    headers = {"Connection": "close"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return requests.request(method, url, headers=headers, timeout=10, **kwargs)


@contextlib.contextmanager
def background_reads(url: str, token: str, ids: Sequence[int]) -> Iterator[list[int]]:
    """Cached GETs of ``ids`` on one kept-alive connection until the block ends."""
    count = [0]
    stop = threading.Event()

    def read() -> None:
        with requests.Session() as http:
            http.headers["Authorization"] = f"Bearer {token}"
            n = 0
            while not stop.is_set():
                with contextlib.suppress(requests.RequestException):
                    http.get(f"{url}/api/users/{ids[n % len(ids)]}", timeout=10)
                    count[0] += 1
                n += 1

    thread = threading.Thread(target=read, name="background-reads", daemon=True)
    thread.start()
    try:
        yield count
    finally:
        stop.set()
        thread.join(15)


def create_users(url: str, token: str, prefix: str, count: int) -> list[int]:
    ids = []
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {token}"
        for n in range(count):
            created = http.post(url + "/api/users", timeout=10,
                                json={"name": f"{prefix} {n}", "email": f"{prefix}-{n}@bench.example"})
            assert created.status_code == 201, created.text
            ids.append(created.json()["id"])
    return ids


def open_sessions(database_url: str, count: int) -> list[str]:
    """``count`` sessions of the bench admin, written as a login writes them."""
    tokens = [secrets.token_urlsafe(32) for _ in range(count)]
    with psycopg.connect(database_url, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO sessions (token_hash, user_id, expires_at)"
            " SELECT %s, id, now() + interval '1 day' FROM users WHERE lower(email) = %s",
            [(hashlib.sha256(t.encode()).digest(), BENCH_ADMIN_EMAIL) for t in tokens])
    return tokens


def same_host(server: ServerProcess, token: str, database_url: str, pairs: int) -> SameHost:
    url = server.url
    outcome = SameHost()
    hot = create_users(url, token, "hot", HOT_USERS)
    to_delete = create_users(url, token, "deleted", pairs)
    tokens = open_sessions(database_url, pairs)
    started = time.monotonic()
    with background_reads(url, token, hot) as reads:
        stale = 0
        for n in range(pairs):
            user = f"{url}/api/users/{hot[n % len(hot)]}"
            for _ in range(WARM_READS):
                fresh("GET", user, token)
            patched = fresh("PATCH", user, token, json={"name": f"v{n}"})
            assert patched.status_code == 200, patched.text
            if fresh("GET", user, token).json()["version"] != patched.json()["version"]:
                stale += 1
        outcome.pairs["update"], outcome.stale["update"] = pairs, stale
        outcome.pairs["delete"], outcome.stale["delete"] = pairs, sum(
            deleted_but_read(f"{url}/api/users/{user_id}", token, 404) for user_id in to_delete)
        outcome.pairs["logout"], outcome.stale["logout"] = pairs, sum(
            deleted_but_read(url + "/api/sessions/current", session, 401) for session in tokens)
        outcome.background_reads = reads[0]
    outcome.seconds = time.monotonic() - started
    return outcome


def deleted_but_read(url: str, token: str, gone: int) -> bool:
    """Read ``url`` on new connections (every worker caches it), DELETE it,
    then read it once more: True if that read did not answer ``gone``."""
    for _ in range(WARM_READS):
        fresh("GET", url, token)
    assert fresh("DELETE", url, token).status_code == 204
    return fresh("GET", url, token).status_code != gone


def across_hosts(a: ServerProcess, b: ServerProcess, token: str, pairs: int) -> list[float]:
    """Seconds from A's answer to a write until B serves it, ``pairs`` times."""
    user_id = create_users(a.url, token, "across", 1)[0]
    path = f"/api/users/{user_id}"
    delays = []
    with requests.Session() as http:
        http.headers["Authorization"] = f"Bearer {token}"
        for n in range(pairs):
            for _ in range(WARM_READS):
                fresh("GET", b.url + path, token)
            version = http.patch(a.url + path, json={"name": f"v{n}"}, timeout=10).json()["version"]
            answered = time.perf_counter()
            while fresh("GET", b.url + path, token).json()["version"] < version:
                if time.perf_counter() - answered > 10:
                    raise AssertionError(f"B never served version {version}")
            delays.append(time.perf_counter() - answered)
    return delays


def stamp_cost(database_url: str, token: str, batches: int = 20,
               batch: int = 2000) -> tuple[float, float]:
    """CPU µs per cached GET through the app, with and without the stamp check."""
    from app.app import create_app
    from app.config import Settings
    from app.read_through import ReadThrough
    from app.runtime import Runtime

    runtime = Runtime(Settings(database_url=database_url, db_workers=2), database_url,
                      instrumented=False)
    runtime.start()
    try:
        assert runtime.wait_ready(15), "the in-process runtime did not connect"
        app = create_app(runtime.users, runtime.sessions, metrics_enabled=False,
                         access_log=False)
        with psycopg.connect(database_url) as conn:
            ids = [row[0] for row in conn.execute("SELECT id FROM users ORDER BY id LIMIT 50")]
        headers = [(b"authorization", f"Bearer {token}".encode()), (b"host", b"bench")]
        scopes = [{"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
                   "method": "GET", "scheme": "http", "path": f"/api/users/{i}",
                   "raw_path": f"/api/users/{i}".encode(), "query_string": b"", "root_path": "",
                   "headers": headers, "client": ("127.0.0.1", 50000),
                   "server": ("127.0.0.1", 8000)} for i in ids]
        stamped = ReadThrough.hit

        def unstamped(self: ReadThrough[Any], key: int, usable: Any = None) -> Any:
            # ReadThrough.hit without the stamp comparison, and nothing else missing.
            cache = self.cache
            if cache is None or not self._coherence.is_coherent:
                return None
            value = cache.get(key)
            if value is None or (usable is not None and not usable(value)):
                return None
            return value

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                assert message["status"] == 200, message

        async def run(hit: Any) -> float:
            ReadThrough.hit = hit  # type: ignore[method-assign]
            for through in (runtime.users._through, runtime.sessions._through):
                through.__dict__.pop("hit", None)
            runtime.users.cached = runtime.users._through.hit
            started = time.process_time()
            for k in range(batch):
                await app(dict(scopes[k % len(scopes)]), receive, send)
            return (time.process_time() - started) / batch * 1e6

        async def measure() -> tuple[float, float]:
            await run(stamped)
            await run(unstamped)
            timings: dict[str, list[float]] = {"with": [], "without": []}
            for n in range(batches):
                order = ("with", "without") if n % 2 == 0 else ("without", "with")
                for name in order:
                    timings[name].append(await run(stamped if name == "with" else unstamped))
            return statistics.median(timings["with"]), statistics.median(timings["without"])

        try:
            return asyncio.run(measure())
        finally:
            ReadThrough.hit = stamped  # type: ignore[method-assign]
    finally:
        runtime.stop()


def report(args: argparse.Namespace, command: str, host: SameHost, delays: list[float],
           cost: tuple[float, float]) -> str:
    ms = sorted(d * 1000 for d in delays)
    lines = [
        f"# Read-your-writes — {dt.date.today().isoformat()}", "",
        f"Command: `{command}`", "",
        f"## One host: {args.workers} worker processes, every request on a new connection", "",
        f"Under a background load of cached GETs ({host.background_reads} answered during the "
        f"{host.seconds:.0f} s of the run); each user read {WARM_READS} times on new connections "
        "before its write, so that every worker holds it cached.", "",
        "| write → read | pairs | stale reads |", "|---|---|---|",
        *[f"| {kind} | {host.pairs[kind]} | {host.stale[kind]} |" for kind in host.pairs],
        "", "## Two hosts on one database: write through A, read through B", "",
        "The delay from A's answer to the first read through B (a new connection each) that "
        "serves the new version; it includes that read's own round trip, so it bounds the "
        "NOTIFY → evict delay from above.", "",
        "| pairs | p50 ms | p99 ms | max ms | mean ms |", "|---|---|---|---|---|",
        f"| {len(ms)} | {percentile(ms, 0.5):.2f} | {percentile(ms, 0.99):.2f} | {ms[-1]:.2f} "
        f"| {statistics.fmean(ms):.2f} |",
        "", "## What the stamps cost a cached GET", "",
        "CPU per cached `GET /api/users/{id}` through the app in one process (middleware, "
        "token-cache authentication, users cache; metrics and access log off so that the "
        "difference stands out), alternating batches with and without the stamp checks:", "",
        "| with stamps µs | without µs | difference |", "|---|---|---|",
        f"| {cost[0]:.1f} | {cost[1]:.1f} | {100 * (cost[0] - cost[1]) / cost[1]:+.1f}% |",
        "", "## Environment", "",
        *[f"- {key}: {value}" for key, value in environment(
            {"pairs per kind": str(args.pairs), "workers per server": str(args.workers)}).items()],
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    command = "python -m perf.bench_read_your_writes " + shlex.join(argv or sys.argv[1:])
    with tempfile.TemporaryDirectory(prefix="usermgmt-ryw-") as tmp:
        workdir = Path(tmp)
        with benchmark_databases(workdir, None) as dbs:
            password = secrets.token_urlsafe(18)
            create_admin(dbs.service_url, password)
            env = {"DATABASE_URL": dbs.service_url, "USERMGMT_LOG_LEVEL": "WARNING",
                   "USERMGMT_LOGIN_RATE_LIMIT": "1000000"}

            def server(name: str) -> ServerProcess:
                port = free_port()
                return ServerProcess(name, service_command(port, args.workers),
                                     {**env, "USERMGMT_DATA_DIR": str(workdir / name)}, port,
                                     workdir / f"{name}.log", args.workers)

            with running(server("a")) as a:
                token = log_in(a.url, password)
                host = same_host(a, token, dbs.service_url, args.pairs)
                print(f"one host: {host.stale} stale of {host.pairs}", flush=True)
                with running(server("b")) as b:
                    delays = across_hosts(a, b, token, args.pairs)
            cost = stamp_cost(dbs.service_url, token)
    text = report(args, command, host, delays, cost)
    out = args.out or Path("perf/results") / f"read-your-writes-{dt.date.today().isoformat()}.md"
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
