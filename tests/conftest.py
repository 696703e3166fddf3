"""Shared fixtures: a real PostgreSQL for the whole session.

The database is the embedded one (pgserver) in a temporary directory, or
``TEST_DATABASE_URL`` when set — a database the tests may empty at will.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pykka
import pytest

from app.embedded_db import EmbeddedPostgres
from app.migrations import apply_migrations


@pytest.fixture(scope="session")
def embedded_postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres | None]:
    """The session's embedded server, or None when TEST_DATABASE_URL is set."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield None
        return
    # A short path keeps the Unix socket path within its 107-byte limit.
    server = EmbeddedPostgres(Path(tmp_path_factory.mktemp("pg")))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def database_url(embedded_postgres: EmbeddedPostgres | None) -> str:
    """URL of a migrated, dedicated test database."""
    url = os.environ.get("TEST_DATABASE_URL") or (
        embedded_postgres.url() if embedded_postgres is not None else ""
    )
    apply_migrations(url)
    return url


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection[tuple[object, ...]]]:
    """A direct connection to emptied ``users``, ``sessions`` and
    login-limit tables (for setup and checks)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("TRUNCATE users, sessions, login_failures, login_successes, known_addresses"
                     " RESTART IDENTITY")
        yield conn


@pytest.fixture
def stop_actors() -> Iterator[None]:
    """Stop every actor a test left behind, so tests stay independent."""
    yield
    pykka.ActorRegistry.stop_all(block=True, timeout=10)
