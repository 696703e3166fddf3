"""Read coalescing: concurrent single-user reads become one query.

Under load many requests miss the cache at about the same time. Asking a
DbWorker once per request would pay a checkout, two thread hand-offs and
a statement each; instead every read asked for while a batch is being
formed or while the DbWorkers are busy joins the next batch, and a batch
is one :class:`~actors.messages.GetUsers` message (one
``WHERE id = ANY(...)``) to one worker. It is the DataLoader pattern, run
in the event loop:

- a read registers its id and awaits a future; the first read of a loop
  iteration schedules a dispatch at the end of that iteration, so at low
  load a read is sent at once (a batch of one) and adds no latency;
- at most ``in_flight_limit()`` batches (one per DbWorker) are out at a
  time; reads arriving meanwhile wait and go together, so batches grow
  exactly when the database is the bottleneck;
- reads of the same id share one entry (and one row);
- a batch holds at most ``max_batch`` ids;
- a read that waited longer than ``max_wait`` without being sent fails
  with :class:`~actors.errors.NoWorkerAvailable` (503), like a checkout
  that timed out, so a stalled database cannot pile reads up;
- a whole batch fails or succeeds together: its worker's errors reach
  every read of it (a lost connection was already retried once on
  another worker, reads being idempotent).
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Awaitable, Callable
from typing import Any

from actors.errors import NoWorkerAvailable
from actors.messages import GetUsers, UserRow

__all__ = ["ReadCoalescer"]


class ReadCoalescer:
    """Coalesces reads of single users into batches; used from one event loop at a time.

    Args:
        ask: sends a :class:`GetUsers` to a DbWorker and awaits its answer
            (see :meth:`app.worker_client.WorkerClient.ask`).
        in_flight_limit: how many batches may be out at once (the number of
            DbWorkers holding a connection; at least one is always allowed).
        max_batch: most ids in one batch.
        max_wait: seconds a read may wait before it is sent, else 503.
        clock: monotonic clock (tests pass a fake one).
    """

    DEFAULT_MAX_BATCH = 64

    def __init__(
        self,
        ask: Callable[[GetUsers], Awaitable[dict[int, UserRow]]],
        in_flight_limit: Callable[[], int],
        *,
        max_batch: int = DEFAULT_MAX_BATCH,
        max_wait: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ask = ask
        self._limit = in_flight_limit
        self._max_batch = max_batch
        self._max_wait = max_wait
        self._clock = clock
        # id -> (a future per reader, when it was first asked for); insertion
        # order is age order. A future each, so that one reader giving up
        # (its future cancelled) leaves the others' alone.
        self._pending: dict[int, tuple[list[asyncio.Future[UserRow | None]], float]] = {}
        self._in_flight = 0
        self._scheduled = False
        self.batches = 0
        """Batches sent so far (tests and benchmarks read it)."""
        self.reads = 0
        """Reads coalesced so far, shared ones included."""

    def load(self, user_id: int) -> asyncio.Future[UserRow | None]:
        """A future of the user (None when there is no such user).

        Raises (through the future): NoWorkerAvailable, DatabaseUnavailable,
        WorkerCrashed.
        """
        self.reads += 1
        loop = asyncio.get_running_loop()
        future: asyncio.Future[UserRow | None] = loop.create_future()
        entry = self._pending.get(user_id)
        if entry is not None:
            entry[0].append(future)
            return future
        self._pending[user_id] = ([future], self._clock())
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._dispatch)
        return future

    def _dispatch(self) -> None:
        self._scheduled = False
        self._expire()
        limit = max(1, self._limit())
        while self._pending and self._in_flight < limit:
            batch: dict[int, list[asyncio.Future[UserRow | None]]] = {}
            for user_id in self._pending:
                batch[user_id] = self._pending[user_id][0]
                if len(batch) == self._max_batch:
                    break
            for user_id in batch:
                del self._pending[user_id]
            self._in_flight += 1
            self.batches += 1
            asyncio.get_running_loop().create_task(self._fetch(batch))

    def _expire(self) -> None:
        deadline = self._clock() - self._max_wait
        for user_id, (futures, since) in list(self._pending.items()):
            if since > deadline:
                break  # the rest are younger
            del self._pending[user_id]
            for future in futures:
                if not future.done():
                    future.set_exception(NoWorkerAvailable(
                        f"no database worker became free within {self._max_wait:g} s"))

    async def _fetch(self, batch: dict[int, list[asyncio.Future[UserRow | None]]]) -> None:
        try:
            users = await self._ask(GetUsers(tuple(batch)))
        except asyncio.CancelledError:  # the process is stopping
            self._fail(batch, NoWorkerAvailable("the server is stopping"))
            raise
        except Exception as exc:
            self._fail(batch, exc)
        else:
            for user_id, futures in batch.items():
                found = users.get(user_id)
                for future in futures:
                    if not future.done():
                        future.set_result(found)
        finally:
            self._in_flight -= 1
            if self._pending and not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._dispatch)

    @staticmethod
    def _fail(batch: dict[int, list[asyncio.Future[UserRow | None]]], error: Exception) -> None:
        for futures in batch.values():
            for future in futures:
                if not future.done():
                    # A copy each: one exception raised in many tasks would
                    # collect all their tracebacks.
                    future.set_exception(copy.copy(error))

    def stats(self) -> dict[str, Any]:
        """Pending reads, batches in flight, and totals so far."""
        return {"pending": len(self._pending), "in_flight": self._in_flight,
                "batches": self.batches, "reads": self.reads}
