"""The DbWorker's answers: which database outcome becomes which refusal.

One worker on its own connection to the test database, asked directly
(after a checkout, as the services do). Every expected outcome comes back
as a :class:`~actors.messages.Refused` value; the metrics hook hears the
kind of each database error; a broken connection ends the worker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pykka
import pytest
from psycopg_pool import ConnectionPool

from actors.db_worker import DbWorker
from actors.errors import (
    CurrentPasswordRequired,
    DatabaseUnavailable,
    DuplicateEmail,
    InvalidData,
    LastAdmin,
    NotFound,
    PreconditionFailed,
    WorkerCrashed,
    WrongPassword,
)
from actors.messages import CreateUser, DeleteUser, Ping, Refused, UpdateUser, UserRow, Written
from actors.worker_pool import WorkerPool
from tests.waiting import wait_until

APPLICATION = "db-worker-test"


@dataclass
class Worker:
    """A started DbWorker, its checkout pool, and what its hooks heard."""

    ref: pykka.ActorRef[Any]
    workers: WorkerPool
    errors: list[str] = field(default_factory=list)
    operations: list[str] = field(default_factory=list)

    def ask(self, message: object) -> Any:
        """Check the worker out and ask it, as a service does."""
        ref = self.workers.checkout(2.0)
        assert ref is self.ref
        return ref.ask(message, timeout=10)

    def ask_later(self, message: object) -> pykka.Future[Any]:
        ref = self.workers.checkout(2.0)
        return ref.ask(message, block=False)

    def refusal(self, message: object) -> Exception:
        """The error the worker refused ``message`` with."""
        answer = self.ask(message)
        assert isinstance(answer, Refused), answer
        return answer.error

    def back_in_the_pool(self) -> bool:
        stats = self.workers.stats()
        return self.ref.is_alive() and (stats.members, stats.idle) == (1, 1)


StartWorker = Callable[..., Worker]


@pytest.fixture
def start_worker(database_url: str, db: psycopg.Connection[Any],
                 stop_actors: None) -> Iterator[StartWorker]:
    """Start one DbWorker; ``options`` are the connection's server settings (``-c ...``)."""
    pools: list[ConnectionPool] = []

    def start(options: str = "", conninfo: str = database_url) -> Worker:
        pool = ConnectionPool(conninfo, min_size=1, max_size=1, open=False, timeout=2.0,
                              kwargs={"autocommit": True, "application_name": APPLICATION,
                                      "options": options, "connect_timeout": 2})
        pools.append(pool)
        pool.open(wait=False)
        workers = WorkerPool()
        errors: list[str] = []
        operations: list[str] = []
        ref = DbWorker.start(pool, workers, connect_timeout=2.0,
                             reconnect_delay=lambda attempt: 0.05,
                             on_query=lambda operation, _seconds: operations.append(operation),
                             on_error=errors.append)
        return Worker(ref, workers, errors, operations)

    yield start
    pykka.ActorRegistry.stop_all(block=True, timeout=10)
    for pool in pools:
        pool.close(timeout=5)


@pytest.fixture
def worker(start_worker: StartWorker) -> Worker:
    """A connected worker, idle in its pool."""
    started = start_worker()
    wait_until(lambda: started.workers.stats().members == 1, 10, "the worker to connect")
    return started


def insert_user(db: psycopg.Connection[Any], email: str, role: str = "member",
                password_hash: str | None = None) -> int:
    row = db.execute("INSERT INTO users (name, email, role, password_hash) VALUES ('U', %s, %s, %s)"
                     " RETURNING id", (email, role, password_hash)).fetchone()
    assert row is not None
    return int(row[0])


def waits_on_a_lock(db: psycopg.Connection[Any], pid: int) -> bool:
    row = db.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
    return row is not None and row[0] == "Lock"


def test_an_email_taken_in_another_case_is_a_duplicate_email(worker: Worker) -> None:
    created = worker.ask(CreateUser(name="A", email="ada@example.com"))
    assert isinstance(created, tuple)
    row: UserRow = created
    assert row[2] == "ada@example.com"
    error = worker.refusal(CreateUser(name="B", email="ADA@example.com"))
    assert isinstance(error, DuplicateEmail)
    assert worker.errors == ["unique_violation"]
    assert worker.operations == ["create", "create"]
    assert worker.back_in_the_pool()


@pytest.mark.parametrize(("message", "reason"), [
    (CreateUser(name="", email="e@example.com"), "users_name_check"),
    (CreateUser(name="N", email="e@example.com", role="root"), "users_role_check"),
    (CreateUser(name="N\x00", email="e@example.com"), "NUL"),  # refused by psycopg itself
])
def test_a_value_the_database_refuses_is_invalid_data(worker: Worker, message: CreateUser,
                                                      reason: str) -> None:
    error = worker.refusal(message)
    assert isinstance(error, InvalidData)
    assert reason in str(error)
    assert worker.errors == ["invalid_data"]
    assert worker.back_in_the_pool()


def test_removing_the_last_admin_is_refused_as_last_admin_and_is_no_database_error(
        worker: Worker, db: psycopg.Connection[Any]) -> None:
    admin = insert_user(db, "admin@example.com", role="admin")
    assert isinstance(worker.refusal(DeleteUser(admin)), LastAdmin)
    assert isinstance(worker.refusal(UpdateUser(admin, None, None, role="member")), LastAdmin)
    assert db.execute("SELECT role FROM users WHERE id = %s", (admin,)).fetchone() == ("admin",)
    assert worker.errors == []
    assert worker.back_in_the_pool()


def test_writes_that_touch_no_row_are_refused_with_the_reason(
        worker: Worker, db: psycopg.Connection[Any]) -> None:
    user = insert_user(db, "u@example.com", password_hash="current hash")
    missing = user + 1000
    refusals = [
        (UpdateUser(missing, "N", None), NotFound),
        (DeleteUser(missing), NotFound),
        (UpdateUser(missing, "N", None, if_match=(1,)), PreconditionFailed),  # RFC 9110 13.1.1
        (UpdateUser(user, "N", None, if_match=(99,)), PreconditionFailed),
        (DeleteUser(user, if_match=(99,)), PreconditionFailed),
        (UpdateUser(user, None, None, password_hash="new hash",
                    expected_password_hash="stale hash"), WrongPassword),
        (UpdateUser(user, None, "new@example.com", same_email=True), CurrentPasswordRequired),
    ]
    for message, expected in refusals:
        error = worker.refusal(message)
        assert type(error) is expected, (message, error)
    assert worker.errors == []
    assert db.execute("SELECT name, email, password_hash, version FROM users WHERE id = %s",
                      (user,)).fetchone() == ("U", "u@example.com", "current hash", 1)
    # ... and the same messages, when they match, are carried out.
    written = worker.ask(UpdateUser(user, "N", None, if_match=(1,)))
    assert isinstance(written, Written) and written.version == 2
    assert worker.back_in_the_pool()


def test_a_cancelled_query_is_database_unavailable_and_the_worker_carries_on(
        worker: Worker, db: psycopg.Connection[Any]) -> None:
    user = insert_user(db, "u@example.com")
    pid = worker.ask(Ping())
    with db.transaction():
        db.execute("SELECT 1 FROM users WHERE id = %s FOR UPDATE", (user,))
        answer = worker.ask_later(UpdateUser(user, "N", None))
        wait_until(lambda: waits_on_a_lock(db, pid), 5, "the update to wait for the row lock")
        db.execute("SELECT pg_cancel_backend(%s)", (pid,))
        refused = answer.get(timeout=5)
    assert isinstance(refused, Refused) and isinstance(refused.error, DatabaseUnavailable)
    assert "cancelled" in str(refused.error)
    assert worker.errors == ["query_canceled"]
    assert worker.back_in_the_pool()
    assert worker.ask(Ping()) == pid  # the same connection


def test_another_error_on_a_healthy_connection_is_database_unavailable_and_the_worker_carries_on(
        start_worker: StartWorker, db: psycopg.Connection[Any]) -> None:
    worker = start_worker(options="-c lock_timeout=100")
    wait_until(lambda: worker.workers.stats().members == 1, 10, "the worker to connect")
    user = insert_user(db, "u@example.com")
    pid = worker.ask(Ping())
    with db.transaction():
        db.execute("SELECT 1 FROM users WHERE id = %s FOR UPDATE", (user,))
        error = worker.refusal(UpdateUser(user, "N", None))
    assert isinstance(error, DatabaseUnavailable)
    assert str(error) == "database error: LockNotAvailable"
    assert worker.errors == ["other"]
    assert worker.back_in_the_pool()
    assert worker.ask(Ping()) == pid


def test_a_lost_connection_is_worker_crashed_and_the_worker_ends(
        worker: Worker, db: psycopg.Connection[Any]) -> None:
    pid = worker.ask(Ping())
    db.execute("SELECT pg_terminate_backend(%s, 5000)", (pid,))
    error = worker.refusal(Ping())
    assert isinstance(error, WorkerCrashed)
    assert worker.errors == ["connection_lost"]
    wait_until(lambda: not worker.ref.is_alive(), 5, "the worker to end")
    assert worker.workers.stats().members == 0


def test_a_worker_without_a_connection_stays_alive_out_of_the_pool_and_answers_unavailable(
        start_worker: StartWorker) -> None:
    worker = start_worker(conninfo="postgresql://nobody@127.0.0.1:1/none")
    answer = worker.ref.ask(Ping(), timeout=10)  # directly: it never joined the pool
    assert isinstance(answer, Refused) and isinstance(answer.error, DatabaseUnavailable)
    assert str(answer.error) == "worker has no connection"
    assert worker.ref.is_alive()
    assert worker.workers.stats().members == 0
    assert worker.errors == []
