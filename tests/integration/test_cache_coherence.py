"""Two separately started servers on one database stay coherent."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.integration.server import Server

pytestmark = pytest.mark.integration


@pytest.fixture
def two_servers(database_url: str, db: psycopg.Connection[Any], tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    env = {"DATABASE_URL": database_url, "USERMGMT_DB_WORKERS": "2"}
    with Server({**env, "USERMGMT_DATA_DIR": str(tmp_path / "a")}, tmp_path / "a.log") as a, \
         Server({**env, "USERMGMT_DATA_DIR": str(tmp_path / "b")}, tmp_path / "b.log") as b:
        yield a, b


def warm(server: Server, path: str, times: int = 8) -> dict[str, Any]:
    """Read enough times that every worker process has the row cached."""
    body: dict[str, Any] = {}
    for _ in range(times):
        response = server.http.get(server.url + path, timeout=5)
        assert response.status_code == 200
        body = response.json()
    return body


def version_within(server: Server, path: str, version: int, seconds: float) -> float | None:
    """Seconds until every read through ``server`` shows ``version``; None if never."""
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        if all(server.http.get(server.url + path, timeout=5).json()["version"] == version for _ in range(4)):
            return time.monotonic() - started
        time.sleep(0.01)
    return None


def test_an_update_through_one_server_is_visible_through_the_other_within_a_second(
    two_servers: tuple[Server, Server],
) -> None:
    a, b = two_servers
    created = a.http.post(a.url + "/api/users", json={"name": "Shared", "email": "s@example.com"}, timeout=5)
    path = created.headers["Location"]
    time.sleep(0.2)  # let the insert's NOTIFY land before warming the caches
    assert warm(b, path)["version"] == 1
    patched = a.http.patch(a.url + path, json={"name": "Changed on A"}, timeout=5)
    assert patched.json()["version"] == 2
    assert version_within(b, path, 2, 1.0) is not None
    assert b.http.get(b.url + path, timeout=5).json()["name"] == "Changed on A"


def test_an_update_made_with_sql_is_visible_through_both_servers(
    two_servers: tuple[Server, Server], db: psycopg.Connection[Any]
) -> None:
    a, b = two_servers
    created = a.http.post(a.url + "/api/users", json={"name": "Shared", "email": "q@example.com"}, timeout=5)
    path = created.headers["Location"]
    time.sleep(0.2)
    warm(a, path)
    warm(b, path)
    db.execute("UPDATE users SET name = 'From psql' WHERE id = %s", (created.json()["id"],))
    assert version_within(a, path, 2, 1.0) is not None
    assert version_within(b, path, 2, 1.0) is not None
    deleted = db.execute("DELETE FROM users WHERE id = %s RETURNING id", (created.json()["id"],)).fetchone()
    assert deleted is not None
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline and b.http.get(b.url + path, timeout=5).status_code != 404:
        time.sleep(0.01)
    assert a.http.get(a.url + path, timeout=5).status_code == 404
    assert b.http.get(b.url + path, timeout=5).status_code == 404
