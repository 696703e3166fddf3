"""The users API as a Python team would write it today: FastAPI, uvicorn and asyncpg.

    DATABASE_URL=... gunicorn -k perf.reference.fastapi_app.Worker -w 2 \\
        'perf.reference.fastapi_app:get_app()'

gunicorn is only the process manager here (the same master, worker count
and timeouts as the other servers of the benchmark, so they are started
and stopped alike); each worker process is a uvicorn server on uvloop with
the httptools parser. :class:`Worker` names both rather than letting
uvicorn pick ("auto" silently falls back to asyncio and h11 when they are
missing), and turns uvicorn's access log off, as gunicorn's is off for the
Falcon reference. ``uvicorn --workers 2`` would run the same worker code
under uvicorn's own supervisor.

Each worker opens an asyncpg pool of ``REFERENCE_POOL_SIZE`` connections
(the service's ``USERMGMT_DB_WORKERS``, default 4) in the app's lifespan,
that is after the fork and on the worker's event loop; the pool does not
send asyncpg's reset query at every release (see :func:`_local_reset`).
A handler runs one statement with ``pool.fetchrow`` (asyncpg prepares each
statement once per connection and keeps it) and answers with a plain ``Response`` of orjson
bytes: FastAPI deprecated ``ORJSONResponse`` (it now serializes through
Pydantic when a response model is declared), and raw bytes skip both.
Request bodies are parsed with orjson and checked by the same rules as the
Falcon reference (:func:`~perf.reference.users_api.validate_user`), not by
Pydantic models, so that both references accept and refuse the same
bodies. Query and path parameters use FastAPI's own validation.

Same routes, JSON shapes, ETags, statuses and minimal problem+json bodies
as the Falcon reference (``app.py``); the rules both share are in
``users_api.py``. No cache.

With ``REFERENCE_AUTH=1`` an app-wide dependency authenticates every
request exactly as the Falcon reference does: the bearer token's SHA-256
looked up in ``sessions`` (one more query per request, no token cache);
only admins pass.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Annotated, Any

import asyncpg
import orjson
from fastapi import Depends, FastAPI, Header, Path, Query, Request
from fastapi.responses import Response
from fastapi.telemetry import TelemetryConfig
from starlette.exceptions import HTTPException
from uvicorn_worker import UvicornWorker

from perf.reference.users_api import (
    COLUMNS_PRESENT,
    DEFAULT_LIMIT,
    DEFAULT_POOL_SIZE,
    DELETE,
    DELETE_IF_VERSION,
    EXISTS,
    JSON,
    MAX_LIMIT,
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
    numbered,
    problem,
    token_hash,
    user_queries,
    validate_user,
)

__all__ = ["Database", "Statements", "Worker", "create_app", "get_app"]

# The service's encoding: RFC 3339 UTC timestamps with "Z".
_ORJSON_OPTIONS = orjson.OPT_UTC_Z
_CACHE_CONTROL = "private, no-cache"
_UNAVAILABLE = (OSError, TimeoutError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError)
# FastAPI checks for OpenTelemetry providers on every request unless told
# not to; none is configured here (nor has the Falcon reference any).
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}

UserId = Annotated[int, Path(ge=1)]


class Worker(UvicornWorker):
    """uvicorn in a gunicorn worker: uvloop and httptools, no access log."""

    CONFIG_KWARGS = {"loop": "uvloop", "http": "httptools", "access_log": False}


@dataclass(frozen=True)
class Statements:
    """Every statement in asyncpg's ``$n`` placeholders, built once per process."""

    select_one: str
    select_page: str
    select_page_by_email: str
    insert: str
    update: str
    update_if_version: str
    delete: str
    delete_if_version: str
    exists: str
    session_role: str

    @classmethod
    def of(cls, queries: UserQueries) -> Statements:
        return cls(*(numbered(sql) for sql in (
            queries.select_one, queries.select_page, queries.select_page_by_email,
            queries.insert, queries.update, queries.update_if_version, DELETE,
            DELETE_IF_VERSION, EXISTS, SESSION_ROLE)))


async def _local_reset(conn: asyncpg.Connection) -> None:
    """What a connection needs on its way back to the pool here: nothing more.

    asyncpg's default reset also sends ``SELECT pg_advisory_unlock_all();
    CLOSE ALL; UNLISTEN *; RESET ALL`` to the server at every release, one
    more round trip per query. These handlers leave no locks, cursors,
    listeners or settings behind (and psycopg-pool sends nothing when the
    Falcon reference returns a connection), so only asyncpg's own local
    clean-up runs, which still rolls back a transaction left open.
    """


class Database:
    """The worker's asyncpg pool and statements, opened by the app's lifespan.

    Args:
        url: libpq-style URL (a ``?host=`` socket directory works too).
        pool_size: connections, opened at start and kept.
    """

    def __init__(self, url: str, pool_size: int) -> None:
        self._url = url
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None
        self._sql: Statements | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        assert self._pool is not None, "the app's lifespan has not started"
        return self._pool

    @property
    def sql(self) -> Statements:
        assert self._sql is not None, "the app's lifespan has not started"
        return self._sql

    @asynccontextmanager
    async def lifespan(self, app: FastAPI) -> AsyncIterator[None]:
        self._pool = await asyncpg.create_pool(self._url, min_size=self._pool_size,
                                               max_size=self._pool_size, reset=_local_reset)
        try:
            present = [row[0] for row in await self._pool.fetch(COLUMNS_PRESENT)]
            self._sql = Statements.of(user_queries(present))
            yield
        finally:
            await self._pool.close()


def _user_response(row: asyncpg.Record, status: int = 200,
                   headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(dict(row), option=_ORJSON_OPTIONS), status_code=status,
                    media_type=JSON, headers={"ETag": etag(row), **(headers or {})})


async def _json_body(request: Request) -> Any:
    try:
        return orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        raise HTTPException(400, "the body is not valid JSON") from None


async def _explain_miss(conn: asyncpg.Connection, sql: Statements, user_id: int,
                        versions: list[int] | None) -> None:
    """A write touched no row: 404 without If-Match, else 412."""
    if versions is None:
        raise HTTPException(404, f"user {user_id} does not exist")
    exists = await conn.fetchval(sql.exists, user_id) is not None
    raise HTTPException(412, f"user {user_id} has changed" if exists
                        else f"user {user_id} does not exist")


def _admin_dependency(db: Database) -> Callable[..., Coroutine[Any, Any, None]]:
    async def require_admin(authorization: Annotated[str | None, Header()] = None) -> None:
        token = bearer_token(authorization)
        if token is None:
            raise HTTPException(401, "a bearer token is required",
                                headers={"WWW-Authenticate": 'Bearer realm="usermgmt"'})
        role = await db.pool.fetchval(db.sql.session_role, token_hash(token))
        if role is None:
            raise HTTPException(401, "invalid token",
                                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        if role != "admin":
            raise HTTPException(403, "only an admin may do this")
    return require_admin


def _problem_response(status: int, detail: str | None,
                      headers: Mapping[str, str] | None = None) -> Response:
    return Response(orjson.dumps(problem(status, detail)), status_code=status,
                    media_type=PROBLEM_JSON, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    """Errors as a minimal problem+json, like the Falcon reference's."""

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return _problem_response(exc.status_code, str(exc.detail), exc.headers)

    async def invalid(request: Request, exc: Exception) -> Response:
        return _problem_response(422, str(exc))

    async def unavailable(request: Request, exc: Exception) -> Response:
        return _problem_response(503, f"database unavailable: {type(exc).__name__}",
                                 {"Retry-After": "1"})

    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Invalid, invalid)
    for error in _UNAVAILABLE:
        app.add_exception_handler(error, unavailable)


def create_app(db: Database, *, auth: bool = False) -> FastAPI:
    """The FastAPI app over ``db`` (with bearer authentication if ``auth``)."""
    app = FastAPI(lifespan=db.lifespan, telemetry=NO_TELEMETRY,
                  dependencies=[Depends(_admin_dependency(db))] if auth else None)
    _install_error_handlers(app)

    @app.get("/api/users")
    async def list_users(limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = DEFAULT_LIMIT,
                         after: str | None = None, email: str | None = None) -> Response:
        after_id = decode_cursor(after) if after is not None else 0
        if email is None:
            rows = await db.pool.fetch(db.sql.select_page, after_id, limit + 1)
        else:
            rows = await db.pool.fetch(db.sql.select_page_by_email, email, after_id, limit + 1)
        next_cursor = encode_cursor(rows[limit - 1][0]) if len(rows) > limit else None
        headers = {"Link": next_link(limit, next_cursor, email)} if next_cursor else None
        body = {"data": [dict(row) for row in rows[:limit]], "next": next_cursor}
        return Response(orjson.dumps(body, option=_ORJSON_OPTIONS), media_type=JSON,
                        headers=headers)

    @app.post("/api/users")
    async def create_user(request: Request) -> Response:
        name, email = validate_user(await _json_body(request), partial=False)
        try:
            row = await db.pool.fetchrow(db.sql.insert, name, email)
        except asyncpg.UniqueViolationError:
            raise HTTPException(409, f"email {email} is already taken") from None
        return _user_response(row, 201, {"Location": f"/api/users/{row[0]}"})

    @app.get("/api/users/{user_id}")
    async def get_user(user_id: UserId,
                       if_none_match: Annotated[str | None, Header()] = None) -> Response:
        row = await db.pool.fetchrow(db.sql.select_one, user_id)
        if row is None:
            raise HTTPException(404, f"user {user_id} does not exist")
        tag = etag(row)
        if none_match(if_none_match, tag):
            return Response(status_code=304, headers={"ETag": tag, "Cache-Control": _CACHE_CONTROL})
        return _user_response(row, headers={"Cache-Control": _CACHE_CONTROL})

    async def update(request: Request, user_id: int, if_match: str | None,
                     partial: bool) -> Response:
        name, email = validate_user(await _json_body(request), partial=partial)
        versions = if_match_versions(if_match, user_id)
        async with db.pool.acquire() as conn:
            try:
                if versions:
                    row = await conn.fetchrow(db.sql.update_if_version, name, email, user_id,
                                              versions)
                else:
                    row = await conn.fetchrow(db.sql.update, name, email, user_id)
            except asyncpg.UniqueViolationError:
                raise HTTPException(409, f"email {email} is already taken") from None
            if row is None:
                await _explain_miss(conn, db.sql, user_id, versions)
        return _user_response(row)

    @app.put("/api/users/{user_id}")
    async def replace_user(request: Request, user_id: UserId,
                           if_match: Annotated[str | None, Header()] = None) -> Response:
        return await update(request, user_id, if_match, partial=False)

    @app.patch("/api/users/{user_id}")
    async def patch_user(request: Request, user_id: UserId,
                         if_match: Annotated[str | None, Header()] = None) -> Response:
        return await update(request, user_id, if_match, partial=True)

    @app.delete("/api/users/{user_id}")
    async def delete_user(user_id: UserId,
                          if_match: Annotated[str | None, Header()] = None) -> Response:
        versions = if_match_versions(if_match, user_id)
        async with db.pool.acquire() as conn:
            if versions:
                row = await conn.fetchrow(db.sql.delete_if_version, user_id, versions)
            else:
                row = await conn.fetchrow(db.sql.delete, user_id)
            if row is None:
                await _explain_miss(conn, db.sql, user_id, versions)
        return Response(status_code=204)

    return app


def get_app() -> FastAPI:
    """ASGI factory, called by gunicorn in each worker (the pool opens in the lifespan)."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        raise RuntimeError("DATABASE_URL is not set")
    size = int(os.environ.get("REFERENCE_POOL_SIZE", DEFAULT_POOL_SIZE))
    return create_app(Database(url, size), auth=os.environ.get("REFERENCE_AUTH", "0") == "1")
