"""The OpenAPI 3.1 document served at ``/openapi.json``.

Written as data next to the code it describes; tests validate real
responses against it, so the two cannot drift apart silently.
"""

from __future__ import annotations

from typing import Any

from app.validation import DEFAULT_LIMIT, MAX_EMAIL_LENGTH, MAX_LIMIT, MAX_NAME_LENGTH

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


def _errors(*statuses: int) -> dict[str, Any]:
    return {str(s): {"$ref": f"#/components/responses/E{s}"} for s in statuses}


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
    user_body = {"$ref": "#/components/schemas/UserInput"}
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "usermgmt",
            "version": "0.1.0",
            "description": "User management API. Errors are RFC 9457 problem details.",
        },
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
                         "schema": {"type": "string", "maxLength": 64}},
                        {"name": "email", "in": "query", "required": False,
                         "description": "Only the user with this email (case-insensitive).",
                         "schema": {"type": "string", "maxLength": MAX_EMAIL_LENGTH}},
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
                            "content": {"application/json": {
                                "schema": {"$ref": "#/components/schemas/UserPage"}}},
                        },
                        "304": {"description": "Not modified.", "headers": {**_ETAG, **_CACHE}},
                        **_errors(405, 422, 503),
                    },
                },
                "post": {
                    "operationId": "createUser",
                    "summary": "Create a user.",
                    "requestBody": {"required": True,
                                    "content": {"application/json": {"schema": user_body}}},
                    "responses": {
                        "201": {
                            "description": "Created.",
                            "headers": {
                                **_ETAG,
                                "Location": {"schema": {"type": "string"},
                                             "description": "/api/users/{id} of the new user."},
                            },
                            "content": {"application/json": {
                                "schema": {"$ref": "#/components/schemas/User"}}},
                        },
                        **_errors(400, 405, 409, 413, 415, 422, 503),
                    },
                },
            },
            "/api/users/{user_id}": {
                "parameters": [user_id],
                "get": {
                    "operationId": "getUser",
                    "summary": "Read one user.",
                    "parameters": [if_none_match],
                    "responses": {
                        "200": {"description": "The user.", "headers": {**_ETAG, **_CACHE},
                                "content": {"application/json": {
                                    "schema": {"$ref": "#/components/schemas/User"}}}},
                        "304": {"description": "Not modified.", "headers": {**_ETAG, **_CACHE}},
                        **_errors(404, 405, 503),
                    },
                },
                "put": {
                    "operationId": "replaceUser",
                    "summary": "Replace a user's fields.",
                    "parameters": [if_match],
                    "requestBody": {"required": True,
                                    "content": {"application/json": {"schema": user_body}}},
                    "responses": {
                        "200": {"description": "The updated user.", "headers": _ETAG,
                                "content": {"application/json": {
                                    "schema": {"$ref": "#/components/schemas/User"}}}},
                        **_errors(400, 404, 405, 409, 412, 413, 415, 422, 503),
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
                                "content": {"application/json": {
                                    "schema": {"$ref": "#/components/schemas/User"}}}},
                        **_errors(400, 404, 405, 409, 412, 413, 415, 422, 503),
                    },
                },
                "delete": {
                    "operationId": "deleteUser",
                    "summary": "Delete a user.",
                    "parameters": [if_match],
                    "responses": {
                        "204": {"description": "Deleted."},
                        **_errors(404, 405, 412, 503),
                    },
                },
            },
            "/livez": {
                "get": {
                    "operationId": "liveness",
                    "summary": "The process serves HTTP (no dependency is checked).",
                    "responses": {"200": {"description": "Alive.", "content": {
                        "application/json": {"schema": {"type": "object"}}}}},
                },
            },
            "/readyz": {
                "get": {
                    "operationId": "readiness",
                    "summary": "Ready: a DbWorker reaches the database, the supervision tree "
                               "is up, and the worker is not draining.",
                    "responses": {
                        "200": {"description": "Ready.", "content": {
                            "application/json": {"schema": {"type": "object"}}}},
                        "503": {"$ref": "#/components/responses/NotReady"},
                    },
                },
            },
            "/metrics": {
                "get": {
                    "operationId": "metrics",
                    "summary": "Prometheus text exposition of every worker process.",
                    "responses": {"200": {"description": "Metrics.", "content": {
                        "text/plain": {"schema": {"type": "string"}}}}},
                },
            },
            "/openapi.json": {
                "get": {
                    "operationId": "getOpenApi",
                    "summary": "This document.",
                    "responses": {"200": {"description": "The OpenAPI document.",
                                          "content": {"application/json": {
                                              "schema": {"type": "object"}}}}},
                },
            },
        },
        "components": {
            "schemas": {
                "User": {
                    "type": "object",
                    "required": ["id", "name", "email", "version", "inserted_at", "updated_at"],
                    "additionalProperties": False,
                    "properties": {
                        "id": {"type": "integer", "minimum": 1},
                        "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH},
                        "email": {"type": "string", "maxLength": MAX_EMAIL_LENGTH},
                        "version": {"type": "integer", "minimum": 1,
                                    "description": "Increases on every change."},
                        "inserted_at": {"type": "string", "format": "date-time"},
                        "updated_at": {"type": "string", "format": "date-time"},
                    },
                },
                "UserInput": {
                    "type": "object",
                    "required": ["name", "email"],
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH,
                                 "description": "Trimmed; 1 to 200 characters after trimming."},
                        "email": {"type": "string", "format": "email",
                                  "maxLength": MAX_EMAIL_LENGTH,
                                  "description": "Unique, compared case-insensitively."},
                    },
                },
                "UserPatch": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "name": {"type": "string", "minLength": 1, "maxLength": MAX_NAME_LENGTH},
                        "email": {"type": "string", "format": "email",
                                  "maxLength": MAX_EMAIL_LENGTH},
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
                            "items": {
                                "type": "object",
                                "required": ["field", "message"],
                                "properties": {"field": {"type": "string"},
                                               "message": {"type": "string"}},
                            },
                        },
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
            },
            "responses": {
                "E400": _problem_response("Malformed JSON body."),
                "E404": _problem_response("No such user or route."),
                "E405": _problem_response("Method not allowed; see the Allow header.", {
                    "Allow": {"schema": {"type": "string"}}}),
                "E409": _problem_response("Another user has this email."),
                "E412": _problem_response("If-Match did not match the current ETag."),
                "E413": _problem_response("Body larger than 64 KiB."),
                "E415": _problem_response("Unsupported body media type."),
                "E422": _problem_response("Validation failed; `errors` lists each field."),
                "E503": _problem_response("No database worker free in time, or the database "
                                          "is unreachable.", _RETRY_AFTER),
                "NotReady": _problem_response("Not ready; `errors` names each failed check.",
                                              _RETRY_AFTER),
            },
        },
    }
