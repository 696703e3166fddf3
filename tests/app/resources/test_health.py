"""/livez, /readyz, /metrics and request ids, through Falcon."""

from __future__ import annotations

import json
import time

import falcon.testing
import pytest

from app.app import create_app
from app.runtime import Runtime
from tests.app.conftest import Account


@pytest.fixture
def client(runtime: Runtime, admin: Account) -> falcon.testing.TestClient:
    return falcon.testing.TestClient(create_app(
        runtime.users, runtime.sessions, readiness=runtime.readiness_checks(),
        before_scrape=runtime.sample_now), headers=admin.headers)


def test_livez_answers_without_checking_anything(client: falcon.testing.TestClient, runtime: Runtime) -> None:
    runtime.draining.set()
    result = client.simulate_get("/livez")
    assert result.status_code == 200
    assert result.json == {"status": "ok"}


def test_readyz_is_200_when_database_tree_and_worker_are_fine(client: falcon.testing.TestClient) -> None:
    result = client.simulate_get("/readyz")
    assert result.status_code == 200
    assert result.json["checks"] == ["draining", "supervision_tree", "database"]


def test_readyz_is_503_listing_what_failed_while_draining(client: falcon.testing.TestClient, runtime: Runtime) -> None:
    runtime.draining.set()
    result = client.simulate_get("/readyz")
    assert result.status_code == 503
    assert result.headers["Content-Type"] == "application/problem+json"
    assert result.headers["Retry-After"] == "1"
    assert [e["field"] for e in result.json["errors"]] == ["draining"]


def test_readyz_reports_a_database_no_worker_can_reach(client: falcon.testing.TestClient, runtime: Runtime) -> None:
    for worker in runtime.workers.members():
        runtime.workers.unregister(worker)
    result = client.simulate_get("/readyz")
    assert result.status_code == 503
    assert "database" in [e["field"] for e in result.json["errors"]]


def test_readyz_reports_a_stopped_supervision_tree(client: falcon.testing.TestClient, runtime: Runtime) -> None:
    assert runtime.root is not None
    runtime.root.stop(timeout=10)
    result = client.simulate_get("/readyz")
    assert result.status_code == 503
    assert "supervision_tree" in [e["field"] for e in result.json["errors"]]


def test_metrics_exposes_the_service_metrics(client: falcon.testing.TestClient) -> None:
    client.simulate_get("/api/users")
    result = client.simulate_get("/metrics")
    assert result.status_code == 200
    for name in ("usermgmt_http_requests_total", "usermgmt_http_request_duration_seconds",
                 "usermgmt_db_workers", "usermgmt_actors_alive", "usermgmt_cache_entries",
                 "usermgmt_process_resident_memory_bytes"):
        assert name in result.text


def test_a_safe_client_request_id_is_echoed_and_an_unsafe_one_replaced(client: falcon.testing.TestClient) -> None:
    assert client.simulate_get("/livez", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    for bad in ("x" * 129, "has space", "semi;colon", ""):
        replaced = client.simulate_get("/livez", headers={"X-Request-ID": bad}).headers["X-Request-ID"]
        assert replaced != bad and len(replaced) == 32


def test_a_problem_names_its_request_in_instance(client: falcon.testing.TestClient) -> None:
    result = client.simulate_get("/api/users/424242", headers={"X-Request-ID": "req-42"})
    assert result.json["instance"] == "urn:usermgmt:request:req-42"


def test_one_json_access_line_per_request_without_the_body(client: falcon.testing.TestClient,
                                                           capfd: pytest.CaptureFixture[str]) -> None:
    capfd.readouterr()
    client.simulate_post("/api/users", json={"name": "Secret Name", "email": "secret@example.com"},
                         headers={"X-Request-ID": "log-me"})
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines() if '"log-me"' in line]
    assert len(lines) == 1
    line = lines[0]
    assert line["route"] == "/api/users" and line["status"] == 201 and line["method"] == "POST"
    assert "secret" not in json.dumps(line).lower()


def test_concurrent_scrapes_share_one_rendering_off_the_event_loop(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A scrape flood costs one rendering per reuse period, whatever its rate."""
    import asyncio
    import threading

    import falcon.asgi

    from app import metrics
    from app.resources.health import MetricsResource

    threads: list[str] = []

    def slow_exposition() -> bytes:
        threads.append(threading.current_thread().name)
        time.sleep(0.05)
        return f"rendering {len(threads)}\n".encode()

    monkeypatch.setattr(metrics, "exposition", slow_exposition)
    now = [100.0]
    resource = MetricsResource(reuse_for=0.25, clock=lambda: now[0])

    async def scrapes(n: int) -> list[bytes]:
        responses = [falcon.asgi.Response() for _ in range(n)]
        await asyncio.gather(*(resource.on_get(falcon.testing.create_asgi_req(), resp)
                               for resp in responses))
        return [bytes(resp.data or b"") for resp in responses]

    first = asyncio.run(scrapes(50))
    assert resource.renderings == 1 and set(first) == {b"rendering 1\n"}
    assert threads and all(name != threading.main_thread().name for name in threads)
    now[0] += 0.2  # within the reuse period: served again, not rendered
    assert set(asyncio.run(scrapes(20))) == {b"rendering 1\n"} and resource.renderings == 1
    now[0] += 0.1
    assert set(asyncio.run(scrapes(20))) == {b"rendering 2\n"} and resource.renderings == 2
