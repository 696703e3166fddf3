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
"""

from __future__ import annotations

from typing import Any

from app.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from app.problems import MAX_ERRORS
from app.validation import (
    CURSOR_PATTERN,
    DEFAULT_LIMIT,
    EMAIL_PATTERN,
    LOGIN_EMAIL_PATTERN,
    MAX_EMAIL_LENGTH,
    MAX_LIMIT,
    MAX_NAME_LENGTH,
    NAME_PATTERN,
    NO_NUL_PATTERN,
    ROLES,
)

__all__ = ["openapi_document"]


def _problem_response(description: str, headers: dict[str, Any] | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": description,
        "content": {
            "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}},
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
_ANONYMOUS: list[dict[str, list[str]]] = []
_USER_LINKS = {
    name: {"operationId": operation, "parameters": {"user_id": "$response.body#/id"}}
    for name, operation in (("GetUser", "getUser"), ("ReplaceUser", "replaceUser"),
                            ("PatchUser", "patchUser"), ("DeleteUser", "deleteUser"))
}


# Any request can be refused before routing: hostile headers or query
# strings by app.middleware (400), an oversized request line (414) or
# header section (431), or a header gunicorn cannot parse (400), by gunicorn.
_ANY_REQUEST = (400, 414, 431)


def _json(schema: str) -> dict[str, Any]:
    """A JSON body of one of the components' schemas."""
    return {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}}


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"$ref": f"#/components/responses/E{s}"}
            for s in sorted({*_ANY_REQUEST, *statuses})}


def _gunicorn_response(description: str) -> dict[str, Any]:
    return {"description": description + " Answered by gunicorn, as a small HTML page.",
            "content": {"text/html": {"schema": {"type": "string"}}}}


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
        "schema": {"type": "integer", "minimum": 1, "maximum": 2**63 - 1},
    }
    if_match = {
        "name": "If-Match",
        "in": "header",
        "required": False,
        "description": "Apply only if the user's current ETag is listed, or exists (`*`).",
        "schema": {"type": "string"},
    }
    if_none_match = {
        "name": "If-None-Match",
        "in": "header",
        "required": False,
        "description": "Answer 304 without a body when the current ETag is listed.",
        "schema": {"type": "string"},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "usermgmt",
            "version": "0.1.0",
            "description": "User management API. Errors are RFC 9457 problem details. "
                           "Log in with POST /api/sessions and send the token as "
                           "`Authorization: Bearer <token>`.",
        },
        "security": [{"bearerAuth": []}],
        "paths": {
            "/api/users": {
                "get": {
                    "operationId": "listUsers",
                    "summary": "List users by id, one page at a time (keyset pagination).",
                    "parameters": [
                        {"name": "limit", "in": "query", "required": False,
                         "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT,
                                    "default": DEFAULT_LIMIT}},
                        {"name": "after", "in": "query", "required": False,
                         "description": "The opaque `next` cursor of the previous page.",
                         "schema": {"type": "string", "pattern": CURSOR_PATTERN}},
                        {"name": "email", "in": "query", "required": False,
                         "description": "Only the user with this email (case-insensitive).",
                         "schema": {"$ref": "#/components/schemas/Email"}},
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
                            "content": _json("UserPage"),
                        },
                        "304": {"description": "Not modified.", "headers": {**_ETAG, **_CACHE}},
                        **_errors(401, 403, 405, 422, 503),
                    },
                },
                "post": {
                    "operationId": "createUser",
                    "summary": "Create a user (admin only).",
                    "requestBody": {"required": True, "content": _json("UserInput")},
                    "responses": {
                        "201": {
                            "description": "Created.",
                            "headers": {
                                **_ETAG,
                                "Location": {"schema": {"type": "string"},
                                             "description": "/api/users/{id} of the new user."},
                            },
                            "content": _json("User"),
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
                    "summary": "Read one user (a member: only itself; others are 404).",
                    "parameters": [if_none_match],
                    "responses": {
                        "200": {"description": "The user.", "headers": {**_ETAG, **_CACHE},
                                "content": _json("User")},
                        "304": {"description": "Not modified.", "headers": {**_ETAG, **_CACHE}},
                        **_errors(401, 404, 405, 503),
                    },
                },
                "put": {
                    "operationId": "replaceUser",
                    "summary": "Replace a user's name and email; role and password optional.",
                    "parameters": [if_match],
                    "requestBody": {"required": True, "content": _json("UserReplace")},
                    "responses": {
                        "200": {"description": "The updated user.", "headers": _ETAG,
                                "content": _json("User")},
                        **_errors(401, 403, 404, 405, 409, 412, 413, 415, 422, 429, 503),
                    },
                },
                "patch": {
                    "operationId": "patchUser",
                    "summary": "Change some of a user's fields (JSON merge patch, RFC 7396).",
                    "parameters": [if_match],
                    "requestBody": {"required": True, "content": {
                        "application/merge-patch+json": {
                            "schema": {"$ref": "#/components/schemas/UserPatch"}},
                        "application/json": {"schema": {"$ref": "#/components/schemas/UserPatch"}},
                    }},
                    "responses": {
                        "200": {"description": "The updated user.", "headers": _ETAG,
                                "content": _json("User")},
                        **_errors(401, 403, 404, 405, 409, 412, 413, 415, 422, 429, 503),
                    },
                },
                "delete": {
                    "operationId": "deleteUser",
                    "summary": "Delete a user and its sessions (admin only, not itself).",
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
                    "summary": "Log in: exchange an email and a password for a bearer token.",
                    "description": "Password checks are limited per account and per client "
                                   "address, or per account and address once the account "
                                   "has logged in from there; successful logins per account "
                                   "(429 with Retry-After). A login past the session cap "
                                   "ends the user's oldest sessions.",
                    "security": _ANONYMOUS,
                    "requestBody": {"required": True, "content": _json("Login")},
                    "responses": {
                        "201": {
                            "description": "Logged in; send the token as "
                                           "`Authorization: Bearer <token>`.",
                            "headers": {
                                **_NO_STORE,
                                "Location": {"schema": {"type": "string"},
                                             "description": "/api/sessions/current"},
                            },
                            "content": _json("NewSession"),
                        },
                        **_errors(401, 405, 413, 415, 422, 429, 503),
                    },
                },
            },
            "/api/sessions/current": {
                "get": {
                    "operationId": "getCurrentSession",
                    "summary": "Who the presented token belongs to, and until when.",
                    "responses": {
                        "200": {"description": "The session.", "headers": _NO_STORE,
                                "content": _json("Session")},
                        **_errors(401, 405, 503),
                    },
                },
                "delete": {
                    "operationId": "logout",
                    "summary": "Revoke the presented token, on every server.",
                    "responses": {
                        "204": {"description": "Revoked."},
                        **_errors(401, 405, 503),
                    },
                },
            },
            "/livez": {
                "get": {
                    "operationId": "liveness",
                    "summary": "The process serves HTTP (no dependency is checked).",
                    "security": _ANONYMOUS,
                    "responses": {"200": {"description": "Alive.", "content": {
                        "application/json": {"schema": {"type": "object"}}}},
                        **_errors(405)},
                },
            },
            "/readyz": {
                "get": {
                    "operationId": "readiness",
                    "summary": "Ready: a DbWorker reaches the database, the supervision tree "
                               "is up, and the worker is not draining.",
                    "security": _ANONYMOUS,
                    "responses": {
                        "200": {"description": "Ready.", "content": {
                            "application/json": {"schema": {"type": "object"}}}},
                        "503": {"$ref": "#/components/responses/NotReady"},
                        **_errors(405),
                    },
                },
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus text exposition of every worker process.",
                    "description": "With USERMGMT_METRICS_BIND set, answered only on that "
                                   "address (404 on the API's).",
                    "security": _ANONYMOUS,
                    "responses": {"200": {"description": "Metrics.", "content": {
                        "text/plain": {"schema": {"type": "string"}}}},
                        **_errors(404, 405)},
                },
            },
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document.",
                    "security": _ANONYMOUS,
                    "responses": {"200": {"description": "The OpenAPI document.",
                                          "content": {"application/json": {
                                              "schema": {"type": "object"}}}},
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
                        "id": {"type": "integer", "minimum": 1},
                        "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH},
                        "email": {"type": "string", "maxLength": MAX_EMAIL_LENGTH},
                        "role": {"$ref": "#/components/schemas/Role"},
                        "version": {"type": "integer", "minimum": 1,
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
                        "user_id": {"type": "integer", "minimum": 1},
                    },
                },
                "Session": {
                    "type": "object",
                    "required": ["user_id", "role", "expires_at"],
                    "additionalProperties": False,
                    "properties": {
                        "user_id": {"type": "integer", "minimum": 1},
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
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer", "minimum": 400, "maximum": 599},
                        "detail": {"type": "string"},
                        "instance": {"type": "string"},
                        "errors": {
                            "type": "array",
                            "maxItems": MAX_ERRORS,
                            "description": f"The first {MAX_ERRORS} problems found.",
                            "items": {
                                "type": "object",
                                "required": ["field", "message"],
                                "properties": {"field": {"type": "string"},
                                               "message": {"type": "string"}},
                            },
                        },
                        "errors_total": {"type": "integer", "minimum": MAX_ERRORS + 1,
                                         "description": "How many problems were found, when "
                                                        "`errors` could not list them all."},
                    },
                },
            },
            "headers": {
                "ETag": {"description": "Strong entity-tag derived from the row version(s).",
                         "schema": {"type": "string"}},
                "CacheControl": {"description": "`private, no-cache`.",
                                 "schema": {"type": "string"}},
                "RetryAfter": {"description": "Seconds to wait before retrying.",
                               "schema": {"type": "integer"}},
                "WWWAuthenticate": {"description": 'RFC 6750 challenge: `Bearer realm="usermgmt"`'
                                                   ', with `error="invalid_token"` for a bad '
                                                   "token.",
                                    "schema": {"type": "string"}},
            },
            "responses": {
                "E400": {
                    "description": "Malformed request: JSON body, or NUL, control characters "
                                   "or invalid UTF-8 in the query string, X-Request-ID or "
                                   "Authorization (problem+json); or a request gunicorn "
                                   "cannot parse (HTML).",
                    "content": {
                        "application/problem+json": {
                            "schema": {"$ref": "#/components/schemas/Problem"}},
                        "text/html": {"schema": {"type": "string"}},
                    },
                },
                "E401": _problem_response("No, unknown, expired or revoked bearer token (on "
                                          "login: wrong email or password).", {
                    "WWW-Authenticate": {"$ref": "#/components/headers/WWWAuthenticate"}}),
                "E403": _problem_response("The token's user may not do this (or gave a wrong "
                                          "current_password, or none to change its own "
                                          "password or email)."),
                "E404": _problem_response("No such user (or, for a member, not its own) or "
                                          "route."),
                "E405": _problem_response("Method not allowed; see the Allow header.", {
                    "Allow": {"schema": {"type": "string"}}}),
                "E409": _problem_response("Another user has this email (`duplicate-email`), or "
                                          "the change would leave no admin (`last-admin`)."),
                "E412": _problem_response("If-Match did not match the current ETag."),
                "E413": _problem_response("Body larger than 64 KiB."),
                "E415": _problem_response("Unsupported body media type."),
                "E422": _problem_response("Validation failed; `errors` lists each field "
                                          "(unknown fields and fields the caller may not set "
                                          "included)."),
                "E429": _problem_response("Too many password checks for this account, address "
                                          "or pair of them, or too many logins for this "
                                          "account.", _RETRY_AFTER),
                "E414": _gunicorn_response("Request line over 4094 bytes."),
                "E431": _gunicorn_response("More than 50 header fields, or one over 4096 "
                                           "bytes."),
                "E503": _problem_response("No database worker free in time, or the database "
                                          "is unreachable.", _RETRY_AFTER),
                "NotReady": _problem_response("Not ready; `errors` names each failed check.",
                                              _RETRY_AFTER),
            },
        },
    }
