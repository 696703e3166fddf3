"""The FastAPI reference answers exactly as the Falcon reference does.

Both run as real servers (gunicorn, one worker each) on the test database,
and every answer is compared: bodies, ETags, Link headers, statuses and
problem bodies of GET, list, create, conditional update and delete.
The test extra installs what the FastAPI reference needs.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from perf.servers import (
    ServerProcess,
    fastapi_command,
    free_port,
    reference_command,
)

pytestmark = pytest.mark.integration

Answer = tuple[int, dict[str, str], Any]


def _request(base: str, method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> Answer:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json",
                                              **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, head, raw = response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        status, head, raw = error.code, error.headers, error.read()
    wanted = ("etag", "link", "location", "content-type")
    kept = {k.lower(): v for k, v in head.items() if k.lower() in wanted}
    return status, kept, json.loads(raw) if raw else None


@pytest.fixture
def servers(db: psycopg.Connection[tuple[object, ...]], database_url: str,
            tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(Falcon reference URL, FastAPI reference URL) over users 1..60."""
    db.execute("INSERT INTO users (name, email) SELECT 'User ' || g, 'user' || g ||"
               " '@example.com' FROM generate_series(1, 60) AS g")
    env = {"DATABASE_URL": database_url, "REFERENCE_POOL_SIZE": "2", "REFERENCE_AUTH": "0"}
    falcon_port, fastapi_port = free_port(), free_port()
    started = [ServerProcess("reference", reference_command(falcon_port, 1, 2), env,
                             falcon_port, tmp_path / "reference.log", 1),
               ServerProcess("fastapi", fastapi_command(fastapi_port, 1), env, fastapi_port,
                             tmp_path / "fastapi.log", 1)]
    try:
        for server in started:
            server.start()
        for server in started:
            server.wait_ready()
        yield started[0].url, started[1].url
    finally:
        for server in started:
            server.stop()


@pytest.mark.timeout(180)
def test_fastapi_answers_like_the_falcon_reference(servers: tuple[str, str]) -> None:
    falcon, fastapi = servers

    def both(method: str, path: str, body: Any = None,
             headers: dict[str, str] | None = None) -> Answer:
        ours = _request(fastapi, method, path, body, headers)
        assert ours == _request(falcon, method, path, body, headers), (method, path)
        return ours

    status, head, user = both("GET", "/api/users/7")
    assert status == 200
    assert head["etag"] == f'"7-{user["version"]}"'
    assert set(user) == {"id", "name", "email", "role", "version", "inserted_at", "updated_at"}
    assert user["inserted_at"].endswith("Z")
    assert both("GET", "/api/users/7", headers={"If-None-Match": head["etag"]})[0] == 304
    assert both("GET", "/api/users/999")[0] == 404

    status, head, page = both("GET", "/api/users?limit=5")
    assert [u["id"] for u in page["data"]] == [1, 2, 3, 4, 5]
    assert 'rel="next"' in head["link"]
    assert both("GET", f"/api/users?limit=5&after={page['next']}")[2]["data"][0]["id"] == 6
    assert both("GET", "/api/users?after=garbage")[0] == 422

    # Writes: each server its own user, then the same answers about both.
    for base, user_id in ((falcon, 10), (fastapi, 11)):
        assert _request(base, "PATCH", f"/api/users/{user_id}", {"name": "Renamed"},
                        {"If-Match": '"1-1"'})[0] == 412
        status, _, patched = _request(base, "PATCH", f"/api/users/{user_id}",
                                      {"name": "Renamed"}, {"If-Match": "*"})
        assert (status, patched["name"], patched["version"]) == (200, "Renamed", 2)
        assert _request(base, "DELETE", f"/api/users/{user_id}")[0] == 204
        assert _request(base, "DELETE", f"/api/users/{user_id}")[0] == 404
    created = [_request(base, "POST", "/api/users", {"name": "New", "email": email})
               for base, email in ((falcon, "a@example.com"), (fastapi, "b@example.com"))]
    assert [(c[0], c[1]["location"]) for c in created] == [
        (201, f"/api/users/{c[2]['id']}") for c in created]
    status, head, problem = both("POST", "/api/users", {"name": "Dup", "email": "a@example.com"})
    assert (status, head["content-type"], problem["status"]) == (
        409, "application/problem+json", 409)
    assert both("POST", "/api/users", {"name": "No email"})[0] == 422
