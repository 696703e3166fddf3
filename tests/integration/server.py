"""Start and stop a real ``usermgmt serve`` for integration and chaos tests.

Every server binds a free loopback port, is waited for with a deadline,
and is stopped (SIGTERM, then SIGKILL of its whole process group) when
the test ends.

Every API route needs a bearer token, so each server gets an admin of its
own before it starts (``usermgmt create-admin``, the password on stdin, as
the README bootstraps one) and, once ready, :attr:`Server.http` carries
that admin's token: tests talk to the server as an admin unless they log
in as someone else.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import requests

__all__ = ["Admin", "Server", "free_port", "usermgmt_command"]

START_TIMEOUT = 60.0
STOP_TIMEOUT = 40.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def usermgmt_command() -> list[str]:
    """The installed console script, as the README runs it."""
    script = Path(sys.executable).with_name("usermgmt")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "app.cli"]


@dataclass
class Admin:
    """The admin a :class:`Server` bootstraps (its token once logged in)."""

    email: str
    password: str
    token: str | None = None
    user_id: int | None = None


def create_admin(env: Mapping[str, str], email: str, password: str, name: str = "Test Admin") -> None:
    """Run ``usermgmt create-admin`` with ``password`` on stdin; fail loudly."""
    done = subprocess.run(
        [*usermgmt_command(), "create-admin", "--email", email, "--name", name],
        env=dict(env), input=password + "\n", capture_output=True, text=True, timeout=90,
        check=False,
    )
    assert done.returncode == 0, f"create-admin failed ({done.returncode}):\n{done.stderr}"


def login(http: requests.Session, url: str, email: str, password: str) -> requests.Response:
    """``POST /api/sessions`` without touching the session's own headers."""
    return http.post(url + "/api/sessions", json={"email": email, "password": password},
                     headers={"Authorization": None}, timeout=30)


class Server:
    """One ``usermgmt serve`` process group, with an admin logged in on :attr:`http`."""

    def __init__(self, env: Mapping[str, str], log_path: Path, workers: int = 2,
                 extra_args: list[str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log: IO[bytes] | None = None
        self.args = [*usermgmt_command(), "serve", "--bind", f"127.0.0.1:{self.port}",
                     "--workers", str(workers), *(extra_args or [])]
        self.env = {**os.environ, **env}
        self.process: subprocess.Popen[bytes] | None = None
        # Every test talks to the server through this session, so whatever
        # every request needs (headers, credentials) is set in one place.
        self.http = requests.Session()
        self.admin = Admin(f"admin-{secrets.token_hex(6)}@example.com", secrets.token_urlsafe(18))
        self._admin_created = False

    def start(self, wait: bool = True) -> Server:
        if not self._admin_created:
            # Before serve, so that the token can be had as soon as it is up.
            create_admin(self.env, self.admin.email, self.admin.password)
            self._admin_created = True
        self._log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.args, env=self.env, stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = START_TIMEOUT, path: str = "/openapi.json") -> None:
        deadline = time.monotonic() + timeout
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log()}")
            try:
                # A freshly (re)started worker may answer 503 until its
                # DbWorkers are connected: keep trying until the deadline.
                if (self.http.get(self.url + path, timeout=1).status_code == 200
                        and login(self.http, self.url, self.admin.email,
                                  self.admin.password).status_code == 201):
                    self.log_in_admin()
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise AssertionError(f"server not ready within {timeout} s:\n{self.log()}")

    def log_in_admin(self) -> str:
        """Log the admin in and put its token on :attr:`http`; returns the token."""
        response = login(self.http, self.url, self.admin.email, self.admin.password)
        assert response.status_code == 201, f"admin login: {response.status_code} {response.text}"
        body = response.json()
        self.admin.token, self.admin.user_id = body["token"], body["user_id"]
        self.http.headers["Authorization"] = f"Bearer {body['token']}"
        return str(body["token"])

    def new_session(self) -> requests.Session:
        """Another session with the same headers as :attr:`http` (one per client thread)."""
        session = requests.Session()
        session.headers.update(self.http.headers)
        return session

    def worker_pids(self) -> set[int]:
        """Pids of the gunicorn worker processes (children of the master)."""
        import psutil

        assert self.process is not None
        try:
            return {child.pid for child in psutil.Process(self.process.pid).children()}
        except psutil.NoSuchProcess:
            return set()

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError:
            return ""

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM the master and wait for it; returns its exit status."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout)
        finally:
            self.stop()

    def stop(self) -> None:
        """Make sure nothing of this server is left running."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(STOP_TIMEOUT)
        if self.process is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
