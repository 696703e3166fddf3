"""The service against FastAPI and a plain Falcon reference, under wrk.

    python -m perf.bench [--workers 2] [--threads 4] [--duration 10] [--connections 32]
                         [--users 100000] [--rounds 3] [--only WORKLOAD ...] [--no-fastapi]
                         [--rate-fraction 0.5] [--soak N] [--out perf/results/bench-<date>.md]

Why references: absolute requests/s say little on their own (they depend
on the machine, and here wrk, the servers and PostgreSQL share its cores).
Running the same workloads, on the same database server, worker count and
connections per process, against "what you would write without the actor
design" tells what the design costs or buys. There are two: the same
stack the plain way (Falcon + psycopg-pool under gunicorn's gthread,
``perf/reference/app.py``), and what a Python team would pick instead
(FastAPI + uvicorn + asyncpg, ``perf/reference/fastapi_app.py``; its
packages are the ``perf`` extra: ``pip install -e '.[perf]'``).

What it does, everything bounded in time and stopped at the end:

1. starts an embedded PostgreSQL in a temporary directory (or uses
   ``--database-url``, which it empties), with one database per server,
   applies the migrations and seeds ``--users`` users with one
   ``INSERT ... SELECT generate_series``;
2. starts ``usermgmt serve`` (``DATABASE_URL`` set, so it runs no database
   of its own), the Falcon reference under gunicorn with the same workers,
   threads and timeouts, and the FastAPI reference (uvicorn workers under
   a gunicorn master, same worker count), and waits until all answer;
3. for each workload runs wrk (scripts in ``perf/wrk/``) against every
   server in turn, ``--rounds`` times each, in alternating order
   (A B C, C B A, A B C, ...), and takes the median; worker RSS and worker
   CPU per request are read around the runs, and the service's cache hits
   and misses from its ``/metrics``;
4. measures open-loop latency of cached GETs at ``--rate-fraction`` of
   each server's measured peak, then of all at the same rate
   (``perf/constant_rate.py``: wrk2 is not packaged); then, unless
   ``--no-ceiling``, get_cached against a Falcon ASGI app that answers
   constant bytes (``perf/reference/floor.py``) on the service's own edge
   (gunicorn with ``app.gunicorn_conf``: the same worker class, limits and
   deadlines), in the service's column: the ``get_cached_ceiling`` row,
   whose ratios are the highest any app on that edge can reach on this
   machine, and its open-loop latency at ``--rate-fraction`` of its own
   peak;
5. optionally (``--soak N``) sends N cached GETs to the service and
   reports its workers' RSS before, during and after;
6. prints the tables and writes them, with the environment, to ``--out``,
   and the picture (throughput per workload, open-loop latency) beside it
   as ``.svg``.

Workloads: get_cached, get_uncached (with get_unique and
get_uncached_cache_off, each on a freshly started service), list, update,
create, mixed (see the Lua scripts for each).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import secrets
import shlex
import shutil
import signal
import statistics
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from perf.chart import render_svg
from perf.constant_rate import ConstantRateResult, run_constant_rate
from perf.cpu_noise import CpuNoise
from perf.harness import running
from perf.paired import workers_cpu_seconds
from perf.report import (
    FASTAPI,
    MIB,
    REFERENCE,
    SERVICE,
    SIDE_LABELS,
    CacheLookups,
    ConstantRateRow,
    SideResult,
    SoakResult,
    WorkloadRow,
    environment,
    render_markdown,
    render_text,
)
from perf.servers import (
    PERF_EXTRA_INSTALL,
    BenchDatabases,
    ServerProcess,
    add_session,
    benchmark_databases,
    cache_lookups,
    create_admin,
    edge_command,
    exit_on_sigterm,
    fastapi_command,
    free_port,
    log_in,
    missing_perf_extra,
    reference_command,
    seed_users,
    server_version,
    service_command,
)
from perf.wrk_runner import WrkResult, median_result, run_wrk, wrk_version

__all__ = ["WORKLOADS", "Workload", "main"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
HOT_COUNT = 100
ZIPF_S = 1.1
SOAK_CHUNK_SECONDS = 30.0
SOAK_PROBE_SECONDS = 2.0
DEFAULT_DB_WORKERS = "4"
# Cores used by other processes above which a workload's numbers are flagged.
NOISY_CORES = 0.1
QUIET_WINDOW = 2.0
# The service's workers fold their metrics into /metrics every second.
METRICS_FLUSH_SECONDS = 1.2


@dataclass(frozen=True)
class Workload:
    """A wrk script and what it shows.

    ``fresh_service`` runs it on a service started for it alone, with
    these extra environment variables (its cache starts empty).
    ``walks_ids`` gives each round its own span of get_unique's id walk.
    """

    name: str
    script: str
    description: str
    fresh_service: Mapping[str, str] | None = None
    walks_ids: bool = False


WORKLOADS: tuple[Workload, ...] = (
    Workload("get_cached", "get_cached", f"GET /api/users/{{id}} over {HOT_COUNT} hot ids"),
    Workload("get_uncached", "get_uncached",
             "GET /api/users/{id}, uniform over all ids (the service's cache fills as it runs)"),
    Workload("get_unique", "get_unique",
             "GET /api/users/{id}, no id asked twice, on a fresh service: every lookup misses",
             fresh_service={}, walks_ids=True),
    Workload("get_uncached_cache_off", "get_uncached",
             "get_uncached on a service started with USERMGMT_CACHE_ENABLED=0",
             fresh_service={"USERMGMT_CACHE_ENABLED": "0"}),
    Workload("list", "list", "GET /api/users?limit=50&after=<cursor of a random id>"),
    Workload("update", "update", "PATCH (merge patch) of the name of random ids"),
    Workload("create", "create", "POST /api/users with unique emails"),
    Workload("mixed", "mixed",
             "80% GET Zipf(s=1.1) ids, 8% list, 5% create, 5% PATCH If-Match: *, 2% DELETE"),
)
WORKLOAD_NAMES = tuple(w.name for w in WORKLOADS)
# Not a workload of the service: perf/reference/floor.py in the service's
# column, so that its ratios are the highest any app on the service's edge
# could reach here.
CEILING = Workload("get_cached_ceiling", "get_cached",
                   "get_cached answered with constant bytes by Falcon alone (perf/reference/floor.py) "
                   "on the service's edge, in the service column: the ratio no service on that "
                   "edge can exceed")
CHART_CAPTIONS = (
    "get_cached_ceiling: the service's column is Falcon answering constant bytes on the "
    "service's own edge (perf/reference/floor.py).",
    "Same machine for wrk, every server and PostgreSQL; compare servers with each other. "
    "Numbers and notes: the markdown report beside this picture.",
)
# Selecting get_uncached brings the other random-id workloads along, so
# that its number is never read without them.
RANDOM_ID_FAMILY = ("get_uncached", "get_unique", "get_uncached_cache_off")


# -- command line ---------------------------------------------------------


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value!r}")
    return number


def _env_pair(value: str) -> tuple[str, str]:
    key, sep, val = value.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {value!r}")
    return key, val


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m perf.bench",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=_positive_int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=_positive_int, default=4, help="threads per worker")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--connections", type=_positive_int, default=32, help="wrk connections")
    parser.add_argument("--wrk-threads", type=_positive_int, default=min(2, os.cpu_count() or 1),
                        help="wrk threads (default: min(2, cores))")
    parser.add_argument("--users", type=_positive_int, default=100_000, help="users to seed")
    parser.add_argument("--rounds", type=_positive_int, default=3,
                        help="runs per server per workload (median taken)")
    parser.add_argument("--only", nargs="+", choices=WORKLOAD_NAMES, metavar="WORKLOAD",
                        help=f"workloads to run, from {', '.join(WORKLOAD_NAMES)} "
                             "(get_uncached brings get_unique and get_uncached_cache_off along)")
    parser.add_argument("--fastapi-auth", choices=("none", "db"), default="none",
                        help="FastAPI's authentication: none (default: it does strictly less "
                             "work than the service) or db (a per-request session lookup, as "
                             "the Falcon reference)")
    parser.add_argument("--no-fastapi", dest="fastapi", action="store_false",
                        help="leave the FastAPI reference out (it needs the perf extra: "
                             f"{PERF_EXTRA_INSTALL})")
    parser.add_argument("--warmup", type=float, default=2.0,
                        help="seconds of get_cached per server before measuring (0: none)")
    parser.add_argument("--rate-fraction", type=float, default=0.5,
                        help="open-loop cached GETs at this fraction of the measured peak "
                             "(0: skip; needs get_cached)")
    parser.add_argument("--no-ceiling", dest="ceiling", action="store_false",
                        help="skip the constant-answer server measured after get_cached")
    parser.add_argument("--soak", type=int, default=0, metavar="N",
                        help="send N cached GETs to the service and report RSS (0: skip)")
    parser.add_argument("--soak-max-seconds", type=float, default=900.0,
                        help="upper bound of the soak's duration")
    parser.add_argument("--quiet-wait", type=float, default=0.0,
                        help="on a shared machine: before each run, wait up to this many "
                             "seconds for other processes to use < 0.1 cores (default 0: "
                             "don't wait)")
    parser.add_argument("--database-url",
                        help="use this PostgreSQL database for both servers (it is EMPTIED)")
    parser.add_argument("--service-env", type=_env_pair, action="append", default=[],
                        metavar="KEY=VALUE", help="extra environment of the service (repeatable)")
    parser.add_argument("--logs", type=Path, help="keep the servers' logs in this directory "
                        "(default: a temporary one, deleted at the end)")
    parser.add_argument("--out", type=Path, help="markdown report (default "
                        "perf/results/bench-<date>.md)")
    return parser


def select_workloads(only: Sequence[str] | None) -> list[Workload]:
    """The chosen workloads, in the fixed order (writes last, mixed deletes last of all)."""
    if not only:
        return list(WORKLOADS)
    chosen = set(only)
    if "get_uncached" in chosen:
        chosen.update(RANDOM_ID_FAMILY)
    return [w for w in WORKLOADS if w.name in chosen]


# -- servers --------------------------------------------------------------


@dataclass(frozen=True)
class ServerSpec:
    """What every server of one run shares."""

    log_dir: Path  # the servers' stdout/stderr (gunicorn and the service's JSON logs)
    workers: int
    threads: int
    service_env: Mapping[str, str]


def _service(spec: ServerSpec, database_url: str, name: str,
             extra_env: Mapping[str, str] | None = None) -> ServerProcess:
    port = free_port()
    env = {"DATABASE_URL": database_url, **spec.service_env, **(extra_env or {})}
    return ServerProcess(name, service_command(port, spec.workers, spec.threads), env, port,
                         spec.log_dir / f"{name.replace(' ', '_')}.log", spec.workers)


def _ceiling(spec: ServerSpec) -> ServerProcess:
    port = free_port()
    return ServerProcess("ceiling", edge_command(port, spec.workers,
                                                 "perf.reference.floor:get_asgi_app()"),
                         {}, port, spec.log_dir / "ceiling.log", spec.workers)


def _reference_env(spec: ServerSpec, database_url: str, auth: bool) -> dict[str, str]:
    """What both references are told: their database, pool size and whether to authenticate."""
    # As many connections per process as the service's DbWorkers.
    pool_size = spec.service_env.get("USERMGMT_DB_WORKERS",
                                     os.environ.get("USERMGMT_DB_WORKERS", DEFAULT_DB_WORKERS))
    return {"DATABASE_URL": database_url, "REFERENCE_POOL_SIZE": pool_size,
            "REFERENCE_AUTH": "1" if auth else "0"}


def _reference(spec: ServerSpec, database_url: str, auth: bool) -> ServerProcess:
    port = free_port()
    return ServerProcess("reference", reference_command(port, spec.workers, spec.threads),
                         _reference_env(spec, database_url, auth), port,
                         spec.log_dir / "reference.log", spec.workers)


def _fastapi(spec: ServerSpec, database_url: str, auth: bool) -> ServerProcess:
    port = free_port()
    return ServerProcess("fastapi", fastapi_command(port, spec.workers),
                         _reference_env(spec, database_url, auth), port,
                         spec.log_dir / "fastapi.log", spec.workers)


# -- measuring ------------------------------------------------------------


@dataclass(frozen=True)
class LoadSettings:
    duration: float
    connections: int
    wrk_threads: int
    users: int
    rounds: int
    noise: CpuNoise
    quiet_wait: float = 0.0  # longest wait for other processes to go quiet before a run
    token: str | None = None  # bearer token, when the service wants one

    def settle(self) -> None:
        """Before a measured run: give other processes' load a chance to pass."""
        if self.quiet_wait > 0:
            waited = self.noise.wait_until_quiet(NOISY_CORES, self.quiet_wait, QUIET_WINDOW)
            if waited > QUIET_WINDOW + 0.5:
                print(f"  (waited {waited:.0f} s for other processes to quiet down)", flush=True)

    def wrk_env(self, **extra: str) -> dict[str, str]:
        """Environment of one wrk run; a fresh prefix keeps created emails unique."""
        return {"PERF_USERS": str(self.users), "PERF_HOT_COUNT": str(HOT_COUNT),
                "PERF_ZIPF_S": str(ZIPF_S), "PERF_RUN_PREFIX": secrets.token_hex(4),
                "PERF_THREADS": str(min(self.wrk_threads, self.connections)),
                "PERF_TOKEN": self.token or "", **extra}

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def wrk(self, server: ServerProcess, script: str, duration: float | None = None,
            **extra_env: str) -> WrkResult:
        return run_wrk(server.url, script, duration or self.duration, self.connections,
                       self.wrk_threads, self.wrk_env(**extra_env))


def warm_up(load: LoadSettings, servers: Sequence[ServerProcess], seconds: float) -> None:
    """Unmeasured cached GETs: connections, prepared statements, caches.

    Then a pause, so that the service's cache counters include the warm-up
    before the first measured run reads them.
    """
    if seconds > 0:
        for server in servers:
            load.wrk(server, "get_cached", duration=seconds)
        time.sleep(METRICS_FLUSH_SECONDS)


def _cache_delta(before: Mapping[str, float], after: Mapping[str, float]) -> tuple[int, int]:
    """(hits, misses) between two readings of the service's cache lookups."""
    return (round(after.get("hit", 0) - before.get("hit", 0)),
            round(after.get("miss", 0) - before.get("miss", 0)))


def measure_workload(load: LoadSettings, workload: Workload,
                     servers: Mapping[str, ServerProcess]) -> WorkloadRow:
    """Rounds of one workload on every server, alternating the order (A B C, C B A, ...).

    ``servers`` maps each role (``SERVICE``, ``FASTAPI``, ``REFERENCE``) to
    the server in that column. Around each run: other processes' CPU, the
    workers' CPU per request and, on the service, its cache's hits and
    misses (read from /metrics a moment after the run, once every worker
    has folded its counts in).
    """
    roles = list(servers)
    rss_before = {role: s.workers_rss() for role, s in servers.items()}
    pids_before = {role: s.worker_pids() for role, s in servers.items()}
    rounds: dict[str, list[WrkResult]] = {role: [] for role in roles}
    rounds_noise: dict[str, list[float]] = {role: [] for role in roles}
    rounds_cpu: dict[str, list[float]] = {role: [] for role in roles}
    # get_unique: each round walks its own span of the id permutation.
    span = max(1, load.users // load.rounds)
    cache = CacheLookups()
    for n in range(load.rounds):
        for role in roles if n % 2 == 0 else roles[::-1]:
            server = servers[role]
            extra = ({"PERF_ID_OFFSET": str(n * span), "PERF_ID_SPAN": str(span)}
                     if workload.walks_ids else {})
            load.settle()
            lookups_before = cache_lookups(server.url) if role == SERVICE else None
            cpu_before = workers_cpu_seconds(server)
            run_start = load.noise.snapshot()
            result = load.wrk(server, workload.script, None, **extra)
            others = CpuNoise.other_cores(run_start, load.noise.snapshot())
            cpu_us = (workers_cpu_seconds(server) - cpu_before) / max(result.requests, 1) * 1e6
            rounds[role].append(result)
            rounds_noise[role].append(others)
            rounds_cpu[role].append(cpu_us)
            hits_note = ""
            if lookups_before is not None:
                time.sleep(METRICS_FLUSH_SECONDS)
                lookups_after = cache_lookups(server.url)
                if lookups_after is not None:
                    hits, misses = _cache_delta(lookups_before, lookups_after)
                    cache.hits.append(hits)
                    cache.misses.append(misses)
                    if hits + misses:
                        hits_note = f"  cache hits {hits / (hits + misses):.0%}"
            print(f"  {workload.name:<24} {SIDE_LABELS[role]:<11} round {n + 1}: "
                  f"{result.rps:8.0f} rps  p99 {result.p99_ms:7.1f} ms  5xx {result.s5xx}"
                  f"  {cpu_us:5.0f} µs CPU/req{hits_note}  (other processes: {others:.2f} cores)",
                  flush=True)
    # Over the measured runs only, not the waits for quiet between them.
    other_cores = statistics.mean(c for runs in rounds_noise.values() for c in runs)

    def side(role: str) -> SideResult:
        server = servers[role]
        return SideResult(rounds[role], median_result(rounds[role]), rss_before[role],
                          server.workers_rss(), len(pids_before[role] - server.worker_pids()),
                          rounds_noise[role], rounds_cpu[role])

    return WorkloadRow(workload.name, workload.description, {role: side(role) for role in roles},
                       other_cores, cache if cache.hits else None)


def hot_paths(users: int) -> list[str]:
    """The get_cached hot set, exactly as perf/wrk/common.lua computes it."""
    return [f"/api/users/{(i * 997) % users + 1}" for i in range(min(HOT_COUNT, users))]


def _open_loop_row(load: LoadSettings, name: str,
                   runs: Mapping[str, tuple[ServerProcess, float]]) -> ConstantRateRow:
    """Cached GETs at a constant rate on each server in turn: ``runs`` maps role to (server, rate)."""
    paths = hot_paths(load.users)
    load.settle()
    start = load.noise.snapshot()
    results: dict[str, ConstantRateResult] = {}
    for role, (server, rate) in runs.items():
        result = run_constant_rate(server.url, paths, max(rate, 1.0), load.duration,
                                   connections=load.connections, headers=load.auth_headers)
        print(f"  open loop {SIDE_LABELS[role]:<11} {result.achieved_rps:6.0f}/"
              f"{result.target_rps:.0f} rps  p50 {result.p50_ms:.1f}  p99 {result.p99_ms:.1f}"
              f"  p99.9 {result.p999_ms:.1f} ms", flush=True)
        results[role] = result
    return ConstantRateRow(name, results, CpuNoise.other_cores(start, load.noise.snapshot()))


def measure_open_loop(load: LoadSettings, cached: WorkloadRow, fraction: float,
                      servers: Mapping[str, ServerProcess]) -> list[ConstantRateRow]:
    """Cached GETs at ``fraction`` of each server's peak, then all at the same rate."""
    peaks = {role: cached.sides[role].median.rps for role in servers}
    common = fraction * min(peaks.values())
    return [
        _open_loop_row(load, f"get_cached open loop @ {fraction:.0%} of own peak",
                       {role: (server, fraction * peaks[role]) for role, server in servers.items()}),
        _open_loop_row(load, f"get_cached open loop @ {common:.0f} rps all",
                       {role: (server, common) for role, server in servers.items()}),
    ]


def soak(load: LoadSettings, service: ServerProcess, requests: int,
         max_seconds: float) -> SoakResult:
    """About N cached GETs to the service, with its workers' RSS before, between and after.

    wrk runs for a time, not a count (its main thread sleeps the whole
    duration even if the script stops every thread), so the soak chains
    runs: a short first one to learn the rate, then runs of at most
    SOAK_CHUNK_SECONDS sized from that rate; RSS is sampled after each.
    """
    pids_before = service.worker_pids()
    rss_before = service.workers_rss()
    start = load.noise.snapshot()
    deadline = time.monotonic() + max_seconds
    chunks: list[WrkResult] = []
    samples: list[int] = []
    sent = 0
    while sent < requests and time.monotonic() < deadline - 1:
        rate = sent / sum(c.seconds for c in chunks) if chunks else None
        wanted = SOAK_PROBE_SECONDS if not rate else (requests - sent) / rate
        chunk = min(SOAK_CHUNK_SECONDS, max(1.0, wanted), deadline - time.monotonic())
        chunks.append(load.wrk(service, "get_cached", duration=chunk))
        sent += chunks[-1].requests
        samples.append(service.workers_rss())
        print(f"  soak {sent:>9} / {requests} requests, worker RSS "
              f"{samples[-1] / MIB:.1f} MiB", flush=True)
    other_cores = CpuNoise.other_cores(start, load.noise.snapshot())
    rss_after = service.workers_rss()
    return SoakResult(median_result(chunks), rss_before, max([rss_before, *samples]), rss_after,
                      len(pids_before - service.worker_pids()),
                      [round(s / MIB, 1) for s in samples], other_cores)


# -- the run --------------------------------------------------------------


@dataclass
class Outcome:
    rows: list[WorkloadRow]
    open_loop: list[ConstantRateRow]
    soak: SoakResult | None
    pg_version: str
    databases_shared: bool
    authenticated: bool = False


def prepare_databases(dbs: BenchDatabases, users: int, fastapi: bool) -> str:
    """Migrate and seed each server's database; PostgreSQL's version."""
    urls = {dbs.service_url, dbs.reference_url, *([dbs.fastapi_url] if fastapi else [])}
    for url in urls:
        seed_users(url, users)
    return server_version(dbs.service_url)


def authenticate(service: ServerProcess, dbs: BenchDatabases) -> str | None:
    """A bearer token for every server if the service wants one, else None.

    A service that answers 401 gets an admin (``usermgmt create-admin``,
    password on stdin) who logs in (``POST /api/sessions``); each
    reference's database gets the same admin and a session row for the
    same token, and the references are then run with authentication too,
    so that every server pays for it.
    """
    if service.probe() != 401:
        return None
    password = secrets.token_urlsafe(24)
    create_admin(dbs.service_url, password)
    token = log_in(service.url, password)
    if not dbs.shared:
        for url in dbs.reference_urls:
            create_admin(url, password)
            add_session(url, token)
    status = service.probe(token)
    if status != 200:
        raise RuntimeError(f"the service answers {status} even with the admin's token")
    return token


def run_workloads(args: argparse.Namespace, load: LoadSettings, spec: ServerSpec,
                  dbs: BenchDatabases, outcome: Outcome) -> None:
    workloads = select_workloads(args.only)
    with contextlib.ExitStack() as stack:
        service = stack.enter_context(running(_service(spec, dbs.service_url, "service")))
        token = authenticate(service, dbs)
        outcome.authenticated = token is not None
        load = replace(load, token=token)
        servers = {SERVICE: service}
        if args.fastapi:
            servers[FASTAPI] = stack.enter_context(
                running(_fastapi(spec, dbs.fastapi_url,
                                 auth=token is not None and args.fastapi_auth == "db")))
        servers[REFERENCE] = stack.enter_context(
            running(_reference(spec, dbs.reference_url, auth=token is not None)))
        warm_up(load, list(servers.values()), min(args.warmup, args.duration))
        for workload in workloads:
            if workload.fresh_service is not None:
                outcome.rows.append(
                    measure_on_fresh_service(args, load, spec, dbs, workload, servers))
                continue
            row = measure_workload(load, workload, servers)
            outcome.rows.append(row)
            if workload.name == "get_cached" and args.rate_fraction > 0:
                outcome.open_loop = measure_open_loop(load, row, args.rate_fraction, servers)
            if workload.name == "get_cached" and args.ceiling:
                measure_ceiling(args, load, spec, servers, outcome)
        if args.soak > 0:
            outcome.soak = soak(load, service, args.soak, args.soak_max_seconds)


def measure_ceiling(args: argparse.Namespace, load: LoadSettings, spec: ServerSpec,
                    servers: Mapping[str, ServerProcess], outcome: Outcome) -> None:
    """get_cached with the constant-answer server in the service's column.

    Its open-loop row runs the ceiling alone, at the same share of its own
    peak as the others ran at theirs: the latency floor of the edge here.
    """
    with running(_ceiling(spec)) as ceiling:
        warm_up(load, (ceiling,), min(args.warmup, args.duration))
        row = measure_workload(load, CEILING, {**servers, SERVICE: ceiling})
        outcome.rows.append(row)
        if args.rate_fraction > 0:
            outcome.open_loop.append(_open_loop_row(
                load, f"get_cached_ceiling open loop @ {args.rate_fraction:.0%} of own peak",
                {SERVICE: (ceiling, args.rate_fraction * row.service.median.rps)}))


def measure_on_fresh_service(args: argparse.Namespace, load: LoadSettings, spec: ServerSpec,
                             dbs: BenchDatabases, workload: Workload,
                             servers: Mapping[str, ServerProcess]) -> WorkloadRow:
    """A second service instance (empty cache, the workload's environment) for this workload."""
    assert workload.fresh_service is not None
    fresh = _service(spec, dbs.service_url, f"service ({workload.name})",
                     workload.fresh_service)
    with running(fresh):
        warm_up(load, (fresh,), min(args.warmup, args.duration))
        return measure_workload(load, workload, {**servers, SERVICE: fresh})


def report_notes(args: argparse.Namespace, outcome: Outcome) -> list[str]:
    """Caveats that hold for every run, then anything that went wrong in this one."""
    cores = os.cpu_count()
    notes = [
        f"wrk, every server and PostgreSQL share this machine's {cores} cores: numbers are "
        "for comparing the servers with each other, not absolute capacity. Only one server "
        "runs load at a time; the others sit idle.",
        "wrk is closed-loop (a connection waits for each answer), so its percentiles suffer "
        "from coordinated omission; the open-loop table does not, but its generator is Python "
        "(its own overhead is in the latencies).",
        "Errors are summed over rounds: 5xx / 4xx / socket errors (connect, read, write, "
        "timeout > 10 s). 404 and 412 are expected in mixed (deleted users).",
        "Random ids: get_uncached asks uniformly random ids of the service whose cache has "
        "been filling since it started (each worker process has its own; see the cache "
        "table for the hits); get_unique asks ids that nobody asked before (a fixed "
        "permutation of the ids, each round and wrk thread walking its own part of it) of a "
        "freshly started service, so every lookup misses while a thread sends fewer than "
        "users / (rounds × wrk threads) requests per round (the cache table shows it if "
        "not); "
        "get_uncached_cache_off ran a fresh `usermgmt serve` with USERMGMT_CACHE_ENABLED=0. "
        "For the references, which have no cache, the three are the same work.",
        "Falcon ref: gunicorn gthread with the service's workers × threads, psycopg-pool "
        "checkout per query, stdlib json (Falcon's default media handler; bodies a few % "
        "larger than orjson's). FastAPI: the same gunicorn master and worker count running "
        "uvicorn workers (uvloop, httptools, access log off; --threads does not apply), an "
        "asyncpg pool per worker, orjson bytes in a plain Response. Both references open as "
        "many connections per worker process as the service has DbWorkers, answer the same "
        "JSON, ETags and statuses, and send no ETag on list pages.",
        "RSS counts copy-on-write pages shared with the master in each worker.",
        "get_cached_ceiling: the service column is perf/reference/floor.py (constant bytes, no "
        "middleware, no database) on the service's own edge (gunicorn with app.gunicorn_conf); "
        "its ratios bound what any app on that edge reaches against each reference, and its "
        "open-loop row (the ceiling alone) is the latency floor at that share of peak.",
        ("Every server used the one database given by --database-url (they see each other's "
         "writes)." if outcome.databases_shared else
         "Each server had its own database (same schema and seed) in one embedded PostgreSQL."),
    ]
    if outcome.authenticated:
        fastapi = ("FastAPI authenticated nothing (`--fastapi-auth none`): it does strictly "
                   "less work per request than the service. " if args.fastapi_auth == "none"
                   else "FastAPI checked the token the same plain way (`--fastapi-auth db`). ")
        notes.append(
            "The service required bearer tokens (401 without): every request carried an "
            "admin's token (`usermgmt create-admin`, then `POST /api/sessions`); it answers "
            "from its token cache, one dict lookup after the first request. " + fastapi
            + "The Falcon reference ran with REFERENCE_AUTH=1: a per-request lookup of the "
            "token's SHA-256 in `sessions` (one more query per request, no token cache).")
    if args.service_env:
        notes.append("Service environment overrides: "
                     + ", ".join(f"`{k}={v}`" for k, v in args.service_env))
    disturbed = [row.name for row in outcome.rows if row.other_cpu_cores > NOISY_CORES]
    if disturbed:
        notes.append(f"**Other processes used more than {NOISY_CORES} cores during "
                     f"{', '.join(disturbed)}: those numbers are disturbed; rerun on a quiet "
                     "machine before drawing conclusions.**")
        if args.fastapi:
            notes.append(
                "**On a busy machine the kernel shares CPU among runnable threads: the Falcon "
                f"reference's {args.workers} × {args.threads} gthread threads and the service's "
                "actor threads claim more of it against other processes than FastAPI's "
                f"{args.workers} single-threaded event loops, so FastAPI's requests/s suffer "
                "most from outside load. Compare worker CPU per request there.**")
    for row in outcome.rows:
        for role, side in row.sides.items():
            if side.median.s5xx or side.worker_restarts:
                notes.append(f"**{SIDE_LABELS[role]}: {side.median.s5xx} responses ≥ 500 and "
                             f"{side.worker_restarts} worker restarts in {row.name}.**")
    return notes


def _settings(args: argparse.Namespace, pg_version: str) -> dict[str, str]:
    return {"PostgreSQL (SHOW server_version)": pg_version, "wrk": wrk_version(),
            "gunicorn workers × threads (service, Falcon ref)": f"{args.workers} × {args.threads}",
            "FastAPI": (f"{args.workers} uvicorn workers under gunicorn" if args.fastapi
                        else "not run (--no-fastapi)"),
            "wrk connections / threads": f"{args.connections} / "
                                         f"{min(args.wrk_threads, args.connections)}",
            "duration per run / rounds": f"{args.duration:g} s / {args.rounds}",
            "seeded users": str(args.users)}


def write_report(args: argparse.Namespace, outcome: Outcome, started: dt.datetime) -> Path:
    """The markdown report, and its picture beside it (same name, ``.svg``)."""
    out: Path = args.out or PROJECT_ROOT / "perf" / "results" / f"bench-{started:%Y-%m-%d}.md"
    chart = out.with_suffix(".svg")
    command = "python -m perf.bench " + shlex.join(sys.argv[1:])
    when = f"{started:%Y-%m-%d %H:%M} UTC"
    markdown = render_markdown(
        command=command.strip(), env=environment(_settings(args, outcome.pg_version)),
        rows=outcome.rows, open_loop=outcome.open_loop, soak=outcome.soak,
        notes=report_notes(args, outcome), started=when, chart=chart.name)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown)
    chart.write_text(render_svg(outcome.rows, outcome.open_loop,
                                title=f"usermgmt benchmark, {when} ({out.name})",
                                captions=CHART_CAPTIONS))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if shutil.which("wrk") is None:
        print("perf.bench: wrk is not installed (apt-get install wrk)", file=sys.stderr)
        return 2
    missing = missing_perf_extra() if args.fastapi else []
    if missing:
        print(f"perf.bench: the FastAPI reference needs {', '.join(missing)}, from the "
              f"project's perf extra:\n    {PERF_EXTRA_INSTALL}\n"
              "or leave it out with --no-fastapi", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    started = dt.datetime.now(dt.UTC)
    with tempfile.TemporaryDirectory(prefix="usermgmt-bench-") as tmp:
        workdir = Path(tmp)
        log_dir = args.logs or workdir
        log_dir.mkdir(parents=True, exist_ok=True)
        spec = ServerSpec(log_dir, args.workers, args.threads, dict(args.service_env))
        with benchmark_databases(workdir, args.database_url) as dbs:
            load = LoadSettings(args.duration, args.connections, args.wrk_threads, args.users,
                                args.rounds, CpuNoise(dbs.postmaster_pid), args.quiet_wait)
            pg_version = prepare_databases(dbs, args.users, args.fastapi)
            outcome = Outcome([], [], None, pg_version, dbs.shared)
            run_workloads(args, load, spec, dbs, outcome)
    print()
    print(render_text(outcome.rows, outcome.open_loop))
    out = write_report(args, outcome, started)
    print(f"\nreport written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
