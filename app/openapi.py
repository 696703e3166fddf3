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
    CURSOR_PATTERN,
    DEFAULT_LIMIT,
    EMAIL_PATTERN,
    LOGIN_EMAIL_PATTERN,
    MAX_EMAIL_LENGTH,
    MAX_ID,
    MAX_LIMIT,
    MAX_NAME_LENGTH,
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
usermgmt_http_requests_total{method="GET",route="/api/users/{user_id:int(min=1)}",status="200"} 42.0
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
                        "anyOf": [{"required": ["password"]}, {"required": ["email"]}]}},
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
