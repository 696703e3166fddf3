"""The service's tree: crashed DbWorkers are replaced and rejoin the pool."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pykka
import pytest
from psycopg_pool import ConnectionPool

from actors.errors import Unavailable
from actors.messages import Ping
from actors.worker_pool import WorkerPool
from app.config import Settings
from app.runtime import Runtime
from app.tree import TreeConfig, start_tree
from app.users_service import UsersService
from supervisors import SupervisorEvent, crash
from tests.waiting import wait_until


@pytest.fixture
def events() -> list[SupervisorEvent]:
    return []


@pytest.fixture
def runtime(database_url: str, db: psycopg.Connection[Any], stop_actors: None,
            events: list[SupervisorEvent]) -> Iterator[Runtime]:
    settings = Settings(database_url=database_url, db_workers=3, statement_timeout=1.0,
                        db_checkout_timeout=0.5)
    runtime = Runtime(settings, database_url, event_hook=events.append)
    runtime.start()
    assert runtime.wait_ready(10)
    yield runtime
    runtime.stop()


def db_workers(runtime: Runtime) -> dict[str, pykka.ActorRef[Any]]:
    assert runtime.root is not None
    top = {cid: ref for cid, ref, _ in runtime.root.proxy().which_children().get(timeout=2)}
    db = top["db"]
    assert db is not None
    return {cid: ref for cid, ref, _ in db.proxy().which_children().get(timeout=2) if ref is not None}


def test_the_tree_is_root_over_db_both_caches_and_listener(runtime: Runtime) -> None:
    assert runtime.root is not None
    children = runtime.root.proxy().which_children().get(timeout=2)
    assert [(cid, kind) for cid, _, kind in children] == [
        ("db", "supervisor"), ("cache", "worker"), ("token_cache", "worker"),
        ("listener", "worker")]
    assert sorted(db_workers(runtime)) == ["db_worker_1", "db_worker_2", "db_worker_3"]


def test_a_crashed_db_worker_is_replaced_and_rejoins_the_checkout_pool(
    runtime: Runtime, events: list[SupervisorEvent]
) -> None:
    before = db_workers(runtime)
    crash(before["db_worker_2"])
    wait_until(lambda: db_workers(runtime).get("db_worker_2") not in (None, before["db_worker_2"]))
    wait_until(lambda: runtime.workers.stats().members == 3)
    members = {ref.actor_urn for ref in runtime.workers.members()}
    assert before["db_worker_2"].actor_urn not in members
    assert db_workers(runtime)["db_worker_2"].actor_urn in members
    assert any(e.kind == "restart" and e.child == "db_worker_2" for e in events)
    assert any(e.kind == "exit" and e.child == "db_worker_2" and e.reason == "abnormal" for e in events)
    for _ in range(6):
        assert asyncio.run(runtime.users.ping())


def test_a_read_whose_worker_dies_is_retried_on_another_worker(runtime: Runtime, db: psycopg.Connection[Any]) -> None:
    row = db.execute("INSERT INTO users (name, email) VALUES ('r', 'r@x.io') RETURNING id").fetchone()
    assert row is not None
    worker = runtime.workers.checkout(1.0)
    crash(worker)  # it dies before handling anything sent after the crash
    runtime.workers.checkin(worker)
    try:
        result = worker.ask(Ping(), timeout=2)
    except pykka.ActorDeadError:
        result = asyncio.run(runtime.users.get(row[0])).user.id == row[0]
    assert result


def test_a_read_on_a_worker_whose_connection_was_killed_is_retried_on_another(
    runtime: Runtime, db: psycopg.Connection[Any]
) -> None:
    row = db.execute("INSERT INTO users (name, email) VALUES ('k', 'k@x.io') RETURNING id").fetchone()
    assert row is not None
    runtime.coherence.mark_incoherent()  # force the database path
    worker = runtime.workers.checkout(1.0)
    backend_pid = worker.ask(Ping(), timeout=2)  # the worker checks itself back in
    db.execute("SELECT pg_terminate_backend(%s)", (backend_pid,))
    # The pool is LIFO: the read goes to the worker just used, whose
    # connection is dead; it is answered by another worker.
    assert asyncio.run(runtime.users.get(row[0])).user.id == row[0]
    wait_until(lambda: worker.actor_urn not in {r.actor_urn for r in runtime.workers.members()})
    wait_until(lambda: runtime.workers.stats().members == 3)


def test_with_every_connection_killed_requests_fail_fast_then_recover(
    runtime: Runtime, db: psycopg.Connection[Any]
) -> None:
    row = db.execute("INSERT INTO users (name, email) VALUES ('a', 'a@x.io') RETURNING id").fetchone()
    assert row is not None
    runtime.coherence.mark_incoherent()
    db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
               " WHERE application_name = 'usermgmt' AND pid <> pg_backend_pid()")
    started = time.monotonic()
    recovered = False
    while time.monotonic() - started < 2.0:
        runtime.coherence.mark_incoherent()
        try:
            recovered = asyncio.run(runtime.users.get(row[0])).user.id == row[0]
            break
        except Unavailable:
            time.sleep(0.01)
    assert recovered, "reads did not recover within 2 s"


def test_stopping_the_tree_kills_a_worker_stuck_in_a_query(database_url: str, db: psycopg.Connection[Any],
                                                            stop_actors: None) -> None:
    """Shutdown waits the worker's shutdown time, then cancels its query and closes its connection."""
    pool = ConnectionPool(database_url, min_size=1, max_size=2, open=True,
                          kwargs={"autocommit": True})
    workers = WorkerPool()
    root = start_tree(TreeConfig(db_workers=1, worker_shutdown=0.5), pool, workers)
    wait_until(lambda: workers.stats().members == 1)
    service = UsersService(workers, checkout_timeout=1.0, ask_timeout=30.0)
    errors: list[BaseException] = []

    def list_users() -> None:
        try:
            asyncio.run(service.list(0, 10))
        except BaseException as exc:
            errors.append(exc)

    try:
        db.execute("BEGIN")
        db.execute("LOCK TABLE users IN ACCESS EXCLUSIVE MODE")
        blocked = threading.Thread(target=list_users, daemon=True)
        blocked.start()
        wait_until(lambda: workers.stats().busy == 1)
        started = time.monotonic()
        root.stop(timeout=10)
        blocked.join(5)
        assert not blocked.is_alive()
        assert time.monotonic() - started < 3.0
        assert errors and isinstance(errors[0], Unavailable)
    finally:
        db.execute("ROLLBACK")
        pool.close()
