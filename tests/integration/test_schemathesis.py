"""Schemathesis against a real ``usermgmt serve``: every check, stateful included.

``st run`` (the CLI, as a subprocess) reads ``/openapi.json`` from the
running server and generates requests for every operation: positive and
negative data, boundary values, undeclared methods, missing and invalid
credentials, and chains of calls that follow the document's links (create,
then read, update, delete the same user). It must find nothing: no 5xx, no
status, header or body outside the document, no operation that ignores
its authentication.

Bounded: ``--max-examples`` per operation, a fixed seed, and a subprocess
timeout well inside the test's. See ``schemathesis.toml`` beside this file
for the (small, explained) configuration.

The server runs two worker processes, as ``usermgmt serve`` does by
default: a user changed or deleted through one worker is never served old
by the other (the host's shared stamps), so the stateful checks hold
whichever worker answers. Its login limits are raised: the fuzzer's random
logins from 127.0.0.1 would otherwise lock its own re-login out, and it
logs in again after every logout it tests, faster than the
successful-login limit allows; the limits have tests of their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.integration.server import Server

pytest.importorskip("schemathesis", reason="schemathesis is not installed (pip install -e '.[test]')")

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONFIG = Path(__file__).with_name("schemathesis.toml")
MAX_EXAMPLES = 25
RUN_TIMEOUT = 300


@pytest.fixture
def fuzzed_server(database_url: str, db: psycopg.Connection[Any], tmp_path: Path) -> Iterator[Server]:
    env = {"DATABASE_URL": database_url, "USERMGMT_DATA_DIR": str(tmp_path / "var"),
           "USERMGMT_DB_WORKERS": "2", "USERMGMT_LOGIN_RATE_LIMIT": "100000",
           "USERMGMT_LOGIN_SUCCESS_LIMIT": "100000",
           "USERMGMT_LOG_LEVEL": "WARNING"}
    with Server(env, tmp_path / "server.log", workers=2) as running:
        yield running


def st_command() -> list[str]:
    script = Path(sys.executable).with_name("st")
    return [str(script)] if script.exists() else [sys.executable, "-m", "schemathesis.cli"]


@pytest.mark.timeout(RUN_TIMEOUT + 90)
def test_schemathesis_finds_nothing_with_every_check(fuzzed_server: Server, tmp_path: Path) -> None:
    argv = [*st_command(), "--config-file", str(CONFIG), "--no-color", "run",
            fuzzed_server.url + "/openapi.json", "--checks", "all",
            "--max-examples", str(MAX_EXAMPLES), "--seed", "20261127", "--workers", "1",
            "--request-timeout", "20", "--output-truncate", "true"]
    env = {**os.environ, "USERMGMT_ST_EMAIL": fuzzed_server.admin.email,
           "USERMGMT_ST_PASSWORD": fuzzed_server.admin.password}
    try:
        done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=RUN_TIMEOUT, check=False)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"st run did not finish within {RUN_TIMEOUT} s:\n{exc.stdout!s}"[-6000:])
    report = done.stdout + done.stderr
    assert done.returncode == 0, report[-12000:]
    assert "14 selected / 14 total" in report, report[-3000:]
    assert " passed" in report, report[-3000:]
