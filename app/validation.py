"""Validation of request bodies and query parameters.

Pure functions: they take decoded JSON or query strings and return clean
values or raise :class:`ValidationFailed` with every problem found, as
``{"field", "message"}`` pairs, so a client can fix all at once.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_EMAIL_LENGTH",
    "MAX_LIMIT",
    "MAX_NAME_LENGTH",
    "FieldError",
    "ListQuery",
    "UserFields",
    "ValidationFailed",
    "decode_cursor",
    "encode_cursor",
    "validate_list_query",
    "validate_user",
]

MAX_NAME_LENGTH = 200
MAX_EMAIL_LENGTH = 254
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_ID = 2**63 - 1
USER_FIELDS = ("name", "email")

# Deliberately modest: one @, no whitespace or control characters, a dotted
# domain. The mailbox itself is proved only by sending mail to it.
_EMAIL = re.compile(
    r"^[^@\s\x00-\x1f\x7f]{1,64}@"
    r"(?=.{1,253}\Z)[A-Za-z0-9\u00a1-\uffff](?:[A-Za-z0-9\u00a1-\uffff-]{0,61}[A-Za-z0-9\u00a1-\uffff])?"
    r"(?:\.[A-Za-z0-9\u00a1-\uffff](?:[A-Za-z0-9\u00a1-\uffff-]{0,61}[A-Za-z0-9\u00a1-\uffff])?)+\Z"
)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CURSOR_PREFIX = b"u1:"


@dataclass(frozen=True, slots=True)
class FieldError:
    field: str
    message: str

    def to_json(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class ValidationFailed(Exception):
    """One or more fields are invalid; ``errors`` lists each."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(f"{e.field}: {e.message}" for e in errors))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class UserFields:
    """Validated user fields; ``None`` means "not given" (PATCH)."""

    name: str | None
    email: str | None


@dataclass(frozen=True, slots=True)
class ListQuery:
    after_id: int
    limit: int
    email: str | None


def _check_name(value: Any, errors: list[FieldError]) -> str | None:
    if not isinstance(value, str):
        errors.append(FieldError("name", "must be a string"))
        return None
    name = value.strip()
    if not name:
        errors.append(FieldError("name", "must not be empty"))
    elif len(name) > MAX_NAME_LENGTH:
        errors.append(FieldError("name", f"must be at most {MAX_NAME_LENGTH} characters"))
    elif _CONTROL.search(name):
        errors.append(FieldError("name", "must not contain control characters"))
    else:
        return name
    return None


def _check_email(value: Any, errors: list[FieldError], field: str = "email") -> str | None:
    if not isinstance(value, str):
        errors.append(FieldError(field, "must be a string"))
    elif len(value) > MAX_EMAIL_LENGTH:
        errors.append(FieldError(field, f"must be at most {MAX_EMAIL_LENGTH} characters"))
    elif not _EMAIL.match(value):
        errors.append(FieldError(field, "must be a valid email address"))
    else:
        return value
    return None


def validate_user(body: Any, *, partial: bool) -> UserFields:
    """Validate a user body: complete (POST, PUT) or partial (PATCH).

    A partial body is a JSON merge patch (RFC 7396): absent fields stay as
    they are; ``null`` would delete a field, which no user field allows.

    Raises:
        ValidationFailed: listing every invalid, missing or unknown field.
    """
    if not isinstance(body, dict):
        raise ValidationFailed([FieldError("", "the body must be a JSON object")])
    errors: list[FieldError] = []
    for key in body:
        if key not in USER_FIELDS:
            errors.append(FieldError(str(key), "unknown field"))
    values: dict[str, str | None] = {"name": None, "email": None}
    for key in USER_FIELDS:
        if key not in body:
            if not partial:
                errors.append(FieldError(key, "is required"))
            continue
        if body[key] is None:
            errors.append(FieldError(key, "must not be null"))
            continue
        check = _check_name if key == "name" else _check_email
        values[key] = check(body[key], errors)
    if errors:
        raise ValidationFailed(errors)
    return UserFields(name=values["name"], email=values["email"])


def encode_cursor(last_id: int) -> str:
    """An opaque cursor that continues after ``last_id``."""
    return base64.urlsafe_b64encode(_CURSOR_PREFIX + str(last_id).encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> int:
    """The id a cursor continues after.

    Raises:
        ValidationFailed: if the cursor was not made by :func:`encode_cursor`.
    """
    invalid = ValidationFailed([FieldError("after", "is not a valid cursor")])
    if not cursor or len(cursor) > 64 or not cursor.isascii():
        raise invalid
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    except (binascii.Error, ValueError):
        raise invalid from None
    if not raw.startswith(_CURSOR_PREFIX):
        raise invalid
    digits = raw[len(_CURSOR_PREFIX):]
    if not digits.isdigit() or len(digits) > 19:
        raise invalid
    value = int(digits)
    if value > MAX_ID:
        raise invalid
    return value


def validate_list_query(params: Mapping[str, Any]) -> ListQuery:
    """Validate ``limit``, ``after`` and ``email`` of ``GET /api/users``.

    Raises:
        ValidationFailed: for a bad limit or cursor, a malformed email
            filter, a repeated parameter, or an unknown parameter.
    """
    errors: list[FieldError] = []
    for key, value in params.items():
        if key not in ("limit", "after", "email"):
            errors.append(FieldError(key, "unknown query parameter"))
        elif not isinstance(value, str):
            errors.append(FieldError(key, "must be given once"))
    if errors:
        raise ValidationFailed(errors)
    limit = DEFAULT_LIMIT
    raw_limit = params.get("limit")
    if raw_limit is not None:
        if not (raw_limit.isascii() and raw_limit.isdigit()) or len(raw_limit) > 4:
            errors.append(FieldError("limit", f"must be an integer from 1 to {MAX_LIMIT}"))
        else:
            limit = int(raw_limit)
            if not 1 <= limit <= MAX_LIMIT:
                errors.append(FieldError("limit", f"must be an integer from 1 to {MAX_LIMIT}"))
    after_id = 0
    raw_after = params.get("after")
    if raw_after is not None:
        try:
            after_id = decode_cursor(raw_after)
        except ValidationFailed as exc:
            errors.extend(exc.errors)
    email = params.get("email")
    if email is not None:
        email = _check_email(email, errors)
    if errors:
        raise ValidationFailed(errors)
    return ListQuery(after_id=after_id, limit=limit, email=email)
