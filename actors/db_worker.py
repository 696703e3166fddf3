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
import time
from collections.abc import Callable
from typing import Any, ClassVar, LiteralString

import psycopg
import pykka
from psycopg import errors as pg_errors
from psycopg_pool import ConnectionPool, PoolTimeout

from actors.errors import (
    CurrentPasswordRequired,
    DatabaseUnavailable,
    DuplicateEmail,
    InvalidData,
    LastAdmin,
    NotFound,
    PreconditionFailed,
    UsermgmtError,
    WorkerCrashed,
    WrongPassword,
)
from actors.messages import (
    CreateSession,
    CreateUser,
    Credentials,
    DeleteSession,
    DeleteUser,
    GetSession,
    GetUsers,
    ListUsers,
    Ping,
    Refused,
    ReleaseAttempt,
    ReserveAttempt,
    RowPage,
    SessionCreated,
    SessionRow,
    UpdateUser,
    UserRow,
    Written,
)
from actors.retry import RetryLater
from actors.worker_pool import WorkerPool

__all__ = ["ConnectionLost", "DbWorker"]

logger = logging.getLogger(__name__)

# Raised by the users_keep_an_admin trigger (migration 0004).
LAST_ADMIN_SQLSTATE = "UM001"

_COLUMNS: LiteralString = "id, name, email, role, version, inserted_at, updated_at"
_SELECT_MANY: LiteralString = f"SELECT {_COLUMNS} FROM users WHERE id = ANY(%s)"
_SELECT_PAGE: LiteralString = (
    f"SELECT {_COLUMNS} FROM users WHERE id > %s ORDER BY id LIMIT %s"
)
_SELECT_PAGE_BY_EMAIL: LiteralString = (
    f"SELECT {_COLUMNS} FROM users WHERE lower(email) = lower(%s) AND id > %s"
    " ORDER BY id LIMIT %s"
)
_INSERT: LiteralString = (
    "INSERT INTO users (name, email, role, password_hash) VALUES (%s, %s, %s, %s)"
    f" RETURNING {_COLUMNS}"
)
# COALESCE: a None parameter leaves the column as it is.
_SET: LiteralString = (
    "UPDATE users SET name = COALESCE(%s::text, name), email = COALESCE(%s::text, email),"
    " role = COALESCE(%s::text, role), password_hash = COALESCE(%s::text, password_hash)"
    " WHERE id = %s"
)
_IF_VERSION: LiteralString = " AND version = ANY(%s)"
_IF_HASH: LiteralString = " AND password_hash = %s"
_IF_EMAIL: LiteralString = " AND email = %s"
_RETURNING: LiteralString = f" RETURNING {_COLUMNS}"
# Indexed by (has If-Match, has expected password hash, keeps the email):
# fixed statements, so each is prepared once per connection. A verified
# password and a kept email never go together (the one waives the other).
_UPDATES: dict[tuple[bool, bool, bool], LiteralString] = {
    (False, False, False): _SET + _RETURNING,
    (True, False, False): _SET + _IF_VERSION + _RETURNING,
    (False, True, False): _SET + _IF_HASH + _RETURNING,
    (True, True, False): _SET + _IF_VERSION + _IF_HASH + _RETURNING,
    (False, False, True): _SET + _IF_EMAIL + _RETURNING,
    (True, False, True): _SET + _IF_VERSION + _IF_EMAIL + _RETURNING,
}
_DELETE: LiteralString = "DELETE FROM users WHERE id = %s RETURNING version"
_DELETE_IF_VERSION: LiteralString = (
    "DELETE FROM users WHERE id = %s AND version = ANY(%s) RETURNING version"
)
# A role or password change, or a delete, changes the principal of every
# session of the user: their token-cache keys go back with the answer. The
# user's row is locked first, so no session can be added meanwhile (its
# foreign key check would wait for this transaction).
_LOCK_USER: LiteralString = "SELECT 1 FROM users WHERE id = %s FOR UPDATE"
_SESSION_KEYS: LiteralString = (
    "SELECT session_cache_key(token_hash) FROM sessions WHERE user_id = %s"
)
_EXISTS: LiteralString = "SELECT version FROM users WHERE id = %s"

# -- authentication --
# Always one row, so an unknown email costs what a known one does; the
# account subject is lower-cased by PostgreSQL, as the unique index is.
_CREDENTIALS_BY_EMAIL: LiteralString = (
    "SELECT 'e:' || lower(%s::text), u.id, u.role, u.password_hash"
    " FROM (VALUES (1)) AS one LEFT JOIN users u ON lower(u.email) = lower(%s::text)"
)
_CREDENTIALS_BY_ID: LiteralString = (
    "SELECT 'e:' || lower(email), id, role, password_hash FROM users WHERE id = %s"
)
# Seconds until every subject is below the limit again, or NULL if none
# has reached it: for a subject with n >= limit rows in the window, its
# (n - limit + 1)-th oldest row must leave the window first. The same for
# failures (and reserved attempts) and for successful logins.
_RETRY_AFTER_FAILURES: LiteralString = (
    "SELECT max(ceil(extract(epoch FROM failed_at + make_interval(secs => %(window)s) - now())))"
    " FROM (SELECT failed_at, count(*) OVER w AS n, row_number() OVER (w ORDER BY failed_at) AS k"
    "       FROM login_failures"
    "       WHERE subject = ANY(%(subjects)s)"
    "         AND failed_at > now() - make_interval(secs => %(window)s)"
    "       WINDOW w AS (PARTITION BY subject)) AS recent"
    " WHERE n >= %(limit)s AND k = n - %(limit)s + 1"
)
_RETRY_AFTER_SUCCESSES: LiteralString = (
    "SELECT max(ceil(extract(epoch FROM succeeded_at + make_interval(secs => %(window)s)"
    "                                   - now())))"
    " FROM (SELECT succeeded_at, count(*) OVER () AS n,"
    "              row_number() OVER (ORDER BY succeeded_at) AS k"
    "       FROM login_successes"
    "       WHERE subject = %(subject)s"
    "         AND succeeded_at > now() - make_interval(secs => %(window)s)) AS recent"
    " WHERE n >= %(limit)s AND k = n - %(limit)s + 1"
)
_KNOWN_ADDRESS: LiteralString = (
    "SELECT 1 FROM known_addresses WHERE account = %s AND address = %s"
    " AND seen_at > now() - make_interval(secs => %s)"
)
# Sorted, so that two attempts locking overlapping subjects cannot deadlock;
# under a namespace key of its own among the database's advisory locks.
_LOCK_SUBJECTS: LiteralString = (
    "SELECT pg_advisory_xact_lock(1819240307, h)"
    " FROM (SELECT DISTINCT hashtext(s) AS h FROM unnest(%s::text[]) AS s ORDER BY h) AS sorted"
)
# One attempt id for the rows of all its subjects.
_RESERVE: LiteralString = (
    "WITH attempt AS (SELECT nextval('login_attempt_ids') AS id)"
    " INSERT INTO login_failures (subject, attempt)"
    " SELECT s, attempt.id FROM attempt, unnest(%s::text[]) AS s RETURNING attempt"
)
_RELEASE: LiteralString = "DELETE FROM login_failures WHERE attempt = %s"
_PRUNE_FAILURES: LiteralString = (
    "DELETE FROM login_failures WHERE failed_at <= now() - make_interval(secs => %s)"
)
_COUNT_SUCCESS: LiteralString = "INSERT INTO login_successes (subject) VALUES (%s)"
_PRUNE_SUCCESSES: LiteralString = (
    "DELETE FROM login_successes WHERE succeeded_at <= now() - make_interval(secs => %s)"
)
_REMEMBER_ADDRESS: LiteralString = (
    "INSERT INTO known_addresses (account, address) VALUES (%s, %s)"
    " ON CONFLICT (account, address) DO UPDATE SET seen_at = now()"
)
_PRUNE_ADDRESSES: LiteralString = (
    "DELETE FROM known_addresses WHERE seen_at <= now() - make_interval(secs => %s)"
)
_INSERT_SESSION: LiteralString = (
    "INSERT INTO sessions (token_hash, user_id, expires_at)"
    " VALUES (%s, %s, now() + make_interval(secs => %s)) RETURNING expires_at"
)
_PRUNE_SESSIONS: LiteralString = (
    "DELETE FROM sessions WHERE user_id = %s AND expires_at <= now()"
)
# The user's sessions past the newest max_sessions (the new one included).
_END_OLDEST_SESSIONS: LiteralString = (
    "DELETE FROM sessions WHERE token_hash IN ("
    "  SELECT token_hash FROM sessions WHERE user_id = %s"
    "  ORDER BY created_at DESC, token_hash DESC OFFSET %s)"
    " RETURNING session_cache_key(token_hash)"
)
_REHASH: LiteralString = (
    "UPDATE users SET password_hash = %s WHERE id = %s AND password_hash = %s"
)
_SELECT_SESSION: LiteralString = (
    "SELECT s.user_id, u.role, extract(epoch FROM s.expires_at)::float8"
    " FROM sessions s JOIN users u ON u.id = s.user_id"
    " WHERE s.token_hash = %s AND s.expires_at > now()"
)
_DELETE_SESSION: LiteralString = "DELETE FROM sessions WHERE token_hash = %s RETURNING user_id"
_DELETE_OTHER_SESSIONS: LiteralString = (
    "DELETE FROM sessions WHERE user_id = %s AND token_hash IS DISTINCT FROM %s"
)


class ConnectionLost(Exception):
    """The worker's connection broke; the worker ends so it can be replaced."""


class _Crash:
    """Sent to itself (a tell) to end abnormally after answering a request."""


class _Connect:
    """Sent to itself (a tell) to try to take a connection again."""


class DbWorker(pykka.ThreadingActor):
    """Runs user queries on its own connection, one message at a time.

    Args:
        connections: the process's connection pool.
        workers: the checkout pool this worker joins once connected.
        connect_timeout: how long one attempt waits for a connection.
        reconnect_delay: seconds before connection attempt ``n`` (0-based)
            after a failure (the service passes its Backoff's delays).
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
        reconnect_delay: Callable[[int], float],
        on_query: Callable[[str, float], None] | None = None,
        on_error: Callable[[str], None] | None = None,
    ) -> None:
        super().__init__()
        self._connections = connections
        self._workers = workers
        self._connect_timeout = connect_timeout
        self._on_query = on_query
        self._on_error = on_error
        self._conn: psycopg.Connection[Any] | None = None
        self._cursor: psycopg.Cursor[Any] | None = None
        self._retry = RetryLater(reconnect_delay, _Connect(), event="db_connect_retry",
                                 what="database worker waiting for a connection")

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
            self._retry.failed(self.actor_ref, exc)
            return
        self._retry.succeeded()
        self._workers.register(self.actor_ref, kill=self._kill)

    def _release(self) -> None:
        self._retry.cancel()
        self._workers.unregister(self.actor_ref)
        conn, self._conn = self._conn, None
        self._cursor = None
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

        Expected outcomes are answered as :class:`~actors.messages.Refused`
        values, not raised (pykka would log every 404 as a failure):
        NotFound, DuplicateEmail, PreconditionFailed, InvalidData,
        WrongPassword, DatabaseUnavailable (the worker carries on), and
        WorkerCrashed when the connection broke (the worker then ends
        abnormally and is replaced).
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
        try:
            return self._run(entry, message)
        except UsermgmtError as exc:
            return Refused(exc)

    def _run(self, entry: tuple[str, Callable[[DbWorker, Any], Any]], message: Any) -> Any:
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
            if exc.sqlstate == LAST_ADMIN_SQLSTATE:
                raise LastAdmin("this change would leave no admin; promote another first") from exc
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
    def _db(self) -> psycopg.Cursor[Any]:
        """The cursor every statement of this worker runs on.

        One per connection, reused: ``Connection.execute`` builds a cursor
        per statement, which cost about a third of a primary-key SELECT's
        client-side time. The actor runs one message at a time and every
        handler fetches its rows before the next statement, so one cursor
        is enough.
        """
        cursor = self._cursor
        conn = self._conn
        if conn is None:
            raise DatabaseUnavailable("worker has no connection")
        if cursor is None or cursor.connection is not conn:
            cursor = self._cursor = conn.cursor()
        return cursor

    def _get_many(self, msg: GetUsers) -> dict[int, UserRow]:
        rows = self._db.execute(_SELECT_MANY, (list(msg.user_ids),)).fetchall()
        return {row[0]: row for row in rows}

    def _list(self, msg: ListUsers) -> RowPage:
        # One row more than asked tells whether another page follows.
        if msg.email is None:
            rows = self._db.execute(_SELECT_PAGE, (msg.after_id, msg.limit + 1)).fetchall()
        else:
            rows = self._db.execute(
                _SELECT_PAGE_BY_EMAIL, (msg.email, msg.after_id, msg.limit + 1)
            ).fetchall()
        has_more = len(rows) > msg.limit
        return RowPage(rows[: msg.limit], has_more)

    def _create(self, msg: CreateUser) -> UserRow:
        row = self._db.execute(
            _INSERT, (msg.name, msg.email, msg.role, msg.password_hash)
        ).fetchone()
        assert row is not None
        created: UserRow = row
        return created

    def _update(self, msg: UpdateUser) -> Written:
        cur = self._db
        # If-Match: * (an empty tuple) only requires the row to exist,
        # which the WHERE id = ... already does.
        if_version = bool(msg.if_match)
        if_hash = msg.expected_password_hash is not None
        if_email = msg.same_email and msg.email is not None and not if_hash
        params: list[Any] = [msg.name, msg.email, msg.role, msg.password_hash, msg.user_id]
        if if_version:
            assert msg.if_match is not None
            params.append(list(msg.if_match))
        if if_hash:
            params.append(msg.expected_password_hash)
        if if_email:
            params.append(msg.email)
        statement = _UPDATES[if_version, if_hash, if_email]
        keys: tuple[int, ...] = ()
        if msg.password_hash is None and msg.role is None:
            row = cur.execute(statement, params).fetchone()
        else:
            # A new password ends every other session of the user, in the
            # same transaction: no moment where both the old password's
            # sessions and the new password are valid.
            with cur.connection.transaction():
                keys = self._session_keys(msg.user_id)
                row = cur.execute(statement, params).fetchone()
                if row is not None and msg.password_hash is not None:
                    cur.execute(_DELETE_OTHER_SESSIONS, (msg.user_id, msg.keep_session))
        if row is not None:
            return Written(row, row[4], keys)  # row[4]: the version
        self._explain_miss(msg.user_id, msg.if_match)
        # The row exists and its version matched: the email would change,
        # or the password changed since it was verified.
        if if_email:
            raise CurrentPasswordRequired("changing your own email requires current_password")
        raise WrongPassword("the current password is not correct")

    def _delete(self, msg: DeleteUser) -> Written:
        cur = self._db
        with cur.connection.transaction():
            keys = self._session_keys(msg.user_id)
            if not msg.if_match:
                row = cur.execute(_DELETE, (msg.user_id,)).fetchone()
            else:
                row = cur.execute(_DELETE_IF_VERSION,
                                  (msg.user_id, list(msg.if_match))).fetchone()
        if row is not None:
            return Written(None, int(row[0]), keys)
        self._explain_miss(msg.user_id, msg.if_match)
        raise AssertionError("unreachable")  # pragma: no cover - the row changed meanwhile

    def _session_keys(self, user_id: int) -> tuple[int, ...]:
        """Lock the user's row; the token-cache keys of its sessions (in a transaction)."""
        cur = self._db
        cur.execute(_LOCK_USER, (user_id,))
        return tuple(int(key) for (key,) in cur.execute(_SESSION_KEYS, (user_id,)).fetchall())

    def _explain_miss(self, user_id: int, if_match: tuple[int, ...] | None) -> None:
        """Raise why a write touched no row; return if the row exists and matches."""
        row = self._db.execute(_EXISTS, (user_id,)).fetchone()
        if row is None:
            if if_match is None:
                raise NotFound(f"user {user_id} does not exist")
            # RFC 9110 13.1.1: If-Match on a missing resource fails.
            raise PreconditionFailed(f"user {user_id} does not exist")
        if if_match and row[0] not in if_match:
            raise PreconditionFailed(f"user {user_id} has changed (it is at version {row[0]})")

    def _ping(self, _msg: Ping) -> int:
        row = self._db.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        return int(row[0])

    # -- authentication (no password is ever checked or hashed here: that
    # burns CPU for ~0.2 s, and a worker must not hold its connection
    # meanwhile; the request thread does it between two messages) --------

    def _reserve(self, msg: ReserveAttempt) -> Credentials:
        cur = self._db
        limits = msg.limits
        if msg.user_id is not None:
            row = cur.execute(_CREDENTIALS_BY_ID, (msg.user_id,)).fetchone()
            if row is None:
                raise NotFound(f"user {msg.user_id} does not exist")
        else:
            row = cur.execute(_CREDENTIALS_BY_EMAIL, (msg.email, msg.email)).fetchone()
            assert row is not None
        account = str(row[0])
        known = cur.execute(_KNOWN_ADDRESS, (account, msg.address, limits.known_for)
                            ).fetchone() is not None
        subjects = ([f"p:{account[2:]}|{msg.address}"] if known
                    else [account, "a:" + msg.address])
        with cur.connection.transaction():
            cur.execute(_LOCK_SUBJECTS, (subjects,))
            # Each statement from here on sees every attempt committed
            # before this one got the locks: the count and the reservation
            # are one step for everyone checking these subjects.
            wait = cur.execute(_RETRY_AFTER_FAILURES, {
                "subjects": subjects, "window": limits.window, "limit": limits.attempts,
            }).fetchone()
            if wait is None or wait[0] is None:
                wait = cur.execute(_RETRY_AFTER_SUCCESSES, {
                    "subject": account, "window": limits.success_window,
                    "limit": limits.successes,
                }).fetchone()
            if wait is not None and wait[0] is not None:
                return Credentials(account, row[1], row[2], row[3], max(1, int(wait[0])),
                                   known=known)
            reserved = cur.execute(_RESERVE, (subjects,)).fetchone()
            assert reserved is not None
        cur.execute(_PRUNE_FAILURES, (limits.window,))
        return Credentials(account, row[1], row[2], row[3], None, int(reserved[0]), known)

    def _release_attempt(self, msg: ReleaseAttempt) -> None:
        self._db.execute(_RELEASE, (msg.attempt,))

    def _create_session(self, msg: CreateSession) -> SessionCreated:
        cur = self._db
        limits = msg.limits
        with cur.connection.transaction():
            if msg.attempt is not None:
                cur.execute(_RELEASE, (msg.attempt,))
            # Locked, so that concurrent logins of one user count its
            # sessions one after the other (and a deleted user is seen).
            if cur.execute(_LOCK_USER, (msg.user_id,)).fetchone() is None:
                raise NotFound(f"user {msg.user_id} does not exist")
            cur.execute(_PRUNE_SESSIONS, (msg.user_id,))
            row = cur.execute(_INSERT_SESSION, (msg.token_hash, msg.user_id, msg.ttl)).fetchone()
            ended = cur.execute(_END_OLDEST_SESSIONS,
                                (msg.user_id, limits.max_sessions)).fetchall()
            if msg.account:
                cur.execute(_COUNT_SUCCESS, (msg.account,))
                cur.execute(_REMEMBER_ADDRESS, (msg.account, msg.address))
            if msg.rehash is not None:
                old, new = msg.rehash
                cur.execute(_REHASH, (new, msg.user_id, old))
        cur.execute(_PRUNE_SUCCESSES, (limits.success_window,))
        cur.execute(_PRUNE_ADDRESSES, (limits.known_for,))
        assert row is not None
        return SessionCreated(row[0], tuple(int(key) for (key,) in ended))

    def _get_session(self, msg: GetSession) -> SessionRow | None:
        row = self._db.execute(_SELECT_SESSION, (msg.token_hash,)).fetchone()
        return None if row is None else SessionRow(int(row[0]), str(row[1]), float(row[2]))

    def _delete_session(self, msg: DeleteSession) -> bool:
        return self._db.execute(_DELETE_SESSION, (msg.token_hash,)).fetchone() is not None


DbWorker._handlers = {
    GetUsers: ("get", DbWorker._get_many),
    ListUsers: ("list", DbWorker._list),
    CreateUser: ("create", DbWorker._create),
    UpdateUser: ("update", DbWorker._update),
    DeleteUser: ("delete", DbWorker._delete),
    Ping: ("ping", DbWorker._ping),
    ReserveAttempt: ("reserve_attempt", DbWorker._reserve),
    ReleaseAttempt: ("release_attempt", DbWorker._release_attempt),
    CreateSession: ("create_session", DbWorker._create_session),
    GetSession: ("get_session", DbWorker._get_session),
    DeleteSession: ("delete_session", DbWorker._delete_session),
}
