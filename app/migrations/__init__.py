"""Versioned SQL migrations, applied in order under an advisory lock.

Each file ``NNNN_name.sql`` in this package is one migration. Applied
versions are recorded in ``schema_migrations``; applying is idempotent.
The whole run holds a session-level advisory lock, so several gunicorn
workers or hosts starting at once apply each migration exactly once and
the losers wait, then find nothing left to do.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from importlib import resources

import psycopg

__all__ = ["Migration", "apply_migrations", "available_migrations"]

logger = logging.getLogger(__name__)

# An arbitrary constant that names "usermgmt schema migrations" among the
# advisory locks of a shared database.
ADVISORY_LOCK_KEY = 0x75736572_6D676D74  # b"usermgmt"
_FILE_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True, slots=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str


def available_migrations() -> list[Migration]:
    """The migrations shipped with the package, in version order."""
    found = []
    for entry in resources.files(__package__).iterdir():
        match = _FILE_NAME.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions: {versions}")
    return found


def apply_migrations(conninfo: str, *, connect_timeout: float = 10.0) -> list[int]:
    """Apply every pending migration, each in its own transaction.

    Returns:
        The versions applied by this call (empty when already up to date).

    Raises:
        psycopg.Error: if the database is unreachable or a migration fails;
            the failed migration's transaction is rolled back.
    """
    applied: list[int] = []
    with psycopg.connect(
        conninfo, autocommit=True, connect_timeout=max(1, int(connect_timeout)),
        application_name="usermgmt-migrate",
    ) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY,"
                " name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for migration in available_migrations():
                if migration.version in done:
                    continue
                with conn.transaction():
                    conn.execute(migration.sql.encode())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                logger.info(
                    "applied migration %04d_%s", migration.version, migration.name,
                    extra={"event": "migration", "version": migration.version},
                )
                applied.append(migration.version)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
    return applied
