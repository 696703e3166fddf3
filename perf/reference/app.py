"""The users API written the plain way: Falcon resources and a psycopg pool.

    DATABASE_URL=... gunicorn -k gthread -w 2 --threads 4 'perf.reference.app:get_app()'

Every request checks a connection out of a ``psycopg_pool.ConnectionPool``
(``with pool.connection()``), runs one statement in autocommit mode and
gives the connection back: no actors, no cache, stdlib ``json`` through
Falcon's default media handlers. It exists so that the benchmark can say
how the service compares with "what you would write without the actor
design"; it is not slowed down on purpose, nor tuned beyond the obvious.

Same routes, JSON shapes, ETags (``"<id>-<version>"``) and status codes as
the service for the common cases (200, 201, 204, 304, 404, 409, 412, 415,
422); error bodies are a minimal ``application/problem+json``. It reads
the same ``users`` table, created by the service's migrations, and
accepts the same opaque list cursors. The rules it shares with the
FastAPI reference (SQL, cursors, validation, preconditions, tokens) are in
``users_api.py``.

With ``REFERENCE_AUTH=1`` it also authenticates, the plain way, so that it
pays for what the service pays for when the service requires bearer
tokens: every request needs ``Authorization: Bearer <token>``, looked up
by SHA-256 in the migrations' ``sessions`` table (one more pooled query
per request, no token cache); only admins pass, anyone else gets 403.
There is no login route: the benchmark puts the session row there.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import Any

import falcon
import falcon.media
import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from perf.reference.users_api import (
    COLUMNS_PRESENT,
    DEFAULT_POOL_SIZE,
    DELETE,
    DELETE_IF_VERSION,
    EXISTS,
    JSON,
    MERGE_PATCH_JSON,
    PROBLEM_JSON,
    SESSION_ROLE,
    Invalid,
    UserQueries,
    bearer_token,
    decode_cursor,
    encode_cursor,
    etag,
    if_match_versions,
    next_link,
    none_match,
    parse_limit,
    problem,
    token_hash,
    user_queries,
    validate_user,
)

__all__ = ["create_app", "get_app"]


def _timestamp(value: datetime) -> str:
    """RFC 3339 UTC with ``Z``, like the service (microseconds only when nonzero)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def to_json(queries: UserQueries, row: tuple[Any, ...]) -> dict[str, Any]:
    """A row as the API shows it (stdlib json cannot encode datetimes)."""
    user = dict(zip(queries.names, row, strict=True))
    user["inserted_at"] = _timestamp(user["inserted_at"])
    user["updated_at"] = _timestamp(user["updated_at"])
    return user


def _columns_present(pool: ConnectionPool[Any]) -> list[str]:
    with pool.connection() as conn:
        return [row[0] for row in conn.execute(COLUMNS_PRESENT)]


class UsersCollection:
    """``GET /api/users`` (keyset pages) and ``POST /api/users``."""

    def __init__(self, pool: ConnectionPool[Any], queries: UserQueries) -> None:
        self._pool = pool
        self._sql = queries

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit = parse_limit(req.get_param("limit"))
        after = req.get_param("after")
        after_id = decode_cursor(after) if after is not None else 0
        email = req.get_param("email")
        with self._pool.connection() as conn:
            if email is None:
                rows = conn.execute(self._sql.select_page, (after_id, limit + 1)).fetchall()
            else:
                rows = conn.execute(self._sql.select_page_by_email,
                                    (email, after_id, limit + 1)).fetchall()
        next_cursor = encode_cursor(rows[limit - 1][0]) if len(rows) > limit else None
        if next_cursor is not None:
            resp.set_header("Link", next_link(limit, next_cursor, email))
        resp.media = {"data": [to_json(self._sql, row) for row in rows[:limit]],
                      "next": next_cursor}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        name, email = validate_user(req.get_media(), partial=False)
        try:
            with self._pool.connection() as conn:
                row = conn.execute(self._sql.insert, (name, email)).fetchone()
        except psycopg.errors.UniqueViolation:
            raise falcon.HTTPConflict(description=f"email {email} is already taken") from None
        assert row is not None
        resp.status = falcon.HTTP_201
        resp.location = f"/api/users/{row[0]}"
        resp.etag = etag(row)
        resp.media = to_json(self._sql, row)


class UserItem:
    """``GET``, ``PUT``, ``PATCH`` and ``DELETE /api/users/{id}``."""

    def __init__(self, pool: ConnectionPool[Any], queries: UserQueries) -> None:
        self._pool = pool
        self._sql = queries

    def on_get(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        with self._pool.connection() as conn:
            row = conn.execute(self._sql.select_one, (user_id,)).fetchone()
        if row is None:
            raise falcon.HTTPNotFound(description=f"user {user_id} does not exist")
        tag = etag(row)
        resp.etag = tag
        resp.cache_control = ["private", "no-cache"]
        if none_match(req.get_header("If-None-Match"), tag):
            resp.status = falcon.HTTP_304
            return
        resp.media = to_json(self._sql, row)

    def on_put(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        name, email = validate_user(req.get_media(), partial=False)
        self._update(req, resp, user_id, name, email)

    def on_patch(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        name, email = validate_user(req.get_media(), partial=True)
        self._update(req, resp, user_id, name, email)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        versions = if_match_versions(req.get_header("If-Match"), user_id)
        with self._pool.connection() as conn:
            if versions:
                row = conn.execute(DELETE_IF_VERSION, (user_id, versions)).fetchone()
            else:
                row = conn.execute(DELETE, (user_id,)).fetchone()
            if row is None:
                self._explain_miss(conn, user_id, versions)
        resp.status = falcon.HTTP_204

    def _update(self, req: falcon.Request, resp: falcon.Response, user_id: int,
                name: str | None, email: str | None) -> None:
        versions = if_match_versions(req.get_header("If-Match"), user_id)
        try:
            with self._pool.connection() as conn:
                if versions:
                    row = conn.execute(self._sql.update_if_version,
                                       (name, email, user_id, versions)).fetchone()
                else:
                    row = conn.execute(self._sql.update, (name, email, user_id)).fetchone()
                if row is None:
                    self._explain_miss(conn, user_id, versions)
        except psycopg.errors.UniqueViolation:
            raise falcon.HTTPConflict(description=f"email {email} is already taken") from None
        assert row is not None
        resp.etag = etag(row)
        resp.media = to_json(self._sql, row)

    @staticmethod
    def _explain_miss(conn: psycopg.Connection[Any], user_id: int,
                      versions: list[int] | None) -> None:
        """A write touched no row: 404 without If-Match, else 412."""
        if versions is None:
            raise falcon.HTTPNotFound(description=f"user {user_id} does not exist")
        exists = conn.execute(EXISTS, (user_id,)).fetchone() is not None
        detail = f"user {user_id} has changed" if exists else f"user {user_id} does not exist"
        raise falcon.HTTPPreconditionFailed(description=detail)


class BearerAuth:
    """Middleware: a valid, unexpired admin session for every request."""

    def __init__(self, pool: ConnectionPool[Any]) -> None:
        self._pool = pool

    def process_request(self, req: falcon.Request, resp: falcon.Response) -> None:
        token = bearer_token(req.get_header("Authorization"))
        if token is None:
            raise falcon.HTTPUnauthorized(description="a bearer token is required",
                                          challenges=['Bearer realm="usermgmt"'])
        with self._pool.connection() as conn:
            row = conn.execute(SESSION_ROLE, (token_hash(token),)).fetchone()
        if row is None:
            raise falcon.HTTPUnauthorized(description="invalid token",
                                          challenges=['Bearer error="invalid_token"'])
        if row[0] != "admin":
            raise falcon.HTTPForbidden(description="only an admin may do this")


def _serialize_problem(req: falcon.Request, resp: falcon.Response,
                       error: falcon.HTTPError) -> None:
    """Errors as a minimal RFC 9457 problem+json, like the service's shape."""
    resp.content_type = PROBLEM_JSON
    resp.media = problem(error.status_code, error.description)


def _invalid_json(req: falcon.Request, resp: falcon.Response, error: Exception,
                  params: dict[str, Any]) -> None:
    raise falcon.HTTPBadRequest(description="the body is not valid JSON")


def _unprocessable(req: falcon.Request, resp: falcon.Response, error: Exception,
                   params: dict[str, Any]) -> None:
    raise falcon.HTTPError(falcon.HTTP_422, title="Unprocessable Content",
                           description=str(error))


def _unavailable(req: falcon.Request, resp: falcon.Response, error: Exception,
                 params: dict[str, Any]) -> None:
    """No pooled connection in time, or the database is down: 503, like the service."""
    raise falcon.HTTPServiceUnavailable(description=f"database unavailable: {type(error).__name__}",
                                        retry_after=1)


def create_app(pool: ConnectionPool[Any], queries: UserQueries, *,
               auth: bool = False) -> falcon.App[falcon.Request, falcon.Response]:
    """The Falcon app around a connection pool (with bearer authentication if ``auth``)."""
    app = falcon.App(middleware=[BearerAuth(pool)] if auth else [])
    app.req_options.strip_url_path_trailing_slash = True
    json_handler = falcon.media.JSONHandler()
    app.req_options.media_handlers = falcon.media.Handlers(
        {JSON: json_handler, MERGE_PATCH_JSON: json_handler})
    app.resp_options.media_handlers[PROBLEM_JSON] = json_handler
    app.set_error_serializer(_serialize_problem)
    app.add_error_handler(falcon.MediaMalformedError, _invalid_json)
    app.add_error_handler(Invalid, _unprocessable)
    app.add_error_handler(PoolTimeout, _unavailable)
    app.add_error_handler(psycopg.OperationalError, _unavailable)
    app.add_route("/api/users", UsersCollection(pool, queries))
    app.add_route("/api/users/{user_id:int(min=1)}", UserItem(pool, queries))
    return app


def get_app() -> falcon.App[falcon.Request, falcon.Response]:
    """WSGI factory: one pool per gunicorn worker (called after fork)."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("DATABASE_URL is not set")
    size = int(os.environ.get("REFERENCE_POOL_SIZE", DEFAULT_POOL_SIZE))
    pool: ConnectionPool[Any] = ConnectionPool(
        url, min_size=size, max_size=size, kwargs={"autocommit": True}, open=True,
        timeout=float(os.environ.get("REFERENCE_POOL_TIMEOUT", "1.0")))
    pool.wait(timeout=30)
    return create_app(pool, user_queries(_columns_present(pool)),
                      auth=os.environ.get("REFERENCE_AUTH", "0") == "1")
