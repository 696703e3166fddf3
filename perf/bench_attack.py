"""A normal client's latency while slow and silent clients attack, on each server.

    python -m perf.bench_attack [--rate 200] [--duration 10] [--workers 2]
                                [--out perf/results/attack-<date>.md]

For the service, FastAPI + uvicorn + asyncpg (perf extra; skipped with
``--no-fastapi``) and the Falcon + psycopg-pool reference on gthread, one
after another, each on its own database of 1,000 users:

1. a normal client sends cached-id ``GET /api/users/{id}`` open loop at
   ``--rate`` per second for ``--duration`` seconds (``perf/constant_rate.py``:
   latency measured from each request's due time): the baseline;
2. then 200 slowloris heads, 200 slow bodies (``POST /api/users`` declaring
   1,000 bytes, one byte every half second) and 2,000 silent connections
   are opened (``perf/attack.py``) and the same normal load runs again;
3. the attack is held for ``--hold`` seconds more (longer than the
   service's header and body deadlines, 10 s and 15 s) and the connections
   each server has closed by then are counted.

Everything runs on loopback and is stopped at the end, also on SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import secrets
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from perf.attack import Attack, SlowClients
from perf.constant_rate import ConstantRateResult, run_constant_rate
from perf.harness import running
from perf.report import environment
from perf.servers import (
    ServerProcess,
    add_session,
    benchmark_databases,
    create_admin,
    exit_on_sigterm,
    fastapi_command,
    free_port,
    log_in,
    missing_perf_extra,
    reference_command,
    seed_users,
    service_command,
)

USERS = 1000
HOT_IDS = 100


@dataclass
class Outcome:
    server: str
    baseline: ConstantRateResult
    attacked: ConstantRateResult | None
    closed: dict[str, int]
    error: str | None = None


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=200.0, help="normal requests per second")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    parser.add_argument("--hold", type=float, default=20.0,
                        help="seconds the attack is held after the measurement")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="the gthread reference's threads")
    parser.add_argument("--no-fastapi", dest="fastapi", action="store_false")
    parser.add_argument("--out", type=Path)
    return parser.parse_args(argv)


def measure(server: ServerProcess, args: argparse.Namespace, token: str) -> Outcome:
    paths = [f"/api/users/{i}" for i in range(1, HOT_IDS + 1)]
    headers = {"Authorization": f"Bearer {token}"}
    run_constant_rate(server.url, paths, args.rate, 2.0, headers=headers)  # warm the caches
    baseline = run_constant_rate(server.url, paths, args.rate, args.duration, headers=headers)
    attack = Attack(body_path="/api/users")
    try:
        with SlowClients("127.0.0.1", server.port, attack) as clients:
            attacked = run_constant_rate(server.url, paths, args.rate, args.duration,
                                         headers=headers, drain=10.0)
            time.sleep(args.hold)
            closed = clients.closed_by_server()
    except OSError as exc:  # could not even open the attack's connections
        return Outcome(server.name, baseline, None, {}, f"{type(exc).__name__}: {exc}")
    return Outcome(server.name, baseline, attacked, closed)


def servers(args: argparse.Namespace, urls: dict[str, str], logs: Path) -> list[ServerProcess]:
    def make(name: str, argv: list[str], env: dict[str, str]) -> ServerProcess:
        return ServerProcess(name, argv, env, port, logs / f"{name}.log", args.workers)

    chosen = []
    port = free_port()
    chosen.append(make("service", service_command(port, args.workers),
                       {"DATABASE_URL": urls["service"], "USERMGMT_LOG_LEVEL": "WARNING",
                        "USERMGMT_DATA_DIR": str(logs / "var")}))
    if args.fastapi:
        port = free_port()
        chosen.append(make("fastapi", fastapi_command(port, args.workers),
                           {"DATABASE_URL": urls["fastapi"], "REFERENCE_AUTH": "1"}))
    port = free_port()
    chosen.append(make("falcon-gthread", reference_command(port, args.workers, args.threads),
                       {"DATABASE_URL": urls["reference"], "REFERENCE_AUTH": "1"}))
    return chosen


def report(outcomes: list[Outcome], args: argparse.Namespace, command: str) -> str:
    attack = Attack()
    lines = [
        f"# A normal client under attack — {dt.date.today().isoformat()}", "",
        f"Command: `{command}`", "",
        f"Normal load: cached-id `GET /api/users/{{id}}`, open loop at {args.rate:g} requests/s "
        f"for {args.duration:g} s (latency from each request's due time). Attack: "
        f"{attack.slow_heads} slowloris heads, {attack.slow_bodies} slow bodies "
        f"(`POST /api/users`, 1,000 bytes declared, one byte every {attack.drip_every:g} s), "
        f"{attack.silent} silent connections, all opened at once; connections closed by "
        f"the server counted {args.hold:g} s after the measurement. {args.workers} workers "
        "per server; every server authenticated the token (the service from its cache, the "
        "references with a query).", "",
        "| server | p50 / p99 ms idle | p50 / p99 ms attacked | answered / sent attacked "
        "(not answered in time) | slow heads closed | slow bodies closed | silent closed |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        if o.attacked is None:
            lines.append(f"| {o.server} | {o.baseline.p50_ms:.1f} / {o.baseline.p99_ms:.1f} "
                         f"| could not open the attack: {o.error} | | | | |")
            continue
        answered = o.attacked.s2xx + o.attacked.s3xx
        lines.append(
            f"| {o.server} | {o.baseline.p50_ms:.1f} / {o.baseline.p99_ms:.1f} "
            f"| {o.attacked.p50_ms:.1f} / {o.attacked.p99_ms:.1f} "
            f"| {answered} / {o.attacked.sent} ({o.attacked.dropped}) "
            f"| {o.closed.get('head', 0)} / {attack.slow_heads} "
            f"| {o.closed.get('body', 0)} / {attack.slow_bodies} "
            f"| {o.closed.get('silent', 0)} / {attack.silent} |")
    lines += ["", "## Environment", ""]
    settings = {"servers' workers": str(args.workers),
                "gthread reference's threads": str(args.threads),
                "normal rate, duration, hold": f"{args.rate:g}/s, {args.duration:g} s, "
                                               f"{args.hold:g} s"}
    lines += [f"- {key}: {value}" for key, value in environment(settings).items()]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, exit_on_sigterm)
    if args.fastapi and missing_perf_extra():
        print("the FastAPI reference needs the perf extra: pip install -e '.[test,perf]' "
              "(or pass --no-fastapi)", file=sys.stderr)
        return 2
    command = "python -m perf.bench_attack " + shlex.join(argv or sys.argv[1:])
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="usermgmt-attack-") as tmp:
        workdir = Path(tmp)
        with benchmark_databases(workdir, None) as dbs:
            urls = {"service": dbs.service_url, "reference": dbs.reference_url,
                    "fastapi": dbs.fastapi_url}
            for url in set(urls.values()):
                seed_users(url, USERS)
            password = secrets.token_urlsafe(18)
            for url in set(urls.values()):
                create_admin(url, password)
            token = ""
            for server in servers(args, urls, workdir):
                with running(server):
                    if server.name == "service":
                        token = log_in(server.url, password)
                        for url in dbs.reference_urls:
                            add_session(url, token)
                    outcome = measure(server, args, token)
                    outcomes.append(outcome)
                    print(f"{server.name}: idle p99 {outcome.baseline.p99_ms:.1f} ms, attacked "
                          f"{outcome.attacked.p99_ms if outcome.attacked else 'n/a'}", flush=True)
    text = report(outcomes, args, command)
    out = args.out or Path("perf/results") / f"attack-{dt.date.today().isoformat()}.md"
    out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    os._exit(130)
