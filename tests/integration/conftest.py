"""Integration fixtures: a real ``usermgmt serve`` on the test database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.integration.server import Server


@pytest.fixture
def server(database_url: str, db: psycopg.Connection[Any], tmp_path: Path) -> Iterator[Server]:
    """``usermgmt serve`` with 2 workers against the test database."""
    env = {"DATABASE_URL": database_url, "USERMGMT_DATA_DIR": str(tmp_path / "var"),
           "USERMGMT_DB_WORKERS": "2"}
    with Server(env, tmp_path / "server.log", workers=2) as running:
        yield running
