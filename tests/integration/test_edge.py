"""The request edge of a real ``usermgmt serve``: limits, deadlines, slow clients.

Raw sockets on loopback, so that requests can be as malformed, large or
slow as a hostile client makes them. Every socket is closed and every wait
bounded.
"""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from perf.attack import Attack, SlowClients
from tests.integration.server import Server

pytestmark = pytest.mark.integration

HEADER_TIMEOUT = 2.0
BODY_TIMEOUT = 2.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("edge")
    env = {"DATABASE_URL": database_url, "USERMGMT_DATA_DIR": str(workdir / "var"),
           "USERMGMT_LOG_LEVEL": "WARNING", "USERMGMT_HEADER_TIMEOUT": str(HEADER_TIMEOUT),
           "USERMGMT_BODY_TIMEOUT": str(BODY_TIMEOUT)}
    with Server(env, workdir / "server.log", workers=2) as running:
        yield running


def exchange(port: int, data: bytes, timeout: float = 10.0) -> tuple[bytes, float]:
    """Send ``data``, read until the server closes; the answer and how long it took."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        with contextlib.suppress(OSError):  # it may close before reading everything
            sock.sendall(data)
        chunks = []
        with contextlib.suppress(ConnectionResetError):
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    return b"".join(chunks), time.monotonic() - started


def problem(answer: bytes) -> tuple[int, dict[str, str], dict[str, Any]]:
    head, _, body = answer.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    return status, headers, json.loads(body)


@pytest.mark.parametrize(("request_bytes", "status", "problem_type"), [
    (b"GET /" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "request-line-too-long"),
    (b"GET /livez HTTP/1.1\r\n" + b"".join(b"X-N%d: v\r\n" % i for i in range(60)) + b"\r\n",
     431, "header-fields-too-large"),
    (b"GET /livez HTTP/1.1\r\nX-Big: " + b"v" * 5000 + b"\r\n\r\n", 431,
     "header-fields-too-large"),
    (b"GET /livez HTTP/1.1\r\n" + b"X-Many: " + b"v" * 4000 + b"\r\n" * 1 + b"X" * 300_000,
     431, "header-fields-too-large"),
    (b"BOGUS\r\n\r\n", 400, "malformed-request"),
    (b"GET /livez HTTP/1.1\r\nContent-Length: nope\r\n\r\n", 400, "malformed-request"),
], ids=["line", "field-count", "field-size", "head-size", "garbage", "bad-length"])
def test_requests_beyond_the_limits_get_a_problem_and_the_connection_is_closed(
        server: Server, request_bytes: bytes, status: int, problem_type: str) -> None:
    answer, _ = exchange(server.port, request_bytes)
    got_status, headers, body = problem(answer)
    assert got_status == status
    assert headers["content-type"] == "application/problem+json"
    assert headers["connection"] == "close"
    assert body["status"] == status and body["type"] == f"urn:usermgmt:problem:{problem_type}"


def test_a_request_head_that_stalls_gets_408_after_the_header_timeout(server: Server) -> None:
    answer, took = exchange(server.port, b"GET /livez HTTP/1.1\r\nHost: x\r\n")
    status, _, body = problem(answer)
    assert status == 408 and body["type"] == "urn:usermgmt:problem:request-timeout"
    assert HEADER_TIMEOUT - 0.1 <= took <= HEADER_TIMEOUT + 3


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(
        server: Server) -> None:
    answer, took = exchange(server.port, b"")
    assert answer == b""
    assert HEADER_TIMEOUT - 0.1 <= took <= HEADER_TIMEOUT + 3


def test_a_body_that_stalls_gets_408_after_the_body_timeout(server: Server) -> None:
    answer, took = exchange(server.port, b"POST /api/sessions HTTP/1.1\r\nHost: x\r\n"
                                         b"Content-Type: application/json\r\n"
                                         b"Content-Length: 100\r\n\r\n{\"email\"")
    status, _, body = problem(answer)
    assert status == 408 and body["type"] == "urn:usermgmt:problem:request-timeout"
    assert BODY_TIMEOUT - 0.1 <= took <= BODY_TIMEOUT + 3


def read_response(sock: socket.socket) -> bytes:
    """One whole response (head and Content-Length body) from a keep-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "closed before a whole head arrived"
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:"))
    while len(body) < length:
        chunk = sock.recv(65536)
        assert chunk, "closed before the whole body arrived"
        body += chunk
    return head


def test_a_keep_alive_connection_serves_request_after_request(server: Server) -> None:
    request = b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        for _ in range(3):
            sock.sendall(request)
            assert read_response(sock).startswith(b"HTTP/1.1 200 ")
            time.sleep(HEADER_TIMEOUT * 0.75)  # the header clock starts with each request


def read_head(sock: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, "closed before a whole head arrived"
        data += chunk
    return data


def test_answers_without_a_body_are_sent_at_once_on_a_kept_alive_connection(
        server: Server) -> None:
    user = server.http.post(server.url + "/api/users", timeout=10,
                            json={"name": "Etag", "email": "etag-edge@example.com"})
    etag = user.headers["ETag"]
    token = server.http.headers["Authorization"]
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(f"GET /api/users/{user.json()['id']} HTTP/1.1\r\nHost: x\r\n"
                     f"Authorization: {token}\r\nIf-None-Match: {etag}\r\n\r\n".encode())
        assert read_head(sock).startswith(b"HTTP/1.1 304 ")
        sock.sendall(b"HEAD /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        head = read_head(sock)  # no body follows a HEAD: the head must not wait for one
        assert head.startswith(b"HTTP/1.1 ")
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200 ")


@pytest.mark.slow
def test_an_idle_kept_alive_connection_is_closed_after_the_keep_alive_time(
        server: Server) -> None:
    from app.gunicorn_conf import keepalive

    with socket.create_connection(("127.0.0.1", server.port), timeout=keepalive + 5) as sock:
        sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        assert read_response(sock).startswith(b"HTTP/1.1 200 ")
        started = time.monotonic()
        assert sock.recv(1) == b""
        assert keepalive - 0.5 <= time.monotonic() - started <= keepalive + 3


def test_a_request_on_its_way_when_the_worker_stops_is_answered_then_closed(
        database_url: str, tmp_path: Path) -> None:
    """A load balancer connects and sends at once: a worker that stops in
    between answers the request instead of dropping the connection."""
    env = {"DATABASE_URL": database_url, "USERMGMT_DATA_DIR": str(tmp_path / "var"),
           "USERMGMT_LOG_LEVEL": "WARNING"}
    with Server(env, tmp_path / "server.log", workers=1) as stopping:
        with socket.create_connection(("127.0.0.1", stopping.port), timeout=10) as sock:
            time.sleep(0.3)  # accepted by the worker; nothing sent yet
            assert stopping.process is not None
            stopping.process.send_signal(signal.SIGTERM)
            time.sleep(0.5)  # the worker is stopping
            sock.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
            chunks = []
            with contextlib.suppress(ConnectionResetError):
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        answer = b"".join(chunks)
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        assert b"connection: close" in answer.lower()
        assert stopping.process.wait(30) == 0


@pytest.mark.slow
def test_slow_and_silent_clients_neither_starve_others_nor_stay_connected(
        server: Server) -> None:
    user = server.http.post(server.url + "/api/users", timeout=10,
                            json={"name": "Hot", "email": "hot-edge@example.com"}).json()
    url = f"{server.url}/api/users/{user['id']}"
    with SlowClients("127.0.0.1", server.port, Attack()) as attack:
        latencies = []
        with requests.Session() as normal:
            normal.headers.update(server.http.headers)
            deadline = time.monotonic() + HEADER_TIMEOUT * 0.8  # before any timeout fires
            while time.monotonic() < deadline:
                started = time.monotonic()
                assert normal.get(url, timeout=5).status_code == 200
                latencies.append(time.monotonic() - started)
        assert len(latencies) >= 20
        # Generous: the point is "answered promptly", not a benchmark (see perf/).
        assert statistics.quantiles(latencies, n=100)[98] < 0.5
        time.sleep(max(HEADER_TIMEOUT, BODY_TIMEOUT) + 2.5)  # deadline plus sweep plus slack
        closed = attack.closed_by_server()
    assert closed == {"head": 200, "body": 200, "silent": 2000}, closed


@pytest.mark.parametrize("trap", [b"\xb2", b"\xbd", b"\xa0", b"\x85", b"\xff", b"\xd9\xa3",
                                  b"\xc3\x28"], ids=lambda b: b.hex())
def test_non_ascii_bytes_in_every_header_the_service_reads_never_answer_500(
        server: Server, trap: bytes) -> None:
    token = str(server.admin.token).encode()
    target = b"/api/users/" + str(server.admin.user_id).encode()
    cases = [
        (b"GET", target, b"If-None-Match", b'"1-' + trap + b'"'),
        (b"PATCH", target, b"If-Match", b'"' + str(server.admin.user_id).encode() + b"-2" + trap + b'"'),
        (b"DELETE", b"/api/users/999999", b"If-Match", b'"999999-' + trap + b'"'),
        (b"PATCH", target, b"Content-Type", b"application/json; charset=" + trap),
        (b"GET", b"/livez", b"X-Request-ID", b"id-" + trap),
        (b"GET", b"/api/users", b"Authorization", b"Bearer " + trap),
        (b"GET", b"/api/users", b"Accept", trap),
    ]
    for method, path, name, value in cases:
        headers = {b"Host": b"x", b"Authorization": b"Bearer " + token,
                   b"Content-Type": b"application/json", b"Connection": b"close"}
        headers[name] = value
        body = b'{"name": "Admin"}' if method == b"PATCH" else b""
        head = b"".join(k + b": " + v + b"\r\n" for k, v in headers.items())
        request = (method + b" " + path + b" HTTP/1.1\r\n" + head
                   + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
        answer, _ = exchange(server.port, request)
        status = int(answer.split(b" ", 2)[1])
        assert status < 500, (method, path, name, value, answer[:300])
