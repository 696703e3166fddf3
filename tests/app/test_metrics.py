"""The per-thread tally behind the hot-path metrics, the in-flight set, and labels."""

from __future__ import annotations

import ast
import inspect
import json
import os
import threading
import time
from typing import TYPE_CHECKING

import psutil
import pytest
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest

from app import metrics, middleware
from app.metrics import InFlight, Tally
from supervisors import (
    ChildDescription,
    ChildState,
    ChildType,
    Restart,
    Strategy,
    SupervisorDescription,
    TreeNode,
)
from tests.app.conftest import Account, CheckedClient, make_client

if TYPE_CHECKING:
    from app.runtime import Runtime

BUCKETS = (0.001, 0.01, 0.05, 0.1, 1.0)
VALUES = (0.0005, 0.001, 0.0011, 0.01, 0.02, 0.05, 0.07, 0.3, 1.0, 2.5, 0.0)


def _histograms() -> tuple[CollectorRegistry, Histogram, CollectorRegistry, Histogram]:
    direct, tallied = CollectorRegistry(), CollectorRegistry()
    return (direct, Histogram("t_seconds", "t", ["route"], buckets=BUCKETS, registry=direct),
            tallied, Histogram("t_seconds", "t", ["route"], buckets=BUCKETS, registry=tallied))


def _exposition(registry: CollectorRegistry) -> str:
    # _created differs between two registries built a moment apart.
    return "\n".join(line for line in generate_latest(registry).decode().splitlines()
                     if "_created" not in line)


def test_a_flushed_histogram_exposes_exactly_what_observe_would() -> None:
    direct_registry, direct, tallied_registry, tallied = _histograms()
    tally = Tally()
    for value in VALUES:
        direct.labels("/a").observe(value)
        tally.observe(tallied.labels("/a"), value)
    assert _exposition(tallied_registry) != _exposition(direct_registry)  # nothing until flushed
    tally.flush()
    assert _exposition(tallied_registry) == _exposition(direct_registry)
    # A second flush adds only what came since the first.
    direct.labels("/a").observe(0.04)
    tally.observe(tallied.labels("/a"), 0.04)
    tally.flush()
    tally.flush()
    assert _exposition(tallied_registry) == _exposition(direct_registry)


def test_counts_from_many_threads_are_all_flushed_and_none_twice() -> None:
    registry = CollectorRegistry()
    counter = Counter("c_total", "c", ["result"], registry=registry)
    hit = counter.labels("hit")
    tally = Tally()
    flusher_done = threading.Event()

    def flush_meanwhile() -> None:
        while not flusher_done.is_set():
            tally.flush()

    def count() -> None:
        for _ in range(20_000):
            tally.count(hit)

    flusher = threading.Thread(target=flush_meanwhile)
    flusher.start()
    threads = [threading.Thread(target=count) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    flusher_done.set()
    flusher.join(timeout=30)
    tally.flush()
    assert registry.get_sample_value("c_total", {"result": "hit"}) == 80_000


def test_a_finished_threads_counts_are_flushed_then_its_shard_dropped() -> None:
    registry = CollectorRegistry()
    counter = Counter("d_total", "d", registry=registry)
    tally = Tally()
    thread = threading.Thread(target=lambda: tally.count(counter, 3))
    thread.start()
    thread.join(timeout=10)
    tally.count(counter)
    assert len(tally._shards) == 2
    tally.flush()
    assert registry.get_sample_value("d_total") == 4
    assert len(tally._shards) == 1  # this thread's own, still alive


def test_in_flight_counts_entered_requests_until_they_leave() -> None:
    in_flight = InFlight()
    first, second = object(), object()
    in_flight.enter(first)
    in_flight.enter(second)
    assert len(in_flight) == 2
    in_flight.leave(first)
    in_flight.leave(first)  # leaving twice is harmless
    assert len(in_flight) == 1


def test_cache_counters_export_what_the_tables_counted_once_across_table_changes() -> None:
    from actors.cache_table import CacheTable
    from app.metrics import CacheCounters

    registry = CollectorRegistry()
    requests = Counter("c_requests", "c", ["result"], registry=registry)
    evictions = Counter("c_evictions", "c", ["reason"], registry=registry)

    class Handle:
        table: CacheTable[str] = CacheTable()

    def total(result: str) -> float:
        value = registry.get_sample_value("c_requests_total", {"result": result})
        return value or 0.0

    handle = Handle()
    counters = CacheCounters(handle, requests, evictions)
    handle.table.store(1, "one", handle.table.read_token(1))
    assert handle.table.get(1) == "one" and handle.table.get(2) is None
    counters.sample()
    counters.sample()  # nothing new: nothing added
    assert (total("hit"), total("miss")) == (1, 1)
    old = handle.table
    old.get(1)
    old.invalidate([1])
    handle.table = CacheTable()  # a restarted cache actor's new table, counting from zero
    handle.table.get(1)
    counters.sample()
    assert (total("hit"), total("miss")) == (2, 2)  # the old table's last hit was not lost
    assert registry.get_sample_value("c_evictions_total", {"reason": "invalidated"}) == 1


@pytest.mark.parametrize(("template", "label"), [
    ("/api/users/{user_id:int(min=1)}", "/api/users/{user_id}"),
    ("/api/users", "/api/users"),
    ("/a/{x}/b/{y:uuid}/c/{z:dt(\"%Y-%m-%d\")}", "/a/{x}/b/{y}/c/{z}"),
    (None, "unmatched"),
])
def test_a_route_is_labelled_with_the_template_users_read(template: str | None, label: str) -> None:
    assert middleware.route_template(template) == label


def _requests(method: str, route: str, status: str) -> float:
    metrics.TALLY.flush()
    labels = {"method": method, "route": route, "status": status}
    return REGISTRY.get_sample_value("usermgmt_http_requests_total", labels) or 0.0


def test_metrics_and_access_lines_name_the_route_without_falcon_converters(
        client: CheckedClient, admin: Account, capfd: pytest.CaptureFixture[str]) -> None:
    before = _requests("GET", "/api/users/{user_id}", "200")
    capfd.readouterr()

    result = client.simulate_get(f"/api/users/{admin.user_id}",
                                 headers={"X-Request-ID": "route-label-1"})

    assert result.status_code == 200
    assert _requests("GET", "/api/users/{user_id}", "200") == before + 1
    assert _requests("GET", "/api/users/{user_id:int(min=1)}", "200") == 0
    lines = [json.loads(line) for line in capfd.readouterr().err.splitlines()
             if "route-label-1" in line]
    assert [line["route"] for line in lines] == ["/api/users/{user_id}"]


def test_a_route_template_is_converted_once_not_on_every_request(
        runtime: Runtime, admin: Account, monkeypatch: pytest.MonkeyPatch) -> None:
    converted: list[str | None] = []

    def counting(template: str | None) -> str:
        converted.append(template)
        return original(template)

    original = middleware.route_template
    monkeypatch.setattr(middleware, "route_template", counting)
    client = make_client(runtime, admin)
    for _ in range(3):
        assert client.simulate_get(f"/api/users/{admin.user_id}").status_code == 200
        assert client.simulate_get("/api/users").status_code == 200

    assert sorted(str(t) for t in converted) == ["/api/users", "/api/users/{user_id:int(min=1)}"]


def _cpu_counted() -> float:
    labels = {"pid": str(os.getpid())}
    return REGISTRY.get_sample_value("usermgmt_process_cpu_seconds_total", labels) or 0.0


def _cpu_used() -> float:
    times = psutil.Process().cpu_times()
    return times.user + times.system


def test_process_cpu_is_a_counter_that_follows_the_process_cpu_time() -> None:
    first, second = metrics.MetricsSampler(lambda: None), metrics.MetricsSampler(lambda: None)
    first.sample_now()
    counted = _cpu_counted()
    assert 0 < counted <= _cpu_used()
    busy_until = time.process_time() + 0.05
    while time.process_time() < busy_until:
        pass

    first.sample_now()
    second.sample_now()  # another sampler in the process counts nothing twice
    first.sample_now()

    assert counted + 0.03 < _cpu_counted() <= _cpu_used()
    exposition = generate_latest(REGISTRY).decode()
    assert "# TYPE usermgmt_process_cpu_seconds_total counter" in exposition
    assert "usermgmt_process_cpu_seconds{" not in exposition  # no gauge of that name left


def _child(child_id: str, child_type: ChildType = ChildType.WORKER) -> ChildDescription:
    return ChildDescription(id=child_id, ref=None, child_type=child_type, actor_class="A",
                            restart=Restart.PERMANENT, shutdown=1.0, state=ChildState.RUNNING,
                            mailbox=0)


def _node(name: str, children: tuple[ChildDescription, ...],
          subtrees: dict[str, TreeNode] | None = None) -> TreeNode:
    return TreeNode(SupervisorDescription(name=name, strategy=Strategy.ONE_FOR_ONE, intensity=3,
                                          period=5.0, recent_restarts=0, mailbox=0,
                                          children=children), subtrees or {})


def test_every_supervisor_and_child_of_a_tree_has_its_series_at_zero() -> None:
    inner = _node("zero-inner", (_child("w1"), _child("w2")))
    tree = _node("zero-outer", (_child("zero-inner", ChildType.SUPERVISOR), _child("solo")),
                 {"zero-inner": inner})

    metrics.declare_supervision_series(tree)

    def value(name: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(name, labels)

    for supervisor, children in (("zero-outer", ("zero-inner", "solo")),
                                 ("zero-inner", ("w1", "w2"))):
        assert value("usermgmt_supervisor_give_ups_total", supervisor=supervisor) == 0
        for reason in ("normal", "shutdown", "abnormal", "killed"):
            assert value("usermgmt_actor_exits_total", supervisor=supervisor, reason=reason) == 0
        for child in children:
            assert value("usermgmt_actor_restarts_total", supervisor=supervisor, child=child) == 0
    assert value("usermgmt_actor_restarts_total", supervisor="zero-outer", child="w1") is None


def test_every_login_result_the_sessions_service_reports_is_declared_up_front() -> None:
    from app import sessions_service

    tree = ast.parse(inspect.getsource(sessions_service))
    reported = {node.args[0].value for node in ast.walk(tree)
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "_count" and node.args
                and isinstance(node.args[0], ast.Constant)}

    assert reported and reported <= set(metrics.LOGIN_RESULTS)
