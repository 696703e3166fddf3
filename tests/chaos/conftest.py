"""Chaos fixtures: real servers with the kill switch on."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from perf.harness import Server

ServerFactory = Callable[..., Server]


@pytest.fixture
def start_server(database_url: str, db: psycopg.Connection[Any], tmp_path: Path) -> Iterator[ServerFactory]:
    """Start ``usermgmt serve`` with USERMGMT_CHAOS=1 and the given settings."""
    started: list[Server] = []

    def start(workers: int = 2, url: str | None = None, **env: str) -> Server:
        settings = {"DATABASE_URL": url or database_url, "USERMGMT_CHAOS": "1",
                    "USERMGMT_DATA_DIR": str(tmp_path / f"var{len(started)}"),
                    "USERMGMT_LOG_LEVEL": "WARNING", **env}
        server = Server(settings, tmp_path / f"server{len(started)}.log", workers=workers)
        started.append(server)
        return server.start()

    yield start
    for server in started:
        server.stop()
