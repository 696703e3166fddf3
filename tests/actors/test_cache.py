"""Tests for the ETS-style cache: CacheTable (read side), CacheActor, CacheHandle.

Table-level tests drive the write API directly from the test thread, which
then plays the actor. Actor-level tests wait only through ``ask`` (a
:class:`Sync` barrier or a proxy call) or a bounded ``Event.wait``, never a
sleep.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Iterator
from types import TracebackType
from typing import Any

import pykka
import pytest

from actors.cache import (
    CacheActor,
    CacheHandle,
    CacheStats,
    CacheTable,
    Evict,
    EvictMany,
    Flush,
    Put,
    StatName,
    Sync,
)

WAIT = 5.0  # seconds: the bound on every wait in this file


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(autouse=True)
def stop_all_actors() -> Iterator[None]:
    """Stop every actor a test started, each within a bounded time."""
    yield
    pykka.ActorRegistry.stop_all(block=True, timeout=WAIT)


def sync(ref: pykka.ActorRef[Any]) -> CacheStats:
    """Wait until the actor processed everything sent before; its stats."""
    stats = ref.ask(Sync(), timeout=WAIT)
    assert isinstance(stats, CacheStats)
    return stats


def started(handle: CacheHandle[Any], **kwargs: Any) -> pykka.ActorRef[CacheActor]:
    """Start a CacheActor on ``handle`` and wait until it installed its table."""
    ref = CacheActor.start(handle=handle, **kwargs)
    sync(ref)
    return ref


def stored(table: CacheTable[Any], key: int, value: object, version: int | None = None) -> bool:
    """Store as a reader would: token first, then the put."""
    return table.store(key, value, table.read_token(key), version)


class SignallingCacheActor(CacheActor):
    """A CacheActor that says when its failure handling is over."""

    def __init__(self, *, failed: threading.Event, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._failed = failed

    def on_failure(
        self,
        exception_type: type[BaseException] | None,
        exception_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        super().on_failure(exception_type, exception_value, traceback)
        self._failed.set()


# ----------------------------------------------------------------------
# Hits, misses, stats
# ----------------------------------------------------------------------


def test_a_miss_then_a_put_makes_the_next_lookup_a_hit() -> None:
    table: CacheTable[bytes] = CacheTable()

    assert table.get(1) is None
    assert stored(table, 1, b'{"id": 1}')
    assert table.get(1) == b'{"id": 1}'
    assert table.get(1) == b'{"id": 1}'

    stats = table.stats()
    assert (stats.hits, stats.misses, stats.stores, stats.size) == (2, 1, 1, 1)


def test_stats_are_an_immutable_snapshot_with_named_fields() -> None:
    table: CacheTable[str] = CacheTable()
    stored(table, 1, "a")
    snapshot = table.stats()

    table.get(1)
    table.invalidate([1])

    assert snapshot.hits == 0
    assert snapshot.size == 1
    with pytest.raises(AttributeError):
        snapshot.hits = 5  # type: ignore[misc]
    assert table.stats().evictions == {
        "capacity": 0,
        "expired": 0,
        "invalidated": 1,
        "flush": 0,
    }


def test_the_stat_hook_counts_every_event_and_costs_nothing_when_unset() -> None:
    events: list[tuple[StatName, int]] = []
    table: CacheTable[str] = CacheTable(max_entries=1)

    stored(table, 1, "a")  # no hook yet: nothing recorded, nothing fails
    table.set_on_stat(lambda name, n: events.append((name, n)))
    table.get(1)
    table.get(2)
    stored(table, 2, "b")  # evicts key 1 for capacity
    table.flush()

    assert events == [
        ("hits", 1),
        ("misses", 1),
        ("stores", 1),
        ("evicted_capacity", 1),
        ("evicted_flush", 1),
    ]


def test_a_failing_stat_hook_never_fails_the_reader_or_the_writer() -> None:
    def broken(name: StatName, n: int) -> None:
        raise RuntimeError("metrics down")

    table: CacheTable[str] = CacheTable()
    table.set_on_stat(broken)

    assert stored(table, 1, "a")
    assert table.get(1) == "a"
    assert table.get(2) is None


# ----------------------------------------------------------------------
# TTL
# ----------------------------------------------------------------------


def test_an_entry_expires_after_its_ttl() -> None:
    clock = FakeClock()
    table: CacheTable[str] = CacheTable(ttl=60.0, clock=clock)
    stored(table, 1, "a")

    clock.advance(59.9)
    assert table.get(1) == "a"
    clock.advance(0.1)
    assert table.get(1) is None

    stats = table.stats()
    assert (stats.hits, stats.misses, stats.expirations) == (1, 1, 1)


def test_a_put_over_an_expired_entry_refreshes_it() -> None:
    clock = FakeClock()
    table: CacheTable[str] = CacheTable(ttl=10.0, clock=clock)
    stored(table, 1, "old")
    clock.advance(11)

    assert stored(table, 1, "new")
    assert table.get(1) == "new"
    assert table.stats().evicted_expired == 1


def test_expired_entries_at_the_old_end_are_dropped_by_later_stores() -> None:
    clock = FakeClock()
    table: CacheTable[int] = CacheTable(ttl=10.0, clock=clock)
    for key in range(5):
        stored(table, key, key)
    clock.advance(10)

    stored(table, 99, 99)

    assert len(table) == 1
    assert table.stats().evicted_expired == 5


def test_sweep_drops_every_expired_entry_and_keeps_live_ones() -> None:
    clock = FakeClock()
    table: CacheTable[int] = CacheTable(ttl=10.0, clock=clock)
    stored(table, 1, 1)
    clock.advance(5)
    stored(table, 2, 2)
    clock.advance(6)

    assert table.sweep() == 1
    assert table.get(1) is None
    assert table.get(2) == 2


# ----------------------------------------------------------------------
# Capacity and CLOCK
# ----------------------------------------------------------------------


def test_the_table_never_holds_more_than_max_entries() -> None:
    table: CacheTable[int] = CacheTable(max_entries=3)
    for key in range(10):
        stored(table, key, key)
        assert len(table) <= 3

    assert table.stats().evicted_capacity == 7
    assert [table.get(key) for key in (7, 8, 9)] == [7, 8, 9]


def test_clock_keeps_a_referenced_entry_over_an_unreferenced_one() -> None:
    table: CacheTable[str] = CacheTable(max_entries=2)
    stored(table, 1, "read since stored")
    stored(table, 2, "never read")
    assert table.get(1) is not None  # sets entry 1's reference bit

    stored(table, 3, "newcomer")  # over capacity: the hand starts at key 1

    assert table.get(1) == "read since stored"
    assert table.get(2) is None
    assert table.get(3) == "newcomer"


def test_a_second_chance_lasts_one_lap_of_the_hand() -> None:
    table: CacheTable[str] = CacheTable(max_entries=2)
    stored(table, 1, "a")
    stored(table, 2, "b")
    table.get(1)
    stored(table, 3, "c")  # 1 gets its second chance (moved behind 3), 2 goes
    stored(table, 4, "d")  # the hand reaches 3 first: it goes
    stored(table, 5, "e")  # 1 was not read again: it goes now

    assert table.get(1) is None
    assert (table.get(4), table.get(5)) == ("d", "e")
    assert table.stats().evicted_capacity == 3


def test_memory_stays_bounded_under_a_long_random_access_pattern() -> None:
    rng = random.Random(1234)
    clock = FakeClock()
    table: CacheTable[int] = CacheTable(ttl=5.0, max_entries=200, max_tombstones=50, clock=clock)
    for step in range(30_000):
        key = rng.randrange(5_000) if step % 3 else rng.randrange(100)  # a hot set
        action = rng.random()
        if action < 0.6:
            if table.get(key) is None:
                token = table.read_token(key)
                if rng.random() < 0.2:
                    table.invalidate([rng.randrange(5_000)], version=rng.randrange(10))
                table.store(key, step, token, version=rng.randrange(10))
        elif action < 0.9:
            table.invalidate([key], version=rng.randrange(10))
        elif action < 0.998:
            clock.advance(rng.random() / 100)
        elif action < 0.999:
            clock.advance(6.0)  # past the TTL: everything cached expires
        else:
            table.flush()
        assert len(table) <= 200
        assert table.stats().tombstones <= 50

    stats = table.stats()
    assert stats.hits > 0
    assert stats.evicted_capacity > 0
    assert stats.evicted_expired > 0
    assert stats.rejected_puts > 0


def test_puts_beyond_the_pending_bound_are_dropped_before_reaching_the_actor() -> None:
    table: CacheTable[str] = CacheTable(max_pending_puts=2)

    assert [table.admit_put() for _ in range(3)] == [True, True, False]
    stored(table, 1, "a")  # the actor processed one: room for one more
    assert table.admit_put()
    assert table.stats().dropped_puts == 1


# ----------------------------------------------------------------------
# Stale write-back protection (table level)
# ----------------------------------------------------------------------


def test_an_eviction_after_the_token_refuses_the_put_even_for_an_uncached_key() -> None:
    table: CacheTable[str] = CacheTable()
    token = table.read_token(1)
    table.invalidate([1])

    assert not table.store(1, "stale", token)
    assert table.get(1) is None
    assert table.stats().rejected_puts == 1


def test_an_eviction_of_another_key_does_not_refuse_the_put() -> None:
    table: CacheTable[str] = CacheTable()
    token = table.read_token(1)
    table.invalidate([2])

    assert table.store(1, "fine", token)


def test_an_older_version_never_replaces_a_cached_or_evicted_newer_one() -> None:
    table: CacheTable[str] = CacheTable()
    assert stored(table, 1, "v5", version=5)
    assert not stored(table, 1, "v4", version=4)
    assert stored(table, 1, "v5 again", version=5)
    assert table.get(1) == "v5 again"

    table.invalidate([2], version=7)
    assert not stored(table, 2, "v6", version=6)  # fresh token, old version
    assert stored(table, 2, "v7", version=7)


def test_tokens_older_than_a_pruned_tombstone_are_refused_conservatively() -> None:
    table: CacheTable[str] = CacheTable(max_tombstones=2)
    token = table.read_token(1)
    for key in (10, 11, 12):  # three tombstones: the oldest is pruned
        table.invalidate([key])

    assert table.stats().tombstones == 2
    assert not table.store(1, "maybe stale", token)
    assert stored(table, 1, "fresh token")


def test_flush_drops_everything_and_refuses_tokens_taken_before_it() -> None:
    table: CacheTable[str] = CacheTable()
    stored(table, 1, "a")
    stored(table, 2, "b")
    token = table.read_token(3)

    assert table.flush() == 2

    assert (table.get(1), table.get(2)) == (None, None)
    assert not table.store(3, "read before the flush", token)
    assert stored(table, 3, "read after the flush")
    assert table.stats().evicted_flush == 2


def test_a_disabled_table_bypasses_reads_and_refuses_puts() -> None:
    table: CacheTable[str] = CacheTable()
    stored(table, 1, "a")

    table.disable()

    assert not table.usable
    assert table.get(1) is None
    assert not stored(table, 1, "a")
    assert not table.admit_put()
    stats = table.stats()
    assert (stats.bypasses, stats.misses, stats.size) == (1, 0, 0)


def test_enable_starts_empty_and_refuses_tokens_taken_while_disabled() -> None:
    table: CacheTable[str] = CacheTable()
    table.disable()
    token = table.read_token(1)  # a reader bypassing the disabled cache

    table.enable()

    assert table.usable
    assert not table.store(1, "read while notifications were lost", token)
    assert stored(table, 1, "read after enable")
    assert table.get(1) == "read after enable"


def test_a_token_from_another_table_is_refused() -> None:
    old: CacheTable[str] = CacheTable()
    new: CacheTable[str] = CacheTable()

    assert not new.store(1, "x", old.read_token(1))
    assert not old.store(1, "x", new.read_token(1))


# ----------------------------------------------------------------------
# The actor
# ----------------------------------------------------------------------


def test_the_stale_write_back_interleaving_is_refused() -> None:
    handle: CacheHandle[str] = CacheHandle()
    ref = started(handle)

    assert handle.get(1) is None  # reader misses...
    token = handle.read_token(1)  # ...takes its token, reads row v1 (slowly)
    handle.evict(1)  # meanwhile an update commits and its eviction is sent
    sync(ref)  # the eviction is processed first
    handle.put(1, "row v1", token)  # then the slow reader's write-back
    stats = sync(ref)

    assert handle.get(1) is None
    assert stats.rejected_puts == 1
    assert stats.stores == 0


def test_a_put_with_a_token_taken_after_the_eviction_is_stored() -> None:
    handle: CacheHandle[str] = CacheHandle()
    ref = started(handle)
    handle.evict(1)
    sync(ref)

    token = handle.read_token(1)
    handle.put(1, "row v2", token)
    sync(ref)

    assert handle.get(1) == "row v2"


def test_messages_are_applied_in_order_by_the_actor() -> None:
    ref = CacheActor.start(ttl=30.0, max_entries=10)
    table: CacheTable[str] = ref.proxy().table.get(timeout=WAIT)
    token = table.read_token(0)

    for key in range(3):
        ref.tell(Put(key, f"v{key}", token))
    ref.tell(Evict(0))
    ref.tell(EvictMany((1,)))
    stats = sync(ref)

    assert [table.get(key) for key in range(3)] == [None, None, "v2"]
    assert stats.evicted_invalidated == 2
    assert ref.ask(Flush(), timeout=WAIT) == 1
    assert len(table) == 0


def test_the_proxy_methods_do_what_the_messages_do() -> None:
    proxy = CacheActor.start().proxy()
    table: CacheTable[str] = proxy.table.get(timeout=WAIT)

    assert proxy.put(1, "a", table.read_token(1)).get(timeout=WAIT) is True
    assert proxy.evict(1).get(timeout=WAIT) == 1
    proxy.disable().get(timeout=WAIT)
    assert not table.usable
    proxy.enable().get(timeout=WAIT)
    assert table.usable
    assert proxy.stats().get(timeout=WAIT).evicted_invalidated == 1


def test_the_handle_bypasses_until_an_actor_installs_its_table() -> None:
    handle: CacheHandle[str] = CacheHandle()

    assert not handle.usable
    assert handle.get(1) is None
    handle.put(1, "nowhere to go", handle.read_token(1))  # dropped, no error
    assert not handle.evict(1)

    started(handle)
    assert handle.usable


def test_a_disabled_cache_bypasses_until_enabled_and_flush_empties_it() -> None:
    handle: CacheHandle[str] = CacheHandle()
    ref = started(handle)
    handle.put(1, "a", handle.read_token(1))
    sync(ref)
    assert handle.get(1) == "a"

    handle.disable()
    sync(ref)
    assert handle.get(1) is None
    handle.put(2, "b", handle.read_token(2))  # not even sent
    assert sync(ref).rejected_puts == 0

    handle.enable()
    sync(ref)
    handle.put(2, "b", handle.read_token(2))
    sync(ref)
    assert handle.get(2) == "b"

    handle.flush()
    sync(ref)
    assert handle.get(2) is None


def test_a_fresh_actor_after_stop_starts_empty_and_the_handle_serves_its_table() -> None:
    handle: CacheHandle[str] = CacheHandle()
    first = started(handle)
    handle.put(1, "cached by the first actor", handle.read_token(1))
    sync(first)
    old_table = handle.table
    token_from_old_table = handle.read_token(2)

    first.stop(timeout=WAIT)
    assert not handle.usable
    assert handle.get(1) is None
    assert len(old_table) == 0  # retired: emptied, even for readers holding it

    second = started(handle)
    assert handle.table is not old_table
    assert handle.usable
    assert handle.get(1) is None
    handle.put(2, "read before the restart", token_from_old_table)
    handle.put(3, "read after the restart", handle.read_token(3))
    stats = sync(second)

    assert handle.get(2) is None
    assert handle.get(3) == "read after the restart"
    assert (stats.rejected_puts, stats.stores) == (1, 1)


def test_a_crashed_actor_retires_its_table_so_readers_bypass() -> None:
    failed = threading.Event()
    handle: CacheHandle[str] = CacheHandle()
    ref = SignallingCacheActor.start(handle=handle, failed=failed)
    sync(ref)
    handle.put(1, "a", handle.read_token(1))
    sync(ref)

    crash = Put([], "unhashable key", handle.read_token(1))  # type: ignore[arg-type]
    ref.tell(crash)
    assert failed.wait(WAIT)

    assert not ref.is_alive()
    assert not handle.usable
    assert handle.get(1) is None
    assert handle.actor_ref is None
    handle.put(1, "a", handle.read_token(1))  # dropped silently
    assert not handle.evict(1)


def test_the_stat_hook_survives_a_restart() -> None:
    events: list[tuple[StatName, int]] = []
    handle: CacheHandle[str] = CacheHandle()
    handle.on_stat = lambda name, n: events.append((name, n))
    started(handle).stop(timeout=WAIT)
    ref = started(handle)

    handle.get(1)
    handle.put(1, "a", handle.read_token(1))
    sync(ref)
    handle.get(1)

    assert events == [("misses", 1), ("stores", 1), ("hits", 1)]


def test_concurrent_readers_and_invalidations_stay_within_bounds_without_errors() -> None:
    handle: CacheHandle[int] = CacheHandle()
    ref = started(handle, max_entries=50, max_tombstones=20, max_pending_puts=100)
    errors: list[BaseException] = []
    start = threading.Barrier(5, timeout=WAIT)

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        try:
            start.wait()
            for _ in range(3_000):
                key = rng.randrange(200)
                if handle.get(key) is None:
                    handle.put(key, key, handle.read_token(key), version=1)
        except BaseException as error:  # reported to the test thread
            errors.append(error)

    threads = [threading.Thread(target=reader, args=(seed,)) for seed in range(4)]
    for thread in threads:
        thread.start()
    start.wait()
    for round_ in range(200):
        handle.evict_many(range(round_ % 200, round_ % 200 + 5))
        if round_ % 50 == 0:
            handle.flush()
    for thread in threads:
        thread.join(WAIT)
    stats = sync(ref)

    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert stats.size <= 50
    assert stats.tombstones <= 20
    assert all(handle.get(key) in (None, key) for key in range(200))


def test_a_cache_started_disabled_serves_only_after_enable() -> None:
    handle: CacheHandle[str] = CacheHandle()
    ref = started(handle, start_enabled=False)
    assert not handle.usable

    handle.enable()
    sync(ref)
    handle.put(1, "a", handle.read_token(1))
    sync(ref)

    assert handle.get(1) == "a"


def test_the_handle_counts_bypasses_while_no_actor_runs() -> None:
    events: list[tuple[StatName, int]] = []
    handle: CacheHandle[str] = CacheHandle()
    handle.on_stat = lambda name, n: events.append((name, n))
    started(handle).stop(timeout=WAIT)

    assert handle.get(1) is None
    assert events[-1] == ("bypasses", 1)


def test_a_table_and_a_handle_cannot_both_be_given() -> None:
    with pytest.raises(ValueError, match="either a table or a handle"):
        CacheActor(table=CacheTable(), handle=CacheHandle())
    with pytest.raises(ValueError, match="retired"):
        CacheActor(table=CacheTable.retired_table())
    with pytest.raises(ValueError, match="max_entries"):
        CacheActor(max_entries=0)


# ----------------------------------------------------------------------
# Read-your-writes: invalidation by the writing thread
# ----------------------------------------------------------------------


def test_a_write_hides_the_cached_row_before_the_actor_processes_the_eviction() -> None:
    table: CacheTable[str] = CacheTable()
    assert stored(table, 1, "v1", version=1)
    table.invalidate_now(1, version=2)
    assert table.get(1) is None


def test_an_older_put_queued_before_the_eviction_is_refused() -> None:
    """A reader's put of v1 reaches the actor after the write, before its evict."""
    table: CacheTable[str] = CacheTable()
    token = table.read_token(1)
    table.invalidate_now(1, version=2)
    assert not table.store(1, "v1", token, version=1)
    assert not table.store(1, "gone", table.read_token(1), version=None)
    table.invalidate([1], version=2)
    assert stored(table, 1, "v2", version=2)
    assert table.get(1) == "v2"


def test_a_delete_refuses_every_put_until_its_eviction_is_processed() -> None:
    table: CacheTable[str] = CacheTable()
    table.invalidate_now(5, version=None)
    assert not stored(table, 5, "ghost", version=9)
    table.invalidate([5], version=None)
    assert stored(table, 5, "recreated", version=1)


def test_the_handle_invalidates_after_a_write_through_the_actor() -> None:
    handle: CacheHandle[str] = CacheHandle()
    ref = started(handle)
    token = handle.read_token(3)
    handle.put(3, "v1", token, version=1)
    sync(ref)
    assert handle.get(3) == "v1"
    handle.invalidate_after_write(3, version=2)
    assert handle.get(3) is None
    stats = sync(ref)
    assert stats.tombstones >= 1
    handle.put(3, "v2", handle.read_token(3), version=2)
    sync(ref)
    assert handle.get(3) == "v2"
