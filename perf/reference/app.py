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
accepts the same opaque list cursors.

With ``REFERENCE_AUTH=1`` it also authenticates, the plain way, so that it
pays for what the service pays for when the service requires bearer
tokens: every request needs ``Authorization: Bearer <token>``, looked up
by SHA-256 in the migrations' ``sessions`` table (one more pooled query
per request, no token cache); only admins pass, anyone else gets 403.
There is no login route: the benchmark puts the session row there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from typing import Any
from urllib.parse import urlencode

import falcon
import falcon.media
import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

__all__ = ["get_app"]

JSON = "application/json"
MERGE_PATCH_JSON = "application/merge-patch+json"
PROBLEM_JSON = "application/problem+json"
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_NAME_LENGTH = 200
MAX_EMAIL_LENGTH = 254
CURSOR_PREFIX = b"u1:"
EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
# Same pool size as the service's default DbWorkers per process.
DEFAULT_POOL_SIZE = 4

BASE_COLUMNS = ("id", "name", "email", "version", "inserted_at", "updated_at")
# Shown when the schema has it (the service shows a user's role since auth came).
OPTIONAL_COLUMNS = ("role",)
SET_FIELDS = "UPDATE users SET name = COALESCE(%s::text, name), email = COALESCE(%s::text, email)"
DELETE = "DELETE FROM users WHERE id = %s RETURNING id"
DELETE_IF_VERSION = "DELETE FROM users WHERE id = %s AND version = ANY(%s) RETURNING id"
EXISTS = "SELECT 1 FROM users WHERE id = %s"
SESSION_ROLE = (
    "SELECT u.role FROM sessions s JOIN users u ON u.id = s.user_id"
    " WHERE s.token_hash = %s AND s.expires_at > now()"
)
BEARER = re.compile(r"[Bb]earer +([A-Za-z0-9._~+/-]{1,256}=*) *")


@dataclass(frozen=True)
class UserQueries:
    """The statements that return users, for the columns this schema has (built once)."""

    names: tuple[str, ...]

    @cached_property
    def columns(self) -> str:
        return ", ".join(self.names)

    @cached_property
    def select_one(self) -> str:
        return f"SELECT {self.columns} FROM users WHERE id = %s"

    @cached_property
    def select_page(self) -> str:
        return f"SELECT {self.columns} FROM users WHERE id > %s ORDER BY id LIMIT %s"

    @cached_property
    def select_page_by_email(self) -> str:
        return (f"SELECT {self.columns} FROM users WHERE lower(email) = lower(%s) AND id > %s"
                " ORDER BY id LIMIT %s")

    @cached_property
    def insert(self) -> str:
        return f"INSERT INTO users (name, email) VALUES (%s, %s) RETURNING {self.columns}"

    @cached_property
    def update(self) -> str:
        return f"{SET_FIELDS} WHERE id = %s RETURNING {self.columns}"

    @cached_property
    def update_if_version(self) -> str:
        return f"{SET_FIELDS} WHERE id = %s AND version = ANY(%s) RETURNING {self.columns}"

    def to_json(self, row: tuple[Any, ...]) -> dict[str, Any]:
        user = dict(zip(self.names, row, strict=True))
        user["inserted_at"] = _timestamp(user["inserted_at"])
        user["updated_at"] = _timestamp(user["updated_at"])
        return user


def user_queries(pool: ConnectionPool[Any]) -> UserQueries:
    """Queries for the users table as the migrations left it (with ``role`` if present)."""
    with pool.connection() as conn:
        present = {row[0] for row in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'users'")}
    return UserQueries(BASE_COLUMNS + tuple(c for c in OPTIONAL_COLUMNS if c in present))


class Unprocessable(falcon.HTTPError):
    """422: the body or query is invalid."""

    def __init__(self, detail: str) -> None:
        super().__init__(falcon.HTTP_422, title="Unprocessable Content", description=detail)


def _timestamp(value: datetime) -> str:
    """RFC 3339 UTC with ``Z``, like the service (microseconds only when nonzero)."""
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _etag(row: tuple[Any, ...]) -> str:
    return f'"{row[0]}-{row[3]}"'


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(CURSOR_PREFIX + str(last_id).encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise Unprocessable("after: is not a valid cursor") from None
    digits = raw.removeprefix(CURSOR_PREFIX)
    if not raw.startswith(CURSOR_PREFIX) or not digits.isdigit() or len(digits) > 18:
        raise Unprocessable("after: is not a valid cursor")
    return int(digits)


def _parse_limit(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise Unprocessable(f"limit: must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def _validate_user(body: Any, *, partial: bool) -> tuple[str | None, str | None]:
    """(name, email) from a body; None means "not given" (PATCH only)."""
    if not isinstance(body, dict):
        raise Unprocessable("the body must be a JSON object")
    unknown = set(body) - {"name", "email"}
    if unknown:
        raise Unprocessable(f"unknown field(s): {', '.join(sorted(unknown))}")
    if not partial and not {"name", "email"} <= set(body):
        raise Unprocessable("name and email are required")
    name, email = body.get("name"), body.get("email")
    if "name" in body:
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_NAME_LENGTH:
            raise Unprocessable(f"name: must be 1 to {MAX_NAME_LENGTH} characters")
        name = name.strip()
    if "email" in body and (
        not isinstance(email, str) or len(email) > MAX_EMAIL_LENGTH or not EMAIL.match(email)
    ):
        raise Unprocessable("email: must be a valid email address")
    return name, email


def _if_match_versions(header: str | None, user_id: int) -> list[int] | None:
    """None without If-Match, [] for ``*`` (must exist), else the versions named.

    A header naming none of this user's tags yields ``[0]``, a version no
    row has, so the write fails with 412 (strong comparison).
    """
    if header is None:
        return None
    if header.strip() == "*":
        return []
    prefix = f'"{user_id}-'
    versions = [int(tag[len(prefix):-1]) for tag in (t.strip() for t in header.split(","))
                if tag.startswith(prefix) and tag.endswith('"') and tag[len(prefix):-1].isdigit()]
    return versions or [0]


def _none_match(req: falcon.Request, etag: str) -> bool:
    header = req.get_header("If-None-Match")
    if header is None:
        return False
    return header.strip() == "*" or any(
        tag.strip().removeprefix("W/") == etag for tag in header.split(","))


class UsersCollection:
    """``GET /api/users`` (keyset pages) and ``POST /api/users``."""

    def __init__(self, pool: ConnectionPool[Any], queries: UserQueries) -> None:
        self._pool = pool
        self._sql = queries

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        limit = _parse_limit(req.get_param("limit"))
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
            params = {"limit": str(limit), "after": next_cursor}
            if email is not None:
                params["email"] = email
            resp.set_header("Link", f'</api/users?{urlencode(params)}>; rel="next"')
        resp.media = {"data": [self._sql.to_json(row) for row in rows[:limit]],
                      "next": next_cursor}

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        name, email = _validate_user(req.get_media(), partial=False)
        try:
            with self._pool.connection() as conn:
                row = conn.execute(self._sql.insert, (name, email)).fetchone()
        except psycopg.errors.UniqueViolation:
            raise falcon.HTTPConflict(description=f"email {email} is already taken") from None
        assert row is not None
        resp.status = falcon.HTTP_201
        resp.location = f"/api/users/{row[0]}"
        resp.etag = _etag(row)
        resp.media = self._sql.to_json(row)


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
        etag = _etag(row)
        resp.etag = etag
        resp.cache_control = ["private", "no-cache"]
        if _none_match(req, etag):
            resp.status = falcon.HTTP_304
            return
        resp.media = self._sql.to_json(row)

    def on_put(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        name, email = _validate_user(req.get_media(), partial=False)
        self._update(req, resp, user_id, name, email)

    def on_patch(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        name, email = _validate_user(req.get_media(), partial=True)
        self._update(req, resp, user_id, name, email)

    def on_delete(self, req: falcon.Request, resp: falcon.Response, user_id: int) -> None:
        versions = _if_match_versions(req.get_header("If-Match"), user_id)
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
        versions = _if_match_versions(req.get_header("If-Match"), user_id)
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
        resp.etag = _etag(row)
        resp.media = self._sql.to_json(row)

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
        match = BEARER.fullmatch(req.get_header("Authorization") or "")
        if match is None:
            raise falcon.HTTPUnauthorized(description="a bearer token is required",
                                          challenges=['Bearer realm="usermgmt"'])
        token_hash = hashlib.sha256(match.group(1).encode()).digest()
        with self._pool.connection() as conn:
            row = conn.execute(SESSION_ROLE, (token_hash,)).fetchone()
        if row is None:
            raise falcon.HTTPUnauthorized(description="invalid token",
                                          challenges=['Bearer error="invalid_token"'])
        if row[0] != "admin":
            raise falcon.HTTPForbidden(description="only an admin may do this")


def _serialize_problem(req: falcon.Request, resp: falcon.Response,
                       error: falcon.HTTPError) -> None:
    """Errors as a minimal RFC 9457 problem+json, like the service's shape."""
    resp.content_type = PROBLEM_JSON
    resp.media = {"type": "about:blank", "title": error.title, "status": error.status_code,
                  "detail": error.description or error.title}


def _invalid_json(req: falcon.Request, resp: falcon.Response, error: Exception,
                  params: dict[str, Any]) -> None:
    raise falcon.HTTPBadRequest(description="the body is not valid JSON")


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
    return create_app(pool, user_queries(pool),
                      auth=os.environ.get("REFERENCE_AUTH", "0") == "1")
