"""At least one admin remains on a real server, whatever admins do at once."""

from __future__ import annotations

import secrets
import threading
from typing import Any

import psycopg
import pytest
import requests

from app.sessions_service import hash_token
from tests.integration.server import Server

pytestmark = pytest.mark.integration

RUNS = 20


def admin_with_token(db: psycopg.Connection[Any], email: str) -> tuple[int, str]:
    row = db.execute("INSERT INTO users (name, email, role) VALUES ('Admin', %s, 'admin')"
                     " RETURNING id", (email,)).fetchone()
    assert row is not None
    token = secrets.token_urlsafe(32)
    db.execute("INSERT INTO sessions (token_hash, user_id, expires_at)"
               " VALUES (%s, %s, now() + interval '1 hour')", (hash_token(token), row[0]))
    return int(row[0]), token


def act(server: Server, method: str, barrier: threading.Barrier,
        statuses: dict[int, requests.Response], actor: tuple[int, str],
        target: tuple[int, str]) -> None:
    with requests.Session() as http:  # a connection each: either worker may answer
        barrier.wait(5)
        statuses[actor[0]] = http.request(
            method, f"{server.url}/api/users/{target[0]}", timeout=10,
            headers={"Authorization": f"Bearer {actor[1]}"},
            json={"role": "member"} if method == "PATCH" else None)


@pytest.mark.parametrize("method", ["PATCH", "DELETE"], ids=["demote", "delete"])
def test_two_admins_acting_on_each_other_at_once_on_two_workers_leave_one_admin(
    server: Server, db: psycopg.Connection[Any], method: str
) -> None:
    conflicts = 0
    for run in range(RUNS):
        a = admin_with_token(db, f"a{run}-{method}@example.com")
        b = admin_with_token(db, f"b{run}-{method}@example.com")
        db.execute("UPDATE users SET role = 'member' WHERE role = 'admin' AND id <> ALL(%s)",
                   ([a[0], b[0]],))
        barrier = threading.Barrier(2)
        statuses: dict[int, requests.Response] = {}
        threads = [threading.Thread(target=act, args=(server, method, barrier, statuses, *pair))
                   for pair in ((a, b), (b, a))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(15)
        left = [row[0] for row in db.execute("SELECT id FROM users WHERE role = 'admin'")]
        codes = sorted(r.status_code for r in statuses.values())
        assert len(left) == 1, (run, codes)
        refused = 404 if method == "PATCH" else 401
        assert codes in ([200, 409], [204, 409], [200, refused], [204, refused]), (run, codes)
        for response in statuses.values():
            if response.status_code == 409:
                conflicts += 1
                assert response.json()["type"] == "urn:usermgmt:problem:last-admin"
    assert conflicts >= 1, "the database never had to decide"
