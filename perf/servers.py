"""The benchmark's processes: the database, the service and the references.

Everything here is started by the benchmark and stopped by it: servers run
in their own process group (``start_new_session``) so that stopping kills
the gunicorn master and every worker, even after a crash.

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
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import IO

import psutil
import psycopg

from app.embedded_db import EmbeddedPostgres
from app.migrations import apply_migrations

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

PROJECT_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 90.0
STOP_TIMEOUT = 35.0  # gunicorn's graceful timeout is 30 s
SERVICE_DATABASE = "bench_service"
REFERENCE_DATABASE = "bench_reference"
FASTAPI_DATABASE = "bench_fastapi"
READY_PATH = "/api/users?limit=1"
# An answer at all: 200, or 401 from a server that wants a bearer token.
ANSWERED = (200, 401)
BENCH_ADMIN_EMAIL = "bench-admin@bench.example.com"
# What the FastAPI reference imports beyond the project's own dependencies
# (setup.cfg's `perf` extra).
PERF_EXTRA_MODULES = ("fastapi", "uvicorn", "uvicorn_worker", "uvloop", "httptools", "asyncpg")
PERF_EXTRA_INSTALL = ".venv/bin/pip install -e '.[perf]'"
_CACHE_LOOKUP = re.compile(
    r'^usermgmt_cache_requests_total\{result="(hit|miss)"\} ([0-9.e+]+)$', re.MULTILINE)


def exit_on_sigterm(signum: int, frame: FrameType | None) -> None:
    """A SIGTERM handler: unwind like Ctrl-C, so every ``finally`` stops its server."""
    raise SystemExit(128 + signum)


def free_port() -> int:
    """An unused loopback port (there is a small race until the server binds it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _venv_script(name: str) -> Path | None:
    script = Path(sys.executable).with_name(name)
    return script if script.exists() else None


def _usermgmt() -> list[str]:
    """The installed ``usermgmt`` console script (or the module, if not installed)."""
    script = _venv_script("usermgmt")
    return [str(script)] if script else [sys.executable, "-m", "app.cli"]


def service_command(port: int, workers: int, threads: int = 0) -> list[str]:
    """``usermgmt serve`` exactly as the README runs it.

    ``threads`` is ignored: the service's asyncio worker has no request
    threads (the argument stays so that callers can pass one setting to
    both the service and the gthread references).
    """
    return [*_usermgmt(), "serve", "--bind", f"127.0.0.1:{port}", "--workers", str(workers)]


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


def http_status(url: str, token: str | None = None) -> int | None:
    """Status of a GET (None when nothing answers)."""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers),
                                    timeout=2) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return None


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
    completed = subprocess.run(
        [*_usermgmt(), "create-admin", "--email", BENCH_ADMIN_EMAIL, "--name", "Bench Admin"],
        input=password + "\n", env={**os.environ, "DATABASE_URL": database_url},
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"usermgmt create-admin failed: {completed.stdout}{completed.stderr}")


def log_in(base_url: str, password: str) -> str:
    """A bearer token for the benchmark's admin (``POST /api/sessions``)."""
    body = json.dumps({"email": BENCH_ADMIN_EMAIL, "password": password}).encode()
    request = urllib.request.Request(base_url + "/api/sessions", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return str(json.load(response)["token"])


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


# -- servers --------------------------------------------------------------


def _terminate_with_parent() -> None:
    """In the child before exec: SIGTERM the server if the benchmark dies.

    The benchmark stops its servers in ``finally``; this also covers a
    benchmark killed with SIGKILL (e.g. a test's timeout), which runs no
    ``finally``. Linux only; elsewhere a no-op.
    """
    with contextlib.suppress(OSError, AttributeError):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@dataclass
class ServerProcess:
    """One gunicorn master (and its workers) in its own process group."""

    name: str
    argv: list[str]
    env: Mapping[str, str]
    port: int
    log_path: Path
    workers: int
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ServerProcess:
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.argv, env={**os.environ, **self.env}, cwd=PROJECT_ROOT, stdout=self._log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=_terminate_with_parent,  # noqa: PLW1509 - no threads run yet
        )
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until it answers 200 and every worker process is up.

        Each gunicorn worker builds its app after fork; one answer proves
        only one worker, so also wait for all of them to be forked and
        give them a moment to finish starting.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._raise_if_exited()
            if self.probe() in ANSWERED and len(self.worker_pids()) >= self.workers:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError(f"{self.name} not ready within {timeout} s:\n{self.log_tail()}")
        settle_until = time.monotonic() + 1.0
        while time.monotonic() < settle_until:
            self.probe()

    def probe(self, token: str | None = None) -> int | None:
        """Status of ``GET /api/users?limit=1`` (None: no answer)."""
        return http_status(self.url + READY_PATH, token)

    def _raise_if_exited(self) -> None:
        assert self.process is not None
        if self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}")

    def worker_pids(self) -> set[int]:
        """Pids of the gunicorn workers (the master's children)."""
        if self.process is None or self.process.poll() is not None:
            return set()
        with contextlib.suppress(psutil.Error):
            return {child.pid for child in psutil.Process(self.process.pid).children()}
        return set()

    def workers_rss(self) -> int:
        """Resident set size of all worker processes, in bytes (shared pages counted in each)."""
        total = 0
        for pid in self.worker_pids():
            with contextlib.suppress(psutil.Error):
                total += psutil.Process(pid).memory_info().rss
        return total

    def log_tail(self, size: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM the whole process group, then SIGKILL whatever is left."""
        process = self.process
        if process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(STOP_TIMEOUT)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
