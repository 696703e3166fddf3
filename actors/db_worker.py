"""DbWorker: an actor that owns one PostgreSQL connection for its life.

The connection comes from a ``psycopg_pool.ConnectionPool`` (which does
connecting, health checks and reconnect backoff) in ``on_start`` and goes
back in ``on_stop``/``on_failure``; the pool discards it if broken. Keeping
the connection for the worker's life means hot statements are prepared
once per connection and no request pays for a pool checkout.

The connection is in autocommit mode: each write is a single SQL statement,
which PostgreSQL runs as its own transaction (one round trip instead of
three for BEGIN/statement/COMMIT). Writes that need two statements open an
explicit transaction.

When the connection breaks, the request gets :class:`WorkerCrashed` and
the worker crashes itself ("let it crash"): its supervisor starts a fresh
worker, which takes a fresh connection.

A worker that cannot get a connection (the database is down) does not
fail its start: like DBConnection's connection processes it stays alive,
out of the checkout pool, and retries with jittered exponential backoff
through messages to itself. A database outage is therefore a quiet state
(requests get fast 503s because no worker is registered), not a restart
loop that would exhaust its supervisor's restart intensity.
"""

from __future__ import annotations

import contextlib
import logging
import random
import threading
import time
from collections.abc import Callable
from typing import Any, ClassVar, LiteralString

import psycopg
import pykka
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool, PoolTimeout

from actors.errors import (
    DatabaseUnavailable,
    DuplicateEmail,
    InvalidData,
    NotFound,
    PreconditionFailed,
    WorkerCrashed,
)
from actors.messages import (
    CreateUser,
    DeleteUser,
    GetUser,
    ListUsers,
    Ping,
    UpdateUser,
    User,
    UserPage,
)
from actors.worker_pool import WorkerPool

__all__ = ["ConnectionLost", "DbWorker"]

logger = logging.getLogger(__name__)

_COLUMNS: LiteralString = "id, name, email, version, inserted_at, updated_at"
_SELECT_ONE: LiteralString = f"SELECT {_COLUMNS} FROM users WHERE id = %s"
_SELECT_PAGE: LiteralString = (
    f"SELECT {_COLUMNS} FROM users WHERE id > %s ORDER BY id LIMIT %s"
)
_SELECT_PAGE_BY_EMAIL: LiteralString = (
    f"SELECT {_COLUMNS} FROM users WHERE lower(email) = lower(%s) AND id > %s"
    " ORDER BY id LIMIT %s"
)
_INSERT: LiteralString = f"INSERT INTO users (name, email) VALUES (%s, %s) RETURNING {_COLUMNS}"
_UPDATE: LiteralString = (
    "UPDATE users SET name = COALESCE(%s::text, name), email = COALESCE(%s::text, email)"
    f" WHERE id = %s RETURNING {_COLUMNS}"
)
_UPDATE_IF_VERSION: LiteralString = (
    "UPDATE users SET name = COALESCE(%s::text, name), email = COALESCE(%s::text, email)"
    f" WHERE id = %s AND version = ANY(%s) RETURNING {_COLUMNS}"
)
_DELETE: LiteralString = "DELETE FROM users WHERE id = %s RETURNING version"
_DELETE_IF_VERSION: LiteralString = (
    "DELETE FROM users WHERE id = %s AND version = ANY(%s) RETURNING version"
)
_EXISTS: LiteralString = "SELECT version FROM users WHERE id = %s"


class ConnectionLost(Exception):
    """The worker's connection broke; the worker ends so it can be replaced."""


class _Crash:
    """Sent to itself (a tell) to end abnormally after answering a request."""


class _Connect:
    """Sent to itself (a tell) to try to take a connection again."""


def reconnect_delay(attempt: int, minimum: float = 0.05, maximum: float = 1.0) -> float:
    """Jittered exponential backoff: ``attempt`` 1, 2, ... to seconds.

    Full jitter in the upper half of the window (as DBConnection's
    ``rand_exp``) so that workers of many processes do not reconnect in step.
    """
    ceiling = min(maximum, minimum * 2 ** (attempt - 1))
    return random.uniform(ceiling / 2, ceiling)


class DbWorker(pykka.ThreadingActor):
    """Runs user queries on its own connection, one message at a time.

    Args:
        connections: the process's connection pool.
        workers: the checkout pool this worker joins once connected.
        connect_timeout: how long one attempt waits for a connection.
        max_reconnect_delay: the backoff ceiling between attempts.
        on_query: metrics hook, ``(operation, seconds)`` after each request.
        on_error: metrics hook, ``(kind)`` for each database error.
    """

    # A worker whose master died must not keep its process alive.
    use_daemon_thread = True

    # message type -> (operation name for metrics, handler)
    _handlers: ClassVar[dict[type[Any], tuple[str, Callable[[DbWorker, Any], Any]]]]

    def __init__(
        self,
        connections: ConnectionPool,
        workers: WorkerPool,
        *,
        connect_timeout: float = 1.0,
        max_reconnect_delay: float = 1.0,
        on_query: Callable[[str, float], None] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        self._connections = connections
        self._workers = workers
        self._connect_timeout = connect_timeout
        self._max_reconnect_delay = max_reconnect_delay
        self._on_query = on_query
        self._on_error = on_error
        self._conn: psycopg.Connection[Any] | None = None
        self._attempts = 0
        self._retry_timer: threading.Timer | None = None

    # -- lifecycle (actor thread) ----------------------------------------

    def on_start(self) -> None:
        """Take a connection and join the checkout pool, or retry later."""
        self._connect()

    def on_stop(self) -> None:
        self._release()

    def on_failure(self, *_exc_info: object) -> None:
        self._release()

    @property
    def connected(self) -> bool:
        """Whether the worker holds a connection (and so is in the pool)."""
        return self._conn is not None

    def _connect(self) -> None:
        try:
            self._conn = self._connections.getconn(timeout=self._connect_timeout)
        except (PoolTimeout, psycopg.Error) as exc:
            self._attempts += 1
            delay = reconnect_delay(self._attempts, maximum=self._max_reconnect_delay)
            logger.info(
                "database worker waiting for a connection: %s; retrying in %.2f s", exc, delay,
                extra={"event": "db_connect_retry", "attempt": self._attempts},
            )
            timer = threading.Timer(delay, self._tell_connect)
            timer.daemon = True
            self._retry_timer = timer
            timer.start()
            return
        self._attempts = 0
        self._workers.register(self.actor_ref, kill=self._kill)

    def _tell_connect(self) -> None:
        with contextlib.suppress(pykka.ActorDeadError):
            self.actor_ref.tell(_Connect())

    def _release(self) -> None:
        timer = self._retry_timer
        if timer is not None:
            timer.cancel()
        self._workers.unregister(self.actor_ref)
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                self._connections.putconn(conn)

    def _kill(self) -> None:
        """Cancel the running query and close the connection (any thread).

        Used when the worker does not stop within its shutdown time: a
        thread stuck in a query is released by cancelling it.
        """
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.cancel_safe(timeout=1.0)
            with contextlib.suppress(Exception):
                conn.close()

    # -- messages (actor thread) -----------------------------------------

    def on_receive(self, message: Any) -> Any:
        """Answer one request and check back into the pool.

        Raises:
            NotFound, DuplicateEmail, PreconditionFailed, InvalidData: to
                the asking thread; the worker carries on.
            DatabaseUnavailable: to the asking thread; the worker carries on.
            WorkerCrashed: to the asking thread when the connection broke;
                the worker then ends abnormally and is replaced.
        """
        if isinstance(message, _Crash):
            raise ConnectionLost("database connection lost")
        if isinstance(message, _Connect):
            if self._conn is None:
                self._connect()
            return None
        entry = self._handlers.get(type(message))
        if entry is None:
            return super().on_receive(message)
        operation, handler = entry
        healthy = True
        started = time.perf_counter()
        try:
            return handler(self, message)
        except pg_errors.UniqueViolation as exc:
            self._error("unique_violation")
            raise DuplicateEmail("a user with this email already exists") from exc
        except (pg_errors.CheckViolation, pg_errors.DataError) as exc:
            self._error("invalid_data")
            raise InvalidData(str(exc.diag.message_primary or exc)) from exc
        except pg_errors.QueryCanceled as exc:
            self._error("query_canceled")
            raise DatabaseUnavailable("the query took too long and was cancelled") from exc
        except psycopg.Error as exc:
            conn = self._conn
            if conn is None or conn.closed or conn.broken:
                healthy = False
                self._error("connection_lost")
                self.actor_ref.tell(_Crash())
                raise WorkerCrashed("the database worker lost its connection") from exc
            self._error("other")
            raise DatabaseUnavailable(f"database error: {type(exc).__name__}") from exc
        finally:
            if self._on_query is not None:
                self._on_query(operation, time.perf_counter() - started)
            if healthy:
                self._workers.checkin(self.actor_ref)

    def _error(self, kind: str) -> None:
        if self._on_error is not None:
            self._on_error(kind)

    @property
    def _db(self) -> psycopg.Connection[Any]:
        conn = self._conn
        if conn is None:
            raise DatabaseUnavailable("worker has no connection")
        return conn

    def _get(self, msg: GetUser) -> User:
        row = self._db.execute(_SELECT_ONE, (msg.user_id,)).fetchone()
        if row is None:
            raise NotFound(f"user {msg.user_id} does not exist")
        return User(*row)

    def _list(self, msg: ListUsers) -> UserPage:
        # One row more than asked tells whether another page follows.
        if msg.email is None:
            rows = self._db.execute(_SELECT_PAGE, (msg.after_id, msg.limit + 1)).fetchall()
        else:
            rows = self._db.execute(
                _SELECT_PAGE_BY_EMAIL, (msg.email, msg.after_id, msg.limit + 1)
            ).fetchall()
        has_more = len(rows) > msg.limit
        return UserPage([User(*row) for row in rows[: msg.limit]], has_more)

    def _create(self, msg: CreateUser) -> User:
        row = self._db.execute(_INSERT, (msg.name, msg.email)).fetchone()
        assert row is not None
        return User(*row)

    def _update(self, msg: UpdateUser) -> User:
        conn = self._db
        if not msg.if_match:
            row = conn.execute(_UPDATE, (msg.name, msg.email, msg.user_id)).fetchone()
        else:
            row = conn.execute(
                _UPDATE_IF_VERSION, (msg.name, msg.email, msg.user_id, list(msg.if_match))
            ).fetchone()
        if row is not None:
            return User(*row)
        self._explain_miss(msg.user_id, msg.if_match)
        raise AssertionError("unreachable")  # pragma: no cover

    def _delete(self, msg: DeleteUser) -> int:
        conn = self._db
        if not msg.if_match:
            row = conn.execute(_DELETE, (msg.user_id,)).fetchone()
        else:
            row = conn.execute(_DELETE_IF_VERSION, (msg.user_id, list(msg.if_match))).fetchone()
        if row is not None:
            return int(row[0])
        self._explain_miss(msg.user_id, msg.if_match)
        raise AssertionError("unreachable")  # pragma: no cover

    def _explain_miss(self, user_id: int, if_match: tuple[int, ...] | None) -> None:
        """Raise why a write touched no row."""
        if if_match is None:
            raise NotFound(f"user {user_id} does not exist")
        row = self._db.execute(_EXISTS, (user_id,)).fetchone()
        if row is None:
            # RFC 9110 13.1.1: If-Match on a missing resource fails.
            raise PreconditionFailed(f"user {user_id} does not exist")
        raise PreconditionFailed(f"user {user_id} has changed (it is at version {row[0]})")

    def _ping(self, _msg: Ping) -> int:
        row = self._db.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        return int(row[0])


DbWorker._handlers = {
    GetUser: ("get", DbWorker._get),
    ListUsers: ("list", DbWorker._list),
    CreateUser: ("create", DbWorker._create),
    UpdateUser: ("update", DbWorker._update),
    DeleteUser: ("delete", DbWorker._delete),
    Ping: ("ping", DbWorker._ping),
}
