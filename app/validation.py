"""Validation of request bodies and query parameters.

Pure functions: they take decoded JSON or query strings and return clean
values or raise :class:`ValidationFailed` with every problem found, as
``{"field", "message"}`` pairs, so a client can fix all at once.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from app.domain import Role
from app.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH

__all__ = [
    "ACTOR_ID_PATTERN",
    "ADMIN_CREATE_FIELDS",
    "ADMIN_UPDATE_FIELDS",
    "BLANK_CHARACTERS",
    "CURSOR_PATTERN",
    "DEFAULT_LIMIT",
    "EMAIL_PATTERN",
    "LOGIN_EMAIL_PATTERN",
    "MAX_EMAIL_LENGTH",
    "MAX_LIMIT",
    "MAX_NAME_LENGTH",
    "MEMBER_UPDATE_FIELDS",
    "NAME_PATTERN",
    "NO_NUL_PATTERN",
    "ROLES",
    "FieldError",
    "KillFields",
    "ListQuery",
    "LoginFields",
    "UserFields",
    "ValidationFailed",
    "check_query_parameters",
    "decode_cursor",
    "encode_cursor",
    "has_control_or_format",
    "validate_kill",
    "validate_list_query",
    "validate_login",
    "validate_user",
]

MAX_NAME_LENGTH = 200
ROLES = tuple(role.value for role in Role)
MAX_EMAIL_LENGTH = 254
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_ID = 2**63 - 1
# An unknown field's name is echoed in its error, at most this long.
MAX_FIELD_NAME_LENGTH = 64

# Which body fields a caller may send: an admin creating a user, an admin
# updating one, a member updating itself. Anything else is refused (no
# mass assignment): unknown fields as unknown, known ones as not allowed.
ADMIN_CREATE_FIELDS = ("name", "email", "role", "password")
ADMIN_UPDATE_FIELDS = ("name", "email", "role", "password", "current_password")
MEMBER_UPDATE_FIELDS = ("name", "email", "password", "current_password")
_KNOWN_FIELDS = frozenset(ADMIN_UPDATE_FIELDS)

# The rules below as JSON Schema patterns, for the OpenAPI document: the
# document promises exactly what validation accepts (tests compare the two).
# Spelled out rather than \s: Python's \s, str.strip() and ECMA-262's \s
# disagree, and a generator reading \s as ASCII would draw "names" that are
# only whitespace. _SPACE is exactly what str.isspace() accepts.
_SPACE = r"\t-\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"


def _char_class(codes: list[int]) -> str:
    """``codes`` (sorted) as the inside of a regex character class, in ranges."""
    parts: list[str] = []
    start = previous = codes[0]
    for code in [*codes[1:], -1]:
        if code == previous + 1:
            previous = code
            continue
        parts.append(f"\\u{start:04x}" if start == previous
                     else f"\\u{start:04x}-\\u{previous:04x}")
        start = previous = code
    return "".join(parts)


# Control (Cc) and format (Cf) characters are refused in names and emails:
# CR/LF/TAB, bidi overrides, zero-width spaces and joiners, soft hyphens.
# The patterns name the ones in the Basic Multilingual Plane (an ECMA-262
# character class without the u flag cannot hold others); validation
# refuses the few astral ones too (tags, musical formatting, ...).
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf"})
_CONTROL_OR_FORMAT = _char_class([c for c in range(0x10000)
                                  if unicodedata.category(chr(c)) in _REFUSED_CATEGORIES])
# Letters and symbols that render as nothing (Hangul fillers, the blank
# Braille pattern) and marks that are invisible on their own (the
# combining grapheme joiner, Khmer inherent vowels, Mongolian and other
# variation selectors): a name cannot begin or end with them any more than
# with whitespace, so "\u3164" or "\u200b\u200b" is no name.
BLANK_CHARACTERS = frozenset(
    "\u034f\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180f\u2800\u3164\uffa0"
    + "".join(map(chr, range(0xFE00, 0xFE10))))
_BLANK = _char_class(sorted(map(ord, BLANK_CHARACTERS)))
# A visible character: not whitespace, not Cc or Cf, not blank.
_VISIBLE = rf"[^{_SPACE}{_CONTROL_OR_FORMAT}{_BLANK}]"
NAME_PATTERN = (
    rf"^[{_SPACE}]*{_VISIBLE}(?:[^{_CONTROL_OR_FORMAT}]{{0,{MAX_NAME_LENGTH - 2}}}{_VISIBLE})?"
    rf"[{_SPACE}]*$"
)
"""A name, once in Unicode NFC: 1 to 200 characters after trimming whitespace,
beginning and ending with a visible character, with no control or format
characters (Cc, Cf)."""
EMAIL_PATTERN = rf"^[^{_CONTROL_OR_FORMAT}]*$"
"""What an email may not hold (the rest of its shape is ``format: email``)."""
NO_NUL_PATTERN = r"^[^\x00]*$"
LOGIN_EMAIL_PATTERN = r"^[^\x00-\x1f\x7f]*$"
# base64url("u1:" + 1 to 18 digits), unpadded: "u1:" is one 3-byte group
# ("dTE6"); then each group of 3 digits is 4 characters, a last group of 1
# or 2 digits 2 or 3. 18 digits cover every id the API hands out.
_DIGITS3 = "(?:M[DTjz]|N[DTjz]|O[DT])[AEIMQUYcgk][w-z0-5]"
_DIGITS1 = "(?:[MN][AQgw]|O[AQ])"
_DIGITS2 = "(?:M[DTjz]|N[DTjz]|O[DT])[AEIMQUYcgk]"
CURSOR_PATTERN = rf"^dTE6(?:{_DIGITS3}){{0,5}}(?:{_DIGITS3}|{_DIGITS1}|{_DIGITS2})$"
_CURSOR = re.compile(CURSOR_PATTERN)

# Deliberately modest: one @, no whitespace or control characters, a dotted
# domain. The mailbox itself is proved only by sending mail to it.
_EMAIL = re.compile(
    r"^[^@\s\x00-\x1f\x7f]{1,64}@"
    r"(?=.{1,253}\Z)[A-Za-z0-9\u00a1-\uffff](?:[A-Za-z0-9\u00a1-\uffff-]{0,61}[A-Za-z0-9\u00a1-\uffff])?"
    r"(?:\.[A-Za-z0-9\u00a1-\uffff](?:[A-Za-z0-9\u00a1-\uffff-]{0,61}[A-Za-z0-9\u00a1-\uffff])?)+\Z"
)
_LOGIN_EMAIL_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f]")
_CURSOR_PREFIX = b"u1:"
# Supervisor names and child ids the dashboard may address ("db", "db_worker_1").
ACTOR_ID_PATTERN = r"^[A-Za-z0-9_./-]{1,100}$"
_ACTOR_ID = re.compile(ACTOR_ID_PATTERN)
MAX_PID = 2**31 - 1


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
    """Validated user fields; ``None`` means "not given"."""

    name: str | None
    email: str | None
    role: Role | None = None
    password: str | None = field(default=None, repr=False)
    current_password: str | None = field(default=None, repr=False)


@dataclass(frozen=True, slots=True)
class LoginFields:
    """A login request's email and password."""

    email: str
    password: str = field(repr=False)


@dataclass(frozen=True, slots=True)
class KillFields:
    """Which actor the dashboard asks to kill: a child of a supervisor in a worker."""

    pid: int
    supervisor: str
    child: str


@dataclass(frozen=True, slots=True)
class ListQuery:
    after_id: int
    limit: int
    email: str | None


def _field_name(key: object) -> str:
    """A client's field or parameter name as echoed in an error, cut to a bound."""
    name = str(key)
    return name if len(name) <= MAX_FIELD_NAME_LENGTH else name[:MAX_FIELD_NAME_LENGTH] + "…"


def has_control_or_format(value: str) -> bool:
    """Whether ``value`` holds a control or format character (Cc, Cf).

    The one rule for text a client sends: names, emails, decoded query
    strings (header values follow HTTP's own, see :mod:`app.middleware`).
    """
    category = unicodedata.category
    refused = _REFUSED_CATEGORIES
    return any(category(c) in refused for c in value)


def _visible(char: str) -> bool:
    return not (char.isspace() or char in BLANK_CHARACTERS
                or unicodedata.category(char) in _REFUSED_CATEGORIES)


def _check_name(value: Any, errors: list[FieldError]) -> str | None:
    if not isinstance(value, str):
        errors.append(FieldError("name", "must be a string"))
        return None
    # One spelling per name: "é" precomposed or as "e" + combining accent
    # look alike and must compare (and count) alike.
    name = unicodedata.normalize("NFC", value).strip()
    if not name:
        errors.append(FieldError("name", "must not be empty"))
    elif len(name) > MAX_NAME_LENGTH:
        errors.append(FieldError("name", f"must be at most {MAX_NAME_LENGTH} characters"))
    elif has_control_or_format(name):
        errors.append(FieldError("name", "must not contain control or format characters"))
    elif not (_visible(name[0]) and _visible(name[-1])):
        errors.append(FieldError("name", "must begin and end with a visible character"))
    else:
        return name
    return None


def _check_email(value: Any, errors: list[FieldError], field: str = "email") -> str | None:
    if not isinstance(value, str):
        errors.append(FieldError(field, "must be a string"))
    elif len(value) > MAX_EMAIL_LENGTH:
        errors.append(FieldError(field, f"must be at most {MAX_EMAIL_LENGTH} characters"))
    elif has_control_or_format(value):
        errors.append(FieldError(field, "must not contain control or format characters"))
    elif not _EMAIL.match(value):
        errors.append(FieldError(field, "must be a valid email address"))
    else:
        return value
    return None


def _check_role(value: Any, errors: list[FieldError]) -> str | None:
    if value in ROLES:
        return str(value)
    errors.append(FieldError("role", f"must be one of {', '.join(ROLES)}"))
    return None


def _check_secret(value: Any, errors: list[FieldError], field: str, minimum: int) -> str | None:
    # The password itself never goes into a message.
    if not isinstance(value, str):
        errors.append(FieldError(field, "must be a string"))
    elif not minimum <= len(value) <= MAX_PASSWORD_LENGTH:
        errors.append(FieldError(field, f"must be {minimum} to {MAX_PASSWORD_LENGTH} characters"))
    elif "\x00" in value:
        errors.append(FieldError(field, "must not contain NUL characters"))
    else:
        return value
    return None


def _check_password(value: Any, errors: list[FieldError], field: str = "password") -> str | None:
    return _check_secret(value, errors, field, MIN_PASSWORD_LENGTH)


def _check_current_password(value: Any, errors: list[FieldError]) -> str | None:
    return _check_secret(value, errors, "current_password", 1)


_CHECKS: dict[str, Callable[[Any, list[FieldError]], str | None]] = {
    "name": _check_name,
    "email": _check_email,
    "role": _check_role,
    "password": _check_password,
    "current_password": _check_current_password,
}


def validate_user(
    body: Any,
    *,
    partial: bool,
    allowed: tuple[str, ...] = ADMIN_CREATE_FIELDS,
) -> UserFields:
    """Validate a user body: complete (POST, PUT) or partial (PATCH).

    A partial body is a JSON merge patch (RFC 7396): absent fields stay as
    they are; ``null`` would delete a field, which no user field allows.
    ``name`` and ``email`` are required unless ``partial``; the other
    fields are always optional. ``current_password`` is accepted only with
    ``password`` or ``email``; whether it is required depends on who asks (see
    :mod:`app.resources.users`).

    Args:
        allowed: the fields this caller may send (see ``*_FIELDS``).

    Raises:
        ValidationFailed: listing every invalid, missing, unknown or
            not-allowed field.
    """
    if not isinstance(body, dict):
        raise ValidationFailed([FieldError("", "the body must be a JSON object")])
    errors: list[FieldError] = []
    for key in body:
        if key not in allowed:
            reason = "may not be set by you" if key in _KNOWN_FIELDS else "unknown field"
            errors.append(FieldError(_field_name(key), reason))
    values: dict[str, str | None] = dict.fromkeys(_CHECKS)
    for key in allowed:
        if key not in body:
            if not partial and key in ("name", "email"):
                errors.append(FieldError(key, "is required"))
            continue
        if body[key] is None:
            errors.append(FieldError(key, "must not be null"))
            continue
        values[key] = _CHECKS[key](body[key], errors)
    if "current_password" in body and "password" not in body and "email" not in body:
        errors.append(FieldError("current_password", "is accepted only with password or email"))
    if errors:
        raise ValidationFailed(errors)
    role = values["role"]
    return UserFields(name=values["name"], email=values["email"],
                      role=Role(role) if role is not None else None,
                      password=values["password"], current_password=values["current_password"])


def validate_login(body: Any) -> LoginFields:
    """Validate ``{"email", "password"}`` of a login.

    Deliberately lenient about the email's shape (any string of 1 to 254
    printable characters): a malformed email simply matches no user, and
    the answer must not tell which part of a login was wrong.

    Raises:
        ValidationFailed: listing every invalid, missing or unknown field.
    """
    if not isinstance(body, dict):
        raise ValidationFailed([FieldError("", "the body must be a JSON object")])
    errors = [FieldError(_field_name(key), "unknown field") for key in body
              if key not in ("email", "password")]
    email = body.get("email")
    if "email" not in body:
        errors.append(FieldError("email", "is required"))
    elif not isinstance(email, str):
        errors.append(FieldError("email", "must be a string"))
    elif not 1 <= len(email) <= MAX_EMAIL_LENGTH:
        errors.append(FieldError("email", f"must be 1 to {MAX_EMAIL_LENGTH} characters"))
    elif _LOGIN_EMAIL_FORBIDDEN.search(email):
        errors.append(FieldError("email", "must not contain control characters"))
    password = None
    if "password" not in body:
        errors.append(FieldError("password", "is required"))
    else:
        password = _check_secret(body["password"], errors, "password", 1)
    if errors:
        raise ValidationFailed(errors)
    assert isinstance(email, str) and password is not None
    return LoginFields(email, password)


def validate_kill(body: Any) -> KillFields:
    """Validate ``{"pid", "supervisor", "child"}`` of a dashboard kill.

    Raises:
        ValidationFailed: listing every invalid, missing or unknown field.
    """
    if not isinstance(body, dict):
        raise ValidationFailed([FieldError("", "the body must be a JSON object")])
    errors = [FieldError(str(key), "unknown field") for key in body
              if key not in ("pid", "supervisor", "child")]
    pid = body.get("pid")
    if "pid" not in body:
        errors.append(FieldError("pid", "is required"))
    elif isinstance(pid, bool) or not isinstance(pid, int) or not 1 <= pid <= MAX_PID:
        errors.append(FieldError("pid", f"must be an integer from 1 to {MAX_PID}"))
    for name in ("supervisor", "child"):
        value = body.get(name)
        if name not in body:
            errors.append(FieldError(name, "is required"))
        elif not isinstance(value, str) or not _ACTOR_ID.fullmatch(value):
            errors.append(FieldError(name, "must be 1 to 100 of A-Z a-z 0-9 _ . / -"))
    if errors:
        raise ValidationFailed(errors)
    return KillFields(int(body["pid"]), str(body["supervisor"]), str(body["child"]))


def encode_cursor(last_id: int) -> str:
    """An opaque cursor that continues after ``last_id``."""
    return base64.urlsafe_b64encode(_CURSOR_PREFIX + str(last_id).encode()).rstrip(b"=").decode()


def decode_cursor(cursor: str) -> int:
    """The id a cursor continues after.

    Raises:
        ValidationFailed: if the cursor was not made by :func:`encode_cursor`.
    """
    invalid = ValidationFailed([FieldError("after", "is not a valid cursor")])
    # The exact shape first: b64decode would skip characters outside its
    # alphabet (NUL included) and accept what no cursor ever looked like.
    if len(cursor) > 64 or not _CURSOR.fullmatch(cursor):
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


def check_query_parameters(params: Mapping[str, Any], allowed: Collection[str]) -> None:
    """Refuse query parameters other than ``allowed``, and any given twice.

    The same rule on every route: a misspelt parameter is an error, not
    silently ignored.

    Raises:
        ValidationFailed: naming each unknown or repeated parameter.
    """
    errors = [FieldError(_field_name(key), "unknown query parameter" if key not in allowed
                         else "must be given once")
              for key, value in params.items() if key not in allowed or not isinstance(value, str)]
    if errors:
        raise ValidationFailed(errors)


def validate_list_query(params: Mapping[str, Any]) -> ListQuery:
    """Validate ``limit``, ``after`` and ``email`` of ``GET /api/users``.

    Raises:
        ValidationFailed: for a bad limit or cursor, a malformed email
            filter, a repeated parameter, or an unknown parameter.
    """
    check_query_parameters(params, ("limit", "after", "email"))
    errors: list[FieldError] = []
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
