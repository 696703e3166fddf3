"""Poolboy-style checkout of idle DbWorkers.

A request thread checks out an *idle* worker, asks it one thing, and the
worker checks itself back in when it has answered. Nobody sends work into
a busy worker's mailbox, so a slow query delays only its own request, and
a worker's mailbox never holds more than one request.

Workers register themselves when they start (after their connection is
open) and unregister when they end, however they end, so a supervisor's
replacement worker joins the pool without anyone wiring it in.

When no worker is idle the caller waits, in a bounded queue, up to its
checkout timeout — a thread on a condition (:meth:`WorkerPool.checkout`),
a coroutine on an asyncio future that the checking-in worker settles
through the loop (:meth:`WorkerPool.checkout_async`), so an event loop is
never blocked; then :class:`~actors.errors.NoWorkerAvailable`. With no
worker registered at all (the database is down and none can start) it
fails at once instead of waiting for nothing.

Load shedding, as DBConnection's queue (CoDel): when even the shortest
checkout wait of a whole ``queue_interval`` exceeded ``queue_target``, a
standing queue has formed — more work arrives than the workers can do —
and for the next interval a request that finds no idle worker is refused
at once instead of joining the queue. Overload then costs clients a fast
503 rather than ever-growing latency and memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pykka

from actors.errors import NoWorkerAvailable

__all__ = ["PoolStats", "WorkerPool"]

Kill = Callable[[], None]


@dataclass(frozen=True, slots=True)
class PoolStats:
    """A snapshot of the pool, for metrics and readiness."""

    members: int
    idle: int
    busy: int
    waiting: int
    checkouts: int
    timeouts: int
    shed: int


class WorkerPool:
    """Checkout/checkin of idle workers; safe to use from any thread.

    Args:
        max_waiters: how many callers may wait for a worker at once; the
            next one is refused immediately (the queue is bounded so that
            overload turns into fast 503s, not a growing backlog).
        on_wait: called with the seconds each successful checkout waited
            (metrics hook); it runs in the caller's thread.
        on_timeout: called when a checkout gives up or is shed (metrics hook).
        queue_target: the checkout wait, in seconds, that a healthy queue
            stays under at least once per interval.
        queue_interval: seconds over which the shortest wait is judged.
        clock: monotonic clock (tests pass a fake one).
    """

    DEFAULT_MAX_WAITERS = 128
    DEFAULT_QUEUE_TARGET = 0.05
    DEFAULT_QUEUE_INTERVAL = 1.0

    def __init__(
        self,
        max_waiters: int = DEFAULT_MAX_WAITERS,
        on_wait: Callable[[float], None] | None = None,
        on_timeout: Callable[[], None] | None = None,
        *,
        queue_target: float = DEFAULT_QUEUE_TARGET,
        queue_interval: float = DEFAULT_QUEUE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._cond = threading.Condition(threading.Lock())
        # LIFO, as poolboy: the most recently used worker is the warmest.
        self._idle: deque[pykka.ActorRef[Any]] = deque()
        self._members: dict[str, pykka.ActorRef[Any]] = {}
        self._busy: set[str] = set()
        # Coroutines waiting in checkout_async, oldest first.
        self._async_waiters: deque[tuple[asyncio.AbstractEventLoop, asyncio.Future[Any]]] = (
            deque())
        self._kills: dict[str, Kill] = {}
        self._waiting = 0
        self._checkouts = 0
        self._timeouts = 0
        self.max_waiters = max_waiters
        self._on_wait = on_wait
        self._on_timeout = on_timeout
        self._queue_target = queue_target
        self._queue_interval = queue_interval
        self._clock = clock
        self._interval_end = clock() + queue_interval
        self._interval_min_wait = float("inf")
        self._shedding = False
        self._shed = 0

    # -- called by workers (in their own actor thread) -------------------

    def register(self, ref: pykka.ActorRef[Any], kill: Kill | None = None) -> None:
        """Add a started worker to the pool, idle.

        ``kill`` forcibly releases the worker's resources (cancel its query,
        close its connection) when it does not stop in time.
        """
        with self._cond:
            self._members[ref.actor_urn] = ref
            if kill is not None:
                self._kills[ref.actor_urn] = kill
            self._busy.add(ref.actor_urn)
            self._release(ref)

    def unregister(self, ref: pykka.ActorRef[Any]) -> None:
        """Remove a worker that is stopping; idempotent."""
        with self._cond:
            urn = ref.actor_urn
            if self._members.pop(urn, None) is None:
                return
            self._kills.pop(urn, None)
            self._busy.discard(urn)
            with contextlib.suppress(ValueError):
                self._idle.remove(ref)
            # Waiters re-check: with no members left they must fail fast.
            self._cond.notify_all()
            if not self._members:
                while self._async_waiters:
                    loop, waiter = self._async_waiters.popleft()
                    self._waiting -= 1
                    with contextlib.suppress(RuntimeError):  # its loop is closed
                        loop.call_soon_threadsafe(_fail, waiter)

    def checkin(self, ref: pykka.ActorRef[Any]) -> None:
        """Return a worker to the idle set after it answered a request."""
        with self._cond:
            if ref.actor_urn in self._busy:
                self._release(ref)

    # -- called by request threads ---------------------------------------

    def checkout(self, timeout: float) -> pykka.ActorRef[Any]:
        """Take an idle worker, waiting up to ``timeout`` seconds.

        Raises:
            NoWorkerAvailable: if no worker runs, the wait queue is full,
                or none became idle in time.
        """
        with self._cond:
            started = self._clock()
            self._judge_interval(started)
            # Newcomers do not overtake those already waiting.
            if self._idle and not self._waiting:
                self._interval_min_wait = 0.0
                ref = self._take()
                waited = 0.0
            else:
                self._refuse_if_needed()
                ref = self._wait_for_idle(started, timeout)
                waited = self._clock() - started
                self._note_wait(waited)
        if self._on_wait is not None:
            self._on_wait(waited)
        return ref

    async def checkout_async(self, timeout: float) -> pykka.ActorRef[Any]:
        """Take an idle worker, waiting up to ``timeout`` seconds without blocking the loop.

        Call from a running event loop; same rules and errors as :meth:`checkout`.

        Raises:
            NoWorkerAvailable: if no worker runs, the wait queue is full,
                or none became idle in time.
        """
        with self._cond:
            started = self._clock()
            self._judge_interval(started)
            idle = self._take() if self._idle and not self._waiting else None
            if idle is None:
                self._refuse_if_needed()
                loop = asyncio.get_running_loop()
                waiter: asyncio.Future[pykka.ActorRef[Any]] = loop.create_future()
                entry = (loop, waiter)
                self._async_waiters.append(entry)
                self._waiting += 1
            else:
                self._interval_min_wait = 0.0
        if idle is not None:
            if self._on_wait is not None:
                self._on_wait(0.0)
            return idle
        try:
            async with asyncio.timeout(timeout):
                ref = await waiter
        except TimeoutError:
            with self._cond:
                with contextlib.suppress(ValueError):
                    self._async_waiters.remove(entry)
                    self._waiting -= 1
                # Else a worker was handed over meanwhile: _deliver gives it back.
                self._timeouts += 1
                self._note_wait(self._clock() - started)
            self._notify_timeout()
            raise NoWorkerAvailable(
                f"no database worker became free within {timeout:g} s") from None
        with self._cond:
            waited = self._clock() - started
            self._note_wait(waited)
        if self._on_wait is not None:
            self._on_wait(waited)
        return ref

    def _refuse_if_needed(self) -> None:
        """Raise unless a caller may queue for a worker (lock held)."""
        if not self._members:
            raise NoWorkerAvailable("no database worker is running")
        if self._shedding:
            self._shed += 1
            self._timeouts += 1
            self._notify_timeout()
            raise NoWorkerAvailable("overloaded: requests are being shed; try again")
        if self._waiting >= self.max_waiters:
            self._timeouts += 1
            self._notify_timeout()
            raise NoWorkerAvailable("too many requests are waiting for a database worker")

    def _wait_for_idle(self, started: float, timeout: float) -> pykka.ActorRef[Any]:
        """Wait on the condition for an idle worker and take it (lock held)."""
        deadline = started + timeout
        self._waiting += 1
        try:
            while not self._idle:
                remaining = deadline - self._clock()
                if remaining <= 0 or not self._members:
                    self._timeouts += 1
                    self._note_wait(self._clock() - started)
                    self._notify_timeout()
                    raise NoWorkerAvailable(
                        f"no database worker became free within {timeout:g} s"
                    )
                self._cond.wait(remaining)
        finally:
            self._waiting -= 1
        return self._take()

    def kill(self, ref: pykka.ActorRef[Any]) -> None:
        """Forcibly release a worker's resources (supervisor shutdown timeout)."""
        with self._cond:
            kill = self._kills.get(ref.actor_urn)
        if kill is not None:
            kill()

    def stats(self) -> PoolStats:
        """A consistent snapshot of the pool."""
        with self._cond:
            return PoolStats(
                members=len(self._members),
                idle=len(self._idle),
                busy=len(self._busy),
                waiting=self._waiting,
                checkouts=self._checkouts,
                timeouts=self._timeouts,
                shed=self._shed,
            )

    def members(self) -> list[pykka.ActorRef[Any]]:
        """The registered workers, idle or busy."""
        with self._cond:
            return list(self._members.values())

    # -- internals (lock held) -------------------------------------------

    def _note_wait(self, waited: float) -> None:
        self._interval_min_wait = min(self._interval_min_wait, waited)

    def _judge_interval(self, now: float) -> None:
        """At each interval's end: shed during the next one if no wait was short."""
        if now < self._interval_end:
            return
        observed = self._interval_min_wait != float("inf")
        self._shedding = observed and self._interval_min_wait > self._queue_target
        self._interval_min_wait = float("inf")
        self._interval_end = now + self._queue_interval

    @property
    def shedding(self) -> bool:
        """Whether requests that would have to wait are being refused."""
        return self._shedding

    def _release(self, ref: pykka.ActorRef[Any]) -> None:
        """A busy member is free: hand it to the oldest coroutine waiting, else make it idle."""
        while self._async_waiters:
            loop, waiter = self._async_waiters.popleft()
            self._waiting -= 1
            try:
                loop.call_soon_threadsafe(self._deliver, waiter, ref)
            except RuntimeError:  # that waiter's loop is closed: try the next
                continue
            return
        self._busy.discard(ref.actor_urn)
        self._idle.append(ref)
        self._cond.notify()

    def _deliver(self, waiter: asyncio.Future[Any], ref: pykka.ActorRef[Any]) -> None:
        """In the waiter's loop: hand ``ref`` over, or back if the waiter gave up."""
        if waiter.done():
            self.checkin(ref)
        else:
            waiter.set_result(ref)

    def _take(self) -> pykka.ActorRef[Any]:
        ref = self._idle.pop()
        self._busy.add(ref.actor_urn)
        self._checkouts += 1
        return ref

    def _notify_timeout(self) -> None:
        if self._on_timeout is not None:
            self._on_timeout()


def _fail(waiter: asyncio.Future[Any]) -> None:
    if not waiter.done():
        waiter.set_exception(NoWorkerAvailable("no database worker is running"))
