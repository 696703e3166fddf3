"""The real server: gunicorn, 2 workers, real sockets, real PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
import requests

from tests.integration.server import Server, usermgmt_command
from tests.openapi_check import assert_conforms

pytestmark = pytest.mark.integration


def call(method: str, server: Server, path: str, **kwargs: object) -> requests.Response:
    response = server.http.request(method, server.url + path, timeout=10, **kwargs)  # type: ignore[arg-type]
    assert_conforms(method, path, response)
    return response


def test_crud_over_real_sockets(server: Server) -> None:
    created = call("POST", server, "/api/users", json={"name": "Ada", "email": "ada@example.com"})
    assert created.status_code == 201
    user = created.json()
    path = created.headers["Location"]
    assert call("GET", server, path).json() == user
    updated = call("PATCH", server, path, json={"name": "Ada L."},
                   headers={"Content-Type": "application/merge-patch+json",
                            "If-Match": created.headers["ETag"]})
    assert updated.status_code == 200 and updated.json()["version"] == 2
    listed = call("GET", server, "/api/users?limit=10")
    assert [u["id"] for u in listed.json()["data"] if u["role"] == "member"] == [user["id"]]
    replaced = call("PUT", server, path, json={"name": "Ada", "email": "ada@example.org"})
    assert replaced.json()["email"] == "ada@example.org"
    assert call("DELETE", server, path).status_code == 204
    assert call("GET", server, path).status_code == 404


def test_errors_over_real_sockets(server: Server) -> None:
    assert call("POST", server, "/api/users", data=b"{", headers={"Content-Type": "application/json"}).status_code == 400
    assert call("POST", server, "/api/users", data=b"x", headers={"Content-Type": "text/plain"}).status_code == 415
    assert call("DELETE", server, "/api/users").status_code == 405
    assert call("GET", server, "/api/users?limit=1000").status_code == 422
    assert call("GET", server, "/nope").status_code == 404


def test_a_chunked_body_over_64_kib_is_cut_off_with_413(server: Server) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "'
        for _ in range(80):
            yield b"x" * 1024
        yield b'", "email": "a@example.com"}'

    response = server.http.post(server.url + "/api/users", data=chunks(), timeout=10,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.headers["Content-Type"] == "application/problem+json"


def test_a_declared_body_over_64_kib_is_refused_before_reading(server: Server) -> None:
    response = server.http.post(server.url + "/api/users", data=b"x" * (70 * 1024), timeout=10,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 413


def test_many_concurrent_requests_through_both_workers(server: Server) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def create(i: int) -> int:
        return server.http.post(server.url + "/api/users", timeout=10,
                             json={"name": f"u{i}", "email": f"u{i}@example.com"}).status_code

    with ThreadPoolExecutor(16) as pool:
        statuses = list(pool.map(create, range(200)))
    assert statuses == [201] * 200
    page = server.http.get(server.url + "/api/users?limit=100", timeout=10).json()
    assert len(page["data"]) == 100 and page["next"]


@pytest.mark.slow
def test_embedded_database_serve_keeps_data_and_refuses_a_second_server(
    tmp_path: Path, embedded_data_dir: Path
) -> None:
    env = {"USERMGMT_DATA_DIR": str(embedded_data_dir), "DATABASE_URL": "", "USERMGMT_DB_WORKERS": "2"}
    first = Server(env, tmp_path / "first.log", workers=2)
    with first:
        created = first.http.post(first.url + "/api/users", timeout=10,
                                json={"name": "Kept", "email": "kept@example.com"})
        assert created.status_code == 201
        second = subprocess.run(
            [*usermgmt_command(), "serve", "--bind", "127.0.0.1:1"], env={**os.environ, **env},
            capture_output=True, text=True, timeout=60, check=False,
        )
        assert second.returncode != 0
        assert "in use" in second.stderr
        assert first.terminate() == 0
    assert not _postgres_running_on(embedded_data_dir)
    with Server(env, tmp_path / "again.log", workers=2) as again:
        listed = again.http.get(again.url + "/api/users", timeout=10).json()
        # Both servers bootstrapped an admin of their own; the member was kept.
        assert [u["email"] for u in listed["data"] if u["role"] == "member"] == ["kept@example.com"]
        again.process.send_signal(signal.SIGINT)  # type: ignore[union-attr]
        assert again.process.wait(40) == 0  # type: ignore[union-attr]
    assert not _postgres_running_on(embedded_data_dir)


def _postgres_running_on(data_dir: Path) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        running = [p for p in psutil.process_iter(["cmdline"])
                   if any(str(data_dir) in part for part in (p.info["cmdline"] or []))]
        if not running:
            return False
        time.sleep(0.1)
    return True
