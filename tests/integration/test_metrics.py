"""/metrics of a real multi-worker server: every metric moves with its event."""

from __future__ import annotations

import shutil
import statistics
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.integration.server import Server, free_port
from tests.waiting import wait_until

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(server: Server) -> Samples:
    response = server.http.get(server.url + "/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(value for (sample, sample_labels), value in samples.items()
               if sample == name and set(labels.items()) <= set(sample_labels))


def series(samples: Samples, name: str) -> list[dict[str, str]]:
    return [dict(labels) for (sample, labels) in samples if sample == name]


def test_each_metric_moves_when_its_event_happens(server: Server, db: psycopg.Connection[Any]) -> None:
    before = scrape(server)
    created = server.http.post(server.url + "/api/users", json={"name": "M", "email": "m@example.com"}, timeout=5)
    assert created.status_code == 201
    path = created.headers["Location"]
    time.sleep(0.2)  # the insert's NOTIFY evicts; let it land
    for _ in range(10):
        assert server.http.get(server.url + path, timeout=5).status_code == 200
    assert server.http.get(server.url + "/api/users/999999", timeout=5).status_code == 404
    # Kill every DbWorker's connection: the next query on each crashes it
    # and its supervisor restarts it.
    db.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'usermgmt'")
    for _ in range(10):
        server.http.get(server.url + "/api/users", timeout=5)
    after: Samples = {}

    def moved(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    def caught_up() -> bool:
        # Each worker folds its hot-path counts into the shared files every
        # second; the scraped worker folds its own first.
        nonlocal after
        after = scrape(server)
        return (moved("usermgmt_http_request_duration_seconds_count", method="GET", route="/api/users") >= 10
                and moved("usermgmt_http_requests_total", method="POST", route="/api/users", status="201") >= 1
                and moved("usermgmt_http_requests_total", status="404") >= 1
                and moved("usermgmt_cache_requests_total", result="hit") >= 1
                and moved("usermgmt_cache_requests_total", result="miss") >= 1
                and moved("usermgmt_db_query_duration_seconds_count", operation="create") >= 1
                and moved("usermgmt_db_checkout_wait_seconds_count") >= 1)

    wait_until(caught_up, interval=0.1)

    assert moved("usermgmt_http_requests_total", method="POST", route="/api/users", status="201") == 1
    assert moved("usermgmt_http_requests_total", method="GET", route="/api/users/{user_id}", status="404") == 1
    assert not [labels for labels in series(after, "usermgmt_http_requests_total") if ":" in labels["route"]]
    assert moved("usermgmt_http_request_duration_seconds_count", method="GET", route="/api/users") >= 10
    assert ("usermgmt_http_request_duration_seconds_bucket",
            (("le", "0.05"), ("method", "POST"), ("route", "/api/users"))) in after
    assert moved("usermgmt_cache_requests_total", result="hit") >= 1
    assert moved("usermgmt_cache_requests_total", result="miss") >= 1
    assert moved("usermgmt_db_query_duration_seconds_count", operation="create") == 1
    assert moved("usermgmt_db_checkout_wait_seconds_count") >= 1  # the create's, at least
    assert moved("usermgmt_db_errors_total", kind="connection_lost") >= 1
    assert moved("usermgmt_actor_exits_total", supervisor="db", reason="abnormal") >= 1
    assert moved("usermgmt_actor_restarts_total", supervisor="db") >= 1
    assert ("usermgmt_http_requests_in_flight", ()) in after
    # Both worker processes report their own process metrics.
    assert len(series(after, "usermgmt_process_resident_memory_bytes")) == 2
    assert all(total(after, "usermgmt_process_resident_memory_bytes", **labels) > 10_000_000
               for labels in series(after, "usermgmt_process_resident_memory_bytes"))
    # CPU time is a counter per worker, as Prometheus' process collector has it.
    cpu = series(after, "usermgmt_process_cpu_seconds_total")
    assert sorted(labels["pid"] for labels in cpu) == sorted(
        labels["pid"] for labels in series(after, "usermgmt_process_resident_memory_bytes"))
    assert all(total(after, "usermgmt_process_cpu_seconds_total", **labels) > 0 for labels in cpu)
    assert not series(after, "usermgmt_process_cpu_seconds")
    wait_until(lambda: total(scrape(server), "usermgmt_actors_alive", kind="db_worker") == 4,
               interval=0.1)
    final = scrape(server)
    assert all(total(final, "usermgmt_process_cpu_seconds_total", **labels)
               >= total(after, "usermgmt_process_cpu_seconds_total", **labels) for labels in cpu)
    assert total(final, "usermgmt_actors_alive", kind="cache") == 2
    assert total(final, "usermgmt_actors_alive", kind="listener") == 2
    assert total(final, "usermgmt_db_workers", state="idle") + total(final, "usermgmt_db_workers", state="busy") == 4
    assert ("usermgmt_actor_mailbox_depth", (("kind", "db_worker"),)) in final
    assert ("usermgmt_cache_entries", ()) in final


def test_series_with_known_labels_exist_at_zero_from_the_start(server: Server) -> None:
    samples = scrape(server)

    def value(name: str, **labels: str) -> float | None:
        return samples.get((name, tuple(sorted(labels.items()))))

    for supervisor in ("root", "db"):
        assert value("usermgmt_supervisor_give_ups_total", supervisor=supervisor) == 0
        for reason in ("normal", "shutdown", "abnormal", "killed"):
            assert value("usermgmt_actor_exits_total", supervisor=supervisor, reason=reason) == 0
    for supervisor, child in (("root", "db"), ("root", "cache"), ("root", "token_cache"),
                              ("root", "listener"), ("db", "db_worker_1"), ("db", "db_worker_2")):
        assert value("usermgmt_actor_restarts_total", supervisor=supervisor, child=child) == 0
    assert value("usermgmt_logins_total", result="failure") == 0
    assert value("usermgmt_logins_total", result="rate_limited") == 0
    assert (value("usermgmt_logins_total", result="success") or 0) >= 1  # the admin's


def test_every_checkout_is_observed_waiting_or_not(server: Server) -> None:
    queries = 80
    before = scrape(server)
    for _ in range(queries):  # one at a time: nothing waits for a DbWorker
        assert server.http.get(server.url + "/api/users", timeout=5).status_code == 200

    def moved(name: str, **labels: str) -> float:
        return total(scrape(server), name, **labels) - total(before, name, **labels)

    wait_until(lambda: moved("usermgmt_db_checkout_wait_seconds_count") >= queries,
               interval=0.1)
    assert moved("usermgmt_db_checkout_wait_seconds_bucket", le="0.0005") >= queries // 2


def test_every_response_carries_a_request_id_and_the_access_log_has_it(server: Server) -> None:
    echoed = server.http.get(server.url + "/api/users", headers={"X-Request-ID": "trace-abc.123"}, timeout=5)
    assert echoed.headers["X-Request-ID"] == "trace-abc.123"
    item = server.http.get(server.url + f"/api/users/{server.admin.user_id}",
                           headers={"X-Request-ID": "trace-item.1"}, timeout=5)
    assert item.status_code == 200
    replaced = server.http.get(server.url + "/api/users/0", headers={"X-Request-ID": "bad id\u00e9" * 3}, timeout=5)
    generated = replaced.headers["X-Request-ID"]
    assert generated != "bad id" and len(generated) == 32
    assert replaced.json()["instance"].endswith(generated)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not all(
            request_id in server.log() for request_id in ("trace-abc.123", "trace-item.1")):
        time.sleep(0.1)
    import json

    lines = [json.loads(line) for line in server.log().splitlines()
             if line.startswith("{") and "trace-abc.123" in line]
    assert lines, server.log()
    access = lines[0]
    assert access["method"] == "GET" and access["route"] == "/api/users" and access["status"] == 200
    assert {"time", "level", "request_id", "duration_ms", "pid"} <= set(access)
    items = [json.loads(line) for line in server.log().splitlines()
             if line.startswith("{") and "trace-item.1" in line]
    assert [line["route"] for line in items] == ["/api/users/{user_id}"], server.log()


@pytest.mark.skipif(shutil.which("promtool") is None, reason="needs promtool (Debian package prometheus)")
def test_the_exposition_passes_promtool_check_metrics(server: Server) -> None:
    server.http.post(server.url + "/api/users", json={"name": "P", "email": "p@example.com"}, timeout=5)
    server.http.get(server.url + "/api/users/1", timeout=5)
    text = server.http.get(server.url + "/metrics", timeout=5).content
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                            timeout=30, check=False)
    assert result.returncode == 0, result.stdout.decode() + result.stderr.decode()
    assert result.stdout.decode().strip() == "" and result.stderr.decode().strip() == ""


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs the prometheus binary (Debian package prometheus)")
def test_a_real_prometheus_scrapes_the_service(server: Server, tmp_path: Path) -> None:
    port = free_port()
    target = server.url.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
        f"scrape_configs:\n  - job_name: usermgmt\n    static_configs:\n      - targets: ['{target}']\n"
    )
    process = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    api = f"http://127.0.0.1:{port}/api/v1/query"
    try:
        def query(expr: str) -> list[dict[str, Any]]:
            try:
                body = requests.get(api, params={"query": expr}, timeout=2).json()
            except (requests.RequestException, ValueError):
                return []
            return body.get("data", {}).get("result", []) if body.get("status") == "success" else []

        wait_until(lambda: any(r["value"][1] == "1" for r in query('up{job="usermgmt"}')), 30,
                   interval=0.1)
        first = sum(float(r["value"][1]) for r in query("sum(usermgmt_http_requests_total)"))
        for _ in range(20):
            server.http.get(server.url + "/api/users", timeout=5)
        wait_until(
            lambda: sum(float(r["value"][1]) for r in query("sum(usermgmt_http_requests_total)")) >= first + 20,
            15, interval=0.1)
    finally:
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@pytest.fixture
def split_server(database_url: str, db: psycopg.Connection[Any], tmp_path: Path) -> Iterator[tuple[Server, str]]:
    """A 2-worker server with /metrics on a listener of its own; answers (server, metrics URL)."""
    metrics_port = free_port()
    env = {"DATABASE_URL": database_url, "USERMGMT_DATA_DIR": str(tmp_path / "var"),
           "USERMGMT_DB_WORKERS": "2", "USERMGMT_METRICS_BIND": f"127.0.0.1:{metrics_port}"}
    with Server(env, tmp_path / "server.log", workers=2) as running:
        yield running, f"http://127.0.0.1:{metrics_port}"


def raw_get(port: int, target: str) -> tuple[int, bytes]:
    """GET ``target`` exactly as spelled (no client normalises it)."""
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.putrequest("GET", target, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", "x")
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_no_spelling_of_metrics_answers_on_the_api_port(split_server: tuple[Server, str]) -> None:
    server, metrics_url = split_server
    metrics_port = int(metrics_url.rsplit(":", 1)[1])
    status, body = raw_get(metrics_port, "/metrics")
    assert status == 200 and b"usermgmt_http_requests_total" in body
    for target in ("/metrics", "//metrics", "///metrics", "/%2Fmetrics", "/%2fmetrics",
                   "/metrics/", "//metrics/", "/./metrics", "/metrics?x=1", "/metrics%2F"):
        status, body = raw_get(server.port, target)
        assert status in (400, 404), (target, status)
        assert b"usermgmt_" not in body, target
    # And nothing but /metrics answers on the metrics port.
    assert raw_get(metrics_port, "/livez")[0] == 404
    assert raw_get(metrics_port, "/openapi.json")[0] == 404


def test_a_flood_of_scrapes_leaves_cached_reads_about_as_fast_as_idle(
        split_server: tuple[Server, str]) -> None:
    from perf.bench_scrape_flood import measure

    server, metrics_url = split_server
    path = f"/api/users/{server.admin.user_id}"
    for _ in range(4):  # both workers' caches hold the user
        assert server.http.get(server.url + path, timeout=5).status_code == 200
    result = measure(server.url, metrics_url, str(server.admin.token), path,
                     rounds=2, seconds=1.5, scrapers=16, rate=200)
    assert result.scrapes >= 300
    # The objective (and perf/results/scrape_flood.md) is 2x; generous here,
    # as the test shares 2 cores with whatever else runs.
    assert result.ratio < 4.0, (statistics.median(result.idle), statistics.median(result.flooded))
