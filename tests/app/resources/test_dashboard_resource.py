"""The dashboard over HTTP: an anonymous static page, admin-only data, chaos-only kills."""

from __future__ import annotations

import os
import re
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import falcon.testing
import psycopg
import pytest

from app.app import create_app
from app.config import Settings
from app.dashboard.board import SnapshotBoard
from app.passwords import Passwords
from app.resources.dashboard import DashboardKill
from app.runtime import Runtime
from tests.app.conftest import Account, CheckedClient, insert_user, make_client
from tests.waiting import wait_until


@pytest.fixture
def member(db: psycopg.Connection[Any], passwords: Passwords) -> Account:
    return insert_user(db, passwords, "member@example.com", "member password 1", role="member")


def node(tree: dict[str, Any], *path: str) -> dict[str, Any]:
    for child_id in path:
        tree = next(c for c in tree["children"] if c["id"] == child_id)
    return tree


def test_the_page_and_its_files_need_no_token_and_allow_nothing_else(runtime: Runtime) -> None:
    # Unchecked: the document describes the API (JSON), not the page's files.
    client = falcon.testing.TestClient(create_app(runtime.users, runtime.sessions,
                                                  dashboard=runtime.dashboard))

    page = client.simulate_get("/dashboard")
    script = client.simulate_get("/dashboard/dashboard.js")
    style = client.simulate_get("/dashboard/dashboard.css")

    assert page.status_code == script.status_code == style.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert script.headers["Content-Type"].startswith("text/javascript")
    assert style.headers["Content-Type"].startswith("text/css")
    for answer in (page, script, style):
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        policy = answer.headers["Content-Security-Policy"]
        assert "default-src 'none'" in policy and "script-src 'self'" in policy
        assert "unsafe-inline" not in policy
    # No inline script, handler or style: the policy would refuse them.
    html = page.text
    assert re.findall(r"<script[^>]*>", html) == ['<script src="/dashboard/dashboard.js" defer>']
    assert not re.search(r"\son\w+=|\sstyle=|<style", html)


def test_the_data_needs_a_token(runtime: Runtime) -> None:
    result = make_client(runtime, dashboard=runtime.dashboard).simulate_get("/api/dashboard")

    assert result.status_code == 401


def test_a_member_may_not_see_the_data(runtime: Runtime, member: Account) -> None:
    result = make_client(runtime, member, dashboard=runtime.dashboard).simulate_get(
        "/api/dashboard")

    assert result.status_code == 403


def test_an_admin_sees_this_worker_with_its_tree(client: CheckedClient, runtime: Runtime,
                                                 admin: Account) -> None:
    client = make_client(runtime, admin, dashboard=runtime.dashboard)

    result = client.simulate_get("/api/dashboard")

    assert result.status_code == 200
    assert result.headers["Cache-Control"] == "no-store"
    body = result.json
    assert body["answered_by"] == os.getpid() and body["chaos"] is False
    (worker,) = body["workers"]
    assert [w["id"] for w in node(worker["tree"], "db")["children"]] == ["db_worker_1",
                                                                      "db_worker_2"]
    assert any(e["kind"] == "start" for e in body["events"])


def test_without_chaos_the_kill_switch_is_404_to_an_admin_and_guarded_as_any_route(
    runtime: Runtime, admin: Account, member: Account
) -> None:
    body = {"pid": os.getpid(), "supervisor": "db", "child": "db_worker_1"}

    def kill(account: Account | None) -> int:
        client = make_client(runtime, account, dashboard=runtime.dashboard)
        return int(client.simulate_post("/api/dashboard/kill", json=body).status_code)

    assert (kill(admin), kill(member), kill(None)) == (404, 403, 401)
    assert node(runtime.dashboard.observer.snapshot()["tree"], "db",
                "db_worker_1")["restarts"] == 0


@pytest.fixture
def chaotic(database_url: str, db: psycopg.Connection[Any], admin: Account, tmp_path: Path,
            passwords: Passwords, stop_actors: None) -> Iterator[Runtime]:
    settings = Settings(database_url=database_url, db_workers=2, chaos_enabled=True,
                        dashboard_dir=tmp_path)
    runtime = Runtime(settings, database_url, passwords=passwords)
    runtime.start()
    try:
        assert runtime.wait_ready(10)
        yield runtime
    finally:
        runtime.stop()


def test_an_admin_kills_a_db_worker_of_this_worker_and_sees_it_restarted(
    chaotic: Runtime, admin: Account
) -> None:
    client = make_client(chaotic, admin, dashboard=chaotic.dashboard)

    result = client.simulate_post("/api/dashboard/kill", json={
        "pid": os.getpid(), "supervisor": "db", "child": "db_worker_1"})

    assert result.status_code == 200
    assert result.json == {"pid": os.getpid(), "supervisor": "db", "killed": "db_worker_1"}

    def restarted() -> bool:
        view = client.simulate_get("/api/dashboard").json
        worker = node(view["workers"][0]["tree"], "db", "db_worker_1")
        return bool(worker["restarts"] == 1 and worker["state"] == "running")

    wait_until(restarted, timeout=3, interval=0.05)


def test_a_member_may_not_kill(chaotic: Runtime, member: Account) -> None:
    client = make_client(chaotic, member, dashboard=chaotic.dashboard)

    result = client.simulate_post("/api/dashboard/kill", json={
        "pid": os.getpid(), "supervisor": "db", "child": "db_worker_1"})

    assert result.status_code == 403


@pytest.mark.parametrize("body", [
    {"pid": 1, "supervisor": "db"},
    {"pid": "1", "supervisor": "db", "child": "w"},
    {"pid": 1, "supervisor": "db", "child": "w", "extra": 1},
    {"pid": 1, "supervisor": "db", "child": "../etc"[:0] + "a b"},
    {"pid": 0, "supervisor": "db", "child": "w"},
    [],
])
def test_a_malformed_kill_is_422(chaotic: Runtime, admin: Account, body: Any) -> None:
    client = make_client(chaotic, admin, dashboard=chaotic.dashboard)

    assert client.simulate_post("/api/dashboard/kill", json=body).status_code == 422


@pytest.mark.parametrize(("pid_of", "supervisor", "child", "detail"), [
    ("self", "nowhere", "db_worker_1", "no running supervisor"),
    ("self", "db", "db_worker_9", "not running"),
    ("other", "db", "db_worker_1", "no live worker process"),
])
def test_killing_what_is_not_there_is_409(chaotic: Runtime, admin: Account, pid_of: str,
                                          supervisor: str, child: str, detail: str) -> None:
    client = make_client(chaotic, admin, dashboard=chaotic.dashboard)
    pid = os.getpid() if pid_of == "self" else 2**31 - 1

    result = client.simulate_post("/api/dashboard/kill", json={
        "pid": pid, "supervisor": supervisor, "child": child})

    assert result.status_code == 409
    assert detail in result.json["detail"]


@pytest.fixture
def other_worker(tmp_path: Path) -> Iterator[SnapshotBoard]:
    """A live process that has published a snapshot, standing in for another worker."""
    process = subprocess.Popen(["sleep", "60"])
    board = SnapshotBoard(tmp_path, pid=process.pid)
    board.publish({"pid": process.pid, "updated_at": 0})
    try:
        yield board
    finally:
        process.kill()
        process.wait()


def test_a_kill_for_another_worker_goes_through_the_directory_and_waits_for_its_answer(
    chaotic: Runtime, admin: Account, other_worker: SnapshotBoard
) -> None:
    client = make_client(chaotic, admin, dashboard=chaotic.dashboard)
    stop = threading.Event()

    def obey() -> None:
        while not stop.wait(0.02):
            for nonce, command in other_worker.receive():
                other_worker.answer(nonce, {"killed": command["child"], "error": None})

    thread = threading.Thread(target=obey)
    thread.start()
    try:
        result = client.simulate_post("/api/dashboard/kill", json={
            "pid": other_worker.pid, "supervisor": "db", "child": "db_worker_2"})
    finally:
        stop.set()
        thread.join()

    assert result.status_code == 200
    assert result.json == {"pid": other_worker.pid, "supervisor": "db", "killed": "db_worker_2"}


def test_a_worker_that_does_not_answer_in_time_is_409_and_its_command_withdrawn(
    chaotic: Runtime, admin: Account, other_worker: SnapshotBoard, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(DashboardKill, "ANSWER_WITHIN", 0.2)
    client = make_client(chaotic, admin, dashboard=chaotic.dashboard)

    result = client.simulate_post("/api/dashboard/kill", json={
        "pid": other_worker.pid, "supervisor": "db", "child": "db_worker_2"})

    assert result.status_code == 409
    assert "did not answer" in result.json["detail"]
    assert list(tmp_path.glob("kill-*")) == []
