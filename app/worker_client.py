"""One way to ask a DbWorker something: checkout, one ask, domain errors.

Shared by the users and sessions services. A worker that died before
handling the message (so it did nothing) is replaced by another, once; a
read whose worker lost its connection is retried once on another worker
(reads are idempotent); a write whose worker lost its connection has an
unknown outcome and is reported, not retried.
"""

from __future__ import annotations

from typing import Any

import pykka

from actors.errors import DatabaseUnavailable, WorkerCrashed
from actors.worker_pool import WorkerPool

__all__ = ["WorkerClient"]


class WorkerClient:
    """Asks checked-out DbWorkers; used from request threads.

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

    def ask(self, message: Any, *, idempotent: bool) -> Any:
        """The worker's answer to ``message``.

        Raises:
            Whatever the worker raises for the message (NotFound, ...).
            NoWorkerAvailable: no idle worker within the checkout timeout.
            DatabaseUnavailable: the worker did not answer in time.
            WorkerCrashed: the worker died, twice, or mid-write.
        """
        for attempt in (1, 2):
            worker = self.workers.checkout(self._checkout_timeout)
            try:
                return worker.ask(message, timeout=self._ask_timeout)
            except pykka.ActorDeadError:
                # The worker ended before handling the message: nothing was
                # done, so any operation may go to another worker.
                if attempt == 2:
                    raise WorkerCrashed("the database worker stopped; try again") from None
            except pykka.Timeout:
                raise DatabaseUnavailable("the database did not answer in time") from None
            except WorkerCrashed:
                # Its connection broke mid-request: the outcome of a write is
                # unknown, but a read can safely go to another worker.
                if not idempotent or attempt == 2:
                    raise
        raise AssertionError("unreachable")  # pragma: no cover
