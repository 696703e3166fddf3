"""Fixtures for the HTTP edge: a started runtime and a Falcon test client.

Every API route needs a bearer token. The ``admin`` fixture inserts an
admin and a session for it with SQL *before* the runtime starts, so its
change notifications are not heard by the runtime's listener (tests that
count notifications stay exact); ``client`` sends that admin's token with
every request. ``anonymous`` sends none.

Passwords are hashed with cheap Argon2 parameters here (the service uses
argon2-cffi's defaults, ~0.2 s per hash); the code paths are the same.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import falcon.testing
import psycopg
import pytest
from argon2 import PasswordHasher

from app.app import create_app
from app.config import Settings
from app.passwords import Passwords
from app.sessions_service import hash_token
from tests.openapi_check import assert_conforms

if TYPE_CHECKING:
    from app.runtime import Runtime

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "admin password 123"


@dataclass(frozen=True)
class Account:
    """A user the test can act as."""

    user_id: int
    email: str
    password: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def cheap_passwords() -> Passwords:
    """Argon2id with the smallest parameters: same code, milliseconds per hash."""
    return Passwords(PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


@pytest.fixture
def passwords() -> Passwords:
    return cheap_passwords()


def open_session(db: psycopg.Connection[Any], user_id: int, ttl_seconds: float = 3600) -> str:
    """A fresh token for ``user_id``, stored (as its hash) straight in ``sessions``."""
    token = secrets.token_urlsafe(32)
    db.execute("INSERT INTO sessions (token_hash, user_id, expires_at)"
               " VALUES (%s, %s, now() + make_interval(secs => %s))",
               (hash_token(token), user_id, ttl_seconds))
    return token


def insert_user(db: psycopg.Connection[Any], passwords: Passwords, email: str, password: str,
                role: str = "member", name: str = "Someone") -> Account:
    """A user with a password and an open session, made with SQL."""
    row = db.execute("INSERT INTO users (name, email, role, password_hash) VALUES (%s, %s, %s, %s)"
                     " RETURNING id", (name, email, role, passwords.hash(password))).fetchone()
    assert row is not None
    return Account(int(row[0]), email, password, open_session(db, int(row[0])))


@pytest.fixture
def admin(db: psycopg.Connection[Any], passwords: Passwords) -> Account:
    """An admin with an open session, made before the runtime starts."""
    return insert_user(db, passwords, ADMIN_EMAIL, ADMIN_PASSWORD, role="admin", name="Admin")


@pytest.fixture
def runtime(database_url: str, db: psycopg.Connection[Any], admin: Account, passwords: Passwords,
            stop_actors: None) -> Iterator[Runtime]:
    """This process's actor tree on the test database, with two DbWorkers."""
    from app.runtime import Runtime

    settings = Settings(database_url=database_url, db_workers=2, db_checkout_timeout=0.5,
                        statement_timeout=2.0)
    runtime = Runtime(settings, database_url, passwords=passwords)
    runtime.start()
    assert runtime.wait_ready(10), "DbWorkers did not connect"
    try:
        yield runtime
    finally:
        runtime.stop()


class CheckedClient(falcon.testing.TestClient):
    """A test client that checks every response against the OpenAPI document."""

    def simulate_request(self, *args: Any, **kwargs: Any) -> falcon.testing.Result:
        result = super().simulate_request(*args, **kwargs)
        method = kwargs.get("method") or args[0]
        path = kwargs.get("path") or args[1]
        assert_conforms(method, path, result)
        return result


def make_client(runtime: Runtime, account: Account | None = None, **app_kwargs: Any) -> CheckedClient:
    """A checked client of a fresh app on ``runtime``, acting as ``account`` (or anonymous)."""
    app = create_app(runtime.users, runtime.sessions, **app_kwargs)
    return CheckedClient(app, headers=account.headers if account else None)


@pytest.fixture
def client(runtime: Runtime, admin: Account) -> CheckedClient:
    """Acts as the admin."""
    return make_client(runtime, admin)


@pytest.fixture
def anonymous(runtime: Runtime) -> CheckedClient:
    """Sends no token."""
    return make_client(runtime)


def deaf_to_notifications(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make this process's caches ignore NOTIFY evictions, as if they were late.

    What another worker process of the host sees in the few milliseconds
    before a write's notification reaches it.
    """
    from actors.cache import CacheHandle

    monkeypatch.setattr(CacheHandle, "evict", lambda *args, **kwargs: True)
    monkeypatch.setattr(CacheHandle, "evict_many", lambda *args, **kwargs: True)
