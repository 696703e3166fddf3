"""Poolboy-style checkout: idle workers only, bounded waits, fail fast.

The pool reads time from the clock it is given: these tests give it a
:class:`FakeClock` that moves only when told, so waits are measured
exactly and load-shedding intervals pass without sleeping. A pool on a
fake clock never times a waiter out by itself (only a zero timeout
expires at once): a waiter that ends did so because of what the test did.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pykka
import pytest

from actors.errors import NoWorkerAvailable
from actors.worker_pool import WorkerPool
from tests.waiting import wait_until


class Idle(pykka.ThreadingActor):
    use_daemon_thread = True


class FakeClock:
    """A monotonic clock that moves only when the test advances it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def queued(pool: WorkerPool, waiting: int = 1) -> None:
    """Wait until ``waiting`` callers wait in ``pool``'s queue."""
    wait_until(lambda: pool.stats().waiting == waiting, 2.0, f"{waiting} caller(s) to queue")


@pytest.fixture
def refs() -> Iterator[list[pykka.ActorRef[Any]]]:
    started = [Idle.start() for _ in range(3)]
    yield started
    for ref in started:
        ref.stop()


def test_checkout_returns_only_idle_workers(refs: list[pykka.ActorRef[Any]]) -> None:
    pool = WorkerPool(clock=FakeClock())
    pool.register(refs[0])
    pool.register(refs[1])
    first = pool.checkout(0.1)
    second = pool.checkout(0.1)
    assert {first, second} == {refs[0], refs[1]}
    with pytest.raises(NoWorkerAvailable, match="within 0 s"):
        pool.checkout(0.0)
    assert pool.stats().busy == 2 and pool.stats().timeouts == 1


def test_checkout_with_no_registered_worker_fails_at_once(refs: list[pykka.ActorRef[Any]]) -> None:
    pool = WorkerPool(clock=FakeClock())  # a caller that queued could only time out never
    with pytest.raises(NoWorkerAvailable, match="no database worker is running"):
        pool.checkout(5.0)
    assert pool.stats().timeouts == 0  # refused before queueing, not timed out


def test_a_waiting_checkout_gets_the_worker_checked_in(refs: list[pykka.ActorRef[Any]]) -> None:
    pool = WorkerPool()
    pool.register(refs[0])
    taken = pool.checkout(0.1)
    got: list[pykka.ActorRef[Any]] = []
    waiter = threading.Thread(target=lambda: got.append(pool.checkout(2.0)))
    waiter.start()
    queued(pool)
    pool.checkin(taken)
    waiter.join(2.0)
    assert got == [refs[0]]


def test_waiters_fail_fast_when_the_last_worker_unregisters(refs: list[pykka.ActorRef[Any]]) -> None:
    pool = WorkerPool(clock=FakeClock())  # the waiter cannot time out: only the unregister ends it
    pool.register(refs[0])
    taken = pool.checkout(0.1)
    errors: list[BaseException] = []

    def wait() -> None:
        try:
            pool.checkout(5.0)
        except NoWorkerAvailable as exc:
            errors.append(exc)

    waiter = threading.Thread(target=wait)
    waiter.start()
    queued(pool)
    pool.unregister(taken)
    waiter.join(2.0)
    assert not waiter.is_alive()
    assert len(errors) == 1
    assert pool.stats().waiting == 0


def test_checkin_of_an_unregistered_worker_does_not_return_it(refs: list[pykka.ActorRef[Any]]) -> None:
    pool = WorkerPool()
    pool.register(refs[0])
    taken = pool.checkout(0.1)
    pool.unregister(taken)
    pool.checkin(taken)
    assert pool.stats().idle == 0
    assert pool.stats().members == 0


def test_the_wait_queue_is_bounded(refs: list[pykka.ActorRef[Any]]) -> None:
    pool = WorkerPool(max_waiters=1, clock=FakeClock())
    pool.register(refs[0])
    busy = pool.checkout(0.1)
    got: list[pykka.ActorRef[Any]] = []
    waiter = threading.Thread(target=lambda: got.append(pool.checkout(5.0)))
    waiter.start()
    queued(pool)
    # Refused at once: on this clock a caller that queued would never time out.
    with pytest.raises(NoWorkerAvailable, match="too many"):
        pool.checkout(5.0)
    assert pool.stats().timeouts == 1 and pool.stats().waiting == 1
    pool.checkin(busy)
    waiter.join(2.0)
    assert got == [refs[0]]


def test_kill_calls_the_workers_kill_function(refs: list[pykka.ActorRef[Any]]) -> None:
    pool = WorkerPool()
    killed: list[str] = []
    pool.register(refs[0], kill=lambda: killed.append("x"))
    pool.kill(refs[0])
    assert killed == ["x"]


def test_wait_hook_sees_every_checkout_and_how_long_it_waited(
        refs: list[pykka.ActorRef[Any]]) -> None:
    waits: list[float] = []
    clock = FakeClock()
    pool = WorkerPool(on_wait=waits.append, clock=clock)
    pool.register(refs[0])
    taken = pool.checkout(0.1)
    waiter = threading.Thread(target=pool.checkout, args=(2.0,))
    waiter.start()
    queued(pool)
    clock.advance(0.25)
    pool.checkin(taken)
    waiter.join(2.0)
    assert waits == [0.0, 0.25]


def shedding_pool(refs: list[pykka.ActorRef[Any]]) -> tuple[WorkerPool, FakeClock, pykka.ActorRef[Any]]:
    """A pool whose last interval's shortest wait (0.5 s) exceeded its target (0.02 s).

    Its one worker is checked out; the pool judges the interval, and starts
    shedding, at the next checkout.
    """
    clock = FakeClock()
    pool = WorkerPool(queue_target=0.02, queue_interval=1.0, clock=clock)
    pool.register(refs[0])
    busy = pool.checkout(0.1)
    clock.advance(1.0)  # a new interval starts with the next checkout
    got: list[pykka.ActorRef[Any]] = []
    waiter = threading.Thread(target=lambda: got.append(pool.checkout(5.0)))
    waiter.start()
    queued(pool)
    clock.advance(0.5)  # the only wait of its interval, longer than the target
    pool.checkin(busy)
    waiter.join(2.0)
    assert got == [refs[0]] and not pool.shedding
    clock.advance(0.5)
    return pool, clock, got[0]


def test_a_standing_queue_for_a_whole_interval_makes_the_pool_shed_new_waiters(
    refs: list[pykka.ActorRef[Any]],
) -> None:
    pool, _, busy = shedding_pool(refs)
    # Refused at once: on this clock a caller that queued would never time out.
    with pytest.raises(NoWorkerAvailable, match="shed"):
        pool.checkout(5.0)
    assert pool.shedding and pool.stats().shed == 1 and pool.stats().waiting == 0
    # An idle worker is still handed out while shedding.
    pool.checkin(busy)
    assert pool.checkout(0.1) is refs[0]
    assert pool.shedding


def test_an_interval_with_a_short_wait_stops_the_shedding(refs: list[pykka.ActorRef[Any]]) -> None:
    pool, clock, busy = shedding_pool(refs)
    with pytest.raises(NoWorkerAvailable, match="shed"):
        pool.checkout(1.0)
    pool.checkin(busy)
    pool.checkin(pool.checkout(0.1))  # an immediate checkout: a zero wait this interval
    assert pool.shedding
    clock.advance(1.0)
    pool.checkin(pool.checkout(0.1))
    assert not pool.shedding


def test_newcomers_do_not_overtake_waiting_requests(refs: list[pykka.ActorRef[Any]]) -> None:
    pool = WorkerPool()
    pool.register(refs[0])
    busy = pool.checkout(0.1)
    order: list[str] = []
    def wait_first() -> None:
        pool.checkout(2.0)
        order.append("first")

    first = threading.Thread(target=wait_first)
    first.start()
    queued(pool)
    pool.checkin(busy)
    first.join(2.0)
    assert order == ["first"]


# -- checkout_async: the same pool, waited for from an event loop -------------


def test_async_checkout_takes_an_idle_worker_at_once(refs: list[pykka.ActorRef[Any]]) -> None:
    waits: list[float] = []
    pool = WorkerPool(on_wait=waits.append)
    pool.register(refs[0])
    assert asyncio.run(pool.checkout_async(0.1)) is refs[0]
    assert waits == [0.0] and pool.stats().busy == 1


def test_async_checkout_is_handed_the_worker_checked_in_from_another_thread(
        refs: list[pykka.ActorRef[Any]]) -> None:
    pool = WorkerPool()
    pool.register(refs[0])
    taken = pool.checkout(0.1)

    async def wait_while_the_loop_keeps_running() -> tuple[pykka.ActorRef[Any], int]:
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.005)

        ticker = asyncio.ensure_future(tick())
        threading.Timer(0.1, pool.checkin, args=(taken,)).start()
        ref = await pool.checkout_async(2.0)
        ticker.cancel()
        return ref, ticks

    ref, ticks = asyncio.run(wait_while_the_loop_keeps_running())
    assert ref is refs[0]
    assert ticks >= 5, "the event loop was blocked while waiting"
    assert pool.stats().waiting == 0 and pool.stats().busy == 1


def test_async_checkout_times_out_and_a_late_worker_goes_back_to_the_pool(
        refs: list[pykka.ActorRef[Any]]) -> None:
    pool = WorkerPool()
    pool.register(refs[0])
    taken = pool.checkout(0.1)
    with pytest.raises(NoWorkerAvailable, match="within"):
        asyncio.run(pool.checkout_async(0.05))
    assert pool.stats().waiting == 0 and pool.stats().timeouts == 1
    pool.checkin(taken)
    assert pool.stats().idle == 1
    assert pool.checkout(0.1) is refs[0]


def test_async_waiters_are_served_oldest_first(refs: list[pykka.ActorRef[Any]]) -> None:
    pool = WorkerPool()
    pool.register(refs[0])
    taken = pool.checkout(0.1)

    async def three_waiters() -> list[int]:
        order: list[int] = []

        async def wait(n: int) -> None:
            ref = await pool.checkout_async(2.0)
            order.append(n)
            await asyncio.sleep(0.01)
            await asyncio.to_thread(pool.checkin, ref)

        tasks = [asyncio.ensure_future(wait(n)) for n in range(3)]
        await asyncio.sleep(0.02)
        await asyncio.to_thread(pool.checkin, taken)
        await asyncio.wait_for(asyncio.gather(*tasks), 5)
        return order

    assert asyncio.run(three_waiters()) == [0, 1, 2]


def test_async_waiters_fail_fast_when_the_last_worker_leaves(
        refs: list[pykka.ActorRef[Any]]) -> None:
    pool = WorkerPool()
    pool.register(refs[0])
    pool.checkout(0.1)

    async def wait_then_lose_every_worker() -> float:
        started = time.monotonic()
        threading.Timer(0.05, pool.unregister, args=(refs[0],)).start()
        with pytest.raises(NoWorkerAvailable, match="no database worker is running"):
            await pool.checkout_async(5.0)
        return time.monotonic() - started

    assert asyncio.run(wait_then_lose_every_worker()) < 1.0
    assert pool.stats().waiting == 0
