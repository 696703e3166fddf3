"""Shared fixtures: a real PostgreSQL for the whole session.

The database is the embedded one (pgserver) in a temporary directory, or
``TEST_DATABASE_URL`` when set — a database the tests may empty at will.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pykka
import pytest

from app.embedded_db import EmbeddedPostgres
from app.migrations import apply_migrations


@pytest.fixture(autouse=True)
def _root_logging_restored() -> Iterator[None]:
    """Undo what a test's ``configure_logging`` did to the root logger.

    Its handler writes to the ``sys.stderr`` of that test, which pytest
    closes when the test ends; an actor thread of a later test logging
    through it would print a logging error instead of its record.
    """
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)


@contextlib.contextmanager
def embedded_data_dir_for_tests() -> Iterator[Path]:
    """A fresh, short data directory path the embedded PostgreSQL can reach.

    As root the cluster runs as the system user ``pgserver``, which must be
    able to reach its data directory; pytest's temporary directories are
    0700. So: a directory of random name under the system's temporary
    directory, made searchable (0711) by the test that asked for it. On
    exit, any PostgreSQL still running there is stopped and it is removed.
    """
    parent = Path(tempfile.mkdtemp(prefix="usermgmt-test-"))
    parent.chmod(0o711)
    data_dir = parent / "var"
    try:
        yield data_dir
    finally:
        leftover = EmbeddedPostgres(data_dir)
        with contextlib.suppress(Exception):
            if leftover.is_running():
                leftover.stop_server()
        shutil.rmtree(parent, ignore_errors=True)


@pytest.fixture
def embedded_data_dir() -> Iterator[Path]:
    """A data directory for an embedded PostgreSQL of the test's own (see above)."""
    with embedded_data_dir_for_tests() as data_dir:
        yield data_dir


@pytest.fixture(scope="session")
def embedded_postgres() -> Iterator[EmbeddedPostgres | None]:
    """The session's embedded server, or None when TEST_DATABASE_URL is set."""
    if os.environ.get("TEST_DATABASE_URL"):
        yield None
        return
    with embedded_data_dir_for_tests() as data_dir:
        server = EmbeddedPostgres(data_dir)
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
