"""The OpenAPI 3.1 document served at ``/openapi.json``.

Written as data next to the code it describes; tests validate real
responses against it, so the two cannot drift apart silently. Request
schemas state exactly what validation accepts (the patterns come from
:mod:`app.validation`), so a generator drawing from them (schemathesis)
only draws requests the service takes.

Security: a bearer token on every operation (global ``security``) except
the anonymous ones, which override it with ``security: []``; 401 is
documented wherever a token is checked, 403 wherever a role matters, 429
wherever a password is checked.

Client generators read it too (tests/integration/test_generated_client.py):
every operation has one tag, a description and examples, every JSON body
a named schema, every integer a format, and every error the problem+json
it is; ``X-Request-ID`` is added to every path and response in one place.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from app.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from app.problems import MAX_ERRORS
from app.validation import (
    ACTOR_ID_PATTERN,
    CURSOR_PATTERN,
    DEFAULT_LIMIT,
    EMAIL_PATTERN,
    LOGIN_EMAIL_PATTERN,
    MAX_EMAIL_LENGTH,
    MAX_ID,
    MAX_LIMIT,
    MAX_NAME_LENGTH,
    MAX_PID,
    NAME_PATTERN,
    NO_NUL_PATTERN,
    ROLES,
)

__all__ = ["main", "openapi_document"]


def _problem_response(description: str, example: dict[str, Any],
                      headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"},
                                         "example": example},
        },
    }
    if headers:
        response["headers"] = headers
    return response


_RETRY_AFTER = {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}}
_ETAG = {"ETag": {"$ref": "#/components/headers/ETag"}}
_CACHE = {"Cache-Control": {"$ref": "#/components/headers/CacheControl"}}
_NO_STORE = {"Cache-Control": {"description": "`no-store`: the body is a credential.",
                               "schema": {"type": "string"}}}
# Ids are PostgreSQL bigints: int64, so that no generator maps them to a
# 32-bit integer (or, knowingly, to a double that rounds past 2**53).
_ID = {"type": "integer", "format": "int64", "minimum": 1}
# What the server keeps of a client's X-Request-ID (app.middleware).
_ID_CHARS = "[A-Za-z0-9._~:@/+=-]{1,128}"
_ANONYMOUS: list[dict[str, list[str]]] = []
_USER_LINKS = {
    name: {"operationId": operation, "parameters": {"user_id": "$response.body#/id"}}
    for name, operation in (("GetUser", "getUser"), ("ReplaceUser", "replaceUser"),
                            ("PatchUser", "patchUser"), ("DeleteUser", "deleteUser"))
}


# Any request can be refused before routing (app.edge): hostile headers or
# query strings (400), a request line or header the server cannot parse
# (400), a head or body sent too slowly (408), an oversized request line
# (414) or header section (431); and every operation refuses a query
# parameter it does not define (422, see app.app.QueryParameters). Each is
# a problem+json, documented once as a shared response.
_ANY_REQUEST = (400, 408, 414, 422, 431)


# Examples: one user's life, as the README's walk-through shows it.
_EXAMPLE_REQUEST_ID = "checkout-7f3a9c"
_EXAMPLE_USER = {"id": 2, "name": "Ada Lovelace", "email": "ada@example.com", "role": "member",
                 "version": 1, "inserted_at": "2026-11-27T10:00:00.000000Z",
                 "updated_at": "2026-11-27T10:00:00.000000Z"}
_EXAMPLE_ETAG = '"2-1"'
_EXAMPLE_CURSOR = "dTE6Mg"  # encode_cursor(2)
_EXAMPLE_EXPIRY = "2026-11-28T10:00:00.000000Z"


_METRICS_EXAMPLE = """\
# HELP usermgmt_http_requests_total HTTP requests answered.
# TYPE usermgmt_http_requests_total counter
usermgmt_http_requests_total{method="GET",route="/api/users/{user_id}",status="200"} 42.0
"""

_API_DESCRIPTION = """\
User management API.

Log in with `POST /api/sessions` and send the token as
`Authorization: Bearer <token>` on every other request but the
`operations` ones.

Errors are RFC 9457 problem details (`application/problem+json`); a
validation failure lists every field at fault in `errors`. Any request
may be answered 400, 408, 414 or 431 before it reaches a route, and 422 when
it carries a query parameter that the operation does not define (or one
it does, twice).

Reads carry an `ETag`; send it back in `If-None-Match` (304 while
current) or, on a write, in `If-Match` (412 when someone else changed
the user meanwhile).

Every answer carries `X-Request-ID`: yours when you send a plain one,
otherwise one the server made; problems name it in `instance`, and the
server's log lines carry it.
"""


def _json(schema: str, example: Any) -> dict[str, Any]:
    """A JSON body of one of the components' schemas, with an example."""
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"},
                                 "example": example}}


def _problem(status: int, title: str, detail: str, problem_type: str | None = None,
             errors: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """An example problem, as app.problems writes it."""
    example: dict[str, Any] = {
        "type": f"urn:usermgmt:problem:{problem_type}" if problem_type else "about:blank",
        "title": title, "status": status, "detail": detail,
        "instance": f"urn:usermgmt:request:{_EXAMPLE_REQUEST_ID}",
    }
    if errors is not None:
        example["errors"] = errors
    return example


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"$ref": f"#/components/responses/E{s}"}
            for s in sorted({*_ANY_REQUEST, *statuses})}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` or null."""
    return {"oneOf": [{"type": "null"}, schema]}


def _count(description: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "integer", "format": "int64", "minimum": 0}
    if description:
        schema["description"] = description
    return schema


def _object(properties: dict[str, Any], description: str) -> dict[str, Any]:
    return {"type": "object", "description": description, "required": list(properties),
            "additionalProperties": False, "properties": properties}


def _ref(schema: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{schema}"}


_UNIX_TIME = {"type": "number", "description": "Unix time, seconds."}
_OPTIONAL_NUMBER = {"type": ["number", "null"]}
_OPTIONAL_STRING = {"type": ["string", "null"]}
_OPTIONAL_COUNT = {"type": ["integer", "null"], "format": "int64", "minimum": 0}
_PID = {"type": "integer", "format": "int32", "minimum": 1, "maximum": MAX_PID}

# Examples: a worker of two DbWorkers, one of which was killed a second ago.
_EXAMPLE_AT = 1796032800.0


def _example_child(child_id: str, actor: str, restarts: int = 0) -> dict[str, Any]:
    return {"id": child_id, "supervisor": "db", "actor": actor, "type": "worker",
            "restart": "permanent", "shutdown": "5.0", "state": "running",
            "restarts": restarts, "mailbox": 0,
            "last_exit": None if not restarts else {
                "reason": "abnormal", "error": "CrashError('chaos')", "at": _EXAMPLE_AT - 1}}


_EXAMPLE_TREE = {
    "id": "root", "supervisor": None, "actor": "Supervisor", "type": "supervisor",
    "restart": None, "shutdown": None, "state": "running", "restarts": 0, "mailbox": 0,
    "last_exit": None, "name": "root", "strategy": "rest_for_one", "intensity": 3,
    "period": 5.0, "recent_restarts": 0,
    "children": [{
        "id": "db", "supervisor": "root", "actor": "Supervisor", "type": "supervisor",
        "restart": "permanent", "shutdown": "6.0", "state": "running", "restarts": 0,
        "mailbox": 0, "last_exit": None, "name": "db", "strategy": "one_for_one",
        "intensity": 50, "period": 5.0, "recent_restarts": 1,
        "children": [_example_child("db_worker_1", "DbWorker", restarts=1),
                     _example_child("db_worker_2", "DbWorker")],
    }],
}
_EXAMPLE_DASHBOARD = {
    "generated_at": _EXAMPLE_AT, "answered_by": 4242, "chaos": True,
    "workers": [{
        "pid": 4242, "started_at": _EXAMPLE_AT - 600, "updated_at": _EXAMPLE_AT - 0.4,
        "process": {"rss_bytes": 51380224, "cpu_seconds": 12.5, "cpu_percent": 3.1,
                    "threads": 17},
        "requests_per_second": 12.4, "tree": _EXAMPLE_TREE, "tree_stale": False,
        "pool": {"members": 2, "idle": 2, "busy": 0, "waiting": 0, "checkouts": 1520,
                 "timeouts": 0, "shed": 0, "shedding": False, "waits_last_minute": 310,
                 "wait_p50_ms": 0.25, "wait_p99_ms": 0.49},
        "caches": [{"name": "users", "entries": 38, "hits": 3601, "misses": 748,
                    "bypasses": 0, "hit_ratio": 0.828,
                    "evictions": {"capacity": 0, "expired": 2, "invalidated": 296,
                                  "flush": 38},
                    "usable": True, "coherent": True}],
        "listener": {"running": True, "connected": True, "notifications": 32,
                     "last_notification_at": _EXAMPLE_AT - 3,
                     "connected_at": _EXAMPLE_AT - 590},
    }],
    "events": [
        {"at": _EXAMPLE_AT - 1, "pid": 4242, "kind": "start", "supervisor": "db",
         "child": "db_worker_1", "reason": None, "error": None},
        {"at": _EXAMPLE_AT - 1, "pid": 4242, "kind": "restart", "supervisor": "db",
         "child": "db_worker_1", "reason": "abnormal", "error": "CrashError('chaos')"},
    ],
    "traffic": {"step": 5, "start": 1796032500, "points": 2, "routes": [
        {"route": "GET /api/users/{user_id}", "requests": [60, 62],
         "p50_ms": [0.6, 0.6], "p99_ms": [9.5, None]}]},
}


def _dashboard_schemas() -> dict[str, Any]:
    """The document of ``GET /api/dashboard`` (see app.dashboard), one schema per object."""
    return {
        "Dashboard": _object({
            "generated_at": _UNIX_TIME,
            "answered_by": {**_PID, "description": "pid of the worker process that answered."},
            "chaos": {"type": "boolean", "description": "Kills are offered."},
            "workers": {"type": "array", "items": _ref("DashboardWorker")},
            "events": {"type": "array", "items": _ref("DashboardEvent"),
                       "description": "Recent supervisor events of every worker, newest "
                                      "first."},
            "traffic": _nullable(_ref("DashboardTraffic")),
        }, "Every live worker process of this server, folded."),
        "DashboardWorker": _object({
            "pid": _PID, "started_at": _UNIX_TIME, "updated_at": _UNIX_TIME,
            "process": _ref("DashboardProcess"),
            "requests_per_second": {**_OPTIONAL_NUMBER,
                                    "description": "Over the last 5 s; null without metrics."},
            "tree": _nullable(_ref("DashboardTreeNode")),
            "tree_stale": {"type": "boolean",
                           "description": "The root did not answer in time: its last tree."},
            "pool": _ref("DashboardPool"),
            "caches": {"type": "array", "items": _ref("DashboardCache")},
            "listener": _nullable(_ref("DashboardListener")),
        }, "One gunicorn worker process."),
        "DashboardProcess": _object({
            "rss_bytes": _count(), "cpu_seconds": {"type": "number", "minimum": 0},
            "cpu_percent": {**_OPTIONAL_NUMBER,
                            "description": "Since the previous snapshot (a second)."},
            "threads": _count(),
        }, "The worker process's resources."),
        "DashboardTreeNode": _object({
            "id": {"type": "string", "description": "Child id (the root: its name)."},
            "supervisor": {**_OPTIONAL_STRING,
                           "description": "Name of its supervisor; null for the root."},
            "actor": {"type": "string", "description": "Actor class."},
            "type": {"type": "string", "enum": ["worker", "supervisor"]},
            "restart": {**_OPTIONAL_STRING, "description": "`permanent`, `transient` or "
                                                           "`temporary`; null for the root."},
            "shutdown": {**_OPTIONAL_STRING, "description": "Seconds, `brutal_kill` or "
                                                            "`infinity`; null for the root."},
            "state": {"type": "string",
                      "enum": ["running", "restarting", "backing_off", "stopped", "given_up"]},
            "restarts": _count("Times it started again in this worker process."),
            "mailbox": _count("Messages waiting in its inbox."),
            "last_exit": _nullable(_ref("DashboardExit")),
            "name": {"type": "string", "description": "A supervisor's name."},
            "strategy": {"type": "string", "enum": ["one_for_one", "one_for_all",
                                                    "rest_for_one"]},
            "intensity": _count("Restarts a supervisor allows within `period`."),
            "period": {"type": "number", "minimum": 0},
            "recent_restarts": _count("Restarts within the current period."),
            "children": {"type": "array", "items": _ref("DashboardTreeNode")},
        } , "A supervisor or a child, as its supervisor's `describe` reports it (the "
            "children of `which_children`). Only supervisors carry `name`, `strategy`, "
            "`intensity`, `period`, `recent_restarts` and `children`.")
        | {"required": ["id", "supervisor", "actor", "type", "restart", "shutdown", "state",
                        "restarts", "mailbox", "last_exit"]},
        "DashboardExit": _object({
            "reason": _OPTIONAL_STRING, "error": _OPTIONAL_STRING, "at": _UNIX_TIME,
        }, "How and when a child last ended."),
        "DashboardPool": _object({
            "members": _count(), "idle": _count(), "busy": _count(), "waiting": _count(),
            "checkouts": _count(), "timeouts": _count(), "shed": _count(),
            "shedding": {"type": "boolean"},
            "waits_last_minute": _count(),
            "wait_p50_ms": _OPTIONAL_NUMBER, "wait_p99_ms": _OPTIONAL_NUMBER,
        }, "The DbWorkers' checkout pool; wait quantiles over the last minute."),
        "DashboardCache": _object({
            "name": {"type": "string", "enum": ["users", "tokens"]},
            "entries": _count(), "hits": _count(), "misses": _count(), "bypasses": _count(),
            "hit_ratio": {**_OPTIONAL_NUMBER, "minimum": 0, "maximum": 1},
            "evictions": _ref("DashboardEvictions"),
            "usable": {"type": "boolean"}, "coherent": {"type": "boolean"},
        }, "A cache's counters since its actor started."),
        "DashboardEvictions": _object({
            "capacity": _count(), "expired": _count(), "invalidated": _count(),
            "flush": _count(),
        }, "Entries removed, by reason."),
        "DashboardListener": _object({
            "running": {"type": "boolean"}, "connected": {"type": "boolean"},
            "notifications": _OPTIONAL_COUNT,
            "last_notification_at": _OPTIONAL_NUMBER,
            "connected_at": _OPTIONAL_NUMBER,
        }, "The change listener."),
        "DashboardEvent": _object({
            "at": _UNIX_TIME, "pid": _PID,
            "kind": {"type": "string", "enum": ["start", "exit", "restart", "give_up",
                                                "escalate"]},
            "supervisor": {"type": "string"}, "child": _OPTIONAL_STRING,
            "reason": _OPTIONAL_STRING, "error": _OPTIONAL_STRING,
        }, "A supervisor event of a worker process."),
        "DashboardTraffic": _object({
            "step": {"type": "integer", "format": "int32", "minimum": 1},
            "start": _UNIX_TIME,
            "points": {"type": "integer", "format": "int32", "minimum": 1},
            "routes": {"type": "array", "items": _ref("DashboardRoute")},
        }, "Per-route requests and latency of every worker: `points` slots of `step` "
           "seconds from `start`."),
        "DashboardRoute": _object({
            "route": {"type": "string"},
            "requests": {"type": "array", "items": _count()},
            "p50_ms": {"type": "array", "items": _OPTIONAL_NUMBER},
            "p99_ms": {"type": "array", "items": _OPTIONAL_NUMBER},
        }, "One route's requests and latency quantiles per slot."),
        "DashboardKill": _object({
            "pid": _PID,
            "supervisor": _string(ACTOR_ID_PATTERN, "Name of the child's supervisor."),
            "child": _string(ACTOR_ID_PATTERN, "The child's id."),
        }, "Which actor to crash: a child of a supervisor in a worker process."),
        "DashboardKilled": _object({
            "pid": _PID, "supervisor": {"type": "string"}, "killed": {"type": "string"},
        }, "The actor crashed; its supervisor applies its restart policy."),
    }


def _string(pattern: str, description: str | None = None, **limits: int) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string", "pattern": pattern, **limits}
    if description:
        schema["description"] = description
    return schema


def openapi_document() -> dict[str, Any]:
    """The service's OpenAPI 3.1 description, as a JSON-ready dict."""
    user_id = {
        "name": "user_id",
        "in": "path",
        "required": True,
        "schema": {**_ID, "maximum": MAX_ID},
        "example": 2,
    }
    if_match = {
        "name": "If-Match",
        "in": "header",
        "required": False,
        "description": "Apply only if the user's current ETag is listed, or exists (`*`).",
        "schema": {"type": "string"},
        "example": _EXAMPLE_ETAG,
    }
    if_none_match = {
        "name": "If-None-Match",
        "in": "header",
        "required": False,
        "description": "Answer 304 without a body when the current ETag is listed.",
        "schema": {"type": "string"},
        "example": _EXAMPLE_ETAG,
    }
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {
            "title": "usermgmt",
            "version": "0.1.0",
            "description": _API_DESCRIPTION,
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        # Relative: the API is served where this document is.
        "servers": [{"url": "/", "description": "The server that serves this document."}],
        "tags": [
            {"name": "users", "description": "Users: create, read, list, replace, patch, "
                                             "delete (admins: all; members: their own)."},
            {"name": "sessions", "description": "Logging in and out: bearer tokens."},
            {"name": "operations", "description": "Probes, metrics and this document, for "
                                                  "operators and tools; no token needed."},
            {"name": "dashboard", "description": "The live view of every worker's "
                                                 "supervision tree (admins only)."},
        ],
        "security": [{"bearerAuth": []}],
        "paths": {
            "/api/users": {
                "get": {
                    "operationId": "listUsers",
                    "tags": ["users"],
                    "summary": "List users by id, one page at a time (keyset pagination).",
                    "description": "Admin only. Pages follow ascending ids; pass the previous "
                                   "page's `next` as `after` (or follow the `Link` header) "
                                   "until `next` is null. `email` finds one user, whatever "
                                   "the case. The page's ETag changes whenever one of its "
                                   "users does: send it back in `If-None-Match` for a 304.",
                    "parameters": [
                        {"name": "limit", "in": "query", "required": False,
                         "schema": {"type": "integer", "format": "int32", "minimum": 1,
                                    "maximum": MAX_LIMIT,
                                    "default": DEFAULT_LIMIT},
                         "example": 10},
                        {"name": "after", "in": "query", "required": False,
                         "description": "The opaque `next` cursor of the previous page.",
                         "schema": {"type": "string", "pattern": CURSOR_PATTERN},
                         "example": _EXAMPLE_CURSOR},
                        {"name": "email", "in": "query", "required": False,
                         "description": "Only the user with this email (case-insensitive).",
                         "schema": {"$ref": "#/components/schemas/Email"},
                         "example": "ADA@example.com"},
                        if_none_match,
                    ],
                    "responses": {
                        "200": {
                            "description": "A page of users.",
                            "headers": {
                                **_ETAG, **_CACHE,
                                "Link": {"description": 'RFC 8288 link with rel="next" when '
                                         "another page follows.",
                                         "schema": {"type": "string"}},
                            },
                            "content": _json("UserPage", {"data": [_EXAMPLE_USER],
                                                          "next": _EXAMPLE_CURSOR}),
                        },
                        "304": {"description": "Not modified.", "headers": {**_ETAG, **_CACHE}},
                        **_errors(401, 403, 405, 422, 503),
                    },
                },
                "post": {
                    "operationId": "createUser",
                    "tags": ["users"],
                    "summary": "Create a user (admin only).",
                    "description": "`role` defaults to `member`. Without a `password` the "
                                   "user exists but cannot log in until an admin sets one. "
                                   "The answer's ETag guards a later update (`If-Match`).",
                    "requestBody": {"required": True, "content": _json("UserInput", {
                        "name": "Ada Lovelace", "email": "ada@example.com",
                        "password": "analytical engine"})},
                    "responses": {
                        "201": {
                            "description": "Created.",
                            "headers": {
                                **_ETAG,
                                "Location": {"schema": {"type": "string"},
                                             "description": "/api/users/{id} of the new user."},
                            },
                            "content": _json("User", _EXAMPLE_USER),
                            "links": _USER_LINKS,
                        },
                        **_errors(401, 403, 405, 409, 413, 415, 422, 503),
                    },
                },
            },
            "/api/users/{user_id}": {
                "parameters": [user_id],
                "get": {
                    "operationId": "getUser",
                    "tags": ["users"],
                    "summary": "Read one user (a member: only itself; others are 404).",
                    "description": "Answered from the server's cache when it can be. Send "
                                   "the ETag of a copy you hold in `If-None-Match`: 304 "
                                   "without a body while it is still current.",
                    "parameters": [if_none_match],
                    "responses": {
                        "200": {"description": "The user.", "headers": {**_ETAG, **_CACHE},
                                "content": _json("User", _EXAMPLE_USER)},
                        "304": {"description": "Not modified.", "headers": {**_ETAG, **_CACHE}},
                        **_errors(401, 404, 405, 503),
                    },
                },
                "put": {
                    "operationId": "replaceUser",
                    "tags": ["users"],
                    "summary": "Replace a user's name and email; role and password optional.",
                    "description": "`name` and `email` are required; `role` (admins only) and "
                                   "`password` stay as they are when absent. Send the ETag "
                                   "you read in `If-Match` so that a concurrent change is "
                                   "not overwritten (412). Changing your own password needs "
                                   "`current_password`.",
                    "parameters": [if_match],
                    "requestBody": {"required": True, "content": _json("UserReplace", {
                        "name": "Ada King", "email": "ada@example.org"})},
                    "responses": {
                        "200": {"description": "The updated user.", "headers": _ETAG,
                                "content": _json("User", _EXAMPLE_USER)},
                        **_errors(401, 403, 404, 405, 409, 412, 413, 415, 422, 429, 503),
                    },
                },
                "patch": {
                    "operationId": "patchUser",
                    "tags": ["users"],
                    "summary": "Change some of a user's fields (JSON merge patch, RFC 7396).",
                    "description": "Absent fields stay as they are; no field may be null. "
                                   "`If-Match` and `current_password` as for a replace.",
                    "parameters": [if_match],
                    # One media type: a generator offered two with one schema cannot
                    # tell them apart (an optional body, sent as the wrong type).
                    # The server also takes application/json, as the description says.
                    "requestBody": {
                        "required": True,
                        "description": "A JSON merge patch. `application/json` is accepted "
                                       "too, with the same meaning.",
                        "content": {"application/merge-patch+json": {
                            "schema": {"$ref": "#/components/schemas/UserPatch"},
                            "example": {"name": "Countess of Lovelace", "role": "admin"}}},
                    },
                    "responses": {
                        "200": {"description": "The updated user.", "headers": _ETAG,
                                "content": _json("User", _EXAMPLE_USER)},
                        **_errors(401, 403, 404, 405, 409, 412, 413, 415, 422, 429, 503),
                    },
                },
                "delete": {
                    "operationId": "deleteUser",
                    "tags": ["users"],
                    "summary": "Delete a user and its sessions (admin only, not itself).",
                    "description": "Every session of the user ends with it, on every "
                                   "server. `If-Match` deletes only the version you read.",
                    "parameters": [if_match],
                    "responses": {
                        "204": {"description": "Deleted."},
                        **_errors(401, 403, 404, 405, 409, 412, 503),
                    },
                },
            },
            "/api/sessions": {
                "post": {
                    "operationId": "login",
                    "tags": ["sessions"],
                    "summary": "Log in: exchange an email and a password for a bearer token.",
                    "description": "A wrong email and a wrong password answer the same 401. "
                                   "Password checks are limited per account and per client "
                                   "address, or per account and address once the account "
                                   "has logged in from there; successful logins per account "
                                   "(429 with Retry-After). A login past the session cap "
                                   "ends the user's oldest sessions. The token lives for the "
                                   "server's session TTL, until logout or a password change.",
                    "security": _ANONYMOUS,
                    "requestBody": {"required": True, "content": _json("Login", {
                        "email": "admin@example.com", "password": "correct horse battery"})},
                    "responses": {
                        "201": {
                            "description": "Logged in; send the token as "
                                           "`Authorization: Bearer <token>`.",
                            "headers": {
                                **_NO_STORE,
                                "Location": {"schema": {"type": "string"},
                                             "description": "/api/sessions/current"},
                            },
                            "content": _json("NewSession", {
                                "token": "tQ0xv8Y3m2Wm5v0bZ2r9sK4pJ7cL1nE6aH8dF3gU5yI",
                                "expires_at": _EXAMPLE_EXPIRY, "user_id": 1}),
                        },
                        **_errors(401, 405, 413, 415, 422, 429, 503),
                    },
                },
            },
            "/api/sessions/current": {
                "get": {
                    "operationId": "getCurrentSession",
                    "tags": ["sessions"],
                    "summary": "Who the presented token belongs to, and until when.",
                    "description": "The user id, role and expiry of the bearer token sent.",
                    "responses": {
                        "200": {"description": "The session.", "headers": _NO_STORE,
                                "content": _json("Session", {
                            "user_id": 1, "role": "admin", "expires_at": _EXAMPLE_EXPIRY})},
                        **_errors(401, 405, 503),
                    },
                },
                "delete": {
                    "operationId": "logout",
                    "tags": ["sessions"],
                    "summary": "Revoke the presented token, on every server.",
                    "description": "Other servers refuse the token within milliseconds "
                                   "(their caches are told by the database).",
                    "responses": {
                        "204": {"description": "Revoked."},
                        **_errors(401, 405, 503),
                    },
                },
            },
            "/api/dashboard": {
                "get": {
                    "operationId": "getDashboard",
                    "tags": ["dashboard"],
                    "summary": "Every live worker process: its supervision tree, pool, caches, "
                               "listener, recent events and traffic (admin only).",
                    "description": "What the page at /dashboard polls about once a second. "
                                   "Each worker publishes a snapshot of itself every second "
                                   "and after every supervisor event; the answering worker "
                                   "folds its own with every other live worker's.",
                    "responses": {
                        "200": {"description": "The dashboard's data.", "headers": {
                            "Cache-Control": {"description": "`no-store`.",
                                              "schema": {"type": "string"}}},
                                "content": _json("Dashboard", _EXAMPLE_DASHBOARD)},
                        **_errors(401, 403, 405),
                    },
                },
            },
            "/api/dashboard/kill": {
                "post": {
                    "operationId": "killActor",
                    "tags": ["dashboard"],
                    "summary": "Crash one supervised actor of any worker process (admin only, "
                               "USERMGMT_CHAOS=1).",
                    "description": "A crash, not a stop: its supervisor sees an abnormal exit "
                                   "and restarts it by its policy. Another worker process is "
                                   "asked through the shared directory and has 2 s to answer. "
                                   "Without USERMGMT_CHAOS=1 an admin gets 404 and nothing "
                                   "is killed.",
                    "requestBody": {"required": True, "content": _json("DashboardKill", {
                        "pid": 4242, "supervisor": "db", "child": "db_worker_1"})},
                    "responses": {
                        "200": {"description": "Crashed.", "content": _json(
                            "DashboardKilled", {"pid": 4242, "supervisor": "db",
                                                "killed": "db_worker_1"})},
                        **_errors(401, 403, 405, 413, 415),
                        "404": _problem_response(
                            "Kills are off: the server runs without USERMGMT_CHAOS=1.",
                            _problem(404, "Not Found", "kills are off: the server runs "
                                     "without USERMGMT_CHAOS=1", "not-found")),
                        "409": _problem_response(
                            "No such running actor or live worker process, or the worker "
                            "did not answer within 2 s.",
                            _problem(409, "Conflict", "'db_worker_9' of 'db' is not running "
                                     "in worker 4242", "no-victim")),
                        "503": _problem_response(
                            "Too many kill commands are waiting for that worker.",
                            _problem(503, "Service Unavailable",
                                     "worker 4242 has 8 commands waiting", "busy"),
                            _RETRY_AFTER),
                    },
                },
            },
            "/livez": {
                "get": {
                    "operationId": "liveness",
                    "tags": ["operations"],
                    "summary": "The process serves HTTP (no dependency is checked).",
                    "description": "For an orchestrator's liveness probe: a database "
                                   "outage must not get every worker restarted.",
                    "security": _ANONYMOUS,
                    "responses": {"200": {"description": "Alive.",
                                          "content": _json("Liveness", {"status": "ok"})},
                                  **_errors(405)},
                },
            },
            "/readyz": {
                "get": {
                    "operationId": "readiness",
                    "tags": ["operations"],
                    "summary": "Ready: a DbWorker reaches the database, the supervision tree "
                               "is up, and the worker is not draining.",
                    "description": "For a load balancer or a readiness probe: 503 names "
                                   "each failed check; a worker told to stop turns "
                                   "not-ready first.",
                    "security": _ANONYMOUS,
                    "responses": {
                        "200": {"description": "Ready.", "content": _json("Readiness", {
                            "status": "ready",
                            "checks": ["draining", "supervision_tree", "database"]})},
                        "503": {"$ref": "#/components/responses/NotReady"},
                        **_errors(405),
                    },
                },
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "tags": ["operations"],
                    "summary": "Prometheus text exposition of every worker process.",
                    "description": "With USERMGMT_METRICS_BIND set, answered only on that "
                                   "address (404 on the API's).",
                    "security": _ANONYMOUS,
                    "responses": {"200": {"description": "Metrics.", "content": {
                        "text/plain": {"schema": {"type": "string"}, "example": _METRICS_EXAMPLE}}},
                        **_errors(404, 405)},
                },
            },
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "tags": ["operations"],
                    "summary": "This document.",
                    "description": "The OpenAPI 3.1 description of this API, for "
                                   "documentation and client generators.",
                    "security": _ANONYMOUS,
                    "responses": {"200": {"description": "The OpenAPI document.",
                                          "content": _json("OpenApiDocument", {
                                              "openapi": "3.1.0",
                                              "info": {"title": "usermgmt", "version": "0.1.0"},
                                              "paths": {}})},
                                  **_errors(405)},
                },
            },
        },
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An opaque token from POST /api/sessions (RFC 6750).",
                },
            },
            "schemas": {
                **_dashboard_schemas(),
                "User": {
                    "type": "object",
                    "required": ["id", "name", "email", "role", "version", "inserted_at",
                                 "updated_at"],
                    "additionalProperties": False,
                    "properties": {
                        "id": _ID,
                        "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH},
                        "email": {"type": "string", "maxLength": MAX_EMAIL_LENGTH},
                        "role": {"$ref": "#/components/schemas/Role"},
                        "version": {"type": "integer", "format": "int64", "minimum": 1,
                                    "description": "Increases on every change."},
                        "inserted_at": {"type": "string", "format": "date-time"},
                        "updated_at": {"type": "string", "format": "date-time"},
                    },
                },
                "Role": {"type": "string", "enum": list(ROLES),
                         "description": "`admin`: everything; `member`: its own record."},
                "Name": _string(NAME_PATTERN, "Normalised to Unicode NFC, then trimmed of "
                                              "whitespace: 1 to 200 characters that begin and "
                                              "end with a visible character (not a blank such "
                                              "as U+3164), with no control or format character "
                                              "(Unicode Cc, Cf; the pattern lists those of the "
                                              "BMP, the few astral ones are refused too)."),
                "Email": {"type": "string", "format": "email", "maxLength": MAX_EMAIL_LENGTH,
                          "pattern": EMAIL_PATTERN,
                          "description": "Unique, compared case-insensitively. No control or "
                                         "format character (Unicode Cc, Cf: the pattern lists "
                                         "those of the BMP, the few astral ones are refused "
                                         "too)."},
                "Password": _string(NO_NUL_PATTERN, "Stored only as an Argon2id hash; never "
                                                    "returned. Changing it ends every other "
                                                    "session of the user.",
                                    minLength=MIN_PASSWORD_LENGTH,
                                    maxLength=MAX_PASSWORD_LENGTH),
                "CurrentPassword": _string(
                    NO_NUL_PATTERN, "The user's password now; only with `password` or `email`. "
                                    "Required to change your own password or email (403 "
                                    "without it; sending your own email unchanged needs "
                                    "none); checked (and rate limited) whenever given.",
                    minLength=1, maxLength=MAX_PASSWORD_LENGTH),
                "UserInput": {
                    "type": "object",
                    "required": ["name", "email"],
                    "additionalProperties": False,
                    "description": "Admin only. Without a password the user cannot log in.",
                    "properties": {
                        "name": {"$ref": "#/components/schemas/Name"},
                        "email": {"$ref": "#/components/schemas/Email"},
                        "role": {"$ref": "#/components/schemas/Role"},
                        "password": {"$ref": "#/components/schemas/Password"},
                    },
                },
                "UserReplace": {
                    "type": "object",
                    "required": ["name", "email"],
                    "additionalProperties": False,
                    "description": "`role` only from an admin (and not its own); absent "
                                   "optional fields stay as they are.",
                    "properties": {
                        "name": {"$ref": "#/components/schemas/Name"},
                        "email": {"$ref": "#/components/schemas/Email"},
                        "role": {"$ref": "#/components/schemas/Role"},
                        "password": {"$ref": "#/components/schemas/Password"},
                        "current_password": {"$ref": "#/components/schemas/CurrentPassword"},
                    },
                },
                "UserPatch": {
                    "type": "object",
                    "additionalProperties": False,
                    "description": "`role` only from an admin (and not its own).",
                    "properties": {
                        "name": {"$ref": "#/components/schemas/Name"},
                        "email": {"$ref": "#/components/schemas/Email"},
                        "role": {"$ref": "#/components/schemas/Role"},
                        "password": {"$ref": "#/components/schemas/Password"},
                        "current_password": {"$ref": "#/components/schemas/CurrentPassword"},
                    },
                    "dependentSchemas": {"current_password": {
                        "description": "`current_password` comes with a new `password` "
                                       "or a new `email`.",
                        "anyOf": [
                            {"required": ["password"], "properties": {
                                "password": {"$ref": "#/components/schemas/Password"}}},
                            {"required": ["email"], "properties": {
                                "email": {"$ref": "#/components/schemas/Email"}}},
                        ]}},
                },
                "Login": {
                    "type": "object",
                    "required": ["email", "password"],
                    "additionalProperties": False,
                    "properties": {
                        "email": _string(LOGIN_EMAIL_PATTERN, minLength=1,
                                         maxLength=MAX_EMAIL_LENGTH),
                        "password": _string(NO_NUL_PATTERN, minLength=1,
                                            maxLength=MAX_PASSWORD_LENGTH),
                    },
                },
                "NewSession": {
                    "type": "object",
                    "required": ["token", "expires_at", "user_id"],
                    "additionalProperties": False,
                    "properties": {
                        "token": {"type": "string", "minLength": 43,
                                  "description": "Opaque; shown once, stored only as SHA-256."},
                        "expires_at": {"type": "string", "format": "date-time"},
                        "user_id": _ID,
                    },
                },
                "Session": {
                    "type": "object",
                    "required": ["user_id", "role", "expires_at"],
                    "additionalProperties": False,
                    "properties": {
                        "user_id": _ID,
                        "role": {"$ref": "#/components/schemas/Role"},
                        "expires_at": {"type": "string", "format": "date-time"},
                    },
                },
                "UserPage": {
                    "type": "object",
                    "required": ["data", "next"],
                    "additionalProperties": False,
                    "properties": {
                        "data": {"type": "array", "items": {"$ref": "#/components/schemas/User"}},
                        "next": {"type": ["string", "null"],
                                 "description": "Cursor for the next page, or null."},
                    },
                },
                "Liveness": {
                    "type": "object",
                    "required": ["status"],
                    "additionalProperties": False,
                    "properties": {"status": {"const": "ok"}},
                },
                "Readiness": {
                    "type": "object",
                    "required": ["status", "checks"],
                    "additionalProperties": False,
                    "properties": {
                        "status": {"const": "ready"},
                        "checks": {"type": "array", "items": {"type": "string"},
                                   "description": "The checks that passed."},
                    },
                },
                "OpenApiDocument": {
                    "type": "object",
                    "required": ["openapi", "info", "paths"],
                    "description": "An OpenAPI 3.1 document (this one).",
                    "properties": {
                        "openapi": {"type": "string"},
                        "info": {"type": "object"},
                        "paths": {"type": "object"},
                    },
                },
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string",
                                 "pattern": "^(about:blank|urn:usermgmt:problem:[a-z-]+)$",
                                 "description": "`urn:usermgmt:problem:<name>` (e.g. "
                                                "`validation`, `not-found`, "
                                                "`precondition-failed`), or `about:blank` "
                                                "when the status says it all."},
                        "title": {"type": "string"},
                        "status": {"type": "integer", "format": "int32", "minimum": 400,
                                   "maximum": 599},
                        "detail": {"type": "string"},
                        "instance": {"type": "string",
                                     "pattern": f"^urn:usermgmt:request:{_ID_CHARS}$",
                                     "description": "The request's X-Request-ID, as a URN."},
                        "errors": {"type": "array", "maxItems": MAX_ERRORS,
                                   "description": f"The first {MAX_ERRORS} problems found.",
                                   "items": {"$ref": "#/components/schemas/FieldError"}},
                        "errors_total": {"type": "integer", "format": "int32",
                                         "minimum": MAX_ERRORS + 1,
                                         "description": "How many problems were found, when "
                                                        "`errors` could not list them all."},
                    },
                },
                "FieldError": {
                    "type": "object",
                    "required": ["field", "message"],
                    "description": "One thing wrong with the request: `field` is a body "
                                   "field, a query parameter or a header (empty: the whole "
                                   "body).",
                    "properties": {"field": {"type": "string"},
                                   "message": {"type": "string"}},
                },
            },
            "parameters": {
                "RequestId": {
                    "name": "X-Request-ID",
                    "in": "header",
                    "required": False,
                    "description": "Your id for this request, echoed in the answer's "
                                   "X-Request-ID, in a problem's `instance` and in the "
                                   "server's logs. Kept when it is 1 to 128 of `A-Z a-z 0-9 "
                                   ". _ ~ : @ / + = -`, else replaced by one the server "
                                   "makes; control characters or bytes that are not UTF-8 "
                                   "are refused (400).",
                    "schema": {"type": "string", "pattern": r"^[\t\x20-\x7e]*$"},
                    "example": _EXAMPLE_REQUEST_ID,
                },
            },
            "headers": {
                "RequestId": {"description": "The request's id: the X-Request-ID sent, or one "
                                             "the server made.",
                              "schema": {"type": "string", "pattern": f"^{_ID_CHARS}$"}},
                "ETag": {"description": "Strong entity-tag derived from the row version(s).",
                         "schema": {"type": "string"}},
                "CacheControl": {"description": "`private, no-cache`.",
                                 "schema": {"type": "string"}},
                "RetryAfter": {"description": "Seconds to wait before retrying.",
                               "schema": {"type": "integer", "format": "int32",
                                          "minimum": 0}},
                "WWWAuthenticate": {"description": 'RFC 6750 challenge: `Bearer realm="usermgmt"`'
                                                   ', with `error="invalid_token"` for a bad '
                                                   "token.",
                                    "schema": {"type": "string"}},
            },
            "responses": {
                "E400": _problem_response(
                    "Malformed request: a request line or header that cannot be parsed; NUL, "
                    "control characters or invalid UTF-8 in the query string, X-Request-ID or "
                    "Authorization; an empty, malformed or too deeply nested JSON body.",
                    _problem(400, "Bad Request", "the request body is empty; a JSON object is "
                             "required", "malformed-json")),
                "E401": _problem_response(
                    "No, unknown, expired or revoked bearer token (on login: wrong email or "
                    "password).",
                    _problem(401, "Unauthorized", "the token is unknown, expired or revoked",
                             "unauthenticated"),
                    {"WWW-Authenticate": {"$ref": "#/components/headers/WWWAuthenticate"}}),
                "E403": _problem_response(
                    "The token's user may not do this (or gave a wrong current_password, or "
                    "none to change its own password or email).",
                    _problem(403, "Forbidden", "only an admin may do this", "forbidden")),
                "E404": _problem_response(
                    "No such user (or, for a member, not its own) or route.",
                    _problem(404, "Not Found", "user 42 does not exist", "not-found")),
                "E405": _problem_response(
                    "Method not allowed; see the Allow header.",
                    _problem(405, "405 Method Not Allowed", "405 Method Not Allowed"),
                    {"Allow": {"description": "The methods the route answers.",
                               "schema": {"type": "string"},
                               "example": "DELETE, GET, OPTIONS, PATCH, PUT"}}),
                "E409": _problem_response(
                    "Another user has this email (`duplicate-email`), or the change would "
                    "leave no admin (`last-admin`).",
                    _problem(409, "Conflict", "email ada@example.com is already taken",
                             "duplicate-email",
                             [{"field": "email", "message": "is already taken"}])),
                "E412": _problem_response(
                    "If-Match did not match the current ETag.",
                    _problem(412, "Precondition Failed", "user 2 has changed since (version 3)",
                             "precondition-failed")),
                "E413": _problem_response(
                    "Body larger than 64 KiB.",
                    _problem(413, "Content Too Large", "the body must be at most 65536 bytes",
                             "body-too-large")),
                "E408": _problem_response(
                    "The request line and headers, or the body, did not arrive in time "
                    "(USERMGMT_HEADER_TIMEOUT, USERMGMT_BODY_TIMEOUT); the connection is closed.",
                    _problem(408, "Request Timeout", "the request body took too long to arrive",
                             "request-timeout")),
                "E414": _problem_response(
                    "Request line over 4094 bytes; the connection is closed.",
                    _problem(414, "URI Too Long", "the request line is too long",
                             "request-line-too-long")),
                "E415": _problem_response(
                    "Unsupported body media type.",
                    _problem(415, "Unsupported Media Type", "the body must be application/json "
                             "(UTF-8)", "unsupported-media-type")),
                "E422": _problem_response(
                    "Validation failed; `errors` lists each field (unknown fields and fields "
                    "the caller may not set included) and each query parameter the operation "
                    "does not define or that was given twice.",
                    _problem(422, "Unprocessable Content", "the request is not valid; see "
                             "errors", "validation",
                             [{"field": "email", "message": "must be a valid email address"},
                              {"field": "nickname", "message": "unknown field"}])),
                "E429": _problem_response(
                    "Too many password checks for this account, address or pair of them, "
                    "or too many logins for this account.",
                    _problem(429, "Too Many Requests", "too many failed logins; try again "
                             "later", "rate-limited"),
                    _RETRY_AFTER),
                "E431": _problem_response(
                    "More than 50 header fields, or one over 4096 bytes; the connection is "
                    "closed.",
                    _problem(431, "Request Header Fields Too Large", "too many header fields",
                             "header-fields-too-large")),
                "E503": _problem_response(
                    "No database worker free in time, or the database is unreachable.",
                    _problem(503, "Service Unavailable", "no database worker is free; retry "
                             "shortly", "unavailable"),
                    _RETRY_AFTER),
                "NotReady": _problem_response(
                    "Not ready; `errors` names each failed check.",
                    _problem(503, "Service Unavailable", "not ready: database", "not-ready",
                             [{"field": "database", "message": "no DbWorker is connected"}]),
                    _RETRY_AFTER),
            },
        },
    }
    _add_request_id(document)
    return document


def _add_request_id(document: dict[str, Any]) -> None:
    """``X-Request-ID``: a parameter of every path, a header of every response."""
    parameter = {"$ref": "#/components/parameters/RequestId"}
    header = {"X-Request-ID": {"$ref": "#/components/headers/RequestId"}}
    responses: list[dict[str, Any]] = list(document["components"]["responses"].values())
    for item in document["paths"].values():
        item["parameters"] = [*item.get("parameters", []), parameter]
        for key, operation in item.items():
            if key != "parameters":
                responses.extend(operation["responses"].values())
    for response in responses:
        if "$ref" not in response:
            # A copy: the headers dicts above are shared between responses.
            response["headers"] = {**response.get("headers", {}), **header}


def main() -> None:
    """Print the document, as ``/openapi.json`` serves it: ``python -m app.openapi``."""
    sys.stdout.write(json.dumps(openapi_document(), indent=2) + "\n")


if __name__ == "__main__":
    main()
