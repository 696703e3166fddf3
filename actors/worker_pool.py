"""Poolboy-style checkout of idle DbWorkers.

A request thread checks out an *idle* worker, asks it one thing, and the
worker checks itself back in when it has answered. Nobody sends work into
a busy worker's mailbox, so a slow query delays only its own request, and
a worker's mailbox never holds more than one request.

Workers register themselves when they start (after their connection is
open) and unregister when they end, however they end, so a supervisor's
replacement worker joins the pool without anyone wiring it in.

When no worker is idle the caller waits, in a bounded queue, up to its
checkout timeout; then :class:`~actors.errors.NoWorkerAvailable`. With no
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
            self._idle.append(ref)
            self._cond.notify()

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

    def checkin(self, ref: pykka.ActorRef[Any]) -> None:
        """Return a worker to the idle set after it answered a request."""
        with self._cond:
            urn = ref.actor_urn
            if urn not in self._busy:
                return
            self._busy.discard(urn)
            if urn in self._members:
                self._idle.append(ref)
                self._cond.notify()

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
                return self._take()
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
            ref = self._take()
            waited = self._clock() - started
            self._note_wait(waited)
        if self._on_wait is not None:
            self._on_wait(waited)
        return ref

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

    def _take(self) -> pykka.ActorRef[Any]:
        ref = self._idle.pop()
        self._busy.add(ref.actor_urn)
        self._checkouts += 1
        return ref

    def _notify_timeout(self) -> None:
        if self._on_timeout is not None:
            self._on_timeout()
