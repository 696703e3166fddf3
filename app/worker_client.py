"""One way to ask a DbWorker something: checkout, one ask, domain errors.

Shared by the users and sessions services, from the event loop: the
checkout and the answer are awaited (see :meth:`WorkerPool.checkout_async`
and :func:`supervisors.aio.ask_async`), so a request waiting for the
database never blocks the other connections of its process.

A worker that died before handling the message (so it did nothing) is
replaced by another, once; a read whose worker lost its connection is
retried once on another worker (reads are idempotent); a write whose
worker lost its connection has an unknown outcome and is reported, not
retried.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pykka

from actors.errors import DatabaseUnavailable, WorkerCrashed
from actors.messages import Refused
from actors.worker_pool import WorkerPool
from supervisors.aio import ask_async

__all__ = ["WorkerClient"]


class WorkerClient:
    """Asks checked-out DbWorkers; used from the event loop.

    Args:
        workers: the checkout pool of DbWorkers.
        checkout_timeout: longest wait for an idle worker, in seconds.
        ask_timeout: longest wait for a worker's answer; set it above the
            database's statement timeout so the database cancels first.
    """

    def __init__(self, workers: WorkerPool, checkout_timeout: float, ask_timeout: float) -> None:
        self.workers = workers
        self._checkout_timeout = checkout_timeout
        self._ask_timeout = ask_timeout

    async def ask(self, message: Any, *, idempotent: bool) -> Any:
        """The worker's answer to ``message``.

        Raises:
            Whatever the worker refuses the message with (NotFound, ...).
            NoWorkerAvailable: no idle worker within the checkout timeout.
            DatabaseUnavailable: the worker did not answer in time.
            WorkerCrashed: the worker died, twice, or mid-write.
        """
        for attempt in (1, 2):
            worker = await self.workers.checkout_async(self._checkout_timeout)
            try:
                async with asyncio.timeout(self._ask_timeout):
                    answer = await ask_async(worker, message)
            except pykka.ActorDeadError:
                # The worker ended before handling the message: nothing was
                # done, so any operation may go to another worker.
                if attempt == 2:
                    raise WorkerCrashed("the database worker stopped; try again") from None
                continue
            except TimeoutError:
                raise DatabaseUnavailable("the database did not answer in time") from None
            if type(answer) is not Refused:
                return answer
            error = answer.error
            # Its connection broke mid-request: the outcome of a write is
            # unknown, but a read can safely go to another worker.
            if not (isinstance(error, WorkerCrashed) and idempotent and attempt == 1):
                raise error
        raise AssertionError("unreachable")  # pragma: no cover
