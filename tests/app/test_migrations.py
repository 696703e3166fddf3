"""Migrations: ordered, recorded, idempotent, serialised by an advisory lock."""

from __future__ import annotations

import threading
from typing import Any

import psycopg

from app.migrations import apply_migrations, available_migrations


def test_migrations_are_numbered_in_order() -> None:
    versions = [m.version for m in available_migrations()]
    assert versions == sorted(versions) and versions[0] == 1


def test_applying_again_does_nothing(database_url: str) -> None:
    assert apply_migrations(database_url) == []


def test_every_migration_is_recorded(database_url: str, db: psycopg.Connection[Any]) -> None:
    recorded = [r[0] for r in db.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert recorded == [m.version for m in available_migrations()]


def test_concurrent_runs_on_a_fresh_database_apply_each_migration_once(database_url: str) -> None:
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute("DROP DATABASE IF EXISTS migrate_race")
        admin.execute("CREATE DATABASE migrate_race")
    fresh = psycopg.conninfo.make_conninfo(database_url, dbname="migrate_race")
    results: list[list[int]] = []
    threads = [threading.Thread(target=lambda: results.append(apply_migrations(fresh))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    applied = sorted(v for r in results for v in r)
    assert applied == [m.version for m in available_migrations()]
    with psycopg.connect(database_url, autocommit=True) as admin:
        admin.execute("DROP DATABASE migrate_race WITH (FORCE)")


def test_versions_and_timestamps_move_on_every_change_whoever_makes_it(db: psycopg.Connection[Any]) -> None:
    row = db.execute("INSERT INTO users (name, email) VALUES ('a', 'a@x.io') RETURNING id, version, updated_at").fetchone()
    assert row is not None
    user_id, version, updated = row
    assert version == 1
    db.execute("UPDATE users SET name = 'b' WHERE id = %s", (user_id,))
    db.execute("UPDATE users SET name = 'b' WHERE id = %s", (user_id,))
    after = db.execute("SELECT version, updated_at FROM users WHERE id = %s", (user_id,)).fetchone()
    assert after is not None and after[0] == 2 and after[1] >= updated


def test_emails_are_unique_case_insensitively_in_the_schema(db: psycopg.Connection[Any]) -> None:
    db.execute("INSERT INTO users (name, email) VALUES ('a', 'Same@x.io')")
    try:
        db.execute("INSERT INTO users (name, email) VALUES ('b', 'same@X.IO')")
    except psycopg.errors.UniqueViolation:
        pass
    else:
        raise AssertionError("duplicate email accepted")
