"""Start and stop a server process group: ``usermgmt serve``, or any gunicorn master.

The one harness of the benchmarks (``perf``) and of the integration and
chaos tests (``tests``). Every server binds a free loopback port, runs in a
process group of its own (``start_new_session``), is waited for with a
deadline and is stopped with SIGTERM to its master, then SIGKILL to the
whole group, so that nothing is left running even after a crash. A server
also gets SIGTERM when the process that started it dies (Linux).

:class:`ServerProcess` is any gunicorn master and its workers (the service,
the references). :class:`Server` is ``usermgmt serve`` with an admin of its
own: bootstrapped before it starts (``usermgmt create-admin``, the password
on stdin, as the README bootstraps one) and, once ready, logged in on
:attr:`Server.http`, so that its user talks to it as an admin unless it
logs in as someone else.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, ClassVar, Self

import psutil
import requests

__all__ = [
    "ANSWERED",
    "PROJECT_ROOT",
    "READY_PATH",
    "START_TIMEOUT",
    "STOP_TIMEOUT",
    "Admin",
    "Server",
    "ServerError",
    "ServerProcess",
    "create_admin",
    "free_port",
    "http_status",
    "login",
    "running",
    "serve_command",
    "usermgmt_command",
    "venv_script",
]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 90.0
STOP_TIMEOUT = 40.0  # gunicorn's graceful timeout is 30 s; then an embedded database stops
CREATE_ADMIN_TIMEOUT = 120.0
READY_PATH = "/api/users?limit=1"
# An answer at all: 200, or 401 from a server that wants a bearer token.
ANSWERED = (200, 401)


class ServerError(RuntimeError):
    """A server (or ``usermgmt create-admin``) failed, exited or was not ready in time."""


def free_port() -> int:
    """An unused loopback port (there is a small race until the server binds it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def venv_script(name: str) -> Path | None:
    """The console script ``name`` next to this interpreter, if installed."""
    script = Path(sys.executable).with_name(name)
    return script if script.exists() else None


def usermgmt_command() -> list[str]:
    """The installed ``usermgmt`` console script, as the README runs it (or the module)."""
    script = venv_script("usermgmt")
    return [str(script)] if script else [sys.executable, "-m", "app.cli"]


def serve_command(port: int, workers: int, extra_args: Sequence[str] = ()) -> list[str]:
    """``usermgmt serve`` on ``127.0.0.1:port`` with ``workers`` worker processes."""
    return [*usermgmt_command(), "serve", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            *extra_args]


def create_admin(env: Mapping[str, str], email: str, password: str, name: str = "Test Admin") -> None:
    """``usermgmt create-admin`` with ``password`` on stdin, ``env`` over this process's environment."""
    completed = subprocess.run(
        [*usermgmt_command(), "create-admin", "--email", email, "--name", name],
        input=password + "\n", env={**os.environ, **env}, cwd=PROJECT_ROOT, capture_output=True,
        text=True, timeout=CREATE_ADMIN_TIMEOUT, check=False)
    if completed.returncode != 0:
        raise ServerError(f"usermgmt create-admin failed ({completed.returncode}):\n"
                          f"{completed.stdout}{completed.stderr}")


def login(http: requests.Session, url: str, email: str, password: str) -> requests.Response:
    """``POST /api/sessions`` on ``http``, without the bearer token the session may carry."""
    request = http.prepare_request(requests.Request(
        "POST", url + "/api/sessions", json={"email": email, "password": password}))
    request.headers.pop("Authorization", None)
    return http.send(request, timeout=30)


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


def _prctl() -> Callable[[int, int], int] | None:
    with contextlib.suppress(OSError, AttributeError):
        prctl: Callable[[int, int], int] = ctypes.CDLL(None, use_errno=True).prctl
        return prctl
    return None


# Looked up here, not between fork and exec, where nothing should import or allocate.
_PRCTL = _prctl()
_PR_SET_PDEATHSIG = 1


def _terminate_with_parent() -> None:
    """In the child before exec: SIGTERM the server if its starter dies.

    Servers are stopped in ``finally``; this also covers a starter killed
    with SIGKILL (e.g. a test's timeout), which runs no ``finally``.
    Linux only; elsewhere a no-op.
    """
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass(eq=False)
class ServerProcess:
    """One gunicorn master (and its workers) in its own process group.

    Ready when ``GET /api/users?limit=1`` answers (200 or 401) and every
    worker is forked; :meth:`ready` says what a subclass waits for instead.
    """

    name: str
    argv: list[str]
    env: Mapping[str, str]
    port: int
    log_path: Path
    workers: int
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = field(default=None, repr=False)

    start_timeout: ClassVar[float] = START_TIMEOUT
    poll_interval: ClassVar[float] = 0.2

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Start the master (do not wait for it: :meth:`wait_ready`)."""
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.argv, env={**os.environ, **self.env}, cwd=PROJECT_ROOT, stdout=self._log,
            stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
            preexec_fn=_terminate_with_parent,  # noqa: PLW1509 - calls prctl only
        )
        return self

    def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until :meth:`ready`, at most ``timeout`` s (default :attr:`start_timeout`)."""
        limit = self.start_timeout if timeout is None else timeout
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            self._raise_if_exited()
            if self.ready():
                return
            time.sleep(self.poll_interval)
        raise ServerError(f"{self.name} not ready within {limit} s:\n{self.log()}")

    def ready(self) -> bool:
        """It answers and every worker process is up.

        Each gunicorn worker builds its app after fork; one answer proves
        only one worker, so also wait for all of them to be forked and
        give them a moment to finish starting.
        """
        if self.probe() not in ANSWERED or len(self.worker_pids()) < self.workers:
            return False
        settle_until = time.monotonic() + 1.0
        while time.monotonic() < settle_until:
            self.probe()
        return True

    def probe(self, token: str | None = None) -> int | None:
        """Status of ``GET /api/users?limit=1`` (None: no answer)."""
        return http_status(self.url + READY_PATH, token)

    def _raise_if_exited(self) -> None:
        assert self.process is not None, "not started"
        if self.process.poll() is not None:
            raise ServerError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")

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

    def log(self, size: int = 6000) -> str:
        """The last ``size`` characters of the server's output."""
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM the master and wait for it; returns its exit status. Then :meth:`stop`."""
        assert self.process is not None, "not started"
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self.stop()

    def stop(self) -> None:
        """SIGTERM the master, wait for it, then SIGKILL whatever is left of the group."""
        process = self.process
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(STOP_TIMEOUT)
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running(server: ServerProcess) -> Iterator[ServerProcess]:
    """Start, wait until ready; always stop (the whole process group)."""
    try:
        server.start()
        server.wait_ready()
        yield server
    finally:
        server.stop()


@dataclass
class Admin:
    """The admin a :class:`Server` bootstraps (its token once logged in)."""

    email: str
    password: str
    token: str | None = None
    user_id: int | None = None


class Server(ServerProcess):
    """``usermgmt serve`` with an admin of its own, logged in on :attr:`http`.

    ``env`` is laid over this process's environment (:attr:`env` is the
    whole of it). ``with Server(...)`` starts it and waits until it is ready.
    """

    start_timeout: ClassVar[float] = 60.0
    poll_interval: ClassVar[float] = 0.1

    def __init__(self, env: Mapping[str, str], log_path: Path, workers: int = 2,
                 extra_args: Sequence[str] = ()) -> None:
        port = free_port()
        super().__init__("server", serve_command(port, workers, extra_args),
                         {**os.environ, **env}, port, log_path, workers)
        # Whoever talks to the server does so through this session, so
        # whatever every request needs (headers, credentials) is set in one place.
        self.http = requests.Session()
        self.admin = Admin(f"admin-{secrets.token_hex(6)}@example.com", secrets.token_urlsafe(18))
        self._admin_created = False

    def start(self, wait: bool = True) -> Self:
        """Bootstrap the admin (once), start, and by default wait until ready."""
        if not self._admin_created:
            # Before serve, so that the token can be had as soon as it is up.
            create_admin(self.env, self.admin.email, self.admin.password)
            self._admin_created = True
        super().start()
        if wait:
            self.wait_ready()
        return self

    def ready(self) -> bool:
        """The API is served and the admin logs in (then :attr:`http` carries its token).

        A freshly (re)started worker may answer 503 until its DbWorkers
        are connected: keep trying until the deadline.
        """
        try:
            if (self.http.get(self.url + "/openapi.json", timeout=1).status_code == 200
                    and login(self.http, self.url, self.admin.email,
                              self.admin.password).status_code == 201):
                self.log_in_admin()
                return True
        except requests.RequestException:
            pass
        return False

    def log_in_admin(self) -> str:
        """Log the admin in and put its token on :attr:`http`; returns the token."""
        response = login(self.http, self.url, self.admin.email, self.admin.password)
        if response.status_code != 201:
            raise ServerError(f"admin login: {response.status_code} {response.text}")
        body = response.json()
        self.admin.token, self.admin.user_id = body["token"], body["user_id"]
        self.http.headers["Authorization"] = f"Bearer {body['token']}"
        return str(body["token"])

    def new_session(self) -> requests.Session:
        """Another session with the same headers as :attr:`http` (one per client thread)."""
        session = requests.Session()
        session.headers.update(self.http.headers)
        return session
