"""The usermgmt command line."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from typing import Any

import psycopg
import pytest
from argon2 import PasswordHasher

from app.bootstrap import read_password
from app.cli import build_parser


def test_the_gunicorn_master_never_imports_prometheus_client() -> None:
    """Metrics created in the master would appear in /metrics as a phantom process."""
    code = ("import sys, app.cli, app.gunicorn_conf; app.cli.build_parser(); "
            "sys.exit('prometheus_client' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False, timeout=60).returncode == 0


def test_serve_defaults() -> None:
    args = build_parser().parse_args(["serve"])
    assert args.bind == "127.0.0.1:8000"
    assert args.workers >= 1


@pytest.mark.parametrize("argv", [
    ["serve", "--bind", "nope"], ["serve", "--bind", "127.0.0.1:65536"],
    ["serve", "--workers", "0"], ["serve", "--workers", "257"], ["serve", "--workers", "2.5"],
    ["serve", "--workers", "x"], ["serve", "--threads", "4"],
    ["chaos", "--every", "nan"], ["chaos", "--every", "0"], ["chaos", "--duration", "inf"],
    ["chaos", "--jitter", "1.5"], ["chaos", "--jitter", "nan"], ["frobnicate"],
])
def test_bad_arguments_are_refused(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        build_parser().parse_args(argv)
    assert exc.value.code == 2


# -- create-admin ------------------------------------------------------------------

def create_admin(database_url: str, password: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run([sys.executable, "-m", "app.cli", "create-admin", *args], env=env,
                          input=password, capture_output=True, text=True, timeout=90, check=False)


def test_create_admin_takes_the_password_from_stdin_and_stores_only_its_argon2id_hash(
    database_url: str, db: psycopg.Connection[Any]
) -> None:
    done = create_admin(database_url, "the first admin pw\n", "--email", "Root@Example.com",
                        "--name", "Root")
    assert done.returncode == 0, done.stderr
    assert "created admin Root@Example.com" in done.stdout
    assert "the first admin pw" not in done.stdout + done.stderr
    row = db.execute("SELECT name, role, password_hash FROM users WHERE email = 'Root@Example.com'").fetchone()
    assert row is not None and row[:2] == ("Root", "admin")
    assert row[2].startswith("$argon2id$") and "the first admin pw" not in row[2]
    assert PasswordHasher().verify(row[2], "the first admin pw")


@pytest.mark.parametrize(("password", "args", "status", "message"), [
    ("too short\n", ["--email", "a@example.com", "--name", "A"], 2, "password"),
    ("long enough password\n", ["--email", "not-an-email", "--name", "A"], 2, "email"),
    ("", ["--email", "a@example.com", "--name", "A"], 2, "no password"),
])
def test_create_admin_refuses_what_the_api_would_refuse(
    database_url: str, db: psycopg.Connection[Any], password: str, args: list[str],
    status: int, message: str
) -> None:
    done = create_admin(database_url, password, *args)
    assert done.returncode == status and message in done.stderr
    assert db.execute("SELECT count(*) FROM users").fetchone() == (0,)


def test_create_admin_refuses_an_email_that_is_taken(database_url: str, db: psycopg.Connection[Any]) -> None:
    db.execute("INSERT INTO users (name, email) VALUES ('Taken', 'TAKEN@example.com')")
    done = create_admin(database_url, "long enough password\n", "--email", "taken@example.com",
                        "--name", "A")
    assert done.returncode == 1 and "already exists" in done.stderr
    assert db.execute("SELECT role FROM users").fetchall() == [("member",)]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_password_is_prompted_twice_and_must_match() -> None:
    answers = iter(["same password", "same password", "one", "other"])
    prompts: list[str] = []

    def prompt(text: str) -> str:
        prompts.append(text)
        return next(answers)

    assert read_password(_Terminal(), prompt) == "same password"
    with pytest.raises(ValueError, match="do not match"):
        read_password(_Terminal(), prompt)
    assert prompts == ["Password: ", "Password (again): "] * 2


def test_from_a_pipe_the_first_line_is_the_password_with_its_spaces() -> None:
    assert read_password(io.StringIO("  spaced out password  \r\nignored\n")) == "  spaced out password  "


def test_gunicorn_refuses_long_request_lines_and_many_or_large_headers() -> None:
    from app import gunicorn_conf

    assert gunicorn_conf.limit_request_line == 4094
    assert gunicorn_conf.limit_request_fields == 50
    assert gunicorn_conf.limit_request_field_size == 4096
