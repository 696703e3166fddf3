"""The per-thread tally behind the hot-path metrics, and the in-flight set."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from app.metrics import InFlight, Tally

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
