"""The service against a plain Falcon + psycopg-pool reference, under wrk.

    python -m perf.bench [--workers 2] [--threads 4] [--duration 10] [--connections 32]
                         [--users 100000] [--rounds 2] [--only WORKLOAD ...]
                         [--rate-fraction 0.5] [--soak N] [--out perf/results/bench-<date>.md]

Why a reference: absolute requests/s say little on their own (they depend
on the machine, and here wrk, both servers and PostgreSQL share its
cores). Running the same workloads against "what you would write without
the actor design" (``perf/reference/``), on the same database server,
gunicorn settings and connection count, tells what the design costs or
buys.

What it does, everything bounded in time and stopped at the end:

1. starts an embedded PostgreSQL in a temporary directory (or uses
   ``--database-url``, which it empties), with one database per server,
   applies the migrations and seeds ``--users`` users with one
   ``INSERT ... SELECT generate_series``;
2. starts ``usermgmt serve`` (``DATABASE_URL`` set, so it runs no database
   of its own) and the reference under gunicorn with the same workers,
   threads and timeouts, and waits until both answer;
3. for each workload runs wrk (scripts in ``perf/wrk/``) against the
   service and the reference alternately, ``--rounds`` times each, and
   takes the median; worker RSS is read before and after;
4. measures open-loop latency of cached GETs at ``--rate-fraction`` of the
   measured peak (``perf/constant_rate.py``: wrk2 is not packaged);
   then, unless ``--no-ceiling``, get_cached against a Falcon app that
   answers constant bytes (``perf/reference/floor.py``) under the same
   gunicorn settings, alternating with the reference: the
   ``get_cached_ceiling`` row, whose ratio is the highest any service can
   reach with these settings on this machine, and its open-loop latency at
   ``--rate-fraction`` of its own peak (the latency floor);
5. optionally (``--soak N``) sends N cached GETs to the service and
   reports its workers' RSS before, during and after;
6. prints the table and writes it, with the environment, to ``--out``.

Workloads: get_cached, get_uncached (also against a second service
instance started with ``USERMGMT_CACHE_ENABLED=0``: get_uncached_cache_off),
list, update, create, mixed (see the Lua scripts for each).
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
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from perf.constant_rate import ConstantRateResult, run_constant_rate
from perf.cpu_noise import CpuNoise
from perf.report import (
    MIB,
    ConstantRateRow,
    SideResult,
    SoakResult,
    WorkloadRow,
    environment,
    render_markdown,
    render_text,
)
from perf.servers import (
    BenchDatabases,
    ServerProcess,
    add_session,
    benchmark_databases,
    create_admin,
    exit_on_sigterm,
    free_port,
    log_in,
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


@dataclass(frozen=True)
class Workload:
    """A wrk script and what it shows; ``cache_off`` runs it on a cache-less service."""

    name: str
    script: str
    description: str
    cache_off: bool = False


WORKLOADS: tuple[Workload, ...] = (
    Workload("get_cached", "get_cached", f"GET /api/users/{{id}} over {HOT_COUNT} hot ids"),
    Workload("get_uncached", "get_uncached", "GET /api/users/{id}, uniform over all ids"),
    Workload("get_uncached_cache_off", "get_uncached",
             "get_uncached on a service started with USERMGMT_CACHE_ENABLED=0", cache_off=True),
    Workload("list", "list", "GET /api/users?limit=50&after=<cursor of a random id>"),
    Workload("update", "update", "PATCH (merge patch) of the name of random ids"),
    Workload("create", "create", "POST /api/users with unique emails"),
    Workload("mixed", "mixed",
             "80% GET Zipf(s=1.1) ids, 8% list, 5% create, 5% PATCH If-Match: *, 2% DELETE"),
)
WORKLOAD_NAMES = tuple(w.name for w in WORKLOADS)
# Not a workload of the service: perf/reference/floor.py in the service's
# column, so that its ratio is the highest one any app could reach here.
CEILING = Workload("get_cached_ceiling", "get_cached",
                   "get_cached answered with constant bytes by Falcon alone (perf/reference/floor.py) "
                   "under the same gunicorn settings, in the service column: the ratio no service "
                   "can exceed")


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
    parser.add_argument("--rounds", type=_positive_int, default=2,
                        help="runs per server per workload (median taken)")
    parser.add_argument("--only", nargs="+", choices=WORKLOAD_NAMES, metavar="WORKLOAD",
                        help=f"workloads to run, from {', '.join(WORKLOAD_NAMES)} "
                             "(get_uncached brings get_uncached_cache_off along)")
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
        chosen.add("get_uncached_cache_off")
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
    return ServerProcess("ceiling", reference_command(port, spec.workers, spec.threads,
                                                      "perf.reference.floor:get_app()"),
                         {}, port, spec.log_dir / "ceiling.log", spec.workers)


def _reference(spec: ServerSpec, database_url: str, auth: bool) -> ServerProcess:
    port = free_port()
    # As many connections per process as the service's DbWorkers.
    pool_size = spec.service_env.get("USERMGMT_DB_WORKERS",
                                     os.environ.get("USERMGMT_DB_WORKERS", DEFAULT_DB_WORKERS))
    env = {"DATABASE_URL": database_url, "REFERENCE_POOL_SIZE": pool_size,
           "REFERENCE_AUTH": "1" if auth else "0"}
    return ServerProcess("reference", reference_command(port, spec.workers, spec.threads), env,
                         port, spec.log_dir / "reference.log", spec.workers)


@contextlib.contextmanager
def running(server: ServerProcess) -> Iterator[ServerProcess]:
    """Start, wait until ready; always stop (the whole process group)."""
    try:
        server.start()
        server.wait_ready()
        yield server
    finally:
        server.stop()


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
                "PERF_TOKEN": self.token or "", **extra}

    @property
    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    def wrk(self, server: ServerProcess, script: str, duration: float | None = None,
            **extra_env: str) -> WrkResult:
        return run_wrk(server.url, script, duration or self.duration, self.connections,
                       self.wrk_threads, self.wrk_env(**extra_env))


def warm_up(load: LoadSettings, servers: Sequence[ServerProcess], seconds: float) -> None:
    """Unmeasured cached GETs: connections, prepared statements, caches."""
    if seconds > 0:
        for server in servers:
            load.wrk(server, "get_cached", duration=seconds)


def measure_workload(load: LoadSettings, workload: Workload, service: ServerProcess,
                     reference: ServerProcess) -> WorkloadRow:
    """Rounds of one workload, alternating which server goes first (ABBA)."""
    servers = (service, reference)
    rss_before = {s.name: s.workers_rss() for s in servers}
    pids_before = {s.name: s.worker_pids() for s in servers}
    rounds: dict[str, list[WrkResult]] = {s.name: [] for s in servers}
    rounds_noise: dict[str, list[float]] = {s.name: [] for s in servers}
    for n in range(load.rounds):
        for server in servers if n % 2 == 0 else servers[::-1]:
            load.settle()
            run_start = load.noise.snapshot()
            result = load.wrk(server, workload.script)
            rounds[server.name].append(result)
            others = CpuNoise.other_cores(run_start, load.noise.snapshot())
            rounds_noise[server.name].append(others)
            print(f"  {workload.name:<24} {server.name:<20} round {n + 1}: {result.rps:8.0f} rps"
                  f"  p99 {result.p99_ms:7.1f} ms  5xx {result.s5xx}"
                  f"  (other processes: {others:.2f} cores)", flush=True)
    # Over the measured runs only, not the waits for quiet between them.
    other_cores = statistics.mean(c for runs in rounds_noise.values() for c in runs)

    def side(server: ServerProcess) -> SideResult:
        return SideResult(rounds[server.name], median_result(rounds[server.name]),
                          rss_before[server.name], server.workers_rss(),
                          len(pids_before[server.name] - server.worker_pids()),
                          rounds_noise[server.name])

    return WorkloadRow(workload.name, workload.description, side(service), side(reference),
                       other_cores)


def hot_paths(users: int) -> list[str]:
    """The get_cached hot set, exactly as perf/wrk/common.lua computes it."""
    return [f"/api/users/{(i * 997) % users + 1}" for i in range(min(HOT_COUNT, users))]


def _open_loop_row(load: LoadSettings, name: str, service: ServerProcess, service_rate: float,
                   reference: ServerProcess, reference_rate: float) -> ConstantRateRow:
    paths = hot_paths(load.users)

    def run(server: ServerProcess, rate: float) -> ConstantRateResult:
        result = run_constant_rate(server.url, paths, max(rate, 1.0), load.duration,
                                   connections=load.connections, headers=load.auth_headers)
        print(f"  open loop {server.name:<20} {result.achieved_rps:6.0f}/{result.target_rps:.0f}"
              f" rps  p50 {result.p50_ms:.1f}  p99 {result.p99_ms:.1f}"
              f"  p99.9 {result.p999_ms:.1f} ms", flush=True)
        return result

    load.settle()
    start = load.noise.snapshot()
    service_result = run(service, service_rate)
    reference_result = run(reference, reference_rate)
    return ConstantRateRow(name, service_result, reference_result,
                           CpuNoise.other_cores(start, load.noise.snapshot()))


def measure_open_loop(load: LoadSettings, cached: WorkloadRow, fraction: float,
                      service: ServerProcess, reference: ServerProcess) -> list[ConstantRateRow]:
    """Cached GETs at ``fraction`` of each server's peak, then both at the same rate."""
    peak_service, peak_reference = cached.service.median.rps, cached.reference.median.rps
    common = fraction * min(peak_service, peak_reference)
    return [
        _open_loop_row(load, f"get_cached open loop @ {fraction:.0%} of own peak",
                       service, fraction * peak_service, reference, fraction * peak_reference),
        _open_loop_row(load, f"get_cached open loop @ {common:.0f} rps both",
                       service, common, reference, common),
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


def prepare_databases(dbs: BenchDatabases, users: int) -> str:
    """Migrate and seed each server's database; PostgreSQL's version."""
    for url in {dbs.service_url, dbs.reference_url}:
        seed_users(url, users)
    return server_version(dbs.service_url)


def authenticate(service: ServerProcess, dbs: BenchDatabases) -> str | None:
    """A bearer token for both servers if the service wants one, else None.

    A service that answers 401 gets an admin (``usermgmt create-admin``,
    password on stdin) who logs in (``POST /api/sessions``); the
    reference's database gets the same admin and a session row for the
    same token, and the reference is then run with authentication too, so
    that both servers pay for it.
    """
    if service.probe() != 401:
        return None
    password = secrets.token_urlsafe(24)
    create_admin(dbs.service_url, password)
    token = log_in(service.url, password)
    if not dbs.shared:
        create_admin(dbs.reference_url, password)
        add_session(dbs.reference_url, token)
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
        reference = stack.enter_context(
            running(_reference(spec, dbs.reference_url, auth=token is not None)))
        warm_up(load, (service, reference), min(args.warmup, args.duration))
        for workload in workloads:
            if workload.cache_off:
                outcome.rows.append(measure_cache_off(args, load, spec, dbs, workload, reference))
                continue
            row = measure_workload(load, workload, service, reference)
            outcome.rows.append(row)
            if workload.name == "get_cached" and args.rate_fraction > 0:
                outcome.open_loop = measure_open_loop(load, row, args.rate_fraction, service,
                                                      reference)
            if workload.name == "get_cached" and args.ceiling:
                with running(_ceiling(spec)) as ceiling:
                    warm_up(load, (ceiling,), min(args.warmup, args.duration))
                    ceiling_row = measure_workload(load, CEILING, ceiling, reference)
                    outcome.rows.append(ceiling_row)
                    if args.rate_fraction > 0:
                        # The latency floor: the ceiling server at the same share of its peak.
                        outcome.open_loop.append(_open_loop_row(
                            load, f"get_cached_ceiling open loop @ {args.rate_fraction:.0%} of own peak",
                            ceiling, args.rate_fraction * ceiling_row.service.median.rps,
                            reference, args.rate_fraction * ceiling_row.reference.median.rps))
        if args.soak > 0:
            outcome.soak = soak(load, service, args.soak, args.soak_max_seconds)


def measure_cache_off(args: argparse.Namespace, load: LoadSettings, spec: ServerSpec,
                      dbs: BenchDatabases, workload: Workload,
                      reference: ServerProcess) -> WorkloadRow:
    """A second service instance, cache disabled, for just this workload."""
    cache_off = _service(spec, dbs.service_url, "service (cache off)",
                         {"USERMGMT_CACHE_ENABLED": "0"})
    with running(cache_off):
        warm_up(load, (cache_off,), min(args.warmup, args.duration))
        return measure_workload(load, workload, cache_off, reference)


def report_notes(args: argparse.Namespace, outcome: Outcome) -> list[str]:
    """Caveats that hold for every run, then anything that went wrong in this one."""
    cores = os.cpu_count()
    notes = [
        f"wrk, both servers and PostgreSQL share this machine's {cores} cores: numbers are "
        "for comparing the two servers with each other, not absolute capacity.",
        "wrk is closed-loop (a connection waits for each answer), so its percentiles suffer "
        "from coordinated omission; the open-loop table does not, but its generator is Python "
        "(its own overhead is in the latencies).",
        "Errors are summed over rounds: 5xx / 4xx / socket errors (connect, read, write, "
        "timeout > 10 s). 404 and 412 are expected in mixed (deleted users).",
        "get_uncached: each service worker process has its own cache, filled as the run goes; "
        "get_uncached_cache_off ran a second `usermgmt serve` with USERMGMT_CACHE_ENABLED=0.",
        "The reference sends no ETag on list pages and encodes with stdlib json (Falcon's "
        "default media handler; bodies a few % larger than the service's orjson).",
        "RSS counts copy-on-write pages shared with the master in each worker.",
        "get_cached_ceiling: the service column is perf/reference/floor.py (constant bytes, no "
        "middleware, no database) under the same gunicorn settings; its ratio bounds every "
        "other ratio in the table, and its open-loop row is the latency floor at that share "
        "of peak.",
        ("Both servers used the one database given by --database-url (they see each other's "
         "writes)." if outcome.databases_shared else
         "Each server had its own database (same schema and seed) in one embedded PostgreSQL."),
    ]
    if outcome.authenticated:
        notes.append(
            "The service required bearer tokens (401 without): every request carried an "
            "admin's token (`usermgmt create-admin`, then `POST /api/sessions`), and the "
            "reference ran with REFERENCE_AUTH=1 (a plain per-request session lookup in the "
            "`sessions` table, no token cache), so both paid for authentication.")
    if args.service_env:
        notes.append("Service environment overrides: "
                     + ", ".join(f"`{k}={v}`" for k, v in args.service_env))
    disturbed = [row.name for row in outcome.rows if row.other_cpu_cores > NOISY_CORES]
    if disturbed:
        notes.append(f"**Other processes used more than {NOISY_CORES} cores during "
                     f"{', '.join(disturbed)}: those numbers are disturbed; rerun on a quiet "
                     "machine before drawing conclusions.**")
    for row in outcome.rows:
        for label, side in (("service", row.service), ("reference", row.reference)):
            if side.median.s5xx or side.worker_restarts:
                notes.append(f"**{label}: {side.median.s5xx} responses ≥ 500 and "
                             f"{side.worker_restarts} worker restarts in {row.name}.**")
    return notes


def _settings(args: argparse.Namespace, pg_version: str) -> dict[str, str]:
    return {"PostgreSQL (SHOW server_version)": pg_version, "wrk": wrk_version(),
            "gunicorn workers × threads (both servers)": f"{args.workers} × {args.threads}",
            "wrk connections / threads": f"{args.connections} / "
                                         f"{min(args.wrk_threads, args.connections)}",
            "duration per run / rounds": f"{args.duration:g} s / {args.rounds}",
            "seeded users": str(args.users)}


def write_report(args: argparse.Namespace, outcome: Outcome, started: dt.datetime) -> Path:
    out: Path = args.out or PROJECT_ROOT / "perf" / "results" / f"bench-{started:%Y-%m-%d}.md"
    command = "python -m perf.bench " + shlex.join(sys.argv[1:])
    markdown = render_markdown(
        command=command.strip(), env=environment(_settings(args, outcome.pg_version)),
        rows=outcome.rows, open_loop=outcome.open_loop, soak=outcome.soak,
        notes=report_notes(args, outcome), started=f"{started:%Y-%m-%d %H:%M} UTC")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown)
    return out



def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if shutil.which("wrk") is None:
        print("perf.bench: wrk is not installed (apt-get install wrk)", file=sys.stderr)
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
            pg_version = prepare_databases(dbs, args.users)
            outcome = Outcome([], [], None, pg_version, dbs.shared)
            run_workloads(args, load, spec, dbs, outcome)
    print()
    print(render_text(outcome.rows, outcome.open_loop))
    out = write_report(args, outcome, started)
    print(f"\nreport written to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
