"""``usermgmt serve`` on the embedded PostgreSQL outlives its own workers.

Black-box: a real server with 2 workers on its own embedded database,
driven only over HTTP and with signals, so that these hold whatever worker
class serves the requests. The load is database-bound (every request
writes or lists users), so a database stopped under the service shows up
as 503s at once.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest
import requests

from tests.integration.server import Server, usermgmt_command
from tests.waiting import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WORKERS = 2
# No more clients than one worker process has DbWorkers (the default 4):
# while a worker is replaced, the other serves every client without a
# standing queue, so load shedding (a deliberate 503) stays out of it.
CLIENTS = 4


@dataclass(frozen=True)
class Outcome:
    """One request of the load: its status, or why it got none."""

    method: str
    status: int | None
    error: str | None = None

    @property
    def failed(self) -> bool:
        return self.status is None or self.status >= 500


class Load:
    """Clients that create and list users in a loop, each on its own keep-alive connection."""

    def __init__(self, server: Server, clients: int = CLIENTS) -> None:
        self._server = server
        self.clients = clients
        self._stop = threading.Event()
        self._go = threading.Event()
        self._go.set()
        self._lock = threading.Lock()
        self._busy = 0
        self.outcomes: list[Outcome] = []
        self._threads = [threading.Thread(target=self._client, args=(n,), daemon=True)
                         for n in range(clients)]

    def _client(self, number: int) -> None:
        http = self._server.new_session()
        url = self._server.url
        sent = 0
        while not self._stop.is_set():
            if not self._go.wait(0.1):
                continue
            sent += 1
            email = f"load-{number}-{sent}-{secrets.token_hex(3)}@example.com"
            for method, path, body in (("POST", "/api/users", {"name": "Load", "email": email}),
                                       ("GET", "/api/users?limit=5", None)):
                with self._lock:
                    self._busy += 1
                try:
                    response = http.request(method, url + path, json=body, timeout=20)
                    detail = response.text[:300] if response.status_code >= 500 else None
                    outcome = Outcome(method, response.status_code, detail)
                except requests.RequestException as exc:
                    outcome = Outcome(method, None, type(exc).__name__)
                    time.sleep(0.05)  # the server is going away or restarting a worker
                with self._lock:
                    self._busy -= 1
                    self.outcomes.append(outcome)

    def count(self) -> int:
        with self._lock:
            return len(self.outcomes)

    def run_for(self, requests_more: int, timeout: float = 30.0) -> None:
        """Let at least ``requests_more`` more requests finish."""
        target = self.count() + requests_more
        wait_until(lambda: self.count() >= target, timeout,
                   f"the load to finish {requests_more} more requests")

    @contextlib.contextmanager
    def paused(self) -> Iterator[None]:
        """No request in flight for the block (each client finishes the one it sent)."""
        self._go.clear()
        try:
            wait_until(lambda: self._busy == 0, 20, "every request in flight to finish")
            yield
        finally:
            self._go.set()

    def failures(self) -> list[Outcome]:
        with self._lock:
            return [o for o in self.outcomes if o.failed]

    def __enter__(self) -> Load:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)


@pytest.fixture
def embedded_server(embedded_data_dir: Path, tmp_path: Path) -> Iterator[Server]:
    """``usermgmt serve`` with 2 workers on an embedded database of its own."""
    env = _embedded_env(embedded_data_dir, tmp_path)
    with Server(env, tmp_path / "server.log", workers=WORKERS) as server:
        yield server


def _embedded_env(data_dir: Path, tmp_path: Path) -> dict[str, str]:
    # A home of its own: where gunicorn would put a per-user control socket.
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return {"DATABASE_URL": "", "USERMGMT_DATA_DIR": str(data_dir), "USERMGMT_LOG_LEVEL": "WARNING",
            "HOME": str(home), "XDG_RUNTIME_DIR": str(home)}


def _ready(server: Server) -> bool:
    try:
        # A fresh connection each time, so that any worker may answer.
        return requests.get(server.url + "/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def _postgres_processes(data_dir: Path) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        with contextlib.suppress(psutil.Error):
            if any(str(data_dir) in part for part in (process.info["cmdline"] or [])):
                found.append(process)
    return found


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@contextlib.contextmanager
def _frozen(pids: set[int]) -> Iterator[None]:
    """SIGSTOP ``pids`` for the block, so that only the other workers accept connections."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGABRT, signal.SIGKILL],
                         ids=["SIGTERM", "SIGABRT", "SIGKILL"])
def test_a_worker_killed_under_load_is_replaced_and_the_database_keeps_serving(
    embedded_server: Server, signum: signal.Signals
) -> None:
    """SIGTERM is a graceful stop; SIGABRT is what gunicorn sends a worker that timed out."""
    server = embedded_server
    with Load(server) as load:
        load.run_for(20)
        originals = server.worker_pids()
        assert len(originals) == WORKERS
        victim = min(originals)
        killed_at = time.monotonic()
        os.kill(victim, signum)
        wait_until(lambda: victim not in server.worker_pids()
                   and len(server.worker_pids()) == WORKERS, 5,
                   lambda: f"worker {victim} to be replaced\n{server.log()}")
        replacement = server.worker_pids() - originals
        # With the load paused and every other worker frozen, only the
        # replacement can answer, and no request waits on a frozen worker.
        with load.paused(), _frozen(originals - {victim}):
            wait_until(lambda: _ready(server), killed_at + 5 - time.monotonic(),
                       lambda: f"the replacement {replacement} to be ready\n{server.log()}")
        load.run_for(40)
    assert _ready(server)
    failures = load.failures()
    assert [f for f in failures if f.status is not None] == []
    if signum == signal.SIGTERM:
        assert failures == [], "a graceful stop of a worker lost requests"
    else:
        # Only what the killed worker had in flight: at most one per client.
        assert len(failures) <= load.clients, failures


def test_a_hup_reload_under_load_loses_no_request(embedded_server: Server) -> None:
    """A deployment as the README describes it: migrate beside the running server, then HUP."""
    server = embedded_server
    with Load(server) as load:
        load.run_for(20)
        migrated = subprocess.run([*usermgmt_command(), "migrate"], env=server.env,
                                  capture_output=True, text=True, timeout=60, check=False)
        assert migrated.returncode == 0 and "applied 0 migration(s)" in migrated.stdout, (
            migrated.stderr)
        originals = server.worker_pids()
        assert server.process is not None
        server.process.send_signal(signal.SIGHUP)
        wait_until(lambda: not (server.worker_pids() & originals)
                   and len(server.worker_pids()) == WORKERS, 40,
                   lambda: f"every worker to be replaced\n{server.log()}")
        load.run_for(40)
    assert load.failures() == []
    wait_until(lambda: _ready(server), 5)
    # No control socket shared with every other gunicorn of this user.
    assert list(Path(server.env["HOME"]).rglob("*.ctl")) == []


def test_a_request_on_a_kept_alive_connection_of_a_stopping_worker_is_answered(
    server: Server,
) -> None:
    """A client reuses its idle connection just as a reload stops the worker holding it:
    the request is answered (with Connection: close), not reset. (The external test
    database is enough here.)"""
    assert server.process is not None
    connections = [http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
                   for _ in range(8)]
    try:
        for connection in connections:  # kept alive, spread over the workers
            connection.request("GET", "/livez")
            assert connection.getresponse().read()
        originals = server.worker_pids()
        server.process.send_signal(signal.SIGHUP)
        # gunicorn stops the old workers as soon as it has forked the new ones.
        wait_until(lambda: len(server.worker_pids() - originals) == WORKERS, 10)
        time.sleep(0.5)
        statuses: list[int | str] = []
        for connection in connections:
            try:
                connection.request("GET", "/livez")
                statuses.append(connection.getresponse().status)
            except (OSError, http.client.HTTPException) as exc:
                statuses.append(type(exc).__name__)
    finally:
        for connection in connections:
            connection.close()
    assert statuses == [200] * len(connections)


def test_sigterm_answers_every_request_in_flight_then_stops_the_database(
    embedded_server: Server, embedded_data_dir: Path
) -> None:
    """24 creates in flight: each has sent its headers and half its body when the
    master gets SIGTERM, and the rest only after; each must still be created."""
    server = embedded_server
    assert server.process is not None
    in_flight = 24
    terminated = threading.Event()

    def create(number: int) -> int | str:
        body = json.dumps({"name": "In flight", "email": f"in-flight-{number}@example.com"})
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        try:
            connection.putrequest("POST", "/api/users")
            connection.putheader("Authorization", f"Bearer {server.admin.token}")
            connection.putheader("Content-Type", "application/json")
            connection.putheader("Content-Length", str(len(body)))
            connection.endheaders(body[:10].encode())
            terminated.wait(20)
            time.sleep(0.3)  # the workers are stopping now
            connection.send(body[10:].encode())
            return connection.getresponse().status
        except (OSError, http.client.HTTPException) as exc:
            return type(exc).__name__
        finally:
            connection.close()

    workers = server.worker_pids()
    with ThreadPoolExecutor(in_flight) as pool:
        answers = pool.map(create, range(in_flight))
        wait_until(lambda: _connections_to(server.port, workers) >= in_flight, 10)
        server.process.send_signal(signal.SIGTERM)
        terminated.set()
        statuses = list(answers)
    assert statuses == [201] * in_flight
    assert server.process.wait(40) == 0
    wait_until(lambda: not _postgres_processes(embedded_data_dir), 5)


def _connections_to(port: int, pids: set[int]) -> int:
    """TCP connections the processes ``pids`` have accepted on ``port``."""
    count = 0
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            count += sum(1 for c in psutil.Process(pid).net_connections(kind="tcp")
                         if c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port)
    return count


def test_after_the_master_is_killed_no_worker_is_left_and_the_next_serve_keeps_the_data(
    embedded_server: Server, embedded_data_dir: Path, tmp_path: Path
) -> None:
    server = embedded_server
    assert server.process is not None
    kept = server.http.post(server.url + "/api/users", timeout=10,
                            json={"name": "Kept", "email": "kept@example.com"})
    assert kept.status_code == 201
    workers = server.worker_pids()
    server.process.send_signal(signal.SIGKILL)
    wait_until(lambda: all(_gone(pid) for pid in workers), 5,
               "every worker to end with its master")
    server.stop()
    env = _embedded_env(embedded_data_dir, tmp_path)
    with Server(env, tmp_path / "again.log", workers=WORKERS) as again:
        listed = again.http.get(again.url + "/api/users?email=kept@example.com", timeout=10)
        assert [u["name"] for u in listed.json()["data"]] == ["Kept"]
        assert again.terminate() == 0
    wait_until(lambda: not _postgres_processes(embedded_data_dir), 5)
