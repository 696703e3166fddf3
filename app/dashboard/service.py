"""One worker's dashboard: its journal, its publisher, its view of the others."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pykka

from actors.cache import CacheHandle
from actors.change_listener import Coherence
from actors.worker_pool import WorkerPool
from app.dashboard.aggregate import aggregate
from app.dashboard.board import SnapshotBoard
from app.dashboard.journal import SupervisionJournal
from app.dashboard.publisher import Publisher
from app.dashboard.snapshot import WAIT_WINDOW, WorkerObserver, route_label
from app.dashboard.traffic import HistogramWindow, histogram_totals

__all__ = ["Dashboard"]


class Dashboard:
    """What the dashboard needs of one worker process.

    Built with the runtime (so its journal hears the tree start), started
    once the tree runs, stopped with it. Its methods that read files or
    ask actors block: resources call them off the event loop.

    Args:
        root: returns the root supervisor (None while there is none).
        pool: the DbWorkers' checkout pool.
        caches: name → cache handle (None when that cache is off).
        coherence: whether cached rows may be served.
        directory: the directory shared by the workers (None: this worker only).
        chaos: offer kills (``USERMGMT_CHAOS=1``).
        instrumented: metrics are recorded, so traffic can be read from them.
        interval: seconds between snapshots.
    """

    def __init__(
        self,
        *,
        root: Callable[[], pykka.ActorRef[Any] | None],
        pool: WorkerPool,
        caches: Mapping[str, CacheHandle[Any] | None],
        coherence: Coherence,
        directory: Path | None = None,
        chaos: bool = False,
        instrumented: bool = True,
        interval: float = Publisher.DEFAULT_INTERVAL,
    ) -> None:
        self.chaos = chaos
        self.journal = SupervisionJournal()
        self.board = SnapshotBoard(directory)
        requests = waits = None
        self._bounds: tuple[float, ...] = ()
        wait_bounds: tuple[float, ...] = ()
        refresh = None
        if instrumented:
            # Imported here: the metrics module registers its series on import.
            from app import metrics

            refresh = metrics.TALLY.flush
            requests = HistogramWindow(
                lambda: histogram_totals(metrics.HTTP_DURATION, route_label))
            waits = HistogramWindow(
                lambda: histogram_totals(metrics.DB_CHECKOUT_WAIT, lambda _: "all"),
                keep=WAIT_WINDOW + 5)
            self._bounds = tuple(metrics.HTTP_DURATION._upper_bounds)
            wait_bounds = tuple(metrics.DB_CHECKOUT_WAIT._upper_bounds)
        self.observer = WorkerObserver(
            root=root, pool=pool, caches=caches, coherence=coherence, journal=self.journal,
            requests=requests, request_bounds=self._bounds,
            waits=waits, wait_bounds=wait_bounds,
            refresh=refresh,
        )
        self.publisher = Publisher(self.observer, self.board, chaos=chaos, interval=interval)
        self.journal.on_event = self.publisher.wake

    @property
    def pid(self) -> int:
        return self.board.pid

    @property
    def shared(self) -> bool:
        """Whether other workers can be reached (a shared directory is set)."""
        return self.board.directory is not None

    def start(self) -> None:
        self.publisher.start()

    def stop(self) -> None:
        self.publisher.stop()

    def view(self) -> dict[str, Any]:
        """Every live worker, as ``GET /api/dashboard`` answers (reads files)."""
        own = self.publisher.latest
        if own is None:  # not started yet: take one now
            own = self.observer.snapshot()
        return aggregate(own, self.board.others(), now=time.time(), chaos=self.chaos,
                         bounds=self._bounds)

    def kill_here(self, supervisor: str, child: str) -> str | None:
        """Crash ``child`` of ``supervisor`` in this worker; None, or why not."""
        error = self.observer.kill(supervisor, child)
        self.publisher.wake()
        return error
