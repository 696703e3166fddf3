"""Read-your-writes across the worker processes of one real ``usermgmt serve``.

Every request goes on a new connection, so it lands on whichever worker
accepts it: a read right after a write must not be served from another
worker's cache, whatever that worker cached before.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import psutil
import psycopg
import pytest
import requests

from tests.integration.server import Server
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

ROUNDS = 80
LOGOUT_ROUNDS = 40  # each costs a login's Argon2 (~0.2 s of CPU)
WARM_READS = 3  # reads before each write, so that both workers cache the row


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[Server]:
    workdir = tmp_path_factory.mktemp("ryw")
    # The logout test logs the admin in ROUNDS times within a minute: past
    # the successful-login limit, which has tests of its own.
    env = {"DATABASE_URL": database_url, "USERMGMT_DATA_DIR": str(workdir / "var"),
           "USERMGMT_LOG_LEVEL": "WARNING", "USERMGMT_LOGIN_SUCCESS_LIMIT": "1000"}
    with Server(env, workdir / "server.log", workers=2) as running:
        yield running


def fresh(method: str, url: str, headers: dict[str, str], **kwargs: Any) -> requests.Response:
    """One request on a connection of its own."""
    return requests.request(method, url, headers={**headers, "Connection": "close"},
                            timeout=10, **kwargs)


def test_a_read_after_an_update_or_a_delete_never_sees_the_old_row(server: Server) -> None:
    auth = dict(server.http.headers)
    stale = []
    for n in range(ROUNDS):
        created = fresh("POST", server.url + "/api/users", auth,
                        json={"name": "Before", "email": f"ryw-{n}@example.com"})
        assert created.status_code == 201
        url = f"{server.url}/api/users/{created.json()['id']}"
        for _ in range(WARM_READS):
            assert fresh("GET", url, auth).json()["name"] == "Before"
        patched = fresh("PATCH", url, auth, json={"name": "After"})
        assert patched.status_code == 200
        if fresh("GET", url, auth).json()["version"] != patched.json()["version"]:
            stale.append(("update", n))
        for _ in range(WARM_READS):
            fresh("GET", url, auth)
        assert fresh("DELETE", url, auth).status_code == 204
        if fresh("GET", url, auth).status_code != 404:
            stale.append(("delete", n))
    assert stale == []


def test_a_token_is_refused_on_every_worker_right_after_its_logout(server: Server) -> None:
    still_accepted = 0
    for _ in range(LOGOUT_ROUNDS):
        login = fresh("POST", server.url + "/api/sessions", {},
                      json={"email": server.admin.email, "password": server.admin.password})
        assert login.status_code == 201
        token = {"Authorization": f"Bearer {login.json()['token']}"}
        for _ in range(WARM_READS):
            assert fresh("GET", server.url + "/api/sessions/current", token).status_code == 200
        assert fresh("DELETE", server.url + "/api/sessions/current", token).status_code == 204
        if fresh("GET", server.url + "/api/sessions/current", token).status_code != 401:
            still_accepted += 1
    assert still_accepted == 0


@pytest.mark.slow
def test_a_worker_killed_in_the_middle_of_writes_leaves_no_stale_read_behind(
        server: Server, database_url: str) -> None:
    auth = dict(server.http.headers)
    ids = []
    for n in range(20):
        created = fresh("POST", server.url + "/api/users", auth,
                        json={"name": "v0", "email": f"killed-{n}@example.com"})
        ids.append(created.json()["id"])
    for user_id in ids:
        for _ in range(WARM_READS):
            fresh("GET", f"{server.url}/api/users/{user_id}", auth)
    stop = threading.Event()

    def write(offset: int) -> None:
        with requests.Session() as http:
            http.headers.update(auth)
            n = 0
            while not stop.is_set():  # bounded by the test's stop below
                user_id = ids[(offset + n) % len(ids)]
                n += 1
                # The killed worker's connections break: that is the point.
                with contextlib.suppress(requests.RequestException):
                    http.patch(f"{server.url}/api/users/{user_id}", json={"name": f"v{n}"},
                               timeout=10)

    writers = [threading.Thread(target=write, args=(i * 5,), daemon=True) for i in range(4)]
    for writer in writers:
        writer.start()
    try:
        time.sleep(1.0)
        assert server.process is not None
        workers = psutil.Process(server.process.pid).children()
        assert len(workers) == 2
        os.kill(workers[0].pid, signal.SIGKILL)
        time.sleep(1.5)
    finally:
        stop.set()
        for writer in writers:
            writer.join(15)
    wait_until(lambda: fresh("GET", server.url + "/readyz", {}).status_code == 200, 10)
    time.sleep(1.0)  # a committed write whose worker died before stamping it: NOTIFY's bound
    with psycopg.connect(database_url) as conn:
        versions: dict[int, int] = dict(conn.execute("SELECT id, version FROM users WHERE id = ANY(%s)",
                                     (ids,)).fetchall())
    stale = []
    for user_id in ids:
        for _ in range(WARM_READS):
            served = fresh("GET", f"{server.url}/api/users/{user_id}", auth).json()["version"]
            if served != versions[user_id]:
                stale.append((user_id, served, versions[user_id]))
    assert stale == []
