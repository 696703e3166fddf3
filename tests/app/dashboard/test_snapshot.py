"""A worker's snapshot is read from its live tree, and a kill shows as a restart."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import psycopg
import pytest

from app.config import Settings
from app.dashboard.board import SnapshotBoard
from app.runtime import Runtime
from tests.app.conftest import Account
from tests.waiting import wait_until


def node(tree: dict[str, Any], *path: str) -> dict[str, Any]:
    for child_id in path:
        tree = next(c for c in tree["children"] if c["id"] == child_id)
    return tree


def test_the_snapshot_shows_the_real_tree_pool_caches_and_listener(runtime: Runtime) -> None:
    snapshot = runtime.dashboard.observer.snapshot()

    assert snapshot["pid"] == os.getpid()
    tree = snapshot["tree"]
    assert (tree["id"], tree["strategy"], tree["state"]) == ("root", "rest_for_one", "running")
    assert [c["id"] for c in tree["children"]] == ["db", "cache", "token_cache", "listener"]
    db = node(tree, "db")
    assert (db["type"], db["strategy"], db["name"]) == ("supervisor", "one_for_one", "db")
    workers = db["children"]
    assert [w["id"] for w in workers] == ["db_worker_1", "db_worker_2"]
    assert all((w["actor"], w["restart"], w["state"], w["restarts"], w["supervisor"])
               == ("DbWorker", "permanent", "running", 0, "db") for w in workers)
    assert snapshot["pool"]["members"] == 2
    assert [c["name"] for c in snapshot["caches"]] == ["users", "tokens"]
    assert all(c["coherent"] and c["usable"] for c in snapshot["caches"])
    assert snapshot["listener"]["running"] and snapshot["listener"]["connected"]
    assert snapshot["process"]["rss_bytes"] > 0
    assert any(e["kind"] == "start" and e["child"] == "db_worker_1" for e in snapshot["events"])
    orjson.dumps(snapshot)  # JSON-ready


def test_a_killed_db_worker_is_restarted_and_its_last_exit_recorded(runtime: Runtime) -> None:
    assert runtime.dashboard.kill_here("db", "db_worker_2") is None

    def restarted() -> dict[str, Any] | None:
        worker = node(runtime.dashboard.observer.snapshot()["tree"], "db", "db_worker_2")
        return worker if worker["restarts"] == 1 and worker["state"] == "running" else None

    wait_until(restarted, timeout=5)
    worker = restarted()
    assert worker is not None and worker["last_exit"]["reason"] == "abnormal"
    assert "chaos" in worker["last_exit"]["error"]


def test_killing_what_does_not_run_says_why(runtime: Runtime) -> None:
    assert "no running supervisor" in (runtime.dashboard.kill_here("nowhere", "x") or "")
    assert "is not running" in (runtime.dashboard.kill_here("db", "db_worker_9") or "")


@pytest.fixture
def published(database_url: str, db: psycopg.Connection[Any], admin: Account, tmp_path: Path,
              stop_actors: None) -> Iterator[Runtime]:
    settings = Settings(database_url=database_url, db_workers=2, chaos_enabled=True,
                        dashboard_dir=tmp_path)
    runtime = Runtime(settings, database_url)
    runtime.start()
    try:
        assert runtime.wait_ready(10)
        yield runtime
    finally:
        runtime.stop()


def test_the_publisher_writes_the_snapshot_and_withdraws_it_on_stop(published: Runtime,
                                                                    tmp_path: Path) -> None:
    path = tmp_path / f"worker-{os.getpid()}.json"
    wait_until(path.exists)
    assert orjson.loads(path.read_bytes())["pid"] == os.getpid()

    published.stop()

    assert not path.exists()


def test_a_kill_command_from_another_worker_is_carried_out_and_answered(published: Runtime,
                                                                        tmp_path: Path) -> None:
    other = SnapshotBoard(tmp_path, pid=os.getpid() + 1)

    nonce = other.send(os.getpid(), {"supervisor": "db", "child": "db_worker_1"})

    answer: dict[str, Any] | None = None

    def answered() -> bool:
        nonlocal answer
        answer = other.take_answer(nonce)
        return answer is not None

    wait_until(answered, timeout=3)
    assert answer == {"pid": os.getpid(), "supervisor": "db", "killed": "db_worker_1",
                      "error": None}
    def restarted() -> bool:
        latest = published.dashboard.publisher.latest
        return latest is not None and node(latest["tree"], "db", "db_worker_1")["restarts"] == 1

    wait_until(restarted, timeout=3)


def test_a_supervisor_that_gave_up_and_is_not_running_shows_as_given_up(runtime: Runtime) -> None:
    from supervisors import (
        ChildDescription,
        ChildState,
        ChildType,
        EventKind,
        Restart,
        SupervisorEvent,
    )

    observer = runtime.dashboard.observer
    observer.journal.record(SupervisorEvent(EventKind.EXIT, "root", "db", "abnormal",
                                            "GiveUpError('supervisor db gave up: ...')"))
    waiting = ChildDescription(id="db", ref=None, child_type=ChildType.SUPERVISOR,
                               actor_class="Supervisor", restart=Restart.PERMANENT,
                               shutdown="infinity", state=ChildState.RESTARTING, mailbox=0)

    item = observer._child_json(waiting, "root")

    assert item["state"] == "given_up"
    assert item["last_exit"]["error"].startswith("GiveUpError(")


def test_without_metrics_the_snapshot_has_no_traffic_and_no_wait_quantiles(
    database_url: str, db: psycopg.Connection[Any], admin: Account, stop_actors: None
) -> None:
    runtime = Runtime(Settings(database_url=database_url, db_workers=1), database_url,
                      instrumented=False)
    runtime.start()
    try:
        snapshot = runtime.dashboard.observer.snapshot()
    finally:
        runtime.stop()

    assert snapshot["traffic"] is None and snapshot["requests_per_second"] is None
    assert snapshot["pool"]["wait_p99_ms"] is None
    assert snapshot["tree"]["state"] == "running"
