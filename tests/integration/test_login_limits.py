"""Login limits and Argon2's bounds on real servers: many requests at once."""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from tests.integration.server import Server, login

pytestmark = pytest.mark.integration

LIMIT = 5


def at_once(servers: list[Server], email: str, password: str, n: int) -> list[requests.Response]:
    """``n`` logins released together, spread over ``servers``, one connection each."""
    barrier = threading.Barrier(n)

    def one(i: int) -> requests.Response:
        with requests.Session() as http:
            barrier.wait(30)
            server = servers[i % len(servers)]
            return login(http, server.url, email, password)

    with ThreadPoolExecutor(n) as pool:
        return list(pool.map(one, range(n)))


def failures_of(db: psycopg.Connection[Any], email: str) -> int:
    """Failed (or reserved) checks of the account: from anywhere, or from a known address."""
    account = email.lower()
    row = db.execute("SELECT count(DISTINCT attempt) FROM login_failures"
                     " WHERE subject = %s OR starts_with(subject, %s)",
                     ("e:" + account, f"p:{account}|")).fetchone()
    assert row is not None
    return int(row[0])


def assert_at_most_the_limit_evaluated(responses: list[requests.Response],
                                       db: psycopg.Connection[Any], email: str) -> None:
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {401, 429, 503}, statuses
    # Every evaluated guess is a 401 and left one failure; refused ones none.
    assert statuses.count(401) <= LIMIT, statuses
    assert failures_of(db, email) == statuses.count(401)
    assert statuses.count(429) >= 1
    for response in responses:
        if response.status_code in (429, 503):
            assert int(response.headers["Retry-After"]) >= 1


def test_fifty_concurrent_wrong_passwords_on_two_workers_evaluate_at_most_the_limit(
    server: Server, db: psycopg.Connection[Any]
) -> None:
    responses = at_once([server], server.admin.email, "wrong password!", 50)
    assert_at_most_the_limit_evaluated(responses, db, server.admin.email)


@pytest.fixture
def two_servers(database_url: str, db: psycopg.Connection[Any],
                tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    env = {"DATABASE_URL": database_url, "USERMGMT_DB_WORKERS": "2"}
    with Server({**env, "USERMGMT_DATA_DIR": str(tmp_path / "a")}, tmp_path / "a.log") as a, \
         Server({**env, "USERMGMT_DATA_DIR": str(tmp_path / "b")}, tmp_path / "b.log") as b:
        yield a, b


def test_fifty_concurrent_wrong_passwords_across_two_servers_evaluate_at_most_the_limit(
    two_servers: tuple[Server, Server], db: psycopg.Connection[Any]
) -> None:
    a, b = two_servers
    email = "victim@example.com"
    created = a.http.post(a.url + "/api/users", timeout=10, json={
        "name": "Victim", "email": email, "password": "the victim's password"})
    assert created.status_code == 201
    responses = at_once([a, b], email, "wrong password!", 50)
    assert_at_most_the_limit_evaluated(responses, db, email)


def cached_get_latencies(server: Server, path: str, seconds: float) -> list[float]:
    latencies = []
    with server.new_session() as http:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            assert http.get(server.url + path, timeout=10).status_code == 200
            latencies.append(time.perf_counter() - started)
            time.sleep(0.01)
    return latencies


@pytest.fixture
def unlimited_server(database_url: str, db: psycopg.Connection[Any],
                     tmp_path: Path) -> Iterator[Server]:
    """Login limits out of the way: what bounds a flood here is Argon2's slots."""
    env = {"DATABASE_URL": database_url, "USERMGMT_DATA_DIR": str(tmp_path / "var"),
           "USERMGMT_DB_WORKERS": "2", "USERMGMT_LOGIN_RATE_LIMIT": "10000",
           "USERMGMT_LOGIN_SUCCESS_LIMIT": "10000"}
    with Server(env, tmp_path / "server.log", workers=2) as running:
        yield running


def test_a_flood_of_logins_gets_503_past_the_argon2_slots_and_cached_gets_stay_fast(
    unlimited_server: Server, db: psycopg.Connection[Any]
) -> None:
    server = unlimited_server
    path = f"/api/users/{server.admin.user_id}"
    idle = cached_get_latencies(server, path, 1.5)
    flood: list[requests.Response] = []
    busy: list[float] = []
    reader = threading.Thread(target=lambda: busy.extend(cached_get_latencies(server, path, 2.5)))
    reader.start()
    time.sleep(0.2)
    flood = at_once([server], server.admin.email, server.admin.password, 30)
    reader.join(30)
    statuses = [r.status_code for r in flood]
    assert set(statuses) <= {201, 503}, statuses
    assert statuses.count(503) >= 1, statuses
    assert statuses.count(201) >= 1, statuses
    for response in flood:
        if response.status_code == 503:
            assert response.json()["type"] == "urn:usermgmt:problem:unavailable"
            assert int(response.headers["Retry-After"]) >= 1
    # Refused logins left nothing to count against the account.
    assert failures_of(db, server.admin.email) == 0
    idle_p50, busy_p50 = statistics.median(idle), statistics.median(busy)
    # Generous: Argon2 takes every core it is given; the loop must still
    # answer a cached read promptly.
    assert busy_p50 < max(10 * idle_p50, 0.05), (idle_p50, busy_p50)
    print(f"cached GET p50 idle {idle_p50 * 1000:.1f} ms, during the login flood "
          f"{busy_p50 * 1000:.1f} ms (max {max(busy) * 1000:.1f} ms); logins {statuses.count(201)}"
          f" x 201, {statuses.count(503)} x 503")
