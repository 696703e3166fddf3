"""deploy/nginx/usermgmt.conf, run by Debian's nginx in front of stand-in hosts.

Each test builds its hosts (``fake_upstream.py``: answering, resetting
after the request, answering 503, or not listening at all) in network
namespaces, starts nginx with the deployed configuration, and checks from
a client namespace what the client got and which hosts saw each request
(by its ``X-Request-ID``).
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from perf.netns import Network, entered, exec_argv
from perf.topology import HOSTS, LoadBalancer

pytestmark = pytest.mark.integration

FAKE = Path(__file__).with_name("fake_upstream.py")
ROLES = {"lb": 10, "h1": 11, "h2": 12, "h3": 13, "client": 100}


@pytest.fixture(scope="module")
def network() -> Iterator[Network]:
    if shutil.which("nginx") is None:
        pytest.fail("nginx is not installed: .ci/run installs Debian's nginx package")
    with Network(dict(ROLES)) as net:  # fails, saying why, where `ip netns` is not allowed
        yield net


class Site:
    """nginx and three stand-in hosts; talk to it only inside :meth:`client`."""

    def __init__(self, network: Network, workdir: Path, modes: dict[str, str | None]) -> None:
        self.network = network
        self.workdir = workdir
        self.modes = modes
        self.fakes: list[subprocess.Popen[bytes]] = []
        self.lb = LoadBalancer(network.namespace("lb"), network.address("lb"), workdir / "nginx",
                               {role: network.address(role) for role in HOSTS})
        self.http = requests.Session()

    def start(self) -> Site:
        for role, mode in self.modes.items():
            if mode is not None:
                self.fakes.append(subprocess.Popen(exec_argv(self.network.namespace(role), [
                    sys.executable, str(FAKE), "--bind", f"{self.network.address(role)}:8000",
                    "--name", role, "--mode", mode, "--log", str(self.log(role))])))
        self.lb.configure(HOSTS)
        self.lb.start()
        with self.client():
            for role, mode in self.modes.items():
                if mode is not None:
                    wait_listening(self.network.address(role), 8000)
            wait_listening(self.lb.address, 80)
        return self

    def client(self) -> contextlib.AbstractContextManager[None]:
        return entered(self.network.namespace("client"))

    def log(self, role: str) -> Path:
        return self.workdir / f"{role}.jsonl"

    def send(self, method: str, request_id: str, path: str = "/api/users/1",
             **kwargs: Any) -> requests.Response:
        headers = {"X-Request-ID": request_id, **kwargs.pop("headers", {})}
        with self.client():
            return self.http.request(method, self.lb.url + path, headers=headers, timeout=20,
                                     **kwargs)

    def seen(self, role: str) -> list[dict[str, Any]]:
        """The requests that reached ``role``."""
        try:
            return [json.loads(line) for line in self.log(role).read_text().splitlines()]
        except FileNotFoundError:
            return []

    def hosts_that_saw(self, request_id: str) -> list[str]:
        return [role for role in HOSTS for record in self.seen(role)
                if record["headers"].get("x-request-id") == request_id]

    def stop(self) -> None:
        self.lb.stop()
        for fake in self.fakes:
            fake.kill()
            fake.wait(10)


def wait_listening(address: str, port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection((address, port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


SiteFactory = Callable[[dict[str, str | None]], Site]


@pytest.fixture
def site(network: Network, tmp_path: Path) -> Iterator[SiteFactory]:
    started: list[Site] = []

    def start(modes: dict[str, str | None]) -> Site:
        built = Site(network, tmp_path, modes)
        started.append(built)
        return built.start()

    yield start
    for built in started:
        built.stop()


def test_a_get_that_a_host_drops_mid_request_is_answered_by_another(site: SiteFactory) -> None:
    s = site({"h1": "reset", "h2": "ok", "h3": "ok"})
    for n in range(6):
        response = s.send("GET", f"get-{n}")
        assert response.status_code == 200
        assert response.json()["host"] in ("h2", "h3")
    dropped = [r["headers"]["x-request-id"] for r in s.seen("h1")]
    assert dropped, "no GET reached the dropping host"
    for request_id in dropped:
        assert len(s.hosts_that_saw(request_id)) == 2  # h1, then another


@pytest.mark.parametrize("method", ["POST", "PATCH", "PUT", "DELETE"])
def test_a_write_that_reached_a_host_is_never_sent_to_another(site: SiteFactory, method: str) -> None:
    s = site({"h1": "reset", "h2": "ok", "h3": "ok"})
    statuses = {f"{method}-{n}": s.send(method, f"{method}-{n}", json={"name": "x"})
                for n in range(6)}
    dropped = [r["headers"]["x-request-id"] for r in s.seen("h1")]
    assert dropped, f"no {method} reached the dropping host"
    for request_id in dropped:
        assert s.hosts_that_saw(request_id) == ["h1"]
        response = statuses[request_id]
        assert response.status_code == 502
        assert response.headers["Content-Type"] == "application/problem+json"
    for request_id, response in statuses.items():
        if request_id not in dropped:
            assert response.status_code in (200, 201)


@pytest.mark.parametrize(("method", "passed_on"), [
    ("GET", True), ("HEAD", True), ("POST", True), ("PATCH", True), ("PUT", False), ("DELETE", False),
])
def test_a_request_to_a_host_that_refuses_connections_is_passed_on_unless_put_or_delete(
        site: SiteFactory, method: str, passed_on: bool) -> None:
    s = site({"h1": None, "h2": "ok", "h3": "ok"})
    statuses = [s.send(method, f"{method}-{n}", json={"name": "x"}).status_code for n in range(4)]
    if passed_on:
        assert all(status in (200, 201) for status in statuses), statuses
    else:
        # nginx counts PUT and DELETE idempotent and would also repeat one
        # that reached a host: they are sent to one host only.
        assert statuses.count(502) == 1, statuses
        assert statuses.count(200) == 3, statuses


def test_a_503_goes_to_the_client_and_the_host_stays_in_rotation(site: SiteFactory) -> None:
    s = site({"h1": "503", "h2": "ok", "h3": "ok"})
    statuses = {f"busy-{n}": s.send("GET", f"busy-{n}").status_code for n in range(9)}
    unavailable = [rid for rid, status in statuses.items() if status == 503]
    assert len(unavailable) == 3, statuses  # one request in three: never taken out
    assert len(s.seen("h1")) == 3
    for request_id in unavailable:
        assert s.hosts_that_saw(request_id) == ["h1"]


def test_the_client_address_and_request_id_reach_the_host(site: SiteFactory) -> None:
    s = site({"h1": "ok", "h2": "ok", "h3": "ok"})
    client = s.network.address("client")
    forged = s.send("GET", "trace-1", headers={"X-Forwarded-For": "198.51.100.7"}).json()["headers"]
    # nginx appends the address it saw: the service trusts only that entry.
    assert forged["x-forwarded-for"] == f"198.51.100.7, {client}"
    assert forged["x-request-id"] == "trace-1"
    assert forged["x-forwarded-proto"] == "http"
    assert forged["host"] == s.lb.address
    with s.client():
        plain = s.http.get(s.lb.url + "/livez", timeout=10).json()["headers"]
    assert plain["x-forwarded-for"] == client
    assert re.fullmatch(r"[0-9a-f]{32}", plain["x-request-id"])  # nginx's own
    unsafe = s.send("GET", "x" * 129).json()["headers"]
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe["x-request-id"])


def test_a_slow_client_reaches_a_host_only_once_its_request_is_complete(site: SiteFactory) -> None:
    s = site({"h1": "ok", "h2": "ok", "h3": "ok"})
    body = b'{"name": "' + b"x" * 988 + b'"}'
    with s.client(), socket.create_connection((s.lb.address, 80), timeout=20) as sock:
        sock.sendall(b"POST /api/users HTTP/1.1\r\nHost: lb\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body))
        for start in range(0, len(body), 100):  # ~1 s, a tenth at a time
            time.sleep(0.1)
            sock.sendall(body[start:start + 100])
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 201")
    record = json.loads(answer.partition(b"\r\n\r\n")[2])
    assert record["body_bytes"] == len(body)
    assert record["read_seconds"] < 0.5  # nginx held the request until it was whole


def test_when_no_host_answers_the_client_gets_a_problem(site: SiteFactory) -> None:
    s = site({"h1": None, "h2": None, "h3": None})
    for method in ("GET", "POST", "DELETE"):
        response = s.send(method, f"none-{method}", json={"name": "x"})
        assert response.status_code == 502
        assert response.headers["Content-Type"] == "application/problem+json"
        assert response.headers["Retry-After"] == "1"
        assert response.headers["X-Request-ID"] == f"none-{method}"
        assert response.json()["instance"] == f"urn:usermgmt:request:none-{method}"
