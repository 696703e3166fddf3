"""The embedded PostgreSQL: starts, keeps data, refuses a second owner."""

from __future__ import annotations

import os
from pathlib import Path

import psycopg
import pytest

from app.embedded_db import DataDirInUse, EmbeddedPostgres


@pytest.mark.slow
def test_data_survives_a_restart_and_a_second_owner_is_refused(embedded_data_dir: Path) -> None:
    server = EmbeddedPostgres(embedded_data_dir)
    url = server.start()
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (x int)")
            conn.execute("INSERT INTO kept VALUES (42)")
        with pytest.raises(DataDirInUse, match="in use"):
            EmbeddedPostgres(embedded_data_dir).start()
    finally:
        server.stop()
    assert not server.is_running()
    again = EmbeddedPostgres(embedded_data_dir)
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


def test_a_forked_child_never_stops_the_server_nor_lets_go_of_the_data_dir(
    embedded_postgres: EmbeddedPostgres | None,
) -> None:
    """What a gunicorn worker does when it exits through code it inherited from the master."""
    if embedded_postgres is None:
        pytest.skip("needs the embedded PostgreSQL (TEST_DATABASE_URL is set)")
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 1
        try:
            embedded_postgres.stop()
            status = 0
        finally:
            os._exit(status)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert embedded_postgres.is_running()
    with pytest.raises(DataDirInUse):
        EmbeddedPostgres(embedded_postgres.data_dir).start()
    with psycopg.connect(embedded_postgres.url(), autocommit=True) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
