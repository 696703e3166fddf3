"""Let it crash, proven: faults under load stay small and heal themselves.

Each test states its steady-state hypothesis in its docstring and asserts it
against a real ``usermgmt serve`` with real client threads, bounded in time.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests

from app.chaos import kill_db_connections
from app.embedded_db import EmbeddedPostgres
from app.migrations import apply_migrations
from perf.chaos_scenarios import db_worker_kills, lost_writes, metric_total, seed_users
from tests.chaos.conftest import ServerFactory
from tests.waiting import wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.integration]


def answering(check: Callable[[], bool]) -> Callable[[], bool]:
    """``check``, where a request that fails (the server is recovering) counts as false."""
    def checked() -> bool:
        try:
            return check()
        except requests.RequestException:
            return False
    return checked


def test_reads_survive_db_workers_killed_every_100_ms(start_server: ServerFactory) -> None:
    """Hypothesis: with a DbWorker killed every 100 ms for 10 s, ≥ 99.9% of
    GETs succeed, every failure is a 503 problem+json with Retry-After (no
    500, no hang), and /metrics counts exactly one restart per kill."""
    server = start_server(USERMGMT_CACHE_ENABLED="0", USERMGMT_DB_WORKERS="4")
    result = db_worker_kills(server, duration=10.0, every=0.1)
    reads = result.notes["reads"]
    writes = result.notes["writes"]
    assert result.notes["kills"] >= 60
    assert result.requests >= 500
    assert result.successes / result.requests >= 0.999, result
    for call in reads + writes:
        assert call.status is not None, "a request got no answer"
        assert call.status < 500 or call.problem_ok, call
        assert call.seconds < 12.0
    # The last restarts may still be landing: wait (bounded) for the count.
    restarts_before = result.notes["restarts_before"]
    wait_until(answering(lambda: metric_total(server, "usermgmt_actor_restarts_total", supervisor="db")
                         - restarts_before >= result.notes["kills"]), 10.0, "every kill's restart counted")
    restarts = metric_total(server, "usermgmt_actor_restarts_total", supervisor="db") - restarts_before
    assert restarts == result.notes["kills"]


def test_no_acknowledged_write_is_lost_under_db_worker_kills(start_server: ServerFactory,
                                                              db: psycopg.Connection[Any]) -> None:
    """Hypothesis (Jepsen set check): under the same chaos, every acknowledged
    create exists with its last acknowledged version and every acknowledged
    delete is gone; unacknowledged operations are not counted as lost."""
    server = start_server(USERMGMT_DB_WORKERS="4")
    result = db_worker_kills(server, duration=10.0, every=0.1, readers=1, writers=5)
    history = result.notes["history"]
    acknowledged = sum(1 for ops in history.values() for op, _ in ops if not op.endswith("?"))
    assert acknowledged >= 100
    rows = dict(db.execute("SELECT id, version FROM users").fetchall())
    assert lost_writes(history, rows) == []


def test_writes_succeed_within_2_s_after_every_connection_is_killed(
    start_server: ServerFactory, database_url: str
) -> None:
    """Hypothesis: terminating all of the service's database connections at
    once heals within 2 s with no worker process restart."""
    server = start_server()
    seed_users(server, 2)
    pids = server.worker_pids()
    assert kill_db_connections(database_url) >= 4
    n = [0]

    def write_works() -> bool:
        n[0] += 1
        response = server.http.post(server.url + "/api/users", timeout=5,
                                    json={"name": "after", "email": f"after{n[0]}@example.com"})
        return response.status_code == 201

    healed = wait_until(answering(write_works), 5.0, "a write to succeed again", interval=0.02)
    assert healed < 2.0
    assert server.worker_pids() == pids


@pytest.mark.slow
def test_a_database_outage_fails_fast_serves_cached_reads_and_heals(
    start_server: ServerFactory, embedded_data_dir: Path
) -> None:
    """Hypothesis: with PostgreSQL stopped for 10 s, requests that need it get
    a fast 503, /readyz says not ready, cached reads are still served; within
    5 s of it coming back everything works, with no manual action."""
    database = EmbeddedPostgres(embedded_data_dir)
    url = database.start()
    try:
        apply_migrations(url)
        server = start_server(url=url)
        user_id = seed_users(server, 1)[0]
        time.sleep(0.3)
        for _ in range(10):  # every worker process caches the user
            assert server.http.get(f"{server.url}/api/users/{user_id}", timeout=5).status_code == 200
        database.stop_server()
        down_since = time.monotonic()
        slowest_failure = 0.0
        while time.monotonic() - down_since < 10.0:
            started = time.monotonic()
            write = server.http.post(server.url + "/api/users", timeout=10,
                                     json={"name": "x", "email": "x@example.com"})
            slowest_failure = max(slowest_failure, time.monotonic() - started)
            assert write.status_code == 503 and write.headers["Retry-After"]
            assert server.http.get(server.url + "/readyz", timeout=10).status_code == 503
            assert server.http.get(f"{server.url}/api/users/{user_id}", timeout=10).status_code == 200
            time.sleep(0.2)
        assert slowest_failure < 2.0
        database.start_server()
        healed = wait_until(answering(lambda: server.http.post(
            server.url + "/api/users", timeout=5, json={"name": "y", "email": "y@example.com"}
        ).status_code == 201 and server.http.get(server.url + "/readyz", timeout=5).status_code == 200),
            10.0, server.log, interval=0.02)
        assert healed < 5.0, server.log()
    finally:
        database.stop()


def test_a_crash_loop_beyond_the_root_intensity_restarts_the_worker_process(
    start_server: ServerFactory,
) -> None:
    """Hypothesis: when the root supervisor exceeds its restart intensity the
    worker process exits, gunicorn forks a new one (new pid), and the
    service serves again."""
    server = start_server(workers=1)
    (old_pid,) = server.worker_pids()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and server.worker_pids() in ({old_pid}, set()):
        with contextlib.suppress(requests.RequestException):
            server.http.post(server.url + "/admin/chaos/kill", json={"kind": "supervisor"}, timeout=5)
        time.sleep(0.05)
    new_pids = server.worker_pids()
    assert new_pids and old_pid not in new_pids
    server.wait_ready(30)
    created = server.http.post(server.url + "/api/users", json={"name": "n", "email": "n@example.com"}, timeout=5)
    assert created.status_code == 201
    assert "root supervisor gave up" in server.log()


def test_sigterm_drains_in_flight_requests_and_exits_0(start_server: ServerFactory,
                                                        database_url: str) -> None:
    """Hypothesis: on SIGTERM every in-flight request completes, no new one
    is accepted, and the server exits 0."""
    server = start_server(workers=1, USERMGMT_CACHE_ENABLED="0")
    seed_users(server, 1)
    statuses: list[int] = []
    with psycopg.connect(database_url) as blocker:
        blocker.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")

        def slow_request() -> None:
            response = server.new_session().get(server.url + "/api/users", timeout=30)
            statuses.append(response.status_code)

        clients = [threading.Thread(target=slow_request) for _ in range(3)]
        for client in clients:
            client.start()
        time.sleep(0.5)  # all three wait on the lock inside the server
        assert server.process is not None
        server.process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        # A new request is not taken: no answer comes (the connection waits
        # in the kernel's backlog until the worker exits, then is reset).
        with pytest.raises((requests.ConnectionError, requests.Timeout)):
            requests.post(server.url + "/api/users", timeout=1.5, headers=dict(server.http.headers),
                          json={"name": "late", "email": "late@example.com"})
        blocker.rollback()
    for client in clients:
        client.join(30)
    assert statuses == [200, 200, 200]
    assert server.process.wait(30) == 0
    with psycopg.connect(database_url) as check:
        assert check.execute("SELECT count(*) FROM users WHERE email = 'late@example.com'").fetchone() == (0,)


def test_a_query_that_never_returns_is_cancelled_and_the_pool_stays_whole(
    start_server: ServerFactory, database_url: str
) -> None:
    """Hypothesis: a query blocked forever (a lock held by another
    transaction) is cancelled by statement_timeout; the request gets a 503
    and every DbWorker is back in the pool afterwards."""
    server = start_server(workers=1, USERMGMT_STATEMENT_TIMEOUT="1", USERMGMT_CACHE_ENABLED="0",
                          USERMGMT_DB_WORKERS="2")
    with psycopg.connect(database_url) as blocker:
        blocker.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        response = server.http.get(server.url + "/api/users", timeout=30)
        elapsed = time.monotonic() - started
        blocker.rollback()
    assert response.status_code == 503
    assert response.headers["Content-Type"] == "application/problem+json"
    assert elapsed < 5.0
    wait_until(answering(lambda: metric_total(server, "usermgmt_db_workers", state="idle") == 2), 5,
               "both DbWorkers idle again", interval=0.02)
    assert server.http.get(server.url + "/readyz", timeout=5).status_code == 200
    assert server.http.get(server.url + "/api/users", timeout=5).status_code == 200
