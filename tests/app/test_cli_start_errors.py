"""Whatever keeps a command from starting is one line on stderr, never a traceback.

Two tables: every unusable setting, through :func:`app.cli.main` in this
process (nothing may start: the database and gunicorn are booby-trapped);
and every database or address problem at start, through the real
``usermgmt`` command.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from psycopg.conninfo import make_conninfo

from app import cli
from app.config import BOUNDS, Bounds

CONFIGURATION, RUNTIME = 2, 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _refusal(stderr: str) -> str:
    """The one line the command printed for the user (log lines are JSON and set aside)."""
    assert "Traceback" not in stderr, stderr
    said = [line for line in stderr.splitlines() if line.strip() and not line.startswith("{")]
    assert len(said) == 1, stderr
    assert said[0].startswith("usermgmt: ")
    return said[0]


# -- every unusable setting -------------------------------------------------------------

def _unusable(name: str, bounds: Bounds) -> list[tuple[str, str]]:
    below = bounds.low / 2 if bounds.low < 1 else bounds.low - 1
    return [(name, value) for value in
            ("nan", "inf", "-inf", "1e400", repr(below), repr(bounds.high * 2), "many")]


SETTINGS_TABLE = [
    *(row for name, bounds in BOUNDS.items() for row in _unusable(name, bounds)),
    ("USERMGMT_LOGIN_RATE_LIMIT", "5/nan"), ("USERMGMT_LOGIN_RATE_LIMIT", "5/inf"),
    ("USERMGMT_LOGIN_RATE_LIMIT", "5/0"), ("DATABASE_URL", "garbage"),
    ("DATABASE_URL", "postgresql://db.example/x?frobnicate=1"), ("USERMGMT_LOG_LEVEL", "LOUD"),
    ("USERMGMT_METRICS_BIND", "9100"), ("USERMGMT_METRICS_BIND", "127.0.0.1:99999"),
    ("USERMGMT_CACHE_ENABLED", "maybe"), ("USERMGMT_MIGRATE_ON_START", "2"),
]


@pytest.fixture
def nothing_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: Any, **__: Any) -> Any:
        raise AssertionError("got as far as starting something")

    monkeypatch.setattr(cli, "_database", refuse)
    monkeypatch.setattr(cli, "_Gunicorn", refuse)


@pytest.mark.parametrize("command", ["serve", "migrate"])
@pytest.mark.parametrize(("name", "value"), SETTINGS_TABLE)
def test_an_unusable_setting_is_one_line_and_exit_status_2(
    nothing_starts: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
    tmp_path: Path, command: str, name: str, value: str,
) -> None:
    monkeypatch.setenv("USERMGMT_DATA_DIR", str(tmp_path))
    monkeypatch.setenv(name, value)
    argv = [command] if command == "migrate" else [command, "--bind", f"127.0.0.1:{_free_port()}"]
    assert cli.main(argv) == CONFIGURATION
    line = _refusal(capsys.readouterr().err)
    assert line.startswith(f"usermgmt: configuration error: {name}")
    if name in BOUNDS:
        assert BOUNDS[name].describe() in line


def test_a_metrics_bind_on_the_api_port_is_one_line(
    nothing_starts: None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    port = _free_port()
    monkeypatch.setenv("USERMGMT_METRICS_BIND", f"127.0.0.1:{port}")
    assert cli.main(["serve", "--bind", f"127.0.0.1:{port}"]) == CONFIGURATION
    assert "USERMGMT_METRICS_BIND must use another port" in _refusal(capsys.readouterr().err)


# -- every problem at start, through the real command -------------------------------------

def usermgmt(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "app.cli", *argv],
                          env={**os.environ, "USERMGMT_LOG_LEVEL": "WARNING", **env},
                          capture_output=True, text=True, timeout=60, check=False)


def _with(url: str, **changes: str) -> str:
    return make_conninfo(url, **changes)


START_TABLE: list[tuple[str, dict[str, str], list[str], int, str]] = [
    # (row id, environment ({url} = the test database), arguments, exit status, said)
    ("malformed url", {"DATABASE_URL": "garbage"}, ["serve"], CONFIGURATION,
     "DATABASE_URL is not a PostgreSQL URL"),
    ("malformed url, migrate", {"DATABASE_URL": "garbage"}, ["migrate"], CONFIGURATION,
     "DATABASE_URL is not a PostgreSQL URL"),
    ("connection refused", {"DATABASE_URL": "postgresql://postgres@127.0.0.1:{closed}/postgres"},
     ["serve"], RUNTIME, "Connection refused"),
    ("connection refused, migrate",
     {"DATABASE_URL": "postgresql://postgres@127.0.0.1:{closed}/postgres"},
     ["migrate"], RUNTIME, "Connection refused"),
    ("missing database", {"DATABASE_URL": "{url:dbname=usermgmt_no_such_database}"}, ["serve"],
     RUNTIME, 'database "usermgmt_no_such_database" does not exist'),
    ("missing database, migrate", {"DATABASE_URL": "{url:dbname=usermgmt_no_such_database}"},
     ["migrate"], RUNTIME, 'database "usermgmt_no_such_database" does not exist'),
    ("authentication failure", {"DATABASE_URL": "{url:user=usermgmt_no_such_role}"}, ["serve"],
     RUNTIME, "authentication failed"),
    ("infinite session ttl", {"USERMGMT_SESSION_TTL": "inf"}, ["serve"], CONFIGURATION,
     "USERMGMT_SESSION_TTL must be a number from 1 to 31,536,000"),
    ("nan cache ttl", {"USERMGMT_CACHE_TTL": "nan"}, ["serve"], CONFIGURATION,
     "USERMGMT_CACHE_TTL"),
    ("infinite request timeout", {"USERMGMT_REQUEST_TIMEOUT": "inf"}, ["serve"], CONFIGURATION,
     "USERMGMT_REQUEST_TIMEOUT"),
    ("more connections than the database allows",
     {"DATABASE_URL": "{url}", "USERMGMT_DB_WORKERS": "150"}, ["serve", "--workers", "2"],
     CONFIGURATION, "= 304 database connections, but the database allows"),
    ("data directory is a file", {"DATABASE_URL": "{url}", "USERMGMT_DATA_DIR": "{file}"},
     ["serve"], RUNTIME, "cannot prepare the metrics directory"),
]


@pytest.mark.parametrize(("env", "argv", "status", "said"),
                         [row[1:] for row in START_TABLE], ids=[row[0] for row in START_TABLE])
def test_a_database_or_start_problem_is_one_line_and_a_nonzero_status(
    database_url: str, tmp_path: Path, env: dict[str, str], argv: list[str], status: int,
    said: str,
) -> None:
    regular_file = tmp_path / "a-file"
    regular_file.write_text("")
    values = {"url": database_url, "closed": str(_free_port()), "file": str(regular_file)}
    filled = {}
    for key, template in env.items():
        if template.startswith("{url:"):
            option, _, value = template[5:-1].partition("=")
            filled[key] = _with(database_url, **{option: value})
        else:
            filled[key] = template.format(**values)
    filled.setdefault("USERMGMT_DATA_DIR", str(tmp_path / "var"))
    if argv[0] == "serve":
        argv = [*argv, "--bind", f"127.0.0.1:{_free_port()}"]
    done = usermgmt(argv, filled)
    assert done.returncode == status, done.stderr
    assert said in _refusal(done.stderr)


def test_a_port_in_use_is_found_before_the_embedded_database_starts(embedded_data_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = usermgmt(["serve", "--bind", f"127.0.0.1:{port}"],
                        {"DATABASE_URL": "", "USERMGMT_DATA_DIR": str(embedded_data_dir)})
    assert done.returncode == RUNTIME
    assert _refusal(done.stderr) == (f"usermgmt: cannot listen on 127.0.0.1:{port}: "
                                     "Address already in use")
    assert not (embedded_data_dir / "pgdata").exists()


def test_the_database_error_never_shows_the_password(database_url: str) -> None:
    url = _with(database_url, user="usermgmt_no_such_role", password="s3cret-pw")
    done = usermgmt(["migrate"], {"DATABASE_URL": url})
    assert done.returncode == RUNTIME
    assert "s3cret-pw" not in done.stderr + done.stdout


def test_an_embedded_database_that_cannot_start_is_one_line(embedded_data_dir: Path) -> None:
    pgdata = embedded_data_dir / "pgdata"
    pgdata.mkdir(parents=True)
    (pgdata / "PG_VERSION").write_text("16\n")  # a cluster that is not one
    if os.geteuid() == 0:
        import shutil

        for path in (pgdata, pgdata / "PG_VERSION"):
            shutil.chown(path, "pgserver", "pgserver")
    done = usermgmt(["migrate"], {"DATABASE_URL": "", "USERMGMT_DATA_DIR": str(embedded_data_dir)})
    assert done.returncode == RUNTIME
    assert "pg_ctl start failed" in _refusal(done.stderr)

