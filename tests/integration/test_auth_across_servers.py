"""Authentication on real servers: revocation across hosts, limits across
workers, gunicorn's own limits, the metrics listener, and secrets kept out
of every response and log line."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from tests.integration.server import Server, create_admin, free_port, login

pytestmark = pytest.mark.integration

MEMBER_PASSWORD = "member password 1"


@pytest.fixture
def two_servers(database_url: str, db: psycopg.Connection[Any], tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    """Two separately started servers (two "hosts") on one database."""
    env = {"DATABASE_URL": database_url, "USERMGMT_DB_WORKERS": "2"}
    with Server({**env, "USERMGMT_DATA_DIR": str(tmp_path / "a")}, tmp_path / "a.log") as a, \
         Server({**env, "USERMGMT_DATA_DIR": str(tmp_path / "b")}, tmp_path / "b.log") as b:
        yield a, b


def new_member(server: Server, email: str = "member@example.com") -> tuple[int, str]:
    """A member made by the server's admin; answers (id, token)."""
    created = server.http.post(server.url + "/api/users", timeout=10, json={
        "name": "Member", "email": email, "password": MEMBER_PASSWORD})
    assert created.status_code == 201, created.text
    session = login(server.http, server.url, email, MEMBER_PASSWORD)
    assert session.status_code == 201, session.text
    return int(created.json()["id"]), str(session.json()["token"])


def status_with(server: Server, token: str, path: str = "/api/sessions/current") -> int:
    return requests.get(server.url + path, headers={"Authorization": f"Bearer {token}"},
                        timeout=5).status_code


def refused_everywhere_within(server: Server, token: str, seconds: float) -> float | None:
    """Seconds until 4 reads in a row (both workers, in all likelihood) answer 401."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if all(status_with(server, token) == 401 for _ in range(4)):
            return time.monotonic() - started
        time.sleep(0.01)
    return None


def warm(server: Server, token: str) -> None:
    """Enough reads that every worker process has the token cached."""
    for _ in range(8):
        assert status_with(server, token) == 200


def test_a_token_revoked_through_one_server_is_refused_by_the_other_within_a_second(
    two_servers: tuple[Server, Server],
) -> None:
    a, b = two_servers
    _, token = new_member(a)
    warm(b, token)
    revoked = requests.delete(a.url + "/api/sessions/current", timeout=5,
                              headers={"Authorization": f"Bearer {token}"})
    assert revoked.status_code == 204
    assert status_with(a, token) in (401, 200)  # a's other worker may lag by the NOTIFY delay
    elapsed = refused_everywhere_within(b, token, 1.0)
    assert elapsed is not None, "server b still accepts a revoked token after 1 s"
    assert refused_everywhere_within(a, token, 1.0) is not None


def test_a_password_change_through_one_server_ends_the_other_sessions_on_the_other(
    two_servers: tuple[Server, Server],
) -> None:
    a, b = two_servers
    user_id, first = new_member(a)
    second = login(b.http, b.url, "member@example.com", MEMBER_PASSWORD).json()["token"]
    warm(b, first)
    warm(a, second)
    changed = requests.patch(b.url + f"/api/users/{user_id}", timeout=10,
                             headers={"Authorization": f"Bearer {second}"},
                             json={"password": "the new password", "current_password": MEMBER_PASSWORD})
    assert changed.status_code == 200, changed.text
    assert refused_everywhere_within(a, first, 1.0) is not None
    assert refused_everywhere_within(b, first, 1.0) is not None
    assert status_with(a, second) == 200 and status_with(b, second) == 200


def test_failed_logins_are_limited_across_worker_processes(server: Server) -> None:
    """The limit lives in the database: whichever worker answers, the 6th is 429."""
    statuses = [login(requests.Session(), server.url, server.admin.email, "wrong password!").status_code
                for _ in range(6)]
    assert statuses == [401] * 5 + [429]
    limited = login(requests.Session(), server.url, server.admin.email, server.admin.password)
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) >= 1


def test_no_password_or_hash_appears_in_any_response_or_log_line(
    server: Server, db: psycopg.Connection[Any]
) -> None:
    secrets_seen: list[str] = [server.admin.password, MEMBER_PASSWORD, "the second password"]
    bodies: list[str] = []

    def keep(response: requests.Response) -> requests.Response:
        bodies.append(response.text + str(dict(response.headers)))
        return response

    user_id, token = new_member(server)
    member = {"Authorization": f"Bearer {token}"}
    keep(server.http.get(server.url + f"/api/users/{user_id}", timeout=5))
    keep(server.http.get(server.url + "/api/users", timeout=5))
    keep(requests.patch(server.url + f"/api/users/{user_id}", headers=member, timeout=10,
                        json={"password": "the second password", "current_password": MEMBER_PASSWORD}))
    keep(requests.patch(server.url + f"/api/users/{user_id}", headers=member, timeout=10,
                        json={"password": "x", "current_password": "the second password"}))
    keep(login(requests.Session(), server.url, "member@example.com", "the second password"))
    keep(login(requests.Session(), server.url, "member@example.com", MEMBER_PASSWORD))
    keep(server.http.post(server.url + "/api/users", timeout=10,
                          json={"name": "Short", "email": "s@example.com", "password": "short pw"}))
    hashes = [row[0] for row in db.execute("SELECT password_hash FROM users") if row[0]]
    assert len(hashes) == 2 and all(h.startswith("$argon2id$") for h in hashes)
    time.sleep(0.3)  # let the access lines reach the log
    log = server.log_path.read_text(errors="replace")
    for secret in [*secrets_seen, "short pw", *hashes, "$argon2"]:
        for body in bodies:
            assert secret not in body, (secret, body)
        assert secret not in log, secret


def test_gunicorn_refuses_oversized_request_lines_and_headers(server: Server) -> None:
    def raw(request: bytes) -> int:
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(request)
            return int(sock.recv(64).split(b" ")[1])

    assert raw(b"GET /livez?" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n") == 414
    assert raw(b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n") in (400, 431)
    many = b"".join(b"X-H%d: 1\r\n" % n for n in range(60))
    assert raw(b"GET /livez HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n") in (400, 431)
    assert raw(b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Fine: " + b"a" * 1000 + b"\r\n\r\n") == 200


def test_with_a_metrics_bind_metrics_answer_only_there(database_url: str, db: psycopg.Connection[Any],
                                                       tmp_path: Path) -> None:
    metrics_port = free_port()
    env = {"DATABASE_URL": database_url, "USERMGMT_DATA_DIR": str(tmp_path / "var"),
           "USERMGMT_DB_WORKERS": "1", "USERMGMT_METRICS_BIND": f"127.0.0.1:{metrics_port}"}
    with Server(env, tmp_path / "server.log", workers=1) as running:
        metrics_url = f"http://127.0.0.1:{metrics_port}"
        scraped = requests.get(metrics_url + "/metrics", timeout=10)
        assert scraped.status_code == 200 and "usermgmt_http_requests_total" in scraped.text
        assert requests.get(running.url + "/metrics", timeout=5).status_code == 404
        assert running.http.get(metrics_url + "/api/users", timeout=5).status_code == 404
        assert running.http.get(running.url + "/api/users", timeout=5).status_code == 200


@pytest.mark.slow
def test_create_admin_works_while_serve_owns_the_embedded_database(
    tmp_path: Path, embedded_data_dir: Path
) -> None:
    env = {"USERMGMT_DATA_DIR": str(embedded_data_dir), "DATABASE_URL": "", "USERMGMT_DB_WORKERS": "1"}
    with Server(env, tmp_path / "server.log", workers=1) as running:
        create_admin({**running.env}, "second@example.com", "second admin password")
        session = login(requests.Session(), running.url, "second@example.com", "second admin password")
        assert session.status_code == 201
        assert session.json()["user_id"] != running.admin.user_id
