"""What authentication costs: cached ``GET /api/users/{id}`` with and without it.

    python -m perf.bench_auth [--workers 2] [--threads 4] [--duration 5] [--rounds 10]
                              [--connections 32] [--users 1000] [--out perf/results/auth.md]

One run, two servers side by side on one embedded PostgreSQL, the same
gunicorn settings (worker class, workers, threads, request limits, hooks)
and the same runtime (actors, caches, metrics, access log):

* **authenticated**: ``usermgmt serve``, exactly as shipped;
* **unauthenticated**: gunicorn serving :func:`app_without_authentication`,
  which builds the service with ``app.asgi.get_app()`` (same runtime, same
  settings) and then rebuilds its Falcon app with
  ``create_app(..., without_authentication=True)`` plus a middleware of this
  file that hands every request a fixed admin principal (the resources
  need one). That flag exists for this file only: no setting reaches it.

The figure reported is the CPU time the worker processes spend per
request (``psutil``, before and after each run), which is what
throughput is made of when the workers are the bottleneck and which a
neighbour loading the machine moves much less than throughput; wrk's own
throughput is reported beside it.

wrk sends byte-identical requests to both (the same ``Authorization``
header, ignored by the second) over the same 100 hot ids, so both answer
from their caches: ``get_cached.lua``, runs strictly alternating
(A B A B ... A, never one server twice in a row: a server's second run in
a row was seen to start slow). Each unauthenticated run is compared with
the mean of the authenticated runs just before and after it, which
cancels a linear drift, and the cost is the median of those ratios: a
neighbour loading the machine for a while slows a run and its neighbours
alike, which a ratio of two medians would not cancel. The difference is the price of the bearer token check on the hot
path (a SHA-256, one token-cache lookup) and of the per-user visibility
check. The load average is recorded after every unauthenticated run.

On a shared machine wrk's numbers wobble by more than the cost being
measured, so the same comparison is also made in this process, where
noise cancels: both apps are built on one runtime (same caches, same
database) and called through WSGI in alternating batches of the same
cached GETs; the cost is the median over batch pairs. And the middleware
alone is timed on a token-cache hit (``AuthMiddleware.process_resource``).

Everything it starts runs in its own process group and is stopped at the
end, also on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import secrets
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import falcon
import falcon.asgi
import falcon.testing

from perf.harness import running
from perf.paired import Side, alternate, cpu_costs, pair_costs
from perf.report import environment
from perf.servers import (
    ServerProcess,
    benchmark_databases,
    create_admin,
    exit_on_sigterm,
    free_port,
    log_in,
    seed_users,
    server_version,
    service_command,
)
from perf.wrk_runner import WrkResult, run_wrk, wrk_version

__all__ = ["app_without_authentication", "main"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HOT_COUNT = 100
TARGET_COST = 0.10  # the objective: under 10% of throughput
DEFAULT_OUT = PROJECT_ROOT / "perf" / "results" / "auth.md"


# -- the server without authentication (runs in gunicorn workers) -----------


class _FixedPrincipal:
    """Gives every request the same admin principal, as a token check would."""

    def __init__(self, principal: Any) -> None:
        self._principal = principal

    async def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        req.context.principal = self._principal


def app_without_authentication() -> falcon.asgi.App[falcon.asgi.Request, falcon.asgi.Response]:
    """The service's app with the authentication middleware left out.

    A gunicorn app factory: ``gunicorn -c python:app.gunicorn_conf
    'perf.bench_auth:app_without_authentication()'``. ``get_app`` builds and
    registers this process's runtime (so ``app.gunicorn_conf`` stops it at
    exit); only the Falcon app around it is rebuilt.
    """
    from app import asgi
    from app.app import create_app
    from app.config import Settings
    from app.sessions_service import Principal

    asgi.get_app()
    runtime = asgi.current_runtime()
    assert runtime is not None
    settings = Settings.from_env()
    app = create_app(
        runtime.users, runtime.sessions,
        readiness=runtime.readiness_checks(),
        before_scrape=runtime.sample_now,
        retry_after=settings.retry_after,
        metrics_enabled=settings.metrics_enabled,
        access_log=settings.access_log and settings.log_level in ("DEBUG", "INFO"),
        without_authentication=True,
    )
    admin = Principal(user_id=1, role="admin", token_hash=b"\0" * 32, expires_at=float("inf"))
    app.add_middleware(_FixedPrincipal(admin))
    return app


def unauthenticated_command(port: int, workers: int, threads: int) -> list[str]:
    """gunicorn with ``usermgmt serve``'s settings (read from app.gunicorn_conf)."""
    script = Path(sys.executable).with_name("gunicorn")
    base = [str(script)] if script.exists() else [sys.executable, "-m", "gunicorn"]
    return [*base, "-c", "python:app.gunicorn_conf", "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers), "--timeout", "30",
            "--name", "usermgmt-unauthenticated", "perf.bench_auth:app_without_authentication()"]


# -- the in-process micro-benchmark -------------------------------------------


def time_middleware_hit(iterations: int = 200_000) -> float:
    """Microseconds per ``AuthMiddleware.process_resource`` on a token-cache hit."""
    import falcon.testing

    from actors.cache import CacheHandle, Sync, TokenCacheActor
    from actors.change_listener import Coherence
    from app.auth import AuthMiddleware
    from app.passwords import Passwords
    from app.resources.users import UserItem
    from app.sessions_service import (
        Principal,
        SessionsService,
        hash_token,
        token_cache_key,
    )
    from app.worker_client import WorkerClient

    handle: CacheHandle[Principal] = CacheHandle()
    ref = TokenCacheActor.start(handle=handle)
    try:
        coherence = Coherence()
        coherence.mark_coherent()
        sessions = SessionsService(WorkerClient(None, 1.0, 1.0), Passwords(),  # type: ignore[arg-type]
                                   cache=handle, coherence=coherence)
        token = secrets.token_urlsafe(32)
        digest = hash_token(token)
        key = token_cache_key(digest)
        handle.put(key, Principal(1, "admin", digest, time.time() + 3600), handle.read_token(key))
        ref.ask(Sync(), timeout=5)
        middleware = AuthMiddleware(sessions)
        req = falcon.testing.create_asgi_req(path="/api/users/1",
                                             headers={"Authorization": f"Bearer {token}"})
        resp = falcon.asgi.Response()
        resource = UserItem.__new__(UserItem)

        async def measure() -> list[float]:
            samples = []
            for _ in range(5):
                started = time.perf_counter()
                for _ in range(iterations // 5):
                    await middleware.process_resource(req, resp, resource, {})
                samples.append((time.perf_counter() - started) / (iterations // 5) * 1e6)
            return samples

        samples = asyncio.run(measure())
        assert req.context.principal.user_id == 1
        return min(samples)
    finally:
        ref.stop()


def time_apps_in_process(database_url: str, token: str, users: int, batches: int = 40,
                         batch: int = 2000) -> tuple[float, float, list[float]]:
    """Per-request µs of the authenticated and the unauthenticated app, and batch costs.

    One runtime, two Falcon apps around it (metrics on, access log off in
    both); each batch sends the same cached GETs to one app then the other,
    the order alternating.
    """
    from app.app import create_app
    from app.config import Settings
    from app.runtime import Runtime
    from app.sessions_service import Principal

    runtime = Runtime(Settings(database_url=database_url, db_workers=2), database_url,
                      instrumented=False)
    runtime.start()
    try:
        assert runtime.wait_ready(15), "the in-process runtime did not connect"
        options: dict[str, Any] = {"metrics_enabled": True, "access_log": False}
        authenticated = create_app(runtime.users, runtime.sessions, **options)
        unauthenticated = create_app(runtime.users, runtime.sessions, **options,
                                     without_authentication=True)
        admin = Principal(user_id=1, role="admin", token_hash=b"\0" * 32, expires_at=float("inf"))
        unauthenticated.add_middleware(_FixedPrincipal(admin))
        scopes = [falcon.testing.create_scope(
            path=f"/api/users/{(i * 997) % users + 1}",
            headers={"Authorization": f"Bearer {token}"}) for i in range(min(HOT_COUNT, users))]
        statuses: list[int] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                statuses.append(message["status"])

        async def run(app: Any) -> float:
            started = time.perf_counter()
            for k in range(batch):
                await app(dict(scopes[k % len(scopes)]), receive, send)
            return (time.perf_counter() - started) / batch * 1e6

        async def measure() -> dict[str, list[float]]:
            await run(authenticated)  # warm both caches (users and token) and every code path
            await run(unauthenticated)
            timings: dict[str, list[float]] = {"auth": [], "plain": []}
            for n in range(batches):
                order = ("auth", "plain") if n % 2 == 0 else ("plain", "auth")
                for name in order:
                    timings[name].append(
                        await run(authenticated if name == "auth" else unauthenticated))
            return timings

        timings = asyncio.run(measure())
        assert set(statuses) == {200}, set(statuses)
        costs = [1 - plain / auth for auth, plain in zip(timings["auth"], timings["plain"],
                                                           strict=True)]
        return statistics.median(timings["auth"]), statistics.median(timings["plain"]), costs
    finally:
        runtime.stop()


# -- the run -----------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m perf.bench_auth",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (both servers)")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=10,
                        help="unauthenticated runs, each between two authenticated ones "
                             "(median of their ratios taken)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--wrk-threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--users", type=int, default=1000, help="users to seed")
    parser.add_argument("--warmup", type=float, default=3.0, help="unmeasured seconds per server")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown report")
    return parser


def _wrk(server: ServerProcess, args: argparse.Namespace, token: str, duration: float) -> WrkResult:
    env = {"PERF_USERS": str(args.users), "PERF_HOT_COUNT": str(HOT_COUNT),
           "PERF_RUN_PREFIX": secrets.token_hex(4), "PERF_TOKEN": token}
    return run_wrk(server.url, "get_cached", duration, args.connections, args.wrk_threads, env)


@dataclass(frozen=True)
class InProcess:
    """:func:`time_apps_in_process`'s answer."""

    auth_us: float
    plain_us: float
    costs: list[float]

    @property
    def cost(self) -> float:
        return statistics.median(self.costs)


def measure(args: argparse.Namespace, workdir: Path
            ) -> tuple[Side, Side, str, list[float], InProcess]:
    """Pairs of get_cached runs against both servers, then the in-process comparison;
    PostgreSQL's version; load averages."""
    with benchmark_databases(workdir, None) as dbs:
        url = dbs.service_url
        seed_users(url, args.users)
        password = secrets.token_urlsafe(18)
        create_admin(url, password)
        common = {"DATABASE_URL": url, "USERMGMT_MIGRATE_ON_START": "0",
                  "USERMGMT_DB_WORKERS": os.environ.get("USERMGMT_DB_WORKERS", "4")}
        metrics_dir = workdir / "prometheus-unauthenticated"
        metrics_dir.mkdir()
        auth_port, plain_port = free_port(), free_port()
        authenticated = ServerProcess(
            "authenticated", service_command(auth_port, args.workers, args.threads),
            {**common, "USERMGMT_DATA_DIR": str(workdir / "auth")}, auth_port,
            workdir / "authenticated.log", args.workers)
        unauthenticated = ServerProcess(
            "unauthenticated", unauthenticated_command(plain_port, args.workers, args.threads),
            {**common, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir)}, plain_port,
            workdir / "unauthenticated.log", args.workers)
        with running(authenticated), running(unauthenticated):
            token = log_in(authenticated.url, password)
            sides = (Side("authenticated"), Side("unauthenticated"))
            servers = {"authenticated": authenticated, "unauthenticated": unauthenticated}
            for side in sides:
                _wrk(servers[side.name], args, token, args.warmup)
            loads = []

            def report(side: Side, n: int, result: WrkResult, cpu: float) -> None:
                print(f"  {side.name:<16} run {n + 1}: {result.rps:8.0f} rps"
                      f"  {cpu:6.1f} µs CPU/request  p99 {result.p99_ms:.2f} ms"
                      f"  2xx {result.s2xx} 4xx {result.s4xx} 5xx {result.s5xx}", flush=True)
                if side is sides[1]:
                    loads.append(os.getloadavg()[0])

            alternate((sides[0], authenticated), (sides[1], unauthenticated), args.rounds,
                      lambda server: _wrk(server, args, token, args.duration), report)
        in_process = InProcess(*time_apps_in_process(url, token, args.users))
        print(f"  in process: authenticated {in_process.auth_us:.1f} µs, unauthenticated "
              f"{in_process.plain_us:.1f} µs per request; cost {in_process.cost:.1%}", flush=True)
        return sides[0], sides[1], server_version(url), loads, in_process


def render(args: argparse.Namespace, auth: Side, plain: Side, pg_version: str,
           middleware_us: float, started: dt.datetime, loads: list[float],
           in_process: InProcess) -> str:
    costs = pair_costs(auth, plain)
    cost = statistics.median(costs) if costs else float("nan")
    by_cpu = cpu_costs(auth, plain)
    cpu_cost = statistics.median(by_cpu) if by_cpu else float("nan")
    verdict = "within" if cpu_cost < TARGET_COST else "OVER"
    cpu_us = args.workers * 1e6 / plain.median.rps if plain.median.rps else float("nan")
    env = environment({
        "PostgreSQL": pg_version, "wrk": wrk_version(),
        "gunicorn workers × threads (both servers)": f"{args.workers} × {args.threads}",
        "wrk connections / threads": f"{args.connections} / {min(args.wrk_threads, args.connections)}",
        "duration per run / rounds": f"{args.duration:g} s / {args.rounds}",
        "seeded users / hot ids": f"{args.users} / {min(HOT_COUNT, args.users)}",
    })
    lines = [
        "# Authentication cost: cached GET /api/users/{id}",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC with:",
        "",
        "```sh",
        "python -m perf.bench_auth " + shlex.join(sys.argv[1:]),
        "```",
        "",
        "| server | worker CPU µs per request (median) | rps (median) | p50 ms | p99 ms | "
        "p99.9 ms | 2xx | non-2xx |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for side in (auth, plain):
        m = side.median
        lines.append(f"| {side.name} | {statistics.median(side.cpu_us):.1f} | {m.rps:.0f} | "
                     f"{m.p50_ms:.2f} | {m.p99_ms:.2f} | {m.p999_ms:.2f} | {m.s2xx} | "
                     f"{m.s3xx + m.s4xx + m.s5xx + m.socket_errors} |")
    lines += [
        "",
        f"**Throughput cost of authentication: {cpu_cost:.1%}** of the worker processes' CPU "
        f"per request ({verdict} the {TARGET_COST:.0%} objective): median of {len(by_cpu)} "
        "comparisons, each unauthenticated run against the authenticated runs around it. "
        "With the workers the bottleneck, throughput is CPU per request turned upside "
        "down, and CPU time moves much less than throughput when a neighbour loads the "
        "machine. Comparisons: "
        + ", ".join(f"{c:+.1%}" for c in by_cpu) + ".",
        "",
        f"Measured as wrk throughput directly, the same comparisons give **{cost:.1%}** "
        "(median; " + ", ".join(f"{c:+.1%}" for c in costs) + "): on a quiet machine the two "
        "agree; on a shared one, throughput swings with the neighbours (see the load "
        "averages below).",
        "",
        f"**In process (the same two apps on one runtime, called through WSGI in "
        f"{len(in_process.costs)} alternating batches): {in_process.auth_us:.1f} µs vs "
        f"{in_process.plain_us:.1f} µs per request, a throughput cost of "
        f"{in_process.cost:.1%}** (median of batch pairs: "
        + ", ".join(f"{c:+.1%}" for c in in_process.costs) + ").",
        "",
        f"The middleware alone takes **{middleware_us:.2f} µs** per request on a "
        "token-cache hit (header check, SHA-256, one dict lookup, hash comparison, expiry "
        f"check), timed in a loop; at the unauthenticated median each of the {args.workers} "
        f"worker processes completes a request every ~{cpu_us:.0f} µs of wall time. The "
        "in-process comparison overstates the cost seen over HTTP: it leaves out gunicorn's "
        "request parsing, the sockets and wrk, which the two servers pay alike.",
        "",
        "Runs (rps): " + "; ".join(
            f"{side.name} " + ", ".join(f"{r.rps:.0f}" for r in side.rounds) for side in (auth, plain))
        + f". Spread of the unauthenticated runs ±{_spread(plain):.1%}; 1-minute load "
        f"average after each: {', '.join(f'{x:.1f}' for x in loads)} "
        f"({os.cpu_count()} cores).",
        "",
        "## How",
        "",
        "* **authenticated**: `usermgmt serve` as shipped, token in `Authorization: Bearer`.",
        "* **unauthenticated**: `gunicorn -c python:app.gunicorn_conf "
        "'perf.bench_auth:app_without_authentication()'`: the same runtime built by "
        "`app.asgi.get_app()`, its Falcon app rebuilt by `create_app(..., "
        "without_authentication=True)` with a middleware that sets a fixed admin principal. "
        "The product has no setting that reaches that flag.",
        "* Same database (embedded PostgreSQL), same gunicorn settings, same access log and "
        "metrics; wrk sends the same bytes to both (`perf/wrk/get_cached.lua`, 100 hot ids, "
        "both servers answer from their user caches), runs strictly alternating; the cost is "
        "the median of the comparisons, the table shows medians.",
        "* wrk, both servers and PostgreSQL share this machine's cores: compare the two "
        "rows with each other, not with other machines.",
        "* The reference implementation (`perf/reference/`) is not involved here; "
        "`perf.bench` compares the service with it (see perf/README.md).",
        "",
        "## Environment",
        "",
        "| | |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in env.items()),
        "",
        "## Raw results",
        "",
        "```json",
        json.dumps({"authenticated": [r.to_json() for r in auth.rounds],
                    "unauthenticated": [r.to_json() for r in plain.rounds],
                    "middleware_hit_us": round(middleware_us, 3),
                    "in_process_us": {"authenticated": round(in_process.auth_us, 2),
                                      "unauthenticated": round(in_process.plain_us, 2)},
                    "in_process_costs": [round(c, 4) for c in in_process.costs],
                    "cpu_us_per_request": {"authenticated": [round(c, 2) for c in auth.cpu_us],
                                           "unauthenticated": [round(c, 2) for c in plain.cpu_us]},
                    "cpu_costs": [round(c, 4) for c in by_cpu],
                    "rps_costs": [round(c, 4) for c in costs],
                    "load_averages": [round(x, 2) for x in loads],
                    "cost": round(cpu_cost, 4)}, indent=1),
        "```",
        "",
    ]
    return "\n".join(lines)


def _spread(side: Side) -> float:
    rps = [r.rps for r in side.rounds]
    if len(rps) < 2 or not statistics.median(rps):
        return 0.0
    return (max(rps) - min(rps)) / 2 / statistics.median(rps)



def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if shutil.which("wrk") is None:
        print("perf.bench_auth: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    started = dt.datetime.now(dt.UTC)
    middleware_us = time_middleware_hit()
    print(f"  middleware on a token-cache hit: {middleware_us:.2f} µs", flush=True)
    with tempfile.TemporaryDirectory(prefix="usermgmt-bench-auth-") as tmp:
        auth, plain, pg_version, loads, in_process = measure(args, Path(tmp))
    markdown = render(args, auth, plain, pg_version, middleware_us, started, loads, in_process)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(markdown)
    costs = pair_costs(auth, plain)
    cost = statistics.median(costs) if costs else float("nan")
    by_cpu = cpu_costs(auth, plain)
    cpu_cost = statistics.median(by_cpu) if by_cpu else float("nan")
    print(f"\nauthenticated {auth.median.rps:.0f} rps, unauthenticated {plain.median.rps:.0f} rps"
          f" (medians); cost {cpu_cost:.1%} of CPU per request, {cost:.1%} of rps (medians of"
          f" comparisons); in process {in_process.cost:.1%}"
          f"\nreport written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
