"""``usermgmt create-admin``: the first admin, before anyone can log in.

Runs outside the server, straight against the database (migrated first),
with the same validation and hashing as the API. The password comes from
an interactive prompt (asked twice), or from the first line of standard
input when that is not a terminal, so scripts can pipe it in; it is never
taken from the command line or the environment, where other processes
could read it.
"""

from __future__ import annotations

import getpass
import sys
from collections.abc import Callable
from typing import IO

import psycopg
from psycopg import errors as pg_errors

from app.domain import Role
from app.passwords import Passwords
from app.validation import ADMIN_CREATE_FIELDS, ValidationFailed, validate_user

__all__ = ["AdminExists", "create_admin", "explain", "read_password"]


class AdminExists(Exception):
    """A user with this email already exists; nothing was changed."""


def read_password(stdin: IO[str] | None = None,
                  prompt: Callable[[str], str] = getpass.getpass) -> str:
    """The new admin's password: prompted twice on a terminal, else one line of stdin.

    Raises:
        ValueError: the two entries differ, or stdin is empty.
    """
    stream = stdin or sys.stdin
    if stream.isatty():
        first = prompt("Password: ")
        if prompt("Password (again): ") != first:
            raise ValueError("the passwords do not match")
        return first
    line = stream.readline()
    if not line:
        raise ValueError("no password on standard input")
    return line.removesuffix("\n").removesuffix("\r")


def create_admin(conninfo: str, email: str, name: str, password: str,
                 passwords: Passwords | None = None) -> int:
    """Insert an admin; returns its id.

    Raises:
        ValidationFailed: the name, email or password is not acceptable.
        AdminExists: a user already has this email (case-insensitively).
        psycopg.Error: the database cannot be reached.
    """
    fields = validate_user({"name": name, "email": email, "role": Role.ADMIN.value,
                            "password": password},
                           partial=False, allowed=ADMIN_CREATE_FIELDS)
    assert fields.password is not None
    password_hash = (passwords or Passwords()).hash(fields.password)
    with psycopg.connect(conninfo, autocommit=True,
                         application_name="usermgmt-create-admin") as conn:
        try:
            row = conn.execute(
                "INSERT INTO users (name, email, role, password_hash)"
                " VALUES (%s, %s, 'admin', %s) RETURNING id",
                (fields.name, fields.email, password_hash),
            ).fetchone()
        except pg_errors.UniqueViolation:
            raise AdminExists(f"a user with the email {fields.email} already exists") from None
    assert row is not None
    return int(row[0])


def explain(error: ValidationFailed) -> str:
    """One line per invalid field, for the terminal."""
    return "\n".join(f"  {e.field}: {e.message}" for e in error.errors)
