"""The benchmark's processes: the database, the service and the references.

Everything here is started by the benchmark and stopped by it. Servers are
:class:`perf.harness.ServerProcess`: each runs in its own process group, so
that stopping kills the gunicorn master and every worker, even after a crash.

Only the service's outside is used: ``usermgmt serve`` with
``DATABASE_URL`` (so it starts no embedded database of its own), the
``USERMGMT_*`` variables and the HTTP API; ``app.embedded_db.EmbeddedPostgres``
and ``app.migrations.apply_migrations`` to create and seed the database.
When the service wants bearer tokens, also ``usermgmt create-admin``,
``POST /api/sessions`` and, for the references (which have no login), a
row in the migrations' ``sessions`` table; ``/metrics`` for the service's
cache hits and misses.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import psycopg
import requests

from app.embedded_db import EmbeddedPostgres
from app.migrations import apply_migrations
from perf import harness
from perf.harness import (
    ServerProcess,
    free_port,
    http_status,
    login,
    serve_command,
)

__all__ = [
    "PERF_EXTRA_INSTALL",
    "BenchDatabases",
    "ServerProcess",
    "add_session",
    "benchmark_databases",
    "cache_lookups",
    "create_admin",
    "exit_on_sigterm",
    "fastapi_command",
    "free_port",
    "http_status",
    "log_in",
    "missing_perf_extra",
    "reference_command",
    "seed_users",
    "server_version",
    "service_command",
]

SERVICE_DATABASE = "bench_service"
REFERENCE_DATABASE = "bench_reference"
FASTAPI_DATABASE = "bench_fastapi"
BENCH_ADMIN_EMAIL = "bench-admin@bench.example.com"
# What the FastAPI reference imports beyond the project's own dependencies
# (setup.cfg's `perf` extra).
PERF_EXTRA_MODULES = ("fastapi", "uvicorn", "uvicorn_worker", "uvloop", "httptools", "asyncpg")
PERF_EXTRA_INSTALL = ".venv/bin/pip install -e '.[perf]'"
# perf.bench_workers builds its gunicorn command lines with it.
_venv_script = harness.venv_script
_CACHE_LOOKUP = re.compile(
    r'^usermgmt_cache_requests_total\{result="(hit|miss)"\} ([0-9.e+]+)$', re.MULTILINE)


def exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """A SIGTERM handler: unwind like Ctrl-C, so every ``finally`` stops its server."""
    raise SystemExit(128 + signum)


def service_command(port: int, workers: int, threads: int = 0) -> list[str]:
    """``usermgmt serve`` exactly as the README runs it.

    ``threads`` is ignored: the service's asyncio worker has no request
    threads (the argument stays so that callers can pass one setting to
    both the service and the gthread references).
    """
    return serve_command(port, workers)


def _gunicorn(port: int, workers: int, worker_class: list[str], app: str,
              name: str) -> list[str]:
    """gunicorn with the master settings ``usermgmt serve`` uses (30 s timeouts)."""
    script = _venv_script("gunicorn")
    base = [str(script)] if script else [sys.executable, "-m", "gunicorn"]
    return [*base, *worker_class, "-w", str(workers), "--bind", f"127.0.0.1:{port}",
            "--timeout", "30", "--graceful-timeout", "30", "--name", name, app]


def reference_command(port: int, workers: int, threads: int,
                      app: str = "perf.reference.app:get_app()") -> list[str]:
    """A Falcon app under gunicorn's gthread worker, as ``usermgmt serve`` runs the service."""
    return _gunicorn(port, workers, ["-k", "gthread", "--threads", str(threads)], app,
                     "usermgmt-reference")


def edge_command(port: int, workers: int, app: str) -> list[str]:
    """An ASGI app on the service's own edge: gunicorn with ``app.gunicorn_conf``."""
    return _gunicorn(port, workers, ["-c", "python:app.gunicorn_conf"], app, "usermgmt-ceiling")


def fastapi_command(port: int, workers: int) -> list[str]:
    """The FastAPI reference: uvicorn workers (uvloop, httptools) under a gunicorn master."""
    return _gunicorn(port, workers, ["-k", "perf.reference.fastapi_app.Worker"],
                     "perf.reference.fastapi_app:get_app()", "usermgmt-fastapi")


def missing_perf_extra() -> list[str]:
    """The FastAPI reference's modules that are not installed (empty: it can run)."""
    return [name for name in PERF_EXTRA_MODULES if importlib.util.find_spec(name) is None]


# -- database -------------------------------------------------------------


@dataclass(frozen=True)
class BenchDatabases:
    """Connection URLs of the service's and each reference's database."""

    service_url: str
    reference_url: str
    fastapi_url: str
    shared: bool  # every server on one database (--database-url)
    postmaster_pid: int | None = None  # the embedded server's; None when external

    @property
    def reference_urls(self) -> list[str]:
        """The references' databases (distinct from the service's unless shared)."""
        return [self.reference_url, self.fastapi_url]


def _create_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def open_to_the_database(workdir: Path) -> Path:
    """Let the embedded PostgreSQL search ``workdir`` (a benchmark's own, 0700 from mkdtemp).

    As root it runs as the system user ``pgserver``, which must reach a data
    directory inside; it never opens a directory on its own.
    """
    workdir.chmod(0o711)
    return workdir


@contextlib.contextmanager
def benchmark_databases(workdir: Path, database_url: str | None) -> Iterator[BenchDatabases]:
    """An embedded PostgreSQL in ``workdir`` with one database per server.

    Separate databases keep the servers from seeing each other's writes
    (creates, deletes) while sharing one PostgreSQL, so all pay the same
    database costs. With ``database_url`` every server shares that database.
    """
    if database_url is not None:
        yield BenchDatabases(database_url, database_url, database_url, shared=True)
        return
    embedded = EmbeddedPostgres(open_to_the_database(workdir) / "db")
    embedded.start()
    try:
        for name in (SERVICE_DATABASE, REFERENCE_DATABASE, FASTAPI_DATABASE):
            _create_database(embedded.url(), name)
        yield BenchDatabases(embedded.url(SERVICE_DATABASE), embedded.url(REFERENCE_DATABASE),
                             embedded.url(FASTAPI_DATABASE), shared=False,
                             postmaster_pid=_postmaster_pid(embedded.pgdata))
    finally:
        embedded.stop()


def _postmaster_pid(pgdata: Path) -> int | None:
    """The postmaster's pid, from the first line of ``postmaster.pid``."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int((pgdata / "postmaster.pid").read_text().splitlines()[0])
    return None


def seed_users(url: str, count: int) -> None:
    """Migrate, empty ``users`` and insert users 1..count in one statement.

    ``RESTART IDENTITY`` makes the ids exactly 1..count, which the wrk
    scripts rely on; ``CASCADE`` empties whatever references users (a
    fresh database has nothing there; ``--database-url`` is documented as
    emptied). Triggers stay on, whatever the migrations put there: with no
    listener yet, 100k NOTIFYs cost about a second.
    """
    apply_migrations(url)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE users RESTART IDENTITY CASCADE")
        conn.execute(
            "INSERT INTO users (name, email)"
            " SELECT 'User ' || g, 'user' || g || '@example.com'"
            " FROM generate_series(1, %s) AS g",
            (count,),
        )
        conn.execute("VACUUM ANALYZE users")


def server_version(url: str) -> str:
    """PostgreSQL's ``SHOW server_version``."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SHOW server_version").fetchone()
    return str(row[0]) if row else "?"


# -- HTTP and authentication ----------------------------------------------


def cache_lookups(base_url: str) -> dict[str, float] | None:
    """The service's users-cache lookups so far by result (``hit``, ``miss``), from /metrics.

    None when the server has no such metrics (a reference, the ceiling).
    A scrape folds only the scraped worker's latest counts; the others'
    are at most a second behind (``app.metrics.Tally``), so wait that long
    after a run before reading.
    """
    try:
        with urllib.request.urlopen(base_url + "/metrics", timeout=5) as response:
            text = response.read().decode()
    except (urllib.error.URLError, OSError):
        return None
    counts = {result: float(value) for result, value in _CACHE_LOOKUP.findall(text)}
    return counts or None


def create_admin(database_url: str, password: str) -> None:
    """``usermgmt create-admin`` (password on stdin) for the benchmark's admin."""
    harness.create_admin({"DATABASE_URL": database_url}, BENCH_ADMIN_EMAIL, password, "Bench Admin")


def log_in(base_url: str, password: str) -> str:
    """A bearer token for the benchmark's admin (``POST /api/sessions``)."""
    with requests.Session() as http:
        response = login(http, base_url, BENCH_ADMIN_EMAIL, password)
    response.raise_for_status()
    return str(response.json()["token"])


def add_session(database_url: str, token: str) -> None:
    """Let ``token`` in on a reference's database: its admin gets a session row.

    The references have no login route; the row is what the service's login
    writes (the SHA-256 of the token, per the migrations' ``sessions``).
    """
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO sessions (token_hash, user_id, expires_at)"
            " SELECT %s, id, now() + interval '1 day' FROM users WHERE lower(email) = %s",
            (hashlib.sha256(token.encode()).digest(), BENCH_ADMIN_EMAIL),
        )
