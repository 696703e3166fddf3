"""The embedded PostgreSQL: starts, keeps data, refuses a second owner."""

from __future__ import annotations

from pathlib import Path

import psycopg
import pytest

from app.embedded_db import DataDirInUse, EmbeddedPostgres


@pytest.mark.slow
def test_data_survives_a_restart_and_a_second_owner_is_refused(tmp_path: Path) -> None:
    server = EmbeddedPostgres(tmp_path / "d")
    url = server.start()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (x int)")
            conn.execute("INSERT INTO kept VALUES (42)")
        with pytest.raises(DataDirInUse, match="in use"):
            EmbeddedPostgres(tmp_path / "d").start()
    finally:
        server.stop()
    assert not server.is_running()
    again = EmbeddedPostgres(tmp_path / "d")
    url = again.start()
    try:
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT x FROM kept").fetchone() == (42,)
    finally:
        again.stop()


def test_stop_server_and_start_server_keep_the_data_dir_locked(embedded_postgres: EmbeddedPostgres | None) -> None:
    if embedded_postgres is None:
        pytest.skip("needs the embedded PostgreSQL (TEST_DATABASE_URL is set)")
    assert embedded_postgres.is_running()
    with pytest.raises(DataDirInUse):
        EmbeddedPostgres(embedded_postgres.data_dir).start()
