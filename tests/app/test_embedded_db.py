"""The embedded PostgreSQL: starts, keeps data, refuses a second owner."""

from __future__ import annotations

import os
import pwd
import signal
import stat
import tempfile
from pathlib import Path

import psycopg
import pytest

from app.embedded_db import DataDirInUse, EmbeddedPostgres, EmbeddedPostgresError


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


# -- private to its owner --------------------------------------------------------------

as_root_only = pytest.mark.skipif(os.geteuid() != 0, reason="switching users needs root")


def connect_as(user: str, url: str) -> str:
    """Try to connect to ``url`` as the local ``user``: "connected", or why not.

    In a forked child that drops to that user (its uid, gid and no other
    groups), so that no interpreter or library path needs to be readable
    by it.
    """
    account = pwd.getpwnam(user)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            signal.alarm(30)  # never outlive the test
            os.close(read_end)
            os.setgroups([])
            os.setgid(account.pw_gid)
            os.setuid(account.pw_uid)
            try:
                with psycopg.connect(url, connect_timeout=5):
                    answer = "connected"
            except psycopg.Error as exc:
                answer = str(exc) or type(exc).__name__
            os.write(write_end, answer.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        answer = pipe.read().decode()
    os.waitpid(pid, 0)
    return answer


@as_root_only
def test_an_unprivileged_local_user_cannot_connect(embedded_postgres: EmbeddedPostgres | None) -> None:
    if embedded_postgres is None:
        pytest.skip("needs the embedded PostgreSQL (TEST_DATABASE_URL is set)")
    refused = connect_as("nobody", embedded_postgres.url())
    assert refused != "connected" and "Permission denied" in refused


@as_root_only
def test_even_the_servers_own_account_is_refused_by_peer_authentication(
    embedded_postgres: EmbeddedPostgres | None,
) -> None:
    """The socket directory is the server account's; the authentication is the second lock."""
    if embedded_postgres is None:
        pytest.skip("needs the embedded PostgreSQL (TEST_DATABASE_URL is set)")
    refused = connect_as("pgserver", embedded_postgres.url())
    assert refused != "connected" and "Peer authentication failed" in refused


def test_no_trust_authentication_and_no_tcp_listener(embedded_postgres: EmbeddedPostgres | None) -> None:
    if embedded_postgres is None:
        pytest.skip("needs the embedded PostgreSQL (TEST_DATABASE_URL is set)")
    with psycopg.connect(embedded_postgres.url(), autocommit=True) as conn:
        rules = conn.execute("SELECT type, auth_method FROM pg_hba_file_rules").fetchall()
        assert rules == [("local", "peer")]
        assert conn.execute("SHOW listen_addresses").fetchone() == ("",)
    socket_dir = embedded_postgres.socket_dir.stat()
    assert stat.S_IMODE(socket_dir.st_mode) == 0o700


@pytest.mark.slow
def test_a_socket_moved_out_of_a_long_data_dir_stays_private(embedded_data_dir: Path) -> None:
    deep = embedded_data_dir / ("x" * 100)
    server = EmbeddedPostgres(deep)
    assert server.socket_dir.parent == Path(tempfile.gettempdir())
    # As an older version left it: world-writable, sticky.
    server.socket_dir.mkdir()
    server.socket_dir.chmod(0o1777)
    server.start()
    try:
        found = server.socket_dir.lstat()
        assert stat.S_ISDIR(found.st_mode) and stat.S_IMODE(found.st_mode) == 0o700
        expected_owner = pwd.getpwnam("pgserver").pw_uid if os.geteuid() == 0 else os.geteuid()
        assert found.st_uid == expected_owner
        with psycopg.connect(server.url()) as conn:
            assert conn.execute("SELECT 1").fetchone() == (1,)
        if os.geteuid() == 0:
            assert "Permission denied" in connect_as("nobody", server.url())
    finally:
        server.stop()
    assert not server.socket_dir.exists()


@as_root_only
def test_a_socket_directory_someone_else_made_is_refused(embedded_data_dir: Path) -> None:
    server = EmbeddedPostgres(embedded_data_dir / ("x" * 100))
    squatter = pwd.getpwnam("nobody")
    server.socket_dir.mkdir(mode=0o777)
    try:
        os.chown(server.socket_dir, squatter.pw_uid, squatter.pw_gid)
        with pytest.raises(EmbeddedPostgresError, match="not a directory of this service's"):
            server.start()
        assert not server.is_running()
    finally:
        server.socket_dir.rmdir()


@as_root_only
def test_a_data_dir_the_database_user_cannot_reach_fails_saying_what_to_do_and_changes_nothing(
    embedded_data_dir: Path,
) -> None:
    closed = embedded_data_dir.parent / "closed"
    closed.mkdir(mode=0o700)
    with pytest.raises(EmbeddedPostgresError) as refused:
        EmbeddedPostgres(closed / "var").start()
    message = str(refused.value)
    assert f"cannot enter {closed} " in message and f"chmod o+x {closed}" in message
    assert "\n" not in message
    assert stat.S_IMODE(closed.stat().st_mode) == 0o700
    assert stat.S_IMODE(embedded_data_dir.parent.stat().st_mode) == 0o711


@pytest.mark.slow
def test_a_cluster_made_with_trust_authentication_is_closed_at_its_next_start(
    embedded_data_dir: Path,
) -> None:
    server = EmbeddedPostgres(embedded_data_dir)
    server.start()
    server.stop()
    (server.pgdata / "pg_hba.conf").write_text("local all all trust\n")  # as older versions made it
    server.start()
    try:
        with psycopg.connect(server.url()) as conn:
            assert conn.execute("SELECT auth_method FROM pg_hba_file_rules").fetchall() == [("peer",)]
    finally:
        server.stop()
