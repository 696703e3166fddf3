"""The chaos kill switch: absent unless enabled; a kill is a crash."""

from __future__ import annotations

import time

import falcon.testing
import pytest

from app.app import create_app
from app.runtime import Runtime
from supervisors import SupervisorEvent
from tests.app.conftest import Account


def test_without_chaos_enabled_the_route_does_not_exist(runtime: Runtime, admin: Account) -> None:
    client = falcon.testing.TestClient(create_app(runtime.users, runtime.sessions),
                                       headers=admin.headers)
    assert client.simulate_post("/admin/chaos/kill", json={"kind": "db_worker"}).status_code == 404


@pytest.mark.parametrize("kind", ["db_worker", "cache", "listener", "supervisor", "any"])
def test_a_kill_is_an_abnormal_exit_that_its_supervisor_restarts(database_url: str, db: object,
                                                                 stop_actors: None, kind: str,
                                                                 admin: Account) -> None:
    from app.config import Settings

    events: list[SupervisorEvent] = []
    runtime = Runtime(Settings(database_url=database_url, db_workers=2), database_url,
                      event_hook=events.append)
    runtime.start()
    try:
        assert runtime.wait_ready(10)
        client = falcon.testing.TestClient(
            create_app(runtime.users, runtime.sessions, chaos=runtime.chaos_victims),
            headers=admin.headers)
        result = client.simulate_post("/admin/chaos/kill", json={"kind": kind})
        assert result.status_code == 200
        killed = result.json["killed"]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and not any(
                e.kind == "restart" and e.child == killed for e in events):
            time.sleep(0.01)
        assert any(e.kind == "exit" and e.child == killed and e.reason == "abnormal" for e in events)
        assert any(e.kind == "restart" and e.child == killed for e in events)
        assert runtime.wait_ready(5)
    finally:
        runtime.stop()


def test_an_unknown_kind_is_422(runtime: Runtime, admin: Account) -> None:
    client = falcon.testing.TestClient(
        create_app(runtime.users, runtime.sessions, chaos=runtime.chaos_victims),
        headers=admin.headers)
    assert client.simulate_post("/admin/chaos/kill", json={"kind": "everything"}).status_code == 422
