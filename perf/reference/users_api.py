"""The users API's rules, free of any web framework: what both references share.

The Falcon + psycopg-pool reference (``app.py``) and the FastAPI + asyncpg
one (``fastapi_app.py``) answer the same routes with the same SQL, JSON
shapes, ETags (``"<id>-<version>"``), opaque list cursors, validation,
If-Match rules and bearer-token check; only the framework and the driver
differ. Everything here is plain functions of strings and rows, so that
neither reference has a copy of the other's logic.

Statements are written with psycopg's ``%s`` placeholders;
:func:`numbered` turns them into asyncpg's ``$1, $2, ...``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

__all__ = [
    "BASE_COLUMNS",
    "COLUMNS_PRESENT",
    "DEFAULT_LIMIT",
    "DEFAULT_POOL_SIZE",
    "DELETE",
    "DELETE_IF_VERSION",
    "EXISTS",
    "JSON",
    "MAX_LIMIT",
    "MERGE_PATCH_JSON",
    "PROBLEM_JSON",
    "SESSION_ROLE",
    "Invalid",
    "UserQueries",
    "bearer_token",
    "decode_cursor",
    "encode_cursor",
    "etag",
    "if_match_versions",
    "next_link",
    "none_match",
    "numbered",
    "parse_limit",
    "problem",
    "token_hash",
    "user_queries",
    "validate_user",
]

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
COLUMNS_PRESENT = "SELECT column_name FROM information_schema.columns WHERE table_name = 'users'"
SET_FIELDS = "UPDATE users SET name = COALESCE(%s::text, name), email = COALESCE(%s::text, email)"
DELETE = "DELETE FROM users WHERE id = %s RETURNING id"
DELETE_IF_VERSION = "DELETE FROM users WHERE id = %s AND version = ANY(%s) RETURNING id"
EXISTS = "SELECT 1 FROM users WHERE id = %s"
SESSION_ROLE = (
    "SELECT u.role FROM sessions s JOIN users u ON u.id = s.user_id"
    " WHERE s.token_hash = %s AND s.expires_at > now()"
)
BEARER = re.compile(r"[Bb]earer +([A-Za-z0-9._~+/-]{1,256}=*) *")
_PLACEHOLDER = re.compile(r"%s")
# RFC 9110's names where Python's HTTPStatus still has the older ones.
_PHRASES = {422: "Unprocessable Content"}


class Invalid(ValueError):
    """422: the body or query is invalid (``str(error)`` is the detail)."""


def numbered(sql: str) -> str:
    """A ``%s`` statement with asyncpg's numbered placeholders instead."""
    counter = iter(range(1, sql.count("%s") + 1))
    return _PLACEHOLDER.sub(lambda _: f"${next(counter)}", sql)


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


def user_queries(present: Sequence[str]) -> UserQueries:
    """Queries for the users table as the migrations left it (``present``: its columns)."""
    return UserQueries(BASE_COLUMNS + tuple(c for c in OPTIONAL_COLUMNS if c in present))


def etag(row: Sequence[Any]) -> str:
    """Strong entity-tag of a row whose first columns are ``id, name, email, version``."""
    return f'"{row[0]}-{row[3]}"'


def encode_cursor(last_id: int) -> str:
    return base64.urlsafe_b64encode(CURSOR_PREFIX + str(last_id).encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> int:
    """Raises: Invalid."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise Invalid("after: is not a valid cursor") from None
    digits = raw.removeprefix(CURSOR_PREFIX)
    if not raw.startswith(CURSOR_PREFIX) or not digits.isdigit() or len(digits) > 18:
        raise Invalid("after: is not a valid cursor")
    return int(digits)


def parse_limit(raw: str | None) -> int:
    """Raises: Invalid."""
    if raw is None:
        return DEFAULT_LIMIT
    if not raw.isdigit() or not 1 <= int(raw) <= MAX_LIMIT:
        raise Invalid(f"limit: must be an integer from 1 to {MAX_LIMIT}")
    return int(raw)


def next_link(limit: int, cursor: str, email: str | None) -> str:
    """The ``Link`` header of a page that has a next one."""
    params = {"limit": str(limit), "after": cursor}
    if email is not None:
        params["email"] = email
    return f'</api/users?{urlencode(params)}>; rel="next"'


def validate_user(body: Any, *, partial: bool) -> tuple[str | None, str | None]:
    """(name, email) from a body; None means "not given" (PATCH only).

    Raises: Invalid.
    """
    if not isinstance(body, dict):
        raise Invalid("the body must be a JSON object")
    unknown = set(body) - {"name", "email"}
    if unknown:
        raise Invalid(f"unknown field(s): {', '.join(sorted(unknown))}")
    if not partial and not {"name", "email"} <= set(body):
        raise Invalid("name and email are required")
    name, email = body.get("name"), body.get("email")
    if "name" in body:
        if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_NAME_LENGTH:
            raise Invalid(f"name: must be 1 to {MAX_NAME_LENGTH} characters")
        name = name.strip()
    if "email" in body and (
        not isinstance(email, str) or len(email) > MAX_EMAIL_LENGTH or not EMAIL.match(email)
    ):
        raise Invalid("email: must be a valid email address")
    return name, email


def if_match_versions(header: str | None, user_id: int) -> list[int] | None:
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


def none_match(header: str | None, tag: str) -> bool:
    """Whether an ``If-None-Match`` header matches ``tag`` (weak comparison): 304."""
    if header is None:
        return False
    return header.strip() == "*" or any(
        t.strip().removeprefix("W/") == tag for t in header.split(","))


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (None: absent or malformed)."""
    match = BEARER.fullmatch(header or "")
    return match.group(1) if match else None


def token_hash(token: str) -> bytes:
    """What the ``sessions`` table stores of a token: its SHA-256."""
    return hashlib.sha256(token.encode()).digest()


def problem(status: int, detail: str | None) -> dict[str, Any]:
    """A minimal RFC 9457 problem+json body, like the service's shape.

    The title is the status line (``404 Not Found``), as Falcon titles its errors.
    """
    title = f"{status} {_PHRASES.get(status) or HTTPStatus(status).phrase}"
    return {"type": "about:blank", "title": title, "status": status, "detail": detail or title}
